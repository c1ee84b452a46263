import Testing

@testable import ProxyUpstream

/// The pool's decisions without sockets: which connection a request goes to, when a new one opens, what
/// happens on GOAWAY, death and idleness.
@Suite struct PoolStateMachineTests {
    typealias Pool = PoolStateMachine
    static let c0 = Pool.ConnectionID(value: 0)
    static let c1 = Pool.ConnectionID(value: 1)

    func request(_ n: Int) -> Pool.RequestID { Pool.RequestID(n) }

    @Test func firstRequestOpensAConnectionAndWaitsForIt() {
        var pool = Pool(maxConnections: 8, idleTimeout: 60)
        #expect(pool.newRequest(request(1), deadline: 10, now: 0) == [.createConnection(Self.c0)])
        #expect(pool.newRequest(request(2), deadline: 10, now: 0) == [], "the connecting one will take it")
        #expect(
            pool.connectionEstablished(Self.c0, maxStreams: 100, now: 1) == [
                .startStream(request(1), on: Self.c0), .startStream(request(2), on: Self.c0),
            ])
    }

    @Test func streamLimitReachedOpensASecondConnection() {
        var pool = Pool(maxConnections: 8, idleTimeout: 60)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        _ = pool.connectionEstablished(Self.c0, maxStreams: 2, now: 0)
        #expect(pool.newRequest(request(2), deadline: 10, now: 0) == [.startStream(request(2), on: Self.c0)])
        #expect(pool.newRequest(request(3), deadline: 10, now: 0) == [.createConnection(Self.c1)])
        #expect(pool.connectionEstablished(Self.c1, maxStreams: 2, now: 1) == [.startStream(request(3), on: Self.c1)])
        #expect(pool.connectionCount == 2)
    }

    @Test func connectionsAreCappedAndTheRestQueueUntilAStreamFrees() {
        var pool = Pool(maxConnections: 1, idleTimeout: 60)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        _ = pool.connectionEstablished(Self.c0, maxStreams: 1, now: 0)
        #expect(pool.newRequest(request(2), deadline: 10, now: 0) == [], "no second connection beyond the cap")
        #expect(pool.queuedRequests == 1)
        #expect(pool.streamClosed(on: Self.c0, now: 1) == [.startStream(request(2), on: Self.c0)])
    }

    @Test func queuedRequestsFailAtTheirDeadline() {
        var pool = Pool(maxConnections: 1, idleTimeout: 60)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        _ = pool.connectionEstablished(Self.c0, maxStreams: 1, now: 0)
        _ = pool.newRequest(request(2), deadline: 5, now: 0)
        #expect(pool.tick(now: 4) == [])
        #expect(pool.tick(now: 5) == [.failRequest(request(2), .queueTimeout)])
        #expect(pool.queuedRequests == 0)
    }

    @Test func goAwayDrainsTheConnectionAndNewRequestsGoToANewOne() {
        var pool = Pool(maxConnections: 8, idleTimeout: 60)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        _ = pool.connectionEstablished(Self.c0, maxStreams: 100, now: 0)
        #expect(pool.goAwayReceived(Self.c0) == [])
        // A request the peer never processed (above last-stream-id) is resubmitted by the shell:
        #expect(pool.newRequest(request(2), deadline: 10, now: 1) == [.createConnection(Self.c1)])
        #expect(pool.connectionEstablished(Self.c1, maxStreams: 100, now: 1) == [.startStream(request(2), on: Self.c1)])
        // The in-flight stream finishes on the old connection, which then closes.
        #expect(pool.streamClosed(on: Self.c0, now: 2) == [.closeConnection(Self.c0)])
        #expect(pool.connectionCount == 1)
    }

    @Test func deadConnectionsQueuedRequestsFailOverToANewConnection() {
        var pool = Pool(maxConnections: 8, idleTimeout: 60)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        #expect(pool.connectionFailed(Self.c0, reason: "reset") == [.createConnection(Self.c1)])
        #expect(pool.connectionEstablished(Self.c1, maxStreams: 10, now: 1) == [.startStream(request(1), on: Self.c1)])
    }

    @Test func repeatedConnectFailuresFailTheQueue() {
        var pool = Pool(maxConnections: 8, idleTimeout: 60)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        _ = pool.connectionFailed(Pool.ConnectionID(value: 0), reason: "refused")
        _ = pool.connectionFailed(Pool.ConnectionID(value: 1), reason: "refused")
        #expect(
            pool.connectionFailed(Pool.ConnectionID(value: 2), reason: "refused") == [
                .failRequest(request(1), .connectFailed("refused"))
            ])
    }

    @Test func idleConnectionIsClosedAfterTheTimeoutAndBusyOnesArePinged() {
        var pool = Pool(maxConnections: 8, idleTimeout: 60, pingInterval: 30)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        _ = pool.connectionEstablished(Self.c0, maxStreams: 100, now: 0)
        #expect(pool.tick(now: 31) == [.ping(Self.c0)], "a long stream keeps its connection checked")
        _ = pool.streamClosed(on: Self.c0, now: 40)
        #expect(pool.tick(now: 71) == [.ping(Self.c0)], "idle connections are checked too")
        #expect(pool.tick(now: 99) == [])
        #expect(pool.tick(now: 100) == [.closeConnection(Self.c0)])
        #expect(pool.connectionCount == 0)
    }

    @Test func aLowerLimitThanAssumedSpillsTheQueueToAnotherConnection() {
        var pool = Pool(maxConnections: 8, idleTimeout: 60)
        for n in 0..<25 { _ = pool.newRequest(request(n), deadline: 10, now: 0) }
        let actions = pool.connectionEstablished(Self.c0, maxStreams: 10, now: 0)
        #expect(actions.filter { if case .startStream = $0 { true } else { false } }.count == 10)
        #expect(
            Array(actions.suffix(2)) == [.createConnection(Self.c1), .createConnection(Pool.ConnectionID(value: 2))],
            "15 waiting at 10 streams per connection: two more, opened together")
        #expect(pool.queuedRequests == 15)
    }

    @Test func thousandStreamsUseTheFewestConnections() {
        var pool = Pool(maxConnections: 64, idleTimeout: 60)
        var created: [Pool.ConnectionID] = []
        var started = 0
        for n in 0..<1000 {
            for action in pool.newRequest(request(n), deadline: 100, now: 0) {
                if case .createConnection(let c) = action { created.append(c) }
                if case .startStream = action { started += 1 }
            }
            // Establish each connection as soon as it is asked for, advertising 128 streams.
            while let pending = created.first {
                created.removeFirst()
                started += pool.connectionEstablished(pending, maxStreams: 128, now: 0).count
            }
        }
        #expect(started == 1000)
        #expect(pool.connectionCount == 8, "ceil(1000 / 128)")
    }

    @Test func shutdownFailsTheQueueAndClosesIdleConnections() {
        var pool = Pool(maxConnections: 1, idleTimeout: 60)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        _ = pool.connectionEstablished(Self.c0, maxStreams: 1, now: 0)
        _ = pool.newRequest(request(2), deadline: 10, now: 0)
        #expect(pool.shutdown() == [.failRequest(request(2), .shutdown)])
        #expect(pool.newRequest(request(3), deadline: 10, now: 0) == [.failRequest(request(3), .shutdown)])
        #expect(pool.streamClosed(on: Self.c0, now: 1) == [.closeConnection(Self.c0)])
    }
}
