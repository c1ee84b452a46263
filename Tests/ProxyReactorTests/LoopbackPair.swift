import Dispatch
import Glibc
import NIOCore
import ProxyTesting

@testable import ProxyReactor

/// A TCP connection over loopback: `server` is the accepted end (for a `ReactorChannel`, which closes it), `client` a
/// blocking socket the test reads and writes directly, closed once by `closeClient` or at deinit. Calls that can block
/// run on a thread of their own (`blocking`), not on the cooperative pool other tests need.
final class LoopbackPair: @unchecked Sendable {
    let server: CInt
    let client: CInt
    private var clientOpen = true

    static func make() async throws -> LoopbackPair { try await blocking { try LoopbackPair() } }

    private init() throws {
        let listener = try BlockingListener()
        defer { listener.close() }
        let client = try connectBlocking(port: listener.port)
        let server = accept(listener.fd, nil, nil)
        guard server >= 0 else {
            Glibc.close(client)
            throw IOError(errnoCode: errno, reason: "accept")
        }
        self.client = client
        self.server = server
        var timeout = timeval(tv_sec: 5, tv_usec: 0)  // a hung test fails instead of waiting forever
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) {
        var bytes = Array(text.utf8)
        _ = Glibc.send(client, &bytes, bytes.count, 0)
    }

    /// Reads until `count` bytes arrived or the server's end closed (or 5 s passed without a byte).
    func receive(_ count: Int) async -> [UInt8] {
        (try? await blocking { self.receiveNow(count) }) ?? []
    }

    private func receiveNow(_ count: Int) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while received.count < count {
            let n = buffer.withUnsafeMutableBytes {
                recv(client, $0.baseAddress, min($0.count, count - received.count), 0)
            }
            guard n > 0 else { break }
            received += buffer[..<n]
        }
        return received
    }

    /// True when the server's end sent its FIN (a read returns 0 bytes).
    func receivedEnd() async -> Bool {
        let client = client
        return
            (try? await blocking {
                var byte: UInt8 = 0
                return recv(client, &byte, 1, 0) == 0
            }) ?? false
    }

    func closeClient() {
        guard clientOpen else { return }
        clientOpen = false
        close(client)
    }

    deinit { closeClient() }
}

/// Records what a channel's pipeline saw, from the loop; read it through `reactor.submit`.
final class RecordingHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    var received: [UInt8] = []
    /// The size of each read delivered.
    var readSizes: [Int] = []
    var events: [String] = []
    var writability: [Bool] = []
    var echo = false
    /// Asks for a read in `handlerAdded`, before the channel is active.
    var readWhenAdded = false
    /// Asks for the next read itself when a read completes, as `HTTP1DirectPath` does.
    var readOnReadComplete = false
    var remoteAtInactive: SocketAddress?

    func handlerAdded(context: ChannelHandlerContext) {
        if readWhenAdded { context.read() }
    }
    var onInputClosed: ((ChannelHandlerContext) -> Void)?

    private var waiting: [(count: Int, promise: EventLoopPromise<Void>)] = []
    private var waitingEvents: [(name: String, promise: EventLoopPromise<Void>)] = []

    /// Completes once the event named `name` (as in `events`) has happened.
    func whenEvent(_ name: String, on reactor: Reactor) -> EventLoopFuture<Void> {
        reactor.submit {
            let promise = reactor.makePromise(of: Void.self)
            if self.events.contains(name) { promise.succeed(()) } else { self.waitingEvents.append((name, promise)) }
            return promise.futureResult
        }.flatMap { $0 }
    }

    private func record(_ event: String) {
        events.append(event)
        let due = waitingEvents.filter { $0.name == event }
        waitingEvents.removeAll { $0.name == event }
        due.forEach { $0.promise.succeed(()) }
    }

    /// Completes once `count` bytes have been received in all.
    func whenReceived(_ count: Int, on reactor: Reactor) -> EventLoopFuture<Void> {
        reactor.submit {
            let promise = reactor.makePromise(of: Void.self)
            self.waiting.append((count, promise))
            self.completeWaiting()
            return promise.futureResult
        }.flatMap { $0 }
    }

    private func completeWaiting() {
        let due = waiting.filter { $0.count <= received.count }
        waiting.removeAll { $0.count <= received.count }
        due.forEach { $0.promise.succeed(()) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        readSizes.append(buffer.readableBytes)
        received += buffer.readableBytesView
        completeWaiting()
        if echo { context.writeAndFlush(wrapOutboundOut(buffer), promise: nil) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if readOnReadComplete { context.read() }
        context.fireChannelReadComplete()
    }

    func channelActive(context: ChannelHandlerContext) { record("active") }
    func channelInactive(context: ChannelHandlerContext) {
        remoteAtInactive = context.channel.remoteAddress
        record("inactive")
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) { writability.append(context.channel.isWritable) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent {
            record("inputClosed")
            onInputClosed?(context)
        }
        if case .outputClosed? = event as? ChannelEvent { record("outputClosed") }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { record("error") }
}

/// Counts the reads asked for through it (from the pipeline's tail, or from handlers behind it).
final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = ByteBuffer
    var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// A blocking listening socket on 127.0.0.1 with a port of the kernel's choice.
final class BlockingListener: @unchecked Sendable {
    let fd: CInt
    let port: Int
    private var open = true

    init() throws {
        // Through NIO's SocketAddress: the test target sees `sockaddr_in`'s fields only through an NIO module.
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        guard address.withSockAddr({ bind(fd, $0, socklen_t($1)) }) == 0, listen(fd, 16) == 0 else {
            let error = IOError(errnoCode: errno, reason: "listen")
            Glibc.close(fd)
            throw error
        }
        // The bound port, from getsockname's bytes: a sockaddr_in's port is bytes 2-3, network order.
        var bytes = [UInt8](repeating: 0, count: 128)
        var length = socklen_t(bytes.count)
        let named = bytes.withUnsafeMutableBytes {
            getsockname(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        guard named == 0 else { throw IOError(errnoCode: errno, reason: "getsockname") }
        self.fd = fd
        port = Int(bytes[2]) << 8 | Int(bytes[3])
    }

    func close() {
        guard open else { return }
        open = false
        Glibc.close(fd)
    }
}

/// A blocking client socket connected to 127.0.0.1:`port`.
func connectBlocking(port: Int) throws -> CInt {
    let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
    let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
    let result = address.withSockAddr { connect(fd, $0, socklen_t($1)) }
    guard result == 0 else {
        let error = IOError(errnoCode: errno, reason: "connect")
        close(fd)
        throw error
    }
    return fd
}

/// Holds the reactor in a task until the returned function is called (which waits for the task to end): whatever is
/// queued meanwhile is taken in together, in the turn after.
func hold(_ reactor: Reactor) async throws -> @Sendable () async throws -> Void {
    let holding = DispatchSemaphore(value: 0)
    let released = DispatchSemaphore(value: 0)
    let held = reactor.submit {
        holding.signal()
        released.wait()
    }
    try await blocking { holding.wait() }
    return {
        released.signal()
        try await held.get()
    }
}
