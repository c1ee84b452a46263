import Logging
import NIOCore
import NIOPosix
import ProxyHTTP2
import ProxyTLS
import Synchronization

/// Pooled, multiplexed HTTP/2 connections to one origin: the I/O shell around `PoolStateMachine`. It performs
/// the machine's actions (connect, hand a stream slot to a waiting request, fail, close, ping) and feeds it the
/// connections' events (SETTINGS, GOAWAY, stream ends, closes).
public final class UpstreamPool: Sendable {
    public struct Configuration: Sendable {
        public var maxConnections = 8
        public var idleTimeout: TimeAmount = .seconds(90)
        public var connectTimeout: TimeAmount = .seconds(10)
        /// How long a request may wait for a free stream before it fails.
        public var queueTimeout: TimeAmount = .seconds(30)
        public var pingInterval: TimeAmount = .seconds(30)
        public var http2 = H2ClientHandler.Configuration()
        /// Told the ALPN result of every TLS handshake (`upstream.protocol: auto` learns the origin's protocol).
        public var onNegotiated: (@Sendable (String?) -> Void)?

        public init() {}
    }

    public typealias Connection = NIOLoopBound<H2ClientHandler>

    private struct State {
        var machine: PoolStateMachine
        var connections = ConnectionTable<(channel: any Channel, handler: Connection?)>()
        var waiters:
            [PoolStateMachine.RequestID: CheckedContinuation<(PoolStateMachine.ConnectionID, Connection), any Error>] =
                [:]
        var nextRequest = 0
        var housekeeping: RepeatedTask?
    }

    public let origin: UpstreamOrigin
    private let tls: TLSContext?
    private let group: any EventLoopGroup
    private let configuration: Configuration
    private let logger: Logger
    // Mutex: requests arrive from any task; connection events from each connection's event loop.
    private let state: Mutex<State>

