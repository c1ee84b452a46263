import Testing

@testable import ProxyUpstream

/// The HTTP/1.1 pool's decisions without sockets: one request per connection, idle reuse last-in first-out, the
/// cap and its queue, deadlines, idle close, and what happens to connections that cannot be reused.
@Suite struct HTTP1PoolStateMachineTests {
    typealias Pool = HTTP1PoolStateMachine
    static let c0 = Pool.ConnectionID(value: 0)
    static let c1 = Pool.ConnectionID(value: 1)
    static let c2 = Pool.ConnectionID(value: 2)

    func request(_ n: Int) -> Pool.RequestID { Pool.RequestID(n) }

    /// A pool with `count` established, idle connections (c0 released first, the last one most recently).
    func poolWithIdleConnections(_ count: Int, max: Int = 8, idleTimeout: Double = 60) -> Pool {
        var pool = Pool(maxConnections: max, idleTimeout: idleTimeout)
        for n in 0..<count { _ = pool.newRequest(request(n), deadline: 10, now: 0) }
        for n in 0..<count {
            _ = pool.connectionEstablished(Pool.ConnectionID(value: n), now: 0)
        }
        for n in 0..<count {
            _ = pool.requestFinished(on: Pool.ConnectionID(value: n), reusable: true, now: Double(n))
        }
        return pool
    }

    @Test func eachWaitingRequestOpensItsOwnConnection() {
        var pool = Pool(maxConnections: 8, idleTimeout: 60)
        #expect(pool.newRequest(request(1), deadline: 10, now: 0) == [.createConnection(Self.c0)])
        #expect(pool.newRequest(request(2), deadline: 10, now: 0) == [.createConnection(Self.c1)])
        #expect(pool.connectionEstablished(Self.c1, now: 1) == [.runRequest(request(1), on: Self.c1, reused: false)])
        #expect(pool.connectionEstablished(Self.c0, now: 1) == [.runRequest(request(2), on: Self.c0, reused: false)])
        #expect(pool.busyConnectionCount == 2)
    }

