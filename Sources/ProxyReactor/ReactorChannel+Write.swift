import CEpoll
import Glibc
import NIOCore

extension ReactorChannel: ReactorSource {
    public func reactorStopping() { close0(error: EventLoopError.shutdown, mode: .all, promise: nil) }

    public func ready(_ events: UInt32) {
        if connecting != nil { return connectionReady() }
        let gone = events & (Reactor.hangUp | Reactor.failed) != 0
        if flushedCount > 0 && (events & Reactor.writable != 0 || gone) { writeFlushed() }
        guard open else { return }
        if readPending && !inputClosed && (events & Reactor.readable != 0 || gone) {
            readable()
        } else if gone {
            // Nobody reads, and epoll reports a hang-up or an error on every wait until the socket is closed. As
            // NIO's reset(): what the peer sent before going is delivered first.
            drainInput()
            guard open else { return }
            close0(
                error: socketError() ?? IOError(errnoCode: ECONNRESET, reason: "connection reset"), mode: .all,
                promise: nil)
        }
    }

    /// Reads everything the socket still has (a peer that is gone), whether or not a read was asked for.
    func drainInput() {
        while open && !inputClosed {
            readPending = true
            if readable() { break }
        }
    }

    private func socketError() -> IOError? {
        var code: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) == 0, code != 0 else { return nil }
        return IOError(errnoCode: code, reason: "socket")
    }

    // MARK: - Writing

    public func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard open else { return promise?.fail(ChannelError.ioOnClosedChannel) ?? () }
        guard !outputClosed else { return promise?.fail(ChannelError.outputClosed) ?? () }
        let buffer: ByteBuffer
        if let bytes = tryUnwrapData(data, as: ByteBuffer.self) {
            buffer = bytes
        } else if case .byteBuffer(let bytes)? = tryUnwrapData(data, as: IOData.self) {
            buffer = bytes
        } else {
            return promise?.fail(ChannelError.operationUnsupported) ?? ()
        }
        pendingWrites.append((buffer, promise))
        pendingBytes += buffer.readableBytes
        updateWritability()
    }

    public func flush0() {
        guard open else { return }
        flushedCount = pendingWrites.count
        // Waiting for room: the socket's writability event writes them.
        guard interest & Reactor.writable == 0 else { return }
        writeFlushed()
    }

    /// Writes flushed buffers with `write`/`writev` until they are gone or the socket is full (then epoll says when
    /// there is room). Promises complete in order once their bytes are in the socket, after this channel's state is
    /// updated.
    func writeFlushed() {
        guard !writing else { return }
        writing = true
        defer { writing = false }
        while open && flushedCount > 0 {
            let (written, full) = writeOnce()
            guard let written else { return }  // failed: the channel is closed
            let completed = consume(written)
            pendingBytes -= written
            updateWritability()
            for promise in completed { promise?.succeed(()) }
            if full { break }
        }
        guard open else { return }
        if flushedCount == 0, let waiting = outputClosePromise {
            outputClosePromise = nil
            shutdownOutput(promise: waiting)
        }
        updateInterest()
    }

    /// One `write` (or `writev`) of up to 64 flushed buffers: the bytes written (nil after a failure, which closed the
    /// channel), and whether the socket took less than offered.
    private func writeOnce() -> (written: Int?, full: Bool) {
        let count = min(flushedCount, Self.maxVectors)
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { vectors in
            var offered = 0
            var used = 0
            for index in 0..<count {
                // Read in place: a view of the buffer is a copy of it (a retain and a release).
                pendingWrites[index].buffer.withUnsafeReadableBytes { bytes in
                    guard !bytes.isEmpty else { return }
                    vectors[used] = iovec(
                        iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
                    used += 1
                    offered += bytes.count
                }
            }
            guard used > 0 else { return (0, false) }
            // The buffers stay alive (and unmoved) in `pendingWrites` during the call. A peer that is gone is an EPIPE
            // here: the reactors ignore SIGPIPE. `write` for one buffer (the common case), `writev` for more, as NIO
            // does.
            let result =
                used == 1
                ? Glibc.write(fd, vectors[0].iov_base, vectors[0].iov_len)
                : writev(fd, vectors.baseAddress, CInt(used))
            if result >= 0 { return (result, result < offered) }
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return (0, code != EINTR) }
            // As on NIO: no errorCaught; the writes fail with the error, and input that arrived first is read.
            let error = IOError(errnoCode: code, reason: "write")
            drainInput()
            if open { close0(error: error, mode: .all, promise: nil) }
            return (nil, true)
        }
    }

    private static let maxVectors = 64

    /// Drops `written` bytes from the front of the flushed buffers; the promises of those fully written, in order.
    private func consume(_ written: Int) -> [EventLoopPromise<Void>?] {
        var left = written
        var done = 0
        while done < flushedCount {
            let size = pendingWrites[done].buffer.readableBytes
            if size > left {
                pendingWrites[done].buffer.moveReaderIndex(forwardBy: left)
                break
            }
            left -= size
            done += 1
        }
        guard done > 0 else { return [] }
        // Most writes carry no promise (a pipeline's flushes): then no array is made. Read by index: a slice of the
        // writes shared their storage, so removing them copied the rest into new storage on every write.
        var promises: [EventLoopPromise<Void>?] = []
        if (0..<done).contains(where: { pendingWrites[$0].promise != nil }) {
            promises = (0..<done).map { pendingWrites[$0].promise }
        }
        if done == pendingWrites.count {
            pendingWrites.removeAll(keepingCapacity: true)
        } else {
            pendingWrites.removeFirst(done)
        }
        flushedCount -= done
        return promises
    }

    func updateWritability() {
        let isWritable = self.isWritable
        if isWritable && pendingBytes > options.waterMark.high {
            setWritable(false)
            pipeline.syncOperations.fireChannelWritabilityChanged()
        } else if !isWritable && pendingBytes < options.waterMark.low {
            setWritable(true)
            pipeline.syncOperations.fireChannelWritabilityChanged()
        }
    }

    // MARK: - Closing

    public func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard open else { return promise?.fail(ChannelError.alreadyClosed) ?? () }
        switch mode {
        case .output:
            guard !outputClosed else { return promise?.fail(ChannelError.outputClosed) ?? () }
            guard !inputClosed else { return close0(error: error, mode: .all, promise: promise) }
            outputClosed = true
            // What was written but not flushed will never be: it fails. What was flushed leaves first.
            let unflushed = pendingWrites[flushedCount...].map(\.promise)
            pendingBytes -= pendingWrites[flushedCount...].reduce(0) { $0 + $1.buffer.readableBytes }
            pendingWrites.removeLast(pendingWrites.count - flushedCount)
            for promise in unflushed { promise?.fail(ChannelError.outputClosed) }
            if flushedCount == 0 { shutdownOutput(promise: promise) } else { outputClosePromise = .some(promise) }
        case .input:
            guard !inputClosed else { return promise?.fail(ChannelError.inputClosed) ?? () }
            guard !outputClosed else { return close0(error: error, mode: .all, promise: promise) }
            _ = shutdown(fd, CInt(SHUT_RD))
            inputClosed = true
            readPending = false
            updateInterest()
            promise?.succeed(())
            pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        case .all:
            closeAll(error: error, promise: promise)
        }
    }

    private func shutdownOutput(promise: EventLoopPromise<Void>?) {
        guard Glibc.shutdown(fd, CInt(SHUT_WR)) == 0 else {
            let error = IOError(errnoCode: errno, reason: "shutdown")
            promise?.fail(error)
            return close0(error: error, mode: .all, promise: nil)
        }
        promise?.succeed(())
        pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.outputClosed)
    }

    private func closeAll(error: any Error, promise: EventLoopPromise<Void>?) {
        open = false
        setActive(false)
        if let registration { reactor.deregister(fd: fd, registration) }
        registration = nil
        let closed = Glibc.close(fd) == 0 ? nil : IOError(errnoCode: errno, reason: "close")
        let writes = pendingWrites
        pendingWrites = []
        flushedCount = 0
        pendingBytes = 0
        readBuffer = nil
        let outputClose = outputClosePromise
        outputClosePromise = nil
        for write in writes { write.promise?.fail(error) }
        outputClose??.fail(error)
        if let (connect, timeout) = connecting {
            connecting = nil
            timeout?.cancel()
            connect.fail(error)
        }
        if let closed { promise?.fail(closed) } else { promise?.succeed(()) }
        if activeFired { pipeline.syncOperations.fireChannelInactive() }
        if registeredFired { pipeline.syncOperations.fireChannelUnregistered() }
        reactor.assumeIsolated().execute { [self] in
            removeHandlers(pipeline: pipeline)
            closePromise.succeed(())
            forgetAddresses()
        }
    }
}