    public init(
        origin: UpstreamOrigin, tls: TLSContext?, group: any EventLoopGroup,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "claude-proxy.upstream")
    ) {
        self.origin = origin
        self.tls = origin.isTLS ? tls : nil
        self.group = group
        self.configuration = configuration
        self.logger = logger
        state = Mutex(
            State(
                machine: PoolStateMachine(
                    maxConnections: configuration.maxConnections,
                    idleTimeout: Self.seconds(configuration.idleTimeout),
                    pingInterval: Self.seconds(configuration.pingInterval)
                )))
    }

    /// Opens a request stream on a pooled connection (waiting for a free slot if all are busy).
    public func stream(_ fields: [H2Field], endStream: Bool) async throws -> H2ClientStream {
        let (id, connection) = try await acquire()
        do {
            return try await H2ClientStream.open(on: connection, fields, endStream: endStream)
        } catch {
            // The slot was never used by a stream nghttp2 knows of: give it back.
            perform(state.withLock { $0.machine.streamClosed(on: id, now: Self.coarseNow()) })
            throw error
        }
    }

    /// Opens a stream read by `delegate` right now, on the calling event loop — only when a connection of this
    /// pool on this loop has a free slot; nil otherwise (the caller takes the waiting path). The slot comes back
    /// when the stream closes, as for any stream. `head` writes the request head straight into the connection's
    /// HTTP/2 session.
    public func openStreamNow(
        endStream: Bool, delegate: any H2ClientStreamDelegate, head: (inout H2HeadWriter) -> Void
    ) -> (handler: H2ClientHandler, streamID: Int32)? {
        let acquired = state.withLock { state -> (PoolStateMachine.ConnectionID, H2ClientHandler?)? in
            guard let id = state.machine.acquireFreeStream(now: Self.coarseNow()) else { return nil }
            // The entry is read in place (a copy of it retains its channel, loop and handler), and only a handler on
            // the calling loop is taken.
            let handler = state.connections.read(id) { entry in
                entry.handler.flatMap { $0.eventLoop.inEventLoop ? $0.value : nil }
            }
            return (id, handler ?? nil)
        }
        guard let (id, found) = acquired else { return nil }
        guard let handler = found,
            let streamID = try? handler.open(endStream: endStream, delegate: delegate, head: head)
        else {
            perform(state.withLock { $0.machine.streamClosed(on: id, now: Self.coarseNow()) })
            return nil
        }
        return (handler, streamID)
    }

    public var connectionCount: Int { state.withLock { $0.machine.connectionCount } }
    public var openStreamCount: Int { state.withLock { $0.machine.openStreamCount } }
    public var queuedRequestCount: Int { state.withLock { $0.machine.queuedRequests } }

    /// Fails waiting requests, closes idle connections and lets busy ones finish.
    public func shutdown() {
        let actions = state.withLock { state -> [PoolStateMachine.Action] in
            state.housekeeping?.cancel()
            state.housekeeping = nil
            return state.machine.shutdown()
        }
        perform(actions)
    }

    // MARK: - Requests

    private func acquire() async throws -> (PoolStateMachine.ConnectionID, Connection) {
        let deadline = Self.now() + Self.seconds(configuration.queueTimeout)
        return try await withCheckedThrowingContinuation { continuation in
            let actions = state.withLock { state -> [PoolStateMachine.Action] in
                let id = PoolStateMachine.RequestID(state.nextRequest)
                state.nextRequest += 1
                state.waiters[id] = continuation
                if !state.machine.isShuttingDown { startHousekeepingIfNeeded(&state) }
                return state.machine.newRequest(id, deadline: deadline, now: Self.now())
            }
            perform(actions)
        }
    }

    // MARK: - Actions

    private func perform(_ actions: [PoolStateMachine.Action]) {
        for action in actions {
            switch action {
            case .createConnection(let id):
                connect(id)
            case .startStream(let request, let connection):
                let (waiter, handler) = state.withLock {
                    ($0.waiters.removeValue(forKey: request), $0.connections[connection]?.handler)
                }
                if let handler {
                    waiter?.resume(returning: (connection, handler))
                } else {
                    waiter?.resume(throwing: UpstreamError.closed(origin: origin.description))
                }
            case .failRequest(let request, let failure):
                let waiter = state.withLock { $0.waiters.removeValue(forKey: request) }
                waiter?.resume(throwing: Self.error(failure, origin: origin))
            case .closeConnection(let id):
                let channel = state.withLock { $0.connections.removeValue(forKey: id)?.channel }
                channel?.close(promise: nil)
            case .ping(let id):
                if let handler = state.withLock({ $0.connections[id]?.handler }) {
                    handler.eventLoop.execute { handler.value.ping() }
                }
            }
        }
    }

    private func connect(_ id: PoolStateMachine.ConnectionID) {
        let origin = origin
        let tls = tls
        let configuration = configuration
        // The connection's handler reports to the pool; the reference goes away with the connection.
        let pool = self
        let connected = UpstreamBootstrap.connect(
            host: origin.host, port: origin.port, on: group.next(), timeout: configuration.connectTimeout
        ) { channel in
            let operations = channel.pipeline.syncOperations
            if let tls {
                let session = try tls.makeClientSession(serverName: origin.host)
                let tlsHandler = TLSHandler(session: session)
                tlsHandler.defersFlushes = false  // the HTTP/2 handler flushes once per loop turn itself
                tlsHandler.firstInPipeline = true
                try operations.addHandler(tlsHandler)
                try operations.addHandler(
                    RequireH2(origin: origin, logger: pool.logger, onNegotiated: configuration.onNegotiated))
            }
            let handler = try H2ClientHandler(configuration: configuration.http2) { event in
                pool.connectionEvent(id, event)
            }
            try operations.addHandler(handler)
            let bound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
            pool.state.withLock { $0.connections[id] = (channel, bound) }
        }
        connected.whenSuccess { channel in
            // TCP and TLS may succeed and SETTINGS never come: such a connection must not stay "connecting".
            channel.eventLoop.scheduleTask(in: configuration.connectTimeout) {
                if pool.state.withLock({ $0.machine.isConnecting(id) }) {
                    pool.logger.warning("upstream sent no SETTINGS in time", metadata: ["origin": "\(origin)"])
                    channel.close(promise: nil)
                }
            }
        }
        connected.whenFailure { error in
            pool.logger.warning("upstream connect failed", metadata: ["origin": "\(origin)", "error": "\(error)"])
            let actions = pool.state.withLock { state -> [PoolStateMachine.Action] in
                state.connections[id] = nil
                return state.machine.connectionFailed(id, reason: "\(error)")
            }
            pool.perform(actions)
        }
    }

    private func connectionEvent(_ id: PoolStateMachine.ConnectionID, _ event: H2ClientHandler.ConnectionEvent) {
        let now = Self.coarseNow()
        let actions = state.withLock { state -> [PoolStateMachine.Action] in
            switch event {
            case .settings(let maxStreams):
                let first = state.machine.connectionEstablished(id, maxStreams: maxStreams, now: now)
                return first.isEmpty ? state.machine.settingsChanged(id, maxStreams: maxStreams, now: now) : first
            case .goAway:
                return state.machine.goAwayReceived(id)
            case .streamClosed:
                return state.machine.streamClosed(on: id, now: now)
            case .closed(let reason):
                state.connections[id] = nil
                return state.machine.connectionFailed(id, reason: reason)
            }
        }
        perform(actions)
    }

    private func startHousekeepingIfNeeded(_ state: inout State) {
        guard state.housekeeping == nil else { return }
        state.housekeeping = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) {
            [weak self] _ in
            guard let self else { return }
            self.perform(self.state.withLock { $0.machine.tick(now: Self.now()) })
        }
    }

    // MARK: - Helpers

    static func now() -> Double {
        Double(NIODeadline.now().uptimeNanoseconds) / 1e9
    }

    /// `now()` up to a clock tick behind (`NIODeadline.coarseNow`), for what every request's stream records: when a
    /// connection was last active or fell idle, which the once-a-second housekeeping compares with seconds-long timeouts.
    static func coarseNow() -> Double {
        Double(NIODeadline.coarseNow.uptimeNanoseconds) / 1e9
    }

    static func seconds(_ amount: TimeAmount) -> Double {
        Double(amount.nanoseconds) / 1e9
    }

    static func error(_ failure: PoolStateMachine.Failure, origin: UpstreamOrigin) -> UpstreamError {
        switch failure {
        case .queueTimeout: .timeout(origin: origin.description, phase: "a free upstream stream")
        case .shutdown: .closed(origin: origin.description)
        case .connectFailed(let reason): .connectFailed(origin: origin.description, reason: reason)
        }
    }
}
