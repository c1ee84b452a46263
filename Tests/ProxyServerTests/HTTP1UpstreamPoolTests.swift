import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import ProxyHTTP2
import ProxyServer
import ProxyTLS
import ProxyTesting
import ProxyUpstream
import Synchronization
import Testing

/// The HTTP/1.1 upstream pool over real sockets and real TLS, against our own server with HTTP/2 switched off
/// at the ALPN level.
@Suite struct HTTP1UpstreamPoolTests {
    /// Bytes a response handler has handed to its writer; each write returns only once the socket takes it.
    final class Progress: Sendable {
        let sent = Atomic<Int>(0)
        let stopped = Atomic<Bool>(false)
    }

    static func routes(_ progress: Progress) -> @Sendable (Router<BasicRequestContext>) -> Void {
        { router in
            router.get("/slow") { _, _ -> String in
                try await Task.sleep(for: .milliseconds(800))
                return "slow"
            }
            router.get("/stall") { _, _ -> String in
                try await Task.sleep(for: .seconds(30))
                return "late"
            }
            router.post("/echo") { request, _ -> Response in
                Response(status: .ok, body: ResponseBody(asyncSequence: request.body))
            }
            router.get("/large") { _, _ -> Response in
                Response(
                    status: .ok,
                    body: ResponseBody { writer in
                        let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 << 10)
                        var sent = 0
                        while sent < 50 << 20 {
                            try await writer.write(chunk)
                            sent += chunk.readableBytes
                            progress.sent.store(sent, ordering: .relaxed)
                        }
                        try await writer.finish(nil)
                    })
            }
            router.get("/endless") { _, _ -> Response in
                Response(
                    status: .ok, headers: [.contentType: "text/event-stream"],
                    body: ResponseBody { writer in
                        do {
                            while true {
                                try await writer.write(ByteBuffer(string: "data: tick\n\n"))
                                try await Task.sleep(for: .milliseconds(10))
                            }
                        } catch {
                            progress.stopped.store(true, ordering: .relaxed)
                            throw error
                        }
                    })
            }
        }
    }

    /// A TLS server that offers only `http/1.1` (with `tls: false`, a plain HTTP/1.1 server) and an HTTP/1.1
    /// pool to it; both torn down after `body`.
    static func withPool(
        tls: Bool = true,
        _ adjust: (inout UpstreamPool.Configuration) -> Void = { _ in },
        _ body: (HTTP1UpstreamPool, TestServer, Progress) async throws -> Void
    ) async throws {
        let progress = Progress()
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        var config = ProxyConfig.testing(certificates: tls ? certificates : nil)
        config.server.shutdownTimeout = .milliseconds(500)
        let server = try await TestServer.start(
            config: config, additionalRoutes: routes(progress), alpnProtocols: ["http/1.1"])
        let context = try TLSContext(
            client: .init(alpnProtocols: ["http/1.1"], extraCAFile: certificates.caFile, useSystemTrustStore: false))
        var configuration = UpstreamPool.Configuration()
        adjust(&configuration)
        let pool = HTTP1UpstreamPool(
            origin: UpstreamOrigin(isTLS: tls, host: "localhost", port: server.port), tls: context,
            group: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        do {
            try await body(pool, server, progress)
        } catch {
            pool.shutdown()
            try? await server.stop()
            throw error
        }
        pool.shutdown()
        try await server.stop()
    }

    static func request(_ method: String, _ path: String, port: Int) -> [H2Field] {
        [
            H2Field(":method", method), H2Field(":scheme", "https"), H2Field(":authority", "localhost:\(port)"),
            H2Field(":path", path),
        ]
    }

    /// Sends a request; the head timeout is generous (a loaded test machine is slow), except where it is tested.
    static func send(
        _ pool: HTTP1UpstreamPool, _ path: String, method: String = "GET", port: Int, body: ByteBuffer? = nil
    ) async throws -> HTTP1UpstreamPool.Exchange {
        try await pool.send(request(method, path, port: port), body: body, responseHeadTimeout: .seconds(30))
    }

    /// `send`, tried again (up to 20 times) while it only times out waiting for a free connection: for requests
    /// around the one a test expects to time out.
    static func sendPatiently(_ pool: HTTP1UpstreamPool, _ path: String, port: Int) async throws
        -> HTTP1UpstreamPool.Exchange
    {
        for _ in 1..<20 {
            do {
                return try await send(pool, path, port: port)
            } catch let error as UpstreamError {
                guard case .timeout(_, let phase) = error, phase == "a free upstream connection" else { throw error }
            }
        }
        return try await send(pool, path, port: port)
    }

    static func collect(_ exchange: HTTP1UpstreamPool.Exchange) async throws -> [UInt8] {
        var body: [UInt8] = []
        for try await chunk in exchange.body(idleTimeout: .seconds(30)) { body += chunk.readableBytesView }
        return body
    }

    /// Established TCP connections to `port` on this machine, client side, as the kernel sees them.
    static func establishedConnections(to port: Int) async throws -> Int {
        let result = try await blocking {
            try ProcessRunner.run(["ss", "-Htn", "state", "established", "( dport = :\(port) )"])
        }
        return result.stdout.split(separator: "\n").count
    }

    /// Polls `condition` every 20 ms for at most `limit`.
    static func eventually(within limit: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows
        -> Bool
    {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }

    /// The upstream's progress once it has not changed for a second (at most `limit`): where it stalls.
    static func settled(_ progress: Progress, within limit: Duration = .seconds(30)) async throws -> Int {
        let deadline = ContinuousClock.now + limit
        var last = progress.sent.load(ordering: .relaxed)
        var unchanged = 0
        while unchanged < 4, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            let now = progress.sent.load(ordering: .relaxed)
            unchanged = now == last ? unchanged + 1 : 0
            last = now
        }
        return last
    }

    @Test func sequentialRequestsShareOneKeptAliveConnection() async throws {
        try await Self.withPool { pool, server, _ in
            for _ in 0..<10 {
                let exchange = try await Self.send(pool, "/health", port: server.port)
                let body = try await Self.collect(exchange)
                #expect(exchange.status == 200)
                #expect(String(decoding: body, as: UTF8.self).contains(#""status""#))
            }
            #expect(pool.connectionCount == 1)
            #expect(try await Self.establishedConnections(to: server.port) == 1, "ten requests, one TCP connection")
        }
    }

    @Test func oneMegabyteUploadComesBackByteForByte() async throws {
        try await Self.withPool { pool, server, _ in
            let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            for _ in 0..<2 {
                let exchange = try await Self.send(
                    pool, "/echo", method: "POST", port: server.port, body: ByteBuffer(bytes: payload))
                let body = try await Self.collect(exchange)
                #expect(exchange.status == 200)
                #expect(body.count == payload.count && body == payload, "\(body.count) bytes of \(payload.count)")
            }
            #expect(pool.connectionCount == 1)
        }
    }

    @Test func connectionsAreCappedAndAQueuedRequestFailsAtItsDeadline() async throws {
        // Plain HTTP: no handshake for the queue deadline to race with on a loaded machine.
        try await Self.withPool(
            tls: false,
            {
                $0.maxConnections = 1; $0.queueTimeout = .milliseconds(500)
            }
        ) {
            pool, server, _ in
            // The one connection first, then the request that holds it. On a loaded machine (the suite runs in
            // parallel on two cores) either may miss the short queue deadline itself, so those are tried again.
            _ = try await Self.collect(try await Self.sendPatiently(pool, "/health", port: server.port))
            let endless = try await Self.sendPatiently(pool, "/endless", port: server.port)  // holds the connection
            let queued = ContinuousClock.now
            await #expect {
                _ = try await Self.send(pool, "/health", port: server.port)
            } throws: { error in
                if case .timeout(_, let phase) = error as? UpstreamError {
                    return phase == "a free upstream connection"
                }
                return false
            }
            #expect(ContinuousClock.now - queued >= .milliseconds(500))
            #expect(pool.connectionCount == 1, "no second connection past the cap")
            endless.cancel()
            let next = try await Self.sendPatiently(pool, "/health", port: server.port)
            #expect(next.status == 200)
            #expect(pool.connectionCount == 1)
        }
    }

    @Test func concurrentRequestsBeyondTheCapWaitTheirTurn() async throws {
        try await Self.withPool({
            $0.maxConnections = 2; $0.queueTimeout = .seconds(60)
        }) { pool, server, _ in
            let peak = Peak()
            let bodies = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<5 {
                    group.addTask {
                        let exchange = try await Self.send(pool, "/slow", port: server.port)
                        peak.record(pool.connectionCount)
                        return String(decoding: try await Self.collect(exchange), as: UTF8.self)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(bodies == Array(repeating: "slow", count: 5))
            #expect(peak.value.load(ordering: .relaxed) == 2, "two connections, never more")
            #expect(try await Self.establishedConnections(to: server.port) == 2)
        }
    }

    @Test func idleConnectionsAreClosedAfterTheIdleTimeout() async throws {
        try await Self.withPool({ $0.idleTimeout = .milliseconds(500) }) { pool, server, _ in
            let sent = ContinuousClock.now  // the connection idles from some time after this
            _ = try await Self.collect(try await Self.send(pool, "/health", port: server.port))
            #expect(await Self.eventually { pool.connectionCount == 0 }, "closed by the pool's housekeeping")
            #expect(ContinuousClock.now - sent >= .milliseconds(500), "kept alive until it had idled out")
            #expect(
                try await Self.eventually { try await Self.establishedConnections(to: server.port) == 0 },
                "and gone from the kernel's table")
        }
    }

    @Test func aConsumerThatDoesNotReadHoldsTheUpstreamBack() async throws {
        try await Self.withPool { pool, server, progress in
            let exchange = try await Self.send(pool, "/large", port: server.port)
            var iterator = exchange.body(idleTimeout: .seconds(60)).makeAsyncIterator()
            let first = try #require(try await iterator.next()).readableBytes
            // Socket buffers fill, then the server's writes stall.
            let stalled = try await Self.settled(progress)
            #expect(stalled < 16 << 20, "\(stalled >> 20) MiB of 50 sent while nobody reads")
            // Reading resumes the transfer (not to its end: 50 MB through debug-built TLS would load the machine
            // for the other tests; the echo test checks that every byte arrives).
            var read = first
            while read < stalled + (4 << 20), let chunk = try await iterator.next() { read += chunk.readableBytes }
            #expect(progress.sent.load(ordering: .relaxed) > stalled, "the upstream sends again")
            exchange.cancel()
        }
    }

    @Test func cancellingAnExchangeClosesItsConnectionAndStopsTheServer() async throws {
        try await Self.withPool { pool, server, progress in
            let exchange = try await Self.send(pool, "/endless", port: server.port)
            var iterator = exchange.body(idleTimeout: .seconds(30)).makeAsyncIterator()
            _ = try await iterator.next()
            exchange.cancel()
            await #expect(throws: (any Error).self) {
                while try await iterator.next() != nil {}
            }
            #expect(await Self.eventually { pool.connectionCount == 0 }, "the connection is closed, not reused")
            #expect(await Self.eventually { progress.stopped.load(ordering: .relaxed) }, "the server's writer saw it")
        }
    }

    @Test func anAbandonedBodyClosesTheConnection() async throws {
        try await Self.withPool { pool, server, _ in
            do {
                let exchange = try await Self.send(pool, "/endless", port: server.port)
                var iterator = exchange.body(idleTimeout: .seconds(30)).makeAsyncIterator()
                _ = try await iterator.next()
            }  // the body is dropped unread
            #expect(await Self.eventually { pool.connectionCount == 0 })
            let next = try await Self.send(pool, "/health", port: server.port)
            _ = try await Self.collect(next)
            #expect(next.status == 200)
            #expect(try await Self.establishedConnections(to: server.port) == 1)
        }
    }

    @Test func aSilentUpstreamTimesOutBeforeTheHead() async throws {
        try await Self.withPool { pool, server, _ in
            _ = try await Self.collect(try await Self.send(pool, "/health", port: server.port))
            await #expect {
                _ = try await pool.send(
                    Self.request("GET", "/stall", port: server.port), body: nil,
                    responseHeadTimeout: .milliseconds(200))
            } throws: { error in
                if case .timeout(_, let phase) = error as? UpstreamError { return phase == "the response head" }
                return false
            }
            #expect(await Self.eventually { pool.connectionCount == 0 }, "a timed-out exchange's connection closes")
        }
    }
}

/// The highest value seen, from any task.
final class Peak: Sendable {
    let value = Atomic<Int>(0)

    func record(_ sample: Int) {
        var current = value.load(ordering: .relaxed)
        while sample > current {
            let (exchanged, original) = value.compareExchange(expected: current, desired: sample, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
