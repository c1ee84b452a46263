import HummingbirdCore
import Logging
import NIOCore
import ProxyReactor
import ServiceLifecycle
import Synchronization

/// The front door on our reactors (`server.io: reactor`): what Hummingbird's `Server` does on NIO's loops, for the
/// same child channel. Each reactor accepts from one listening socket; a connection is set up, activated and served
/// on the reactor that accepted it. Graceful shutdown stops accepting, asks open connections to finish (HTTP/1.1
/// closes after the request in flight, HTTP/2 sends GOAWAY) and returns when their handlers have; cancelled, it
/// closes what is left.
final class ReactorFrontDoor<ChildChannel: ServerChildChannel>: Service, Sendable {
    let childChannel: ChildChannel
    let address: (host: String, port: Int)
    let group: ReactorGroup
    let limit: ConnectionLimit
    let logger: Logger
    let onServerRunning: @Sendable (SocketAddress?) async -> Void
    private let connections = Mutex<[ObjectIdentifier: ReactorChannel]>([:])

    /// Hummingbird's default: connections waiting to be accepted.
    static var backlog: CInt { 256 }

    init(
        childChannel: ChildChannel, host: String, port: Int, group: ReactorGroup, maxConnections: Int,
        logger: Logger, onServerRunning: @escaping @Sendable (SocketAddress?) async -> Void
    ) {
        self.childChannel = childChannel
        self.address = (host, port)
        self.group = group
        self.limit = ConnectionLimit(maximum: maxConnections)
        self.logger = logger
        self.onServerRunning = onServerRunning
    }

    func run() async throws {
        let (host, port) = address
        let bindAddress = try HostResolver.resolve(host: host, port: port)[0]  // never empty: it throws instead
        let (values, continuation) = AsyncStream.makeStream(of: ChildChannel.Value.self)
        let listener = try await ReactorListener.listen(
            on: bindAddress, backlog: Self.backlog, reactors: group.reactors, limit: limit,
            accepted: { [self] socket, reactor in accept(socket, on: reactor, into: continuation) },
            failed: { [logger] error in logger.error("accept failed", metadata: ["error": "\(error)"]) })
        let listening = Listening(listener)
        logger.trace("front door state: running", metadata: ["reactors": "\(group.reactors.count)"])
        logger.info("Server started and listening on \(host):\(listener.localAddress.port ?? port)")
        await onServerRunning(listener.localAddress)
        let childChannel = childChannel
        let logger = logger
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { tasks in
                for await value in values {
                    // Started on the connection's own loop: a task started on the global executor, and moved there
                    // by the handler's own preference, woke a thread of the global pool for every connection.
                    tasks.addTask(executorPreference: EventLoopTaskExecutor(value.channel.eventLoop)) {
                        await childChannel.handle(value: value, logger: logger)
                    }
                }
            }
        } onGracefulShutdown: { [self] in
            Task {
                logger.trace("front door state: shutting down", metadata: ["connections": "\(limit.current)"])
                await listening.close()
                continuation.finish()
                quiesce()
            }
        }
        // Finished or cancelled: nothing more is accepted and nothing stays open.
        await listening.close()
        continuation.finish()
        let left = connections.withLock { Array($0.values) }
        for channel in left { try? await channel.close() }
        logger.trace("front door state: stopped", metadata: ["closed": "\(left.count)"])
    }

    /// On `reactor`'s thread: the child channel's setup, then the connection goes live and its handler is queued.
    private func accept(
        _ socket: CInt, on reactor: Reactor, into values: AsyncStream<ChildChannel.Value>.Continuation
    ) {
        let channel = ReactorChannel(connectedSocket: socket, on: reactor)
        let key = ObjectIdentifier(channel)
        connections.withLock { $0[key] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            connections.withLock { $0[key] = nil }
            limit.release()
        }
        do {
            let options = channel.syncOptions!
            try options.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            try options.setOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
        } catch {
            channel.close(promise: nil)
            return
        }
        childChannel.setup(channel: channel, logger: logger).whenComplete { result in
            switch result {
            case .success(let value):
                guard (try? channel.activate()) != nil else { return }  // it closed itself
                values.yield(value)
            case .failure(let error):
                self.logger.debug("connection setup failed", metadata: ["error": "\(error)"])
                channel.close(promise: nil)
            }
        }
    }

    /// Asks every open connection to finish what it has in flight and close.
    private func quiesce() {
        for channel in connections.withLock({ Array($0.values) }) {
            channel.eventLoop.execute { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        }
    }
}

/// The listener, closed once whichever of shutdown and the end of `run` comes first.
private actor Listening {
    private var listener: ReactorListener?

    init(_ listener: ReactorListener) {
        self.listener = listener
    }

    func close() async {
        guard let listener else { return }
        self.listener = nil
        await listener.close()
    }
}
