import NIOCore

/// The HTTP/1.1 connection pool of one origin as a pure state machine: events in, `Action`s out, no clocks and
/// no sockets (time comes in as `now`). The I/O shell is `HTTP1UpstreamPool`.
///
/// Policy: one request per connection at a time (no pipelining, RFC 9112 §9.3.2 makes it fragile); an idle
/// connection is reused last-in first-out, so the warmest one serves and the rest age out; at most
/// `maxConnections`, beyond that requests wait in a FIFO queue until their deadline. A connection is reused only
/// when the shell says its last response ended cleanly with keep-alive; anything else is closed.
public struct HTTP1PoolStateMachine: Sendable {
    public typealias ConnectionID = PoolStateMachine.ConnectionID
    public typealias RequestID = PoolStateMachine.RequestID

    public enum Failure: Error, Sendable, Equatable {
        /// The request waited for a connection past its deadline.
        case queueTimeout
        /// The pool is shutting down.
        case shutdown
        /// Connections to the origin keep failing; the last reason.
        case connectFailed(String)
        /// The caller gave up while waiting.
        case cancelled
    }

    public enum Action: Equatable, Sendable {
        case createConnection(ConnectionID)
        /// Send the request on the connection. `reused`: the connection carried a request before or sat idle, so
        /// the server may have closed it meanwhile (the keep-alive race, RFC 9112 §9.3.1).
        case runRequest(RequestID, on: ConnectionID, reused: Bool)
        case failRequest(RequestID, Failure)
        case closeConnection(ConnectionID)
    }

    enum ConnectionState: Equatable {
        case connecting
        case idle(since: Double)
        case busy
    }

    struct Waiter: Equatable {
        var id: RequestID
        var deadline: Double
    }

    public let maxConnections: Int
    public let idleTimeout: Double
    private(set) var connections: [ConnectionID: ConnectionState] = [:]
    /// Idle connections, the most recently released last.
    private(set) var idle: [ConnectionID] = []
    private(set) var queue = CircularBuffer<Waiter>()
    private var nextConnection = 0
    private var shuttingDown = false
    private var consecutiveConnectFailures = 0

    public init(maxConnections: Int, idleTimeout: Double) {
        self.maxConnections = max(1, maxConnections)
        self.idleTimeout = idleTimeout
    }

    // MARK: - Events

    /// A request wants a connection. `fresh`: not one that sat idle (the retry after the keep-alive race); at the
    /// cap, the longest-idle connection is closed to make room for a new one.
    public mutating func newRequest(_ id: RequestID, deadline: Double, now: Double, fresh: Bool = false) -> [Action] {
        guard !shuttingDown else { return [.failRequest(id, .shutdown)] }
        if !fresh, let connection = idle.popLast() {
            connections[connection] = .busy
            return [.runRequest(id, on: connection, reused: true)]
        }
        queue.append(Waiter(id: id, deadline: deadline))
        var actions: [Action] = []
        if connections.count >= maxConnections, !idle.isEmpty {
            let oldest = idle.removeFirst()
            connections[oldest] = nil
            actions.append(.closeConnection(oldest))
        }
        return actions + openConnectionsIfNeeded()
    }

    /// TCP (and TLS) are up: the connection can carry a request.
    public mutating func connectionEstablished(_ connection: ConnectionID, now: Double) -> [Action] {
        guard connections[connection] == .connecting else { return [] }
        if shuttingDown {
            connections[connection] = nil
            return [.closeConnection(connection)]
        }
        consecutiveConnectFailures = 0
        if let waiter = queue.popFirst() {
            connections[connection] = .busy
            return [.runRequest(waiter.id, on: connection, reused: false)]
        }
        park(connection, now: now)
        return []
    }

