import CEpoll
import Glibc
import NIOCore

extension ReactorChannel: ChannelCore {
    public func localAddress0() throws -> SocketAddress {
        guard let address = localAddress else { throw ChannelError.ioOnClosedChannel }
        return address
    }

    public func remoteAddress0() throws -> SocketAddress {
        guard let address = remoteAddress else { throw ChannelError.ioOnClosedChannel }
        return address
    }

    public func register0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    public func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    public func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }
    public func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }
    public func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }
    public func channelRead0(_ data: NIOAny) {}
    public func errorCaught0(error: any Error) {}

    // MARK: - Options

    func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        switch option {
        case is ChannelOptions.Types.AutoReadOption:
            let wasOn = options.autoRead
            options.autoRead = value as! Bool
            if options.autoRead && !wasOn {
                read0()
            } else if !options.autoRead {
                readPending = false
                updateInterest()
            }
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption:
            options.allowRemoteHalfClosure = value as! Bool
        case is ChannelOptions.Types.WriteBufferWaterMarkOption:
            options.waterMark = value as! ChannelOptions.Types.WriteBufferWaterMark
            updateWritability()
        case is ChannelOptions.Types.MaxMessagesPerReadOption:
            options.maxMessagesPerRead = max(1, value as! UInt)
        case let socketOption as ChannelOptions.Types.SocketOption:
            var raw = CInt(value as! SocketOptionValue)
            let result = setsockopt(
                fd, socketOption.optionLevel.rawValue, socketOption.optionName.rawValue, &raw,
                socklen_t(MemoryLayout<CInt>.size))
            guard result == 0 else { throw IOError(errnoCode: errno, reason: "setsockopt") }
        default:
            throw ChannelError.operationUnsupported
        }
    }

    func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        switch option {
        case is ChannelOptions.Types.AutoReadOption:
            return options.autoRead as! Option.Value
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption:
            return options.allowRemoteHalfClosure as! Option.Value
        case is ChannelOptions.Types.WriteBufferWaterMarkOption:
            return options.waterMark as! Option.Value
        case is ChannelOptions.Types.MaxMessagesPerReadOption:
            return options.maxMessagesPerRead as! Option.Value
        case let socketOption as ChannelOptions.Types.SocketOption:
            var raw: CInt = 0
            var length = socklen_t(MemoryLayout<CInt>.size)
            let result = getsockopt(
                fd, socketOption.optionLevel.rawValue, socketOption.optionName.rawValue, &raw, &length)
            guard result == 0 else { throw IOError(errnoCode: errno, reason: "getsockopt") }
            return SocketOptionValue(raw) as! Option.Value
        default:
            throw ChannelError.operationUnsupported
        }
    }

    // MARK: - Reading

    public func read0() {
        guard open, !inputClosed else { return }
        readPending = true
        updateInterest()
    }

    /// Watches for input while a read is asked for, for output while flushed bytes wait for room. While `readable()`
    /// runs, input stays watched: it decides at its end (a response written from `channelRead` would otherwise drop
    /// the interest, and the `read()` that follows add it back: two `epoll_ctl` calls a request, as NIO avoids too).
    func updateInterest() {
        guard open, let registration else { return }
        var wanted: UInt32 = 0
        if (readPending || reading) && !inputClosed { wanted |= Reactor.readable }
        if flushedCount > 0 { wanted |= Reactor.writable }
        guard wanted != interest else { return }
        interest = wanted
        do {
            try reactor.modify(fd: fd, registration, events: wanted)
        } catch {
            pipeline.syncOperations.fireErrorCaught(error)
            close0(error: error, mode: .all, promise: nil)
        }
    }

    /// Reads while a read is asked for, up to `maxMessagesPerRead` times when each read fills the buffer.
    /// True when the socket had nothing more (EAGAIN).
    ///
    /// As on NIO, bytes delivered answer the read asked for (`readPending`), and with `autoRead` the next one is asked
    /// through the whole pipeline only when no handler asked already during the read: a handler in front that asks
    /// for its connection's reads itself (`HTTP1DirectPath`) spares every handler behind it a `read` a request.
    @discardableResult func readable() -> Bool {
        var drained = false
        reading = true
        defer { reading = false }
        var reads: UInt = 0
        var delivered = false
        while open, !inputClosed, reads < options.maxMessagesPerRead {
            reads += 1
            var buffer = readBuffer.take() ?? ByteBuffer()
            if buffer.capacity >= readSizing.size && buffer.capacity < readSizing.size * 2 {
                buffer.clear()  // keeps the storage when nobody else holds it, allocates new storage otherwise
            } else {
                buffer = allocator.buffer(capacity: readSizing.size)
            }
            let capacity = buffer.capacity
            var failure: CInt = 0
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { target in
                let result = Glibc.read(fd, target.baseAddress, target.count)
                if result < 0 { failure = errno }
                return max(result, 0)
            }
            if failure == EAGAIN || failure == EWOULDBLOCK {
                readBuffer = buffer  // nothing (more) there: a read still asked for keeps waiting
                drained = true
                break
            }
            if failure == EINTR { continue }
            if failure != 0 {
                readBuffer = buffer
                pipeline.syncOperations.fireErrorCaught(IOError(errnoCode: failure, reason: "read"))
                close0(error: IOError(errnoCode: failure, reason: "read"), mode: .all, promise: nil)
                return true
            }
            if count == 0 {
                readBuffer = buffer
                endOfInput(afterReads: delivered)
                return true
            }
            readSizing.record(count)
            delivered = true
            readPending = false
            pipeline.syncOperations.fireChannelRead(NIOAny(buffer))
            readBuffer = buffer
            if count < capacity { break }
        }
        guard open else { return true }
        // As on NIO: a turn that read nothing completes no read.
        guard delivered else {
            reading = false
            updateInterest()
            return drained
        }
        pipeline.syncOperations.fireChannelReadComplete()
        readIfNeeded()
        reading = false
        updateInterest()
        return drained
    }

    /// With `autoRead`, asks for the next read through the pipeline unless one is asked for already (as NIO does).
    func readIfNeeded() {
        if open && options.autoRead && !readPending { pipeline.syncOperations.read() }
    }

    private func endOfInput(afterReads delivered: Bool) {
        pipeline.syncOperations.fireChannelReadComplete()  // as on NIO, also when the end is all this turn read
        guard open else { return }
        if options.allowRemoteHalfClosure {
            inputClosed = true
            readPending = false
            updateInterest()
            pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        } else {
            close0(error: ChannelError.eof, mode: .all, promise: nil)
        }
    }
}
