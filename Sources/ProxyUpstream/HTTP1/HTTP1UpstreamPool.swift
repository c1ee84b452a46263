import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ProxyTLS
import Synchronization

/// Keep-alive HTTP/1.1 connections to one origin, for origins that do not speak HTTP/2: the I/O shell around
/// `HTTP1PoolStateMachine`. It performs the machine's actions (connect, hand a connection to a waiting request,
/// fail, close) and feeds it the connections' events (established, request finished, closed).
///
/// The rules are those of the HTTP/2 pool (`UpstreamPool.Configuration`: connection cap, queue deadline, idle
/// close, connect and TLS handshake timeout), but a connection carries one request at a time, so the cap is
/// also the number of concurrent requests.
public final class HTTP1UpstreamPool: Sendable {
    typealias Connection = NIOLoopBound<HTTP1ConnectionHandler>
    typealias Machine = HTTP1PoolStateMachine

    /// A connection handed to one request.
    struct Lease: Sendable {
        var connection: Connection
        var token: Machine.RequestID
        var reused: Bool
    }

    private struct State {
        var machine: Machine
        var connections: [Machine.ConnectionID: (channel: any Channel, handler: Connection?)] = [:]
        var waiters: [Machine.RequestID: CheckedContinuation<Lease, any Error>] = [:]
        /// Requests whose caller was cancelled before they were registered.
        var cancelledEarly: Set<Machine.RequestID> = []
        var nextRequest = 0
        var housekeeping: RepeatedTask?
    }

    public let origin: UpstreamOrigin
    let tls: TLSContext?
    private let group: any EventLoopGroup
    let configuration: UpstreamPool.Configuration
    let logger: Logger
    // Mutex: requests arrive from any task; connection events from each connection's event loop.
    private let state: Mutex<State>

    /// `tls` should offer only `http/1.1` by ALPN; it is ignored for `http://` origins.
    public init(
        origin: UpstreamOrigin, tls: TLSContext?, group: any EventLoopGroup,
        configuration: UpstreamPool.Configuration = .init(),
        logger: Logger = Logger(label: "claude-proxy.upstream")
    ) {
        self.origin = origin
        self.tls = origin.isTLS ? tls : nil
        self.group = group
        self.configuration = configuration
        self.logger = logger
        state = Mutex(
            State(
                machine: Machine(
                    maxConnections: configuration.maxConnections,
                    idleTimeout: UpstreamPool.seconds(configuration.idleTimeout))))
    }

    /// Open connections, idle or busy or connecting.
    public var connectionCount: Int { state.withLock { $0.machine.connectionCount } }
    /// Connections carrying a request.
    public var busyConnectionCount: Int { state.withLock { $0.machine.busyConnectionCount } }
    public var queuedRequestCount: Int { state.withLock { $0.machine.queuedRequests } }

    /// Fails waiting requests, closes idle connections and lets busy ones finish.
    public func shutdown() {
        let actions = state.withLock { state -> [Machine.Action] in
            state.housekeeping?.cancel()
            state.housekeeping = nil
            return state.machine.shutdown()
        }
        perform(actions)
    }

    // MARK: - Leases