    @Test func aFinishedKeepAliveConnectionIsReusedMostRecentFirst() {
        var pool = poolWithIdleConnections(3)
        #expect(pool.idleConnectionCount == 3)
        #expect(
            pool.newRequest(request(10), deadline: 20, now: 5) == [.runRequest(request(10), on: Self.c2, reused: true)])
        #expect(
            pool.newRequest(request(11), deadline: 20, now: 5) == [.runRequest(request(11), on: Self.c1, reused: true)])
        #expect(pool.connectionCount == 3, "no new connection while idle ones exist")
    }

    @Test func aConnectionThatCannotBeReusedIsClosed() {
        var pool = poolWithIdleConnections(1)
        _ = pool.newRequest(request(10), deadline: 20, now: 1)
        #expect(pool.requestFinished(on: Self.c0, reusable: false, now: 2) == [.closeConnection(Self.c0)])
        #expect(pool.connectionCount == 0)
        #expect(pool.newRequest(request(11), deadline: 20, now: 3) == [.createConnection(Self.c1)])
    }

    @Test func connectionsAreCappedAndTheRestQueueForTheNextFreeConnection() {
        var pool = Pool(maxConnections: 2, idleTimeout: 60)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        _ = pool.newRequest(request(2), deadline: 10, now: 0)
        #expect(pool.newRequest(request(3), deadline: 10, now: 0) == [], "no third connection beyond the cap")
        _ = pool.connectionEstablished(Self.c0, now: 0)
        _ = pool.connectionEstablished(Self.c1, now: 0)
        #expect(pool.queuedRequests == 1)
        #expect(
            pool.requestFinished(on: Self.c1, reusable: true, now: 1) == [
                .runRequest(request(3), on: Self.c1, reused: true)
            ])
        #expect(pool.queuedRequests == 0)
    }

    @Test func aQueuedRequestGetsANewConnectionWhenABusyOneCloses() {
        var pool = Pool(maxConnections: 1, idleTimeout: 60)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        _ = pool.connectionEstablished(Self.c0, now: 0)
        _ = pool.newRequest(request(2), deadline: 10, now: 0)
        #expect(
            pool.requestFinished(on: Self.c0, reusable: false, now: 1) == [
                .closeConnection(Self.c0), .createConnection(Self.c1),
            ])
        #expect(pool.connectionEstablished(Self.c1, now: 2) == [.runRequest(request(2), on: Self.c1, reused: false)])
    }

    @Test func queuedRequestsFailAtTheirDeadline() {
        var pool = Pool(maxConnections: 1, idleTimeout: 60)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        _ = pool.connectionEstablished(Self.c0, now: 0)
        _ = pool.newRequest(request(2), deadline: 5, now: 0)
        #expect(pool.tick(now: 4) == [])
        #expect(pool.tick(now: 5) == [.failRequest(request(2), .queueTimeout)])
        #expect(pool.queuedRequests == 0)
    }

    @Test func idleConnectionsCloseAfterTheIdleTimeout() {
        var pool = poolWithIdleConnections(2, idleTimeout: 30)  // c0 idle since 0, c1 since 1
        #expect(pool.tick(now: 29) == [])
        #expect(pool.tick(now: 30) == [.closeConnection(Self.c0)])
        #expect(pool.tick(now: 31) == [.closeConnection(Self.c1)])
        #expect(pool.connectionCount == 0 && pool.idleConnectionCount == 0)
    }

    @Test func aBusyConnectionNeverIdlesOut() {
        var pool = poolWithIdleConnections(1, idleTimeout: 30)
        _ = pool.newRequest(request(10), deadline: 1000, now: 1)
        #expect(pool.tick(now: 500) == [])
        #expect(pool.connectionCount == 1)
    }

    @Test func anIdleConnectionClosedByThePeerLeavesThePool() {
        var pool = poolWithIdleConnections(2)
        #expect(pool.connectionClosed(Self.c1) == [])
        #expect(
            pool.newRequest(request(10), deadline: 20, now: 5) == [.runRequest(request(10), on: Self.c0, reused: true)])
    }

    @Test func aFreshRequestSkipsIdleConnections() {
        var pool = poolWithIdleConnections(1)
        #expect(pool.newRequest(request(10), deadline: 20, now: 5, fresh: true) == [.createConnection(Self.c1)])
        #expect(pool.connectionEstablished(Self.c1, now: 6) == [.runRequest(request(10), on: Self.c1, reused: false)])
        #expect(pool.idleConnectionCount == 1)
    }

    @Test func aFreshRequestAtTheCapReplacesTheLongestIdleConnection() {
        var pool = poolWithIdleConnections(2, max: 2)
        #expect(
            pool.newRequest(request(10), deadline: 20, now: 5, fresh: true) == [
                .closeConnection(Self.c0), .createConnection(Self.c2),
            ])
        #expect(pool.connectionEstablished(Self.c2, now: 6) == [.runRequest(request(10), on: Self.c2, reused: false)])
    }

    @Test func aWaiterWhoseCallerLeftIsRemovedFromTheQueue() {
        var pool = Pool(maxConnections: 1, idleTimeout: 60)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        _ = pool.connectionEstablished(Self.c0, now: 0)
        _ = pool.newRequest(request(2), deadline: 10, now: 0)
        #expect(pool.requestCancelled(request(2)) == [.failRequest(request(2), .cancelled)])
        #expect(pool.requestCancelled(request(2)) == [], "only once")
        #expect(pool.requestFinished(on: Self.c0, reusable: true, now: 1) == [], "nobody waits any more")
        #expect(pool.idleConnectionCount == 1)
    }

    @Test func repeatedConnectFailuresFailTheQueue() {
        var pool = Pool(maxConnections: 1, idleTimeout: 60)
        _ = pool.newRequest(request(1), deadline: 10, now: 0)
        #expect(pool.connectionFailed(Self.c0, reason: "refused") == [.createConnection(Self.c1)])
        #expect(pool.connectionFailed(Self.c1, reason: "refused") == [.createConnection(Self.c2)])
        #expect(
            pool.connectionFailed(Self.c2, reason: "refused") == [.failRequest(request(1), .connectFailed("refused"))])
        #expect(pool.connectionCount == 0)
    }

    @Test func shutdownFailsWaitersClosesIdleAndBusyOnesWhenDone() {
        var pool = poolWithIdleConnections(2, max: 2)
        _ = pool.newRequest(request(10), deadline: 20, now: 5)  // takes c1
        _ = pool.newRequest(request(11), deadline: 20, now: 5)  // takes c0
        _ = pool.newRequest(request(12), deadline: 20, now: 5)  // waits
        #expect(pool.shutdown() == [.failRequest(request(12), .shutdown)])
        #expect(pool.requestFinished(on: Self.c1, reusable: true, now: 6) == [.closeConnection(Self.c1)])
        #expect(pool.newRequest(request(13), deadline: 20, now: 6) == [.failRequest(request(13), .shutdown)])
    }

    @Test func shutdownClosesIdleConnections() {
        var pool = poolWithIdleConnections(2)
        #expect(pool.shutdown() == [.closeConnection(Self.c0), .closeConnection(Self.c1)])
        #expect(pool.connectionCount == 0)
    }
}
