import CEpoll
import Glibc
import NIOCore

extension ReactorChannel {
    /// Connects a new non-blocking socket to `address`. As with NIO's bootstraps, `initialize` adds the handlers
    /// first; `channelActive` fires once the connection is up, and then the future succeeds. It fails (and the
    /// channel closes) when the connection is refused or not up within `timeout`. Call on `reactor`'s thread.
    public static func connect(
        to address: SocketAddress, on reactor: Reactor, timeout: TimeAmount = .seconds(10),
        initialize: (ReactorChannel) throws -> Void
    ) -> EventLoopFuture<ReactorChannel> {
        reactor.preconditionInEventLoop()
        let fd: CInt
        do { fd = try StreamSocket.open(for: address) } catch { return reactor.makeFailedFuture(error) }
        let channel = ReactorChannel(connectedSocket: fd, on: reactor)
        let promise = reactor.makePromise(of: ReactorChannel.self)
        do {
            try initialize(channel)
            try channel.register(events: Reactor.writable)
        } catch {
            channel.close(promise: nil)
            return reactor.makeFailedFuture(error)
        }
        let result = address.withSockAddr { Glibc.connect(fd, $0, socklen_t($1)) }
        if result == 0 {
            channel.connected(promise)
        } else if errno == EINPROGRESS {
            let timer = reactor.assumeIsolated().scheduleTask(in: timeout) {
                channel.close0(error: ChannelError.connectTimeout(timeout), mode: .all, promise: nil)
            }
            channel.connecting = (promise, timer)
        } else {
            let error = IOError(errnoCode: errno, reason: "connect to \(address)")
            channel.close0(error: error, mode: .all, promise: nil)
            promise.fail(error)
        }
        return promise.futureResult
    }

    /// The socket is writable (or failed) while connecting: the connect is done, one way or the other.
    func connectionReady() {
        guard let (promise, timeout) = connecting else { return }
        connecting = nil
        timeout?.cancel()
        var code: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) != 0 { code = errno }
        guard code == 0 else {
            let error = IOError(errnoCode: code, reason: "connect")
            close0(error: error, mode: .all, promise: nil)
            promise.fail(error)
            return
        }
        connected(promise)
    }

    private func connected(_ promise: EventLoopPromise<ReactorChannel>) {
        interest = Reactor.writable  // as registered: the next `updateInterest` sets what the channel wants now
        updateInterest()
        becomeActive()
        guard open else { return promise.fail(ChannelError.ioOnClosedChannel) }
        promise.succeed(self)
    }
}