    /// Waits for a connection; `fresh`: not one that sat idle.
    func acquire(fresh: Bool) async throws -> Lease {
        let deadline = UpstreamPool.now() + UpstreamPool.seconds(configuration.queueTimeout)
        let id = state.withLock { state -> Machine.RequestID in
            defer { state.nextRequest += 1 }
            return Machine.RequestID(state.nextRequest)
        }
        // A cancellation that lands after the lease was handed out leaves a mark nobody reads: remove it.
        defer { state.withLock { _ = $0.cancelledEarly.remove(id) } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let (actions, queued) = state.withLock { state -> ([Machine.Action], Bool) in
                    state.waiters[id] = continuation
                    if state.cancelledEarly.remove(id) != nil { return ([.failRequest(id, .cancelled)], false) }
                    if !state.machine.isShuttingDown { startHousekeepingIfNeeded(&state) }
                    let actions = state.machine.newRequest(
                        id, deadline: deadline, now: UpstreamPool.now(), fresh: fresh)
                    return (actions, state.machine.isQueued(id))
                }
                if queued { expireAtDeadline(after: configuration.queueTimeout) }
                perform(actions)
            }
        } onCancel: {
            let actions = state.withLock { state -> [Machine.Action] in
                guard state.waiters[id] != nil else {
                    state.cancelledEarly.insert(id)
                    return []
                }
                return state.machine.requestCancelled(id)
            }
            perform(actions)
        }
    }

    // MARK: - Actions

    private func perform(_ actions: [Machine.Action]) {
        for action in actions {
            switch action {
            case .createConnection(let id):
                connect(id)
            case .runRequest(let request, let connection, let reused):
                let (waiter, handler) = state.withLock {
                    ($0.waiters.removeValue(forKey: request), $0.connections[connection]?.handler)
                }
                if let handler {
                    waiter?.resume(returning: Lease(connection: handler, token: request, reused: reused))
                } else {
                    waiter?.resume(throwing: UpstreamError.closed(origin: origin.description))
                }
            case .failRequest(let request, let failure):
                let waiter = state.withLock { $0.waiters.removeValue(forKey: request) }
                waiter?.resume(throwing: error(failure))
            case .closeConnection(let id):
                let channel = state.withLock { $0.connections.removeValue(forKey: id)?.channel }
                channel?.close(promise: nil)
            }
        }
    }

    private func connect(_ id: Machine.ConnectionID) {
        let origin = origin
        let tls = tls
        let timeout = configuration.connectTimeout
        // The connection's handler reports to the pool; the reference goes away with the connection.
        let pool = self
        UpstreamBootstrap.connect(
            host: origin.host, port: origin.port, on: group.next(), timeout: timeout, autoRead: false
        ) { channel in
            let operations = channel.pipeline.syncOperations
            if let tls {
                let session = try tls.makeClientSession(serverName: origin.host)
                try operations.addHandler(TLSHandler(session: session, handshakeTimeout: timeout))
            }
            try operations.addHTTPClientHandlers()
            let handler = HTTP1ConnectionHandler(origin: origin) { event in
                pool.connectionEvent(id, event)
            }
            try operations.addHandler(handler)
            let bound = NIOLoopBound(handler, eventLoop: channel.eventLoop)
            pool.state.withLock { $0.connections[id] = (channel, bound) }
        }.whenFailure { error in
            pool.logger.warning("upstream connect failed", metadata: ["origin": "\(origin)", "error": "\(error)"])
            let actions = pool.state.withLock { state -> [Machine.Action] in
                state.connections[id] = nil
                return state.machine.connectionFailed(id, reason: "\(error)")
            }
            pool.perform(actions)
        }
    }

    private func connectionEvent(_ id: Machine.ConnectionID, _ event: HTTP1ConnectionHandler.ConnectionEvent) {
        let now = UpstreamPool.now()
        let (actions, failedToEstablish) = state.withLock { state -> ([Machine.Action], Bool) in
            switch event {
            case .established:
                return (state.machine.connectionEstablished(id, now: now), false)
            case .requestFinished(let reusable):
                return (state.machine.requestFinished(on: id, reusable: reusable, now: now), false)
            case .closed(let reason):
                let connecting = state.machine.isConnecting(id)
                state.connections[id] = nil
                return (state.machine.connectionFailed(id, reason: reason), connecting)
            }
        }
        if failedToEstablish, case .closed(let reason) = event {
            // TCP connected, TLS did not (certificate, host name, ALPN, handshake timeout).
            logger.warning(
                "upstream connection failed before it was established",
                metadata: ["origin": "\(origin)", "error": "\(reason)"])
        }
        perform(actions)
    }

    /// The once-a-second housekeeping would let a waiter outlive a short `queueTimeout` by up to a second: a
    /// queued request gets a tick of its own at its deadline.
    private func expireAtDeadline(after delay: TimeAmount) {
        group.next().scheduleTask(in: delay) { [weak self] in
            guard let self else { return }
            self.perform(self.state.withLock { $0.machine.tick(now: UpstreamPool.now()) })
        }
    }

    private func startHousekeepingIfNeeded(_ state: inout State) {
        guard state.housekeeping == nil else { return }
        state.housekeeping = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) {
            [weak self] _ in
            guard let self else { return }
            self.perform(self.state.withLock { $0.machine.tick(now: UpstreamPool.now()) })
        }
    }

    private func error(_ failure: Machine.Failure) -> any Error {
        switch failure {
        case .queueTimeout: UpstreamError.timeout(origin: origin.description, phase: "a free upstream connection")
        case .shutdown: UpstreamError.closed(origin: origin.description)
        case .connectFailed(let reason): UpstreamError.connectFailed(origin: origin.description, reason: reason)
        case .cancelled: CancellationError()
        }
    }
}