    /// The connection's request is over. `reusable`: the response was read to its end and neither side said
    /// `connection: close`; otherwise the connection is closed.
    public mutating func requestFinished(on connection: ConnectionID, reusable: Bool, now: Double) -> [Action] {
        guard connections[connection] == .busy else { return [] }
        guard reusable, !shuttingDown else {
            connections[connection] = nil
            return [.closeConnection(connection)] + openConnectionsIfNeeded()
        }
        if let waiter = queue.popFirst() {
            return [.runRequest(waiter.id, on: connection, reused: true)]
        }
        park(connection, now: now)
        return []
    }

    public mutating func connectionFailed(_ connection: ConnectionID, reason: String) -> [Action] {
        guard connections[connection] == .connecting else { return connectionClosed(connection) }
        connections[connection] = nil
        consecutiveConnectFailures += 1
        // After repeated failures the waiting requests fail fast instead of waiting for a connection that will
        // not come.
        if consecutiveConnectFailures >= 3 || shuttingDown {
            return failQueue(.connectFailed(reason))
        }
        return openConnectionsIfNeeded()
    }

    /// The connection is gone (the peer closed it, an error, or we did); a request on it was failed by the shell.
    public mutating func connectionClosed(_ connection: ConnectionID) -> [Action] {
        guard connections.removeValue(forKey: connection) != nil else { return [] }
        idle.removeAll { $0 == connection }
        return openConnectionsIfNeeded()
    }

    /// The caller of a waiting request went away.
    public mutating func requestCancelled(_ id: RequestID) -> [Action] {
        guard let index = queue.firstIndex(where: { $0.id == id }) else { return [] }
        queue.remove(at: index)
        return [.failRequest(id, .cancelled)]
    }

    /// Periodic housekeeping: queue deadlines and idle connections.
    public mutating func tick(now: Double) -> [Action] {
        var actions: [Action] = []
        let expired = queue.filter { $0.deadline <= now }
        if !expired.isEmpty {
            queue.removeAll { $0.deadline <= now }
            actions += expired.map { .failRequest($0.id, .queueTimeout) }
        }
        for connection in idle {
            if case .idle(let since) = connections[connection], now - since >= idleTimeout {
                connections[connection] = nil
                actions.append(.closeConnection(connection))
            }
        }
        idle.removeAll { connections[$0] == nil }
        return actions
    }

    /// Fails the waiting requests and closes idle connections; busy ones close when their request is over.
    public mutating func shutdown() -> [Action] {
        shuttingDown = true
        var actions = failQueue(.shutdown)
        for connection in idle {
            connections[connection] = nil
            actions.append(.closeConnection(connection))
        }
        idle.removeAll()
        return actions
    }

    // MARK: - Reading the state

    public var connectionCount: Int { connections.count }
    public var busyConnectionCount: Int { connections.values.filter { $0 == .busy }.count }
    public var idleConnectionCount: Int { idle.count }
    public var queuedRequests: Int { queue.count }
    public var isShuttingDown: Bool { shuttingDown }

    /// Whether the request waits for a connection.
    public func isQueued(_ id: RequestID) -> Bool { queue.contains { $0.id == id } }

    /// Whether the connection is still waiting for its TCP/TLS handshake.
    public func isConnecting(_ connection: ConnectionID) -> Bool { connections[connection] == .connecting }

    // MARK: - Helpers

    private mutating func park(_ connection: ConnectionID, now: Double) {
        connections[connection] = .idle(since: now)
        idle.append(connection)
    }

    /// One connection per waiting request beyond those already connecting, up to the cap.
    private mutating func openConnectionsIfNeeded() -> [Action] {
        var connecting = connections.values.filter { $0 == .connecting }.count
        var actions: [Action] = []
        while queue.count > connecting, connections.count < maxConnections {
            let connection = ConnectionID(value: nextConnection)
            nextConnection += 1
            connections[connection] = .connecting
            actions.append(.createConnection(connection))
            connecting += 1
        }
        return actions
    }

    private mutating func failQueue(_ failure: Failure) -> [Action] {
        defer { queue.removeAll() }
        return queue.map { .failRequest($0.id, failure) }
    }
}
