import NIOCore

/// The connection pool of one origin as a pure state machine (after async-http-client's
/// `HTTPConnectionPool.StateMachine`): events in, `Action`s out; the I/O shell performs the actions. No clocks,
/// no sockets — time comes in as `now` on the events that need it.
///
/// Policy: a request goes to an established connection with a free stream slot (the peer's
/// SETTINGS_MAX_CONCURRENT_STREAMS); a new connection is opened only when every connection, including those
/// still connecting, is full; at most `maxConnections`; beyond that requests wait in a FIFO queue until their
/// deadline. A connection that said GOAWAY takes no new streams and closes when its last stream ends.
public struct PoolStateMachine: Sendable {
    public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
        public let value: Int
        public var description: String { "c\(value)" }
    }

    public struct RequestID: Hashable, Sendable, CustomStringConvertible {
        public let value: Int
        public init(_ value: Int) { self.value = value }
        public var description: String { "r\(value)" }
    }

    public enum Failure: Error, Sendable, Equatable {
        /// The request waited for a stream past its deadline.
        case queueTimeout
        /// The pool is shutting down.
        case shutdown
        /// Connections to the origin keep failing; the last reason.
        case connectFailed(String)
    }

    public enum Action: Equatable, Sendable {
        case createConnection(ConnectionID)
        case startStream(RequestID, on: ConnectionID)
        case failRequest(RequestID, Failure)
        case closeConnection(ConnectionID)
        case ping(ConnectionID)
    }

    enum ConnectionState: Equatable {
        case connecting
        case active(maxStreams: Int, openStreams: Int, idleSince: Double?, lastActivity: Double)
        case draining(openStreams: Int)
    }

    struct Waiter: Equatable {
        var id: RequestID
        var deadline: Double
    }

    public let maxConnections: Int
    public let idleTimeout: Double
    public let pingInterval: Double
    private(set) var connections = ConnectionTable<ConnectionState>()
    private(set) var queue = CircularBuffer<Waiter>()
    private var nextConnection = 0
    private var shuttingDown = false
    private var consecutiveConnectFailures = 0
    /// The origin's SETTINGS_MAX_CONCURRENT_STREAMS as last announced; nil until a connection is up.
    private var peerLimit: Int?

    public init(maxConnections: Int, idleTimeout: Double, pingInterval: Double = 30) {
        self.maxConnections = max(1, maxConnections)
        self.idleTimeout = idleTimeout
        self.pingInterval = pingInterval
    }

    // MARK: - Events

    public mutating func newRequest(_ id: RequestID, deadline: Double, now: Double) -> [Action] {
        guard !shuttingDown else { return [.failRequest(id, .shutdown)] }
        if let connection = connectionWithFreeStream() {
            return [startStream(id, on: connection, now: now)]
        }
        queue.append(Waiter(id: id, deadline: deadline))
        return openConnectionIfNeeded()
    }

    /// A stream slot at once, or nil when that would mean waiting (no connection with room, or others queued
    /// first): the event-loop fast path then takes the ordinary, waiting way.
    public mutating func acquireFreeStream(now: Double) -> ConnectionID? {
        guard !shuttingDown, queue.isEmpty, let connection = connectionWithFreeStream() else { return nil }
        _ = startStream(RequestID(-1), on: connection, now: now)
        return connection
    }

    /// The connection is up and the peer's SETTINGS arrived.
    public mutating func connectionEstablished(_ connection: ConnectionID, maxStreams: Int, now: Double) -> [Action] {
        guard connections[connection] == .connecting else { return [] }
        if shuttingDown {
            connections[connection] = nil
            return [.closeConnection(connection)]
        }
        consecutiveConnectFailures = 0
        peerLimit = max(1, maxStreams)
        connections[connection] = .active(
            maxStreams: max(1, maxStreams), openStreams: 0, idleSince: now, lastActivity: now)
        return drainQueueOrGrow(now: now)
    }

    /// The peer changed SETTINGS_MAX_CONCURRENT_STREAMS.
    public mutating func settingsChanged(_ connection: ConnectionID, maxStreams: Int, now: Double) -> [Action] {
        guard case .active(_, let open, let idle, let activity) = connections[connection] else { return [] }
        peerLimit = max(1, maxStreams)
        connections[connection] = .active(
            maxStreams: max(1, maxStreams), openStreams: open, idleSince: idle, lastActivity: activity)
        return drainQueueOrGrow(now: now)
    }

    public mutating func connectionFailed(_ connection: ConnectionID, reason: String) -> [Action] {
        guard connections.removeValue(forKey: connection) == .connecting else {
            return connectionClosed(connection)
        }
        consecutiveConnectFailures += 1
        // Requests waiting for this connection get another try; after repeated failures they fail fast
        // instead of waiting for a connection that will not come.
        if consecutiveConnectFailures >= 3 || shuttingDown {
            return failQueue(.connectFailed(reason))
        }
        return openConnectionIfNeeded()
    }

    /// The connection is gone (closed by the peer, an error, or after draining). Its streams were failed by the
    /// shell; the queue moves to the remaining or a new connection.
    public mutating func connectionClosed(_ connection: ConnectionID) -> [Action] {
        connections.removeValue(forKey: connection)
        return queue.isEmpty ? [] : openConnectionIfNeeded()
    }

    public mutating func streamClosed(on connection: ConnectionID, now: Double) -> [Action] {
        switch connections[connection] {
        case .active(let maxStreams, let open, _, _):
            let remaining = max(0, open - 1)
            connections[connection] = .active(
                maxStreams: maxStreams, openStreams: remaining, idleSince: remaining == 0 ? now : nil, lastActivity: now
            )
            return drainQueue(now: now)
        case .draining(let open):
            if open <= 1 {
                connections[connection] = nil
                return [.closeConnection(connection)] + (queue.isEmpty ? [] : openConnectionIfNeeded())
            }
            connections[connection] = .draining(openStreams: open - 1)
            return []
        case .connecting, nil:
            return []
        }
    }

    /// The peer sent GOAWAY: no new streams there. Streams above its last-stream-id were never processed; the
    /// shell resubmits those requests with `newRequest`.
    public mutating func goAwayReceived(_ connection: ConnectionID) -> [Action] {
        switch connections[connection] {
        case .active(_, let open, _, _):
            if open == 0 {
                connections[connection] = nil
                return [.closeConnection(connection)] + (queue.isEmpty ? [] : openConnectionIfNeeded())
            }
            connections[connection] = .draining(openStreams: open)
            return queue.isEmpty ? [] : openConnectionIfNeeded()
        default:
            return []
        }
    }

    /// Periodic housekeeping: queue deadlines, idle connections, keep-alive PINGs.
    public mutating func tick(now: Double) -> [Action] {
        var actions: [Action] = []
        let expired = queue.filter { $0.deadline <= now }
        if !expired.isEmpty {
            queue.removeAll { $0.deadline <= now }
            actions += expired.map { .failRequest($0.id, .queueTimeout) }
        }
        for (connection, state) in connections {
            guard case .active(let maxStreams, let open, let idleSince, let lastActivity) = state else { continue }
            if let idleSince, open == 0, now - idleSince >= idleTimeout {
                connections[connection] = nil
                actions.append(.closeConnection(connection))
            } else if now - lastActivity >= pingInterval {
                connections[connection] = .active(
                    maxStreams: maxStreams, openStreams: open, idleSince: idleSince, lastActivity: now)
                actions.append(.ping(connection))
            }
        }
        return actions
    }

    public mutating func shutdown() -> [Action] {
        shuttingDown = true
        var actions = failQueue(.shutdown)
        for (connection, state) in connections {
            if case .active(_, 0, _, _) = state {
                connections[connection] = nil
                actions.append(.closeConnection(connection))
            } else if case .active(_, let open, _, _) = state {
                connections[connection] = .draining(openStreams: open)
            }
        }
        return actions
    }

    // MARK: - Reading the state

    public var connectionCount: Int { connections.count }

    /// Whether the connection is still waiting for its TCP/TLS handshake or the peer's SETTINGS.
    public func isConnecting(_ connection: ConnectionID) -> Bool { connections[connection] == .connecting }

    public var isShuttingDown: Bool { shuttingDown }
    public var queuedRequests: Int { queue.count }

    /// Streams open over all connections.
    public var openStreamCount: Int { connections.keys.reduce(0) { $0 + openStreams(on: $1) } }

    public func openStreams(on connection: ConnectionID) -> Int {
        switch connections[connection] {
        case .active(_, let open, _, _), .draining(let open): open
        default: 0
        }
    }

    // MARK: - Helpers

    private func connectionWithFreeStream() -> ConnectionID? {
        // Prefer the busiest connection that still has room: fewer connections stay warm (h2 multiplexing).
        var best: (ConnectionID, Int)?
        for (connection, state) in connections {
            if case .active(let maxStreams, let open, _, _) = state, open < maxStreams, open >= (best?.1 ?? -1) {
                best = (connection, open)
            }
        }
        return best?.0
    }

    private mutating func startStream(_ id: RequestID, on connection: ConnectionID, now: Double) -> Action {
        if case .active(let maxStreams, let open, _, _) = connections[connection] {
            connections[connection] = .active(
                maxStreams: maxStreams, openStreams: open + 1, idleSince: nil, lastActivity: now)
        }
        return .startStream(id, on: connection)
    }

    private mutating func drainQueue(now: Double) -> [Action] {
        var actions: [Action] = []
        while !queue.isEmpty, let connection = connectionWithFreeStream() {
            actions.append(startStream(queue.removeFirst().id, on: connection, now: now))
        }
        return actions
    }

    /// The peer's real limit may be below what we assumed while it connected: what it cannot take goes to
    /// another connection.
    private mutating func drainQueueOrGrow(now: Double) -> [Action] {
        let started = drainQueue(now: now)
        return queue.isEmpty ? started : started + openConnectionIfNeeded()
    }

    /// Opens as many connections as the queue needs beyond what the connecting ones will take. Until one
    /// connection has told us the origin's stream limit, only one connects at a time: guessing the limit low
    /// would open connections that are not needed.
    private mutating func openConnectionIfNeeded() -> [Action] {
        let connecting = connections.values.filter { $0 == .connecting }.count
        guard let limit = peerLimit else {
            return connecting == 0 && connections.count < maxConnections ? [createConnection()] : []
        }
        var actions: [Action] = []
        var capacity = connecting * limit
        while queue.count > capacity, connections.count < maxConnections {
            actions.append(createConnection())
            capacity += limit
        }
        return actions
    }

    private mutating func createConnection() -> Action {
        let connection = ConnectionID(value: nextConnection)
        nextConnection += 1
        connections[connection] = .connecting
        return .createConnection(connection)
    }

    private mutating func failQueue(_ failure: Failure) -> [Action] {
        defer { queue.removeAll() }
        return queue.map { .failRequest($0.id, failure) }
    }
}
