import CEpoll
import Glibc
import NIOConcurrencyHelpers
import NIOCore

/// A listening TCP socket accepted from on several reactors at once: each watches it (`EPOLLEXCLUSIVE`, so one of
/// them wakes per connection) and hands what it accepts, non-blocking, to `accepted` on the thread of the reactor
/// whose turn it is (round robin, as NIO's server channels do). Accepting alone would not balance: the reactor that
/// wakes first takes whole bursts, and a few long-lived HTTP/2 connections could then all share one core.
///
/// When the process runs out of file descriptors, a loop stops watching for 100 ms instead of being woken again at
/// once for a connection it cannot take. With a `ConnectionLimit`, the loops stop accepting while it is reached.
public final class ReactorListener: Sendable {
    public let localAddress: SocketAddress
    /// The listening socket (tests check it is closed).
    let fd: CInt
    private let acceptors: [Acceptor]

    public typealias Accepted = @Sendable (_ socket: CInt, _ reactor: Reactor) -> Void
    public typealias Failed = @Sendable (_ error: any Error) -> Void

    private init(fd: CInt, localAddress: SocketAddress, acceptors: [Acceptor]) {
        self.fd = fd
        self.localAddress = localAddress
        self.acceptors = acceptors
    }

    /// Binds `address` (port 0: one the kernel chooses, see `localAddress`), listens, and starts accepting on
    /// `reactors`. `failed` hears accept errors other than running out of descriptors' (which pause) and the
    /// harmless ones (a connection reset before it was taken). Each connection accepted under `limit` counts
    /// against it until the caller releases it.
    public static func listen(
        on address: SocketAddress, backlog: CInt = 1024, reactors: [Reactor], limit: ConnectionLimit? = nil,
        accepted: @escaping Accepted, failed: @escaping Failed = { _ in }
    ) async throws -> ReactorListener {
        precondition(!reactors.isEmpty, "a listener needs a reactor")
        let fd = try bind(address, backlog: backlog)
        let rotation = Rotation(reactors)
        let acceptors = reactors.map {
            Acceptor(fd: fd, reactor: $0, limit: limit, rotation: rotation, accepted: accepted, failed: failed)
        }
        do {
            for acceptor in acceptors { try await acceptor.reactor.submit { try acceptor.start() }.get() }
        } catch {
            for acceptor in acceptors { try? await acceptor.reactor.submit { acceptor.stop() }.get() }
            Glibc.close(fd)
            throw error
        }
        return ReactorListener(fd: fd, localAddress: try boundAddress(fd), acceptors: acceptors)
    }

    /// Stops accepting on every reactor and closes the socket; connections already accepted are not touched. Call it
    /// before the reactors stop: a stopped reactor runs nothing, so this would wait for it forever.
    public func close() async {
        for acceptor in acceptors { try? await acceptor.reactor.submit { acceptor.stop() }.get() }
        Glibc.close(fd)
    }

    private static func bind(_ address: SocketAddress, backlog: CInt) throws(IOError) -> CInt {
        let fd = try StreamSocket.open(for: address)
        var one: CInt = 1
        if StreamSocket.family(of: address) != AF_UNIX {
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        }
        let bound = address.withSockAddr { Glibc.bind(fd, $0, socklen_t($1)) }
        guard bound == 0, Glibc.listen(fd, backlog) == 0 else {
            let error = IOError(errnoCode: errno, reason: bound == 0 ? "listen" : "bind \(address)")
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    private static func boundAddress(_ fd: CInt) throws -> SocketAddress {
        guard let address = StreamSocket.address(of: fd, getsockname) else {
            throw IOError(errnoCode: errno, reason: "getsockname")
        }
        return address
    }
}

/// One reactor's side of a listener; used on that reactor's thread only.
private final class Acceptor: ReactorSource, @unchecked Sendable {
    let fd: CInt
    let reactor: Reactor
    private let limit: ConnectionLimit?
    private let rotation: Rotation
    private let accepted: ReactorListener.Accepted
    private let failed: ReactorListener.Failed
    private var registration: Reactor.Registration?
    private var stopped = false
    private var resume: Scheduled<Void>?

    static let pause = TimeAmount.milliseconds(100)

    init(
        fd: CInt, reactor: Reactor, limit: ConnectionLimit?, rotation: Rotation,
        accepted: @escaping ReactorListener.Accepted, failed: @escaping ReactorListener.Failed
    ) {
        self.fd = fd
        self.reactor = reactor
        self.limit = limit
        self.rotation = rotation
        self.accepted = accepted
        self.failed = failed
    }

    func start() throws(IOError) {
        guard !stopped, registration == nil else { return }
        registration = try reactor.register(fd: fd, events: Reactor.readable | EPOLLEXCLUSIVE.rawValue, source: self)
    }

    func stop() {
        stopped = true
        resume?.cancel()
        resume = nil
        unwatch()
    }

    private func unwatch() {
        if let registration { reactor.deregister(fd: fd, registration) }
        registration = nil
    }

    func ready(_ events: UInt32) {
        while registration != nil {
            if let limit, !limit.take() { return stopAtLimit(limit) }
            let socket = cp_accept_nonblocking(fd)
            if socket >= 0 {
                let target = rotation.next()
                if target === reactor {
                    accepted(socket, reactor)
                } else {
                    target.execute { [accepted] in accepted(socket, target) }
                }
                continue
            }
            let code = errno
            limit?.release()
            switch code {
            case EAGAIN, EWOULDBLOCK:
                return
            case EINTR, ECONNABORTED, EPROTO, EPERM:
                continue  // that connection is gone, or a firewall refused it: the next one may be fine
            case let code:
                if code != EMFILE && code != ENFILE && code != ENOBUFS && code != ENOMEM {
                    failed(IOError(errnoCode: code, reason: "accept"))
                }
                pauseWatching()
                return
            }
        }
    }

    /// As many connections are open as the limit allows: stop watching until one closes.
    private func stopAtLimit(_ limit: ConnectionLimit) {
        unwatch()
        limit.wait { [self] in
            reactor.execute { [self] in
                guard resume == nil else { return }  // paused for descriptors: that timer starts it again
                do { try start() } catch { failed(error) }
            }
        }
    }

    /// Out of descriptors (or another error that a retry at once would meet again): the listening socket stays
    /// readable, so stop watching it for a while rather than spin. (`EPOLLEXCLUSIVE` cannot be modified, only
    /// removed and added again.)
    private func pauseWatching() {
        unwatch()
        resume = reactor.assumeIsolated().scheduleTask(in: Self.pause) { [self] in
            resume = nil
            do { try start() } catch { failed(error) }
        }
    }
}
