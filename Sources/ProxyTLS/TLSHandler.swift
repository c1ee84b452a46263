import Logging
import NIOCore

/// Inbound user event fired once the handshake has finished.
public enum TLSUserEvent: Equatable, Sendable {
    case handshakeCompleted(negotiatedProtocol: String?)
}

/// The protocol handler right behind a `TLSHandler`, linked to it (`TLSHandler.link`): plaintext comes to it by a
/// direct call instead of through the pipeline, and it writes, flushes and asks for reads with the handler's own
/// methods. Nothing may stand between the two in the pipeline while they are linked.
public protocol TLSPlaintextReceiver: AnyObject {
    /// The plaintext of one socket read (as `channelRead` would pass it).
    func plaintextRead(_ plaintext: ByteBuffer)
    /// The socket read is over (as `channelReadComplete`).
    func plaintextReadComplete()
}

/// A thin NIO shell around a `TLSSession`: ciphertext from the socket goes into the session, plaintext goes up
/// the pipeline; plaintext from above is encrypted and written down. Everything it decides comes from the
/// session's result values.
///
/// Closing is orderly (PITFALLS: `Channel.close()` drops pending writes): on close we queue close_notify behind
/// everything already written, wait until that write is flushed to the socket, and only then close, so a
/// response that is still draining to a slow client is never cut short. `closeFlushTimeout` bounds the wait for
/// a peer that stops reading.
public final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case handshaking
        case active
        /// We sent close_notify after a half-close; reads continue.
        case outputClosed
        /// close_notify queued; waiting for it to reach the socket before closing.
        case closing(EventLoopPromise<Void>?)
        case closed
    }

    private let session: TLSSession
    private let handshakeTimeout: TimeAmount
    private let closeFlushTimeout: TimeAmount
    private let logger: Logger?
    private var state = State.handshaking
    /// The peer's close_notify arrived: once ours is sent too, the TLS connection is over in both directions.
    private var peerSentCloseNotify = false
    /// Plaintext written but not flushed yet: encrypted together at flush, so a response's head and body
    /// parts share one TLS record and one socket write instead of one each.
    private var unflushed: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var flushBeforeHandshake = false
    /// A flush waits for the end of the event-loop turn: the head, body and end of a response written (and each
    /// flushed) by one task step leave as one record and one socket write instead of three.
    private var flushScheduled = false
    private var unflushedBytes = 0
    /// Scratch space for joining small writes into one record.
    private var coalesced = ByteBuffer()
    private var timer: Scheduled<Void>?
    /// A plaintext buffer for the next read: one left over from a read that completed no record, or the last small
    /// one passed on, which the handlers behind have usually let go of by the next read, so it is filled again in
    /// place instead of allocated (`clear()` makes a new one if it is still held). Only small ones are kept from
    /// reads passed on, as for `spareCiphertext`: an idle connection holds it.
    private var spare: ByteBuffer?
    /// The previous flush's batch array, emptied: swapped in so that a flush allocates no new array.
    private var spareBatch: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    /// The last small ciphertext buffer, for the next flush: the socket has usually written and let go of it by
    /// then, so it is filled again in place instead of allocated. Only small ones are kept (an idle connection holds
    /// it), and one still queued in the channel is not touched: `clear()` would make a new one.
    private var spareCiphertext: ByteBuffer?
    static let spareCiphertextLimit = 4096

    public init(
        session: TLSSession,
        handshakeTimeout: TimeAmount = .seconds(10),
        closeFlushTimeout: TimeAmount = .seconds(30),
        logger: Logger? = nil
    ) {
        self.session = session
        self.handshakeTimeout = handshakeTimeout
        self.closeFlushTimeout = closeFlushTimeout
        self.logger = logger
    }

    /// The channel's allocator, read once: `context.channel` costs a retain and a release per use.
    private var allocator = ByteBufferAllocator()

    // MARK: - Lifecycle

    /// Flushes wait for the end of the event-loop turn (the default: an HTTP/1.1 response's head, body and end
    /// leave as one record). Off for a protocol handler that already flushes once per turn (HTTP/2's): waiting
    /// again would only hold its frames back by one more turn of the loop.
    public var defersFlushes = true

    /// The end-of-turn flush, made once: a closure made for every flush was an allocation per response. It holds
    /// the handler and its context until `handlerRemoved` lets go of it (a flush queued by then still runs).
    private var deferredFlush: (() -> Void)?

    /// Linked: the handler behind takes plaintext from here directly (`TLSPlaintextReceiver`). Held strongly (a
    /// weak reference would give it a side table, and each of its retains the runtime's slow path) and let go of
    /// when either handler leaves the pipeline.
    private var receiver: (any TLSPlaintextReceiver)?
    /// This handler's context while it is in the pipeline, for the linked handler's direct writes.
    private var context: ChannelHandlerContext?

    /// Plaintext goes to `receiver` by a direct call from now on, and its writes come through `writePlaintext`,
    /// `flushPlaintext` and `readOnward`: each one hop of the pipeline (and its `NIOAny` and retains) the fewer. The
    /// receiver must be the next handler in the pipeline, with none between; it calls `unlink` when it leaves.
    public func link(_ receiver: any TLSPlaintextReceiver) {
        guard context != nil else { return }
        self.receiver = receiver
    }

    public func unlink() {
        receiver = nil
    }

    /// `write(context:data:promise:)` for the linked handler: queued for the next flush.
    public func writePlaintext(_ plaintext: ByteBuffer) {
        queue(plaintext, promise: nil)
    }

    /// `flush(context:)` for the linked handler.
    public func flushPlaintext() {
        guard let context else { return }
        flush(context: context)
    }

    /// A read asked for by the linked handler, passed on towards the socket.
    public func readOnward() {
        if let socket { socket.read0() } else { context?.read() }
    }

    /// Set before the handler is added, and only when it is the first in the pipeline (the socket's own, right
    /// behind the head): ciphertext writes, flushes and the linked handler's reads then go to the channel's core
    /// directly, as the pipeline's head would pass them, a hop of the pipeline the fewer each.
    public var firstInPipeline = false
    private var socket: (any ChannelCore)?

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if firstInPipeline { socket = context.channel._channelCore }
        allocator = context.channel.allocator
        deferredFlush = { [self] in
            flushScheduled = false
            // A close in between has encrypted and flushed what was written.
            guard case .active = state else { return }
            encryptUnflushed(context: context)
            flushSocket(context)
        }
        if context.channel.isActive { start(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        deferredFlush = nil
        receiver = nil
        self.context = nil
        socket = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard case .handshaking = state, timer == nil else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: handshakeTimeout) { [self] in
            guard case .handshaking = state else { return }
            fail(context: context, OpenSSLError(kind: .handshakeTimeout, operation: "TLS handshake"))
        }
        // A client speaks first; for a server this only confirms OpenSSL wants the ClientHello.
        if session.role == .client { advanceHandshake(context: context) }
        readDuringHandshake(context: context)
    }

    /// With autoRead off (NIOAsyncChannel reads on demand), nobody above asks for bytes until the protocol
    /// behind TLS is set up — which waits for the handshake. So the handshake drives its own reads.
    private func readDuringHandshake(context: ChannelHandlerContext) {
        guard case .handshaking = state else { return }
        let autoRead = (try? context.channel.syncOptions?.getOption(ChannelOptions.autoRead)) ?? true
        if !autoRead { context.read() }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        let wasHandshaking: Bool
        if case .handshaking = state { wasHandshaking = true } else { wasHandshaking = false }
        if case .closing(let promise) = state { promise?.succeed(()) }
        state = .closed
        failBufferedWrites(ChannelError.ioOnClosedChannel)
        if wasHandshaking {
            context.fireErrorCaught(OpenSSLError(kind: .closedDuringHandshake, operation: "TLS handshake"))
        }
        context.fireChannelInactive()
    }

    // MARK: - Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let ciphertext = unwrapInboundIn(data)
        switch state {
        case .handshaking, .active, .outputClosed:
            // OpenSSL reads the socket's buffer in place; only part of a record left at the end is copied.
            ciphertext.withUnsafeReadableBytes { bytes in
                session.lendCiphertext(bytes) {
                    if case .handshaking = state {
                        advanceHandshake(context: context)
                        guard case .active = state else { return }
                    }
                    readPlaintext(context: context, hint: bytes.count)
                }
            }
        case .closing, .closed:
            break  // closing: what the peer still sends is dropped, not kept for OpenSSL
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        writeCiphertext(context: context, promise: nil)
        // Only when there is something to flush: an empty flush still passes the pipeline's head and the socket's
        // checks, once per read.
        if ciphertextUnflushed { flushSocket(context) }
        if let receiver {
            receiver.plaintextReadComplete()
        } else {
            context.fireChannelReadComplete()
        }
        readDuringHandshake(context: context)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // TCP FIN before the handshake finished: nothing above us has anything to do with the connection.
        if case .handshaking = state, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func advanceHandshake(context: ChannelHandlerContext) {
        switch session.handshake() {
        case .incomplete:
            writeCiphertext(context: context, promise: nil)
            flushSocket(context)
        case .complete:
            timer?.cancel()
            timer = nil
            state = .active
            writeCiphertext(context: context, promise: nil)
            context.fireUserInboundEventTriggered(
                TLSUserEvent.handshakeCompleted(negotiatedProtocol: session.negotiatedProtocol))
            if flushBeforeHandshake {
                flushBeforeHandshake = false
                encryptUnflushed(context: context)
            }
            flushSocket(context)
        case .failed(let error):
            fail(context: context, error)
        }
    }

    /// Decrypts every whole record the socket read brought into one buffer (plaintext is never larger than the
    /// ciphertext it came from) and passes it up in one `channelRead`: the protocol above parses one run of bytes
    /// per socket read, however many records it held.
    private func readPlaintext(context: ChannelHandlerContext, hint: Int) {
        let capacity = min(max(hint, 1024), Self.maxPlaintextRead)
        // Taken out of `spare` straight into the one variable: unique then, unless a handler behind still holds it.
        var plaintext = spare.take() ?? allocator.buffer(capacity: capacity)
        if plaintext.capacity >= capacity {
            plaintext.clear()
        } else {
            plaintext = allocator.buffer(capacity: capacity)
        }
        while true {
            // SSL_read copies a record piecewise: a new buffer only once this one is full.
            if plaintext.writableBytes == 0 {
                passOn(plaintext, context)
                plaintext = allocator.buffer(capacity: capacity)
            }
            var result = TLSSession.ReadResult.wantRead
            plaintext.writeWithUnsafeMutableBytes(minimumWritableBytes: 1) { buffer in
                result = session.readPlaintext(into: buffer)
                if case .bytes(let count) = result { return count }
                return 0
            }
            switch result {
            case .bytes where session.hasBufferedInput:
                continue
            case .bytes, .wantRead:
                // After a record, nothing left in OpenSSL's input means the next SSL_read could only say "want
                // read": it is not called (one call into OpenSSL per record, not one more per socket read).
                if plaintext.readableBytes > 0 {
                    passOn(plaintext, context)
                    if plaintext.capacity <= Self.spareCiphertextLimit { spare = plaintext }
                } else {
                    // A read that completed no record (part of a large one): keep the buffer for the next.
                    plaintext.clear()
                    spare = plaintext
                }
                return
            case .closed:
                if plaintext.readableBytes > 0 { passOn(plaintext, context) }
                peerClosed(context: context)
                return
            case .failed(let error):
                if plaintext.readableBytes > 0 { passOn(plaintext, context) }
                fail(context: context, error)
                return
            }
        }
    }

    private func passOn(_ plaintext: ByteBuffer, _ context: ChannelHandlerContext) {
        if let receiver {
            receiver.plaintextRead(plaintext)
        } else {
            context.fireChannelRead(wrapInboundOut(plaintext))
        }
    }

    /// One socket read's plaintext in one buffer up to this size (NIO's reads adapt up to 64 KiB by default).
    private static let maxPlaintextRead = 256 * 1024

    private func peerClosed(context: ChannelHandlerContext) {
        peerSentCloseNotify = true
        let halfClosureAllowed =
            (try? context.channel.syncOptions?.getOption(ChannelOptions.allowRemoteHalfClosure)) ?? false
        if case .outputClosed = state {
            // Both close_notifys have crossed: nothing more can be said either way.
            context.close(promise: nil)
        } else if halfClosureAllowed {
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        } else {
            context.close(promise: nil)
        }
    }

    // MARK: - Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        queue(unwrapOutboundIn(data), promise: promise)
    }

    /// Plaintext kept for the next flush, which encrypts it with what came before it.
    private func queue(_ plaintext: ByteBuffer, promise: EventLoopPromise<Void>?) {
        switch state {
        case .handshaking, .active:
            unflushed.append((plaintext, promise))
            unflushedBytes += plaintext.readableBytes
        case .outputClosed:
            promise?.fail(ChannelError.outputClosed)
        case .closing, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        switch state {
        case .handshaking:
            flushBeforeHandshake = true
        case .active:
            // A writer that keeps writing without giving the loop back must still meet the socket's backpressure:
            // past a few records the flush happens now.
            if unflushedBytes >= Self.recordSize * 4 || !defersFlushes {
                encryptUnflushed(context: context)
                flushSocket(context)
                return
            }
            guard !flushScheduled, let deferredFlush else { return }
            flushScheduled = true
            context.eventLoop.assumeIsolated().execute(deferredFlush)
        case .outputClosed, .closing, .closed:
            flushSocket(context)
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch (mode, state) {
        case (.input, _):
            context.close(mode: .input, promise: promise)
        case (.output, .active) where peerSentCloseNotify:
            // The peer already said goodbye: answer with ours and close the socket rather than half-close it.
            close(context: context, mode: .all, promise: promise)
        case (.output, .active):
            encryptUnflushed(context: context)
            state = .outputClosed
            sendCloseNotify(context: context) {
                context.close(mode: .output, promise: promise)
            }
        case (.output, _):
            context.close(mode: .output, promise: promise)
        case (.all, .handshaking):
            state = .closed
            failBufferedWrites(ChannelError.ioOnClosedChannel)
            context.close(mode: .all, promise: promise)
        case (.all, .active), (.all, .outputClosed):
            let sendNotify: Bool
            if case .active = state { sendNotify = true } else { sendNotify = false }
            if sendNotify { encryptUnflushed(context: context) }
            let closed = context.eventLoop.makePromise(of: Void.self)
            if let promise { closed.futureResult.cascade(to: promise) }
            state = .closing(closed)
            let finish = { [self] in
                timer?.cancel()
                timer = nil
                if context.channel.isActive {
                    context.close(mode: .all, promise: closed)
                } else {
                    closed.succeed(())
                }
            }
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: closeFlushTimeout) {
                self.logger?.debug("peer did not take the last bytes in time; closing")
                finish()
            }
            if sendNotify {
                sendCloseNotify(context: context, then: finish)
            } else {
                flushAll(context: context, then: finish)
            }
        case (.all, .closing(let pending)):
            if let promise {
                if let pending { pending.futureResult.cascade(to: promise) } else { promise.succeed(()) }
            }
        case (.all, .closed):
            promise?.fail(ChannelError.alreadyClosed)
        }
    }

    /// Encrypts everything written since the last flush, straight into one ciphertext buffer. Small buffers are
    /// joined (up to one 16 KiB record); all their promises complete when the ciphertext reaches the socket.
    private func encryptUnflushed(context: ChannelHandlerContext) {
        guard !unflushed.isEmpty else { return }
        // Anything OpenSSL wrote on its own (a ticket, an alert) goes first.
        if session.pendingCiphertext > 0 { writeCiphertext(context: context, promise: nil) }
        var batch = spareBatch
        swap(&batch, &unflushed)
        // Every record is one `writePlaintext` of up to 16 KiB: one per joined run or large buffer, plus one per
        // 16 KiB. Records that do not fit anyway wait in the session and follow.
        let records = unflushedBytes / Self.recordSize + batch.count + 1
        let capacity = unflushedBytes + records * Self.recordOverhead
        unflushedBytes = 0
        // Promises: usually none or one (NIO's pipeline writes); an array only for more.
        var promise: EventLoopPromise<Void>?
        var morePromises: [EventLoopPromise<Void>] = []
        var failure: OpenSSLError?
        var ciphertext = ciphertextBuffer(capacity: capacity)
        ciphertext.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { target in
            session.encrypt(into: target) {
                let last = batch.count - 1
                // By index, each buffer read in place: a `for` over the elements copied each one, a retain and a
                // release of its storage and of its promise.
                for index in batch.indices {
                    if let written = batch[index].1 {
                        if promise == nil { promise = written } else { morePromises.append(written) }
                    }
                    guard failure == nil else { continue }
                    let size = batch[index].0.readableBytes
                    if coalesced.readableBytes + size > Self.recordSize {
                        failure = encryptCoalesced()
                    }
                    if failure == nil {
                        // Large, or last with nothing gathered before it (an HTTP/2 flush is one buffer): nothing
                        // would join it in a record, so it is not copied first.
                        if size >= Self.recordSize || (index == last && coalesced.readableBytes == 0) {
                            failure = batch[index].0.withUnsafeReadableBytes { session.writePlaintext($0) }
                        } else {
                            coalesced.writeImmutableBuffer(batch[index].0)
                        }
                    }
                }
                if failure == nil { failure = encryptCoalesced() }
            }
        }
        batch.removeAll(keepingCapacity: true)
        spareBatch = batch
        appendPendingCiphertext(to: &ciphertext)
        if let failure {
            // The records made before the failure still go out, ahead of the alert.
            coalesced.clear()
            if ciphertext.readableBytes > 0 { write(ciphertext, context: context, promise: nil) }
            promise?.fail(failure)
            morePromises.forEach { $0.fail(failure) }
            fail(context: context, failure)
            return
        }
        guard ciphertext.readableBytes > 0 || promise != nil else {
            if ciphertext.capacity <= Self.spareCiphertextLimit { spareCiphertext = ciphertext }  // nothing to send
            return
        }
        // A `let` for the completion closure: a `var` it captured would live in a box made on every flush.
        let others = morePromises
        guard !others.isEmpty, let first = promise else {
            write(ciphertext, context: context, promise: promise)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        write(ciphertext, context: context, promise: written)
        written.futureResult.assumeIsolated().whenComplete { result in
            first.completeWith(result)
            others.forEach { $0.completeWith(result) }
        }
    }

    /// Ciphertext a record adds to its plaintext, at most: header 5, explicit nonce 8 (TLS 1.2 GCM), tag 16; TLS
    /// 1.3 adds a content type byte instead of the nonce. Only AEAD suites are enabled (`TLSContext`).
    private static let recordOverhead = 32

    private static let recordSize = 16 * 1024

    /// Ciphertext was written towards the socket and not flushed since (every write to the head is
    /// `writeCiphertext`'s, every flush `flushSocket`'s).
    private var ciphertextUnflushed = false

    private func flushSocket(_ context: ChannelHandlerContext) {
        ciphertextUnflushed = false
        if let socket { socket.flush0() } else { context.flush() }
    }

    private func encryptCoalesced() -> OpenSSLError? {
        guard coalesced.readableBytes > 0 else { return nil }
        defer { coalesced.clear() }
        return coalesced.withUnsafeReadableBytes { session.writePlaintext($0) }
    }

    /// Writes all pending ciphertext as one buffer; `promise` completes when it reaches the socket.
    private func writeCiphertext(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard session.pendingCiphertext > 0 else {
            if let promise {
                ciphertextUnflushed = true
                // Keep promise order: an empty write completes after everything written before it.
                context.write(wrapOutboundOut(allocator.buffer(capacity: 0)), promise: promise)
            }
            return
        }
        var ciphertext = ciphertextBuffer(capacity: session.pendingCiphertext)
        appendPendingCiphertext(to: &ciphertext)
        write(ciphertext, context: context, promise: promise)
    }

    /// An empty buffer for `capacity` bytes of ciphertext: the last small one again if the socket has let go of it.
    private func ciphertextBuffer(capacity: Int) -> ByteBuffer {
        if capacity <= Self.spareCiphertextLimit, var spare = spareCiphertext.take() {
            spare.clear()
            return spare
        }
        return allocator.buffer(capacity: capacity)
    }

    private func appendPendingCiphertext(to ciphertext: inout ByteBuffer) {
        let pending = session.pendingCiphertext
        guard pending > 0 else { return }
        ciphertext.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { session.takeCiphertext(into: $0) }
    }

    private func write(_ ciphertext: ByteBuffer, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        ciphertextUnflushed = true
        if let socket {
            socket.write0(wrapOutboundOut(ciphertext), promise: promise)
        } else {
            context.write(wrapOutboundOut(ciphertext), promise: promise)
        }
        if ciphertext.capacity <= Self.spareCiphertextLimit { spareCiphertext = ciphertext }
    }

    private func sendCloseNotify(context: ChannelHandlerContext, then next: @escaping () -> Void) {
        if case .failed(let error) = session.shutdown() {
            logger?.debug("close_notify not sent", metadata: ["error": "\(error)"])
        }
        flushAll(context: context, then: next)
    }

    private func flushAll(context: ChannelHandlerContext, then next: @escaping () -> Void) {
        let flushed = context.eventLoop.makePromise(of: Void.self)
        writeCiphertext(context: context, promise: flushed)
        flushSocket(context)
        flushed.futureResult.assumeIsolated().whenComplete { _ in next() }
    }

    // MARK: - Failure

    private func fail(context: ChannelHandlerContext, _ error: OpenSSLError) {
        guard !isClosingOrClosed else { return }
        logger?.debug("TLS connection failed", metadata: ["error": "\(error)"])
        timer?.cancel()
        timer = nil
        failBufferedWrites(error)
        if error.kind == .notTLS {
            // Like nginx: a plain HTTP request on the TLS port gets a readable answer instead of a reset.
            state = .closing(nil)
            var response = allocator.buffer(capacity: 160)
            response.writeString(Self.plainHTTPRefusal)
            context.writeAndFlush(wrapOutboundOut(response)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            // Send the alert OpenSSL queued (if any), then close.
            state = .closing(nil)
            let flushed = context.eventLoop.makePromise(of: Void.self)
            writeCiphertext(context: context, promise: flushed)
            flushSocket(context)
            flushed.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
        context.fireErrorCaught(error)
    }

    static let plainHTTPRefusal: String = {
        let body = "This port speaks HTTPS: use https:// to connect.\n"
        return "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Connection: close\r\n\r\n" + body
    }()

    private var isClosingOrClosed: Bool {
        switch state {
        case .closing, .closed: return true
        default: return false
        }
    }

    private func failBufferedWrites(_ error: any Error) {
        let buffered = unflushed
        unflushed = []
        for (_, promise) in buffered { promise?.fail(error) }
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}
