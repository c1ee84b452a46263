import CEpoll
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// A connected TCP socket on a `Reactor`, as a NIO `Channel`: the handlers of a NIO pipeline (TLS, HTTP/1.1,
/// HTTP/2, Hummingbird's) run on it unchanged, while reading and writing the socket is our own — one `read` into a
/// reused buffer, one `write`/`writev` of everything flushed, epoll interest changed only when it has to.
///
/// Behaves as NIO's socket channels do where the pipeline can tell: `autoRead` (on by default) asks for the next
/// read through the pipeline after each read completes; without it a handler's `read()` asks for one; end of input
/// closes the channel (or, with `allowRemoteHalfClosure`, fires `ChannelEvent.inputClosed`); writability follows
/// `writeBufferWaterMark`; `close(mode: .output)` sends what was flushed first.
///
/// Everything but the thread-safe `Channel` properties (`isActive`, `isWritable`, addresses) runs on the loop.
public final class ReactorChannel: Channel, @unchecked Sendable {
    public let reactor: Reactor
    let fd: CInt
    var registration: Reactor.Registration?
    /// The events epoll watches for now.
    var interest: UInt32 = 0
    private var _pipeline: ChannelPipeline!
    let closePromise: EventLoopPromise<Void>
    public let allocator = ByteBufferAllocator()

    private let active = Atomic<Bool>(false)
    private let writable = Atomic<Bool>(true)

    // Loop state.
    var open = true
    /// `channelRegistered` and `channelActive` have fired: closing fires their counterparts.
    var registeredFired = false
    var activeFired = false
    /// A connect in progress (`connect(to:on:timeout:initialize:)`): its promise and its timeout.
    var connecting: (promise: EventLoopPromise<ReactorChannel>, timeout: Scheduled<Void>?)?
    var inputClosed = false
    var outputClosed = false
    var readPending = false
    /// `readable()` is on the stack.
    var reading = false
    var readBuffer: ByteBuffer?
    var readSizing = ReadSizing()
    /// Written, in order; the first `flushedCount` of them were flushed.
    var pendingWrites: [(buffer: ByteBuffer, promise: EventLoopPromise<Void>?)] = []
    var flushedCount = 0
    /// `writeFlushed` is on the stack: a promise it completed flushed again, and its loop picks that up.
    var writing = false
    var pendingBytes = 0
    /// A `close(mode: .output)` waiting for the flushed writes to leave.
    var outputClosePromise: EventLoopPromise<Void>??
    var options = Options()

    struct Options {
        var autoRead = true
        var allowRemoteHalfClosure = false
        var waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 32 * 1024, high: 64 * 1024)
        var maxMessagesPerRead: UInt = 4
    }

    /// Takes over `fd`, a connected socket (made non-blocking here); closing the channel closes it. Call on the
    /// reactor's thread, then add handlers and `activate()`; a channel that is not activated must be closed (it
    /// holds the socket, and its pipeline holds it).
    public init(connectedSocket fd: CInt, on reactor: Reactor) {
        reactor.preconditionInEventLoop()
        self.fd = fd
        self.reactor = reactor
        closePromise = reactor.makePromise()
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _pipeline = ChannelPipeline(channel: self)
    }

    /// Registers the socket with the reactor and fires `channelRegistered` and `channelActive` (with `autoRead`, the
    /// first read is asked for then). On failure the channel is closed.
    public func activate() throws(IOError) {
        try register(events: 0)
        becomeActive()
    }

    func register(events: UInt32) throws(IOError) {
        do {
            registration = try reactor.register(fd: fd, events: events, source: self)
            interest = events
        } catch {
            close0(error: error, mode: .all, promise: nil)
            throw error
        }
        registeredFired = true
        pipeline.syncOperations.fireChannelRegistered()
    }

    func becomeActive() {
        guard open else { return }
        readAddresses()
        setActive(true)
        activeFired = true
        pipeline.syncOperations.fireChannelActive()
        readIfNeeded()
        updateInterest()  // a read() or a flush that met a full socket before registration
    }

    // MARK: - Channel

    public var pipeline: ChannelPipeline { _pipeline }
    public var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    public var eventLoop: any EventLoop { reactor }
    public var parent: (any Channel)? { nil }
    public var isActive: Bool { active.load(ordering: .relaxed) }
    public var isWritable: Bool { writable.load(ordering: .relaxed) }
    public var _channelCore: any ChannelCore { self }

    /// Read once the connection is up and kept until the channel's close has completed (as NIO does): a socket's
    /// descriptor may be reused by then, so it is never asked again after the channel closed it.
    public var localAddress: SocketAddress? { addresses.withLockedValue { $0.local } }
    public var remoteAddress: SocketAddress? { addresses.withLockedValue { $0.remote } }
    private let addresses = NIOLockedValueBox<(local: SocketAddress?, remote: SocketAddress?)>((nil, nil))

    func readAddresses() {
        let local = StreamSocket.address(of: fd, getsockname)
        let remote = StreamSocket.address(of: fd, getpeername)
        addresses.withLockedValue { $0 = (local, remote) }
    }

    func forgetAddresses() { addresses.withLockedValue { $0 = (nil, nil) } }

    func setActive(_ value: Bool) { active.store(value, ordering: .relaxed) }
    func setWritable(_ value: Bool) { writable.store(value, ordering: .relaxed) }

    public func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        guard reactor.inEventLoop else {
            return reactor.submit { try self.setOption0(option, value: value) }
        }
        return reactor.makeCompletedFuture { try setOption0(option, value: value) }
    }

    public func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        guard reactor.inEventLoop else {
            return reactor.submit { try self.getOption0(option) }
        }
        return reactor.makeCompletedFuture { try getOption0(option) }
    }

    public var syncOptions: (any NIOSynchronousChannelOptions)? { SynchronousOptions(channel: self) }

    private struct SynchronousOptions: NIOSynchronousChannelOptions {
        let channel: ReactorChannel

        func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
            channel.reactor.preconditionInEventLoop()
            try channel.setOption0(option, value: value)
        }

        func getOption<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
            channel.reactor.preconditionInEventLoop()
            return try channel.getOption0(option)
        }
    }
}
