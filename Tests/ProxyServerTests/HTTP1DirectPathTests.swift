import Foundation
import ProxyServer
import ProxyTesting
import Testing

/// The HTTP/1.1 direct path (`HTTP1DirectPath`) keeps what NIO's decoder and Hummingbird keep: header limits,
/// bounded memory, half-closed clients, graceful shutdown. Each test runs with and without it (or behind NIO's
/// decoder), and each failed on the direct path's first version (found in review).
@Suite struct HTTP1DirectPathTests {
    typealias T = HTTP1FastPathTests

    /// How long after `started` the proxy closed the connection (nil: not within the socket's receive timeout),
    /// writing `first` before waiting.
    static func closedAfter(
        _ client: TestTLSClient, since started: ContinuousClock.Instant, writingFirst first: [UInt8] = []
    ) async throws -> Duration? {
        try await blocking { () -> Duration? in
            if !first.isEmpty { try client.write(first) }
            do {
                _ = try client.socket.receiveUntilClosed()
                return ContinuousClock.now - started
            } catch {
                return nil
            }
        }
    }

    /// `limits.max_header_size` and the decoder's 200-field cap hold on the direct path too: over them, 431.
    @Test(arguments: ["true", "false"])
    func headerLimitsHoldOnTheDirectPath(fast: String) async throws {
        let rig = try await RelayTests.rig(
            environment: ["LIMITS__MAX_HEADER_SIZE": "4096", "UPSTREAM__FAST_PATH": fast])
        try await T.warm(rig)
        // A single 8 KiB field: over the configured 4 KiB.
        let big = try await blocking { () -> Int in
            let client = try TestTLSClient(port: rig.port, context: rig.proxyCertificates.clientContext())
            try client.write(
                Array(T.post("{}", headers: ["x-padding: " + String(repeating: "a", count: 8192)]).utf8))
            return try client.readResponse().status
        }
        // 300 tiny fields (well under 4 KiB in all is not possible, so stay under 16 KiB): over the 200-field cap.
        let many = try await blocking { () -> Int in
            let client = try TestTLSClient(port: rig.port, context: rig.proxyCertificates.clientContext())
            let fields = (0..<300).map { "x-f\($0): 1" }
            try client.write(Array(T.post("{}", headers: fields).utf8))
            return try client.readResponse().status
        }
        try await rig.stop()
        #expect(big == 431, "fast=\(fast): an 8 KiB header with max_header_size=4096 got \(big)")
        #expect(many == 431, "fast=\(fast): 300 header fields (cap 200) got \(many)")
    }

    /// A client that pipelines far ahead of the proxy (200 requests of 64 KiB in one write) does not make the
    /// connection hold all it sent: ByteBuffer keeps bytes already read when it grows, so the direct path drops
    /// them as it goes (its first version grew by about the total).
    /// `route`: "direct" (`HTTP1DirectPath` reads them), "parts" (a /health request first, so NIO's decoder and
    /// `HTTP1FastPath` read them: the comparison).
    @Test(arguments: ["direct", "parts"])
    func pipelinedBytesAreNotAllRetained(route: String) async throws {
        let rig = try await RelayTests.rig()
        try await T.warm(rig)
        let client = try await T.connect(rig)
        if route == "parts" {
            _ = try await blocking { try client.get("/health") }
        }
        let body = #"{"padding":""# + String(repeating: "x", count: 64 << 10) + #""}"#
        let request = Array(T.post(body).utf8)
        let count = 200
        func rss() -> Int {
            let status = (try? String(contentsOfFile: "/proc/\(rig.proxy.pid)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0  // KiB
        }
        let before = rss()
        let statuses = try await blocking { () -> [Int] in
            var all: [UInt8] = []
            all.reserveCapacity(count * request.count)
            for _ in 0..<count { all += request }
            try client.write(all)
            return try (0..<count).map { _ in try client.readResponse().status }
        }
        try await Task.sleep(for: .milliseconds(500))
        let after = rss()
        try await blocking { try client.close() }
        try await rig.stop()
        #expect(statuses.allSatisfy { $0 == 200 }, "\(Set(statuses))")
        let grown = (after - before) / 1024
        let sent = count * request.count / (1 << 20)
        #expect(grown < sent, "route=\(route): resident memory grew by \(grown) MiB over \(sent) MiB sent")
    }

    /// A client that sends its request and then its TLS close_notify still gets the whole response (Hummingbird ends
    /// the connection when input ends, so the event waits for the fast path's response).
    /// `route`: "direct" (the connection's first request, read by `HTTP1DirectPath`), "parts" (after a /health
    /// request, so `HTTP1FastPath` takes it from the decoder's parts), "off" (fast path off).
    @Test(arguments: ["direct", "parts", "off"])
    func halfClosedClientStillGetsItsResponse(route: String) async throws {
        let fast = route == "off" ? "false" : "true"
        let rig = try await RelayTests.rig(environment: ["UPSTREAM__FAST_PATH": fast])
        try await T.warm(rig)
        let client = try await T.connect(rig)
        let outcome = try await blocking { () -> String in
            if route == "parts" {
                try client.write(Array(T.health.utf8))
                _ = try client.readResponse()
            }
            // A response that takes a while (about 2 s of events), as a real model's does.
            try client.write(Array(T.post(#"{"stream":true}"#, headers: ["x-mock-fault: slow-drip"]).utf8))
            try client.close()
            do {
                let response = try client.readResponse()
                return "\(response.status) \(response.bodyText == MockClaudeAPI.sseEvents.joined())"
            } catch {
                return "\(error)"
            }
        }
        try await rig.stop()
        #expect(outcome == "200 true", "route=\(route): \(outcome)")
    }

    /// Graceful shutdown while the rest of a refused (413) body is read and dropped: once it has been, nothing is
    /// in flight and the connection closes then, not at the idle timeout.
    @Test(arguments: ["true", "false"])
    func quiesceClosesOnceADiscardedBodyEnds(fast: String) async throws {
        let rig = try await RelayTests.rig(
            environment: [
                "LIMITS__MAX_REQUEST_BODY": "2048", "LIMITS__IDLE_TIMEOUT": "20s", "UPSTREAM__FAST_PATH": fast,
                "SERVER__SHUTDOWN_TIMEOUT": "30s",
            ])
        try await T.warm(rig)
        let client = try await T.connect(rig)
        let head =
            "POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nx-api-key: \(RelayTests.adminKey)\r\n"
            + "content-length: 8192\r\n\r\n"
        let refused = try await blocking { () -> Int in
            try client.write(Array((head + String(repeating: "x", count: 4096)).utf8))
            return try client.readResponse().status
        }
        rig.proxy.signal(SIGTERM)
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        let closedAfter = try await Self.closedAfter(
            client, since: started, writingFirst: Array(String(repeating: "x", count: 4096).utf8))
        _ = try? await blocking { try rig.proxy.waitForExit() }
        try await rig.stop()
        #expect(refused == 413)
        #expect(
            closedAfter.map { $0 < .seconds(10) } == true,
            "fast=\(fast): closed after \(String(describing: closedAfter)) (idle timeout 20 s)")
    }

    /// Graceful shutdown with the first bytes of a next request waiting (they came in the same write as the end of
    /// the previous request): they are not a request in flight, and the connection closes at once, as it does
    /// behind NIO's decoder.
    @Test(arguments: ["true", "false"])
    func quiesceIsNotHeldByAPartialHeadInTheBuffer(fast: String) async throws {
        let rig = try await RelayTests.rig(
            environment: [
                "LIMITS__IDLE_TIMEOUT": "20s", "UPSTREAM__FAST_PATH": fast, "SERVER__SHUTDOWN_TIMEOUT": "30s",
            ])
        try await T.warm(rig)
        let client = try await T.connect(rig)
        let request = T.post("{}")
        let status = try await blocking { () -> Int in
            try client.write(Array((request + "POST /v1/m").utf8))
            return try client.readResponse().status
        }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        rig.proxy.signal(SIGTERM)
        let closedAfter = try await Self.closedAfter(client, since: started)
        _ = try? await blocking { try rig.proxy.waitForExit() }
        try await rig.stop()
        #expect(status == 200)
        #expect(
            closedAfter.map { $0 < .seconds(10) } == true,
            "fast=\(fast): closed after \(String(describing: closedAfter)) (idle timeout 20 s)")
    }

    /// The first bytes of a next request that came with the end of the previous one get the request-head timeout
    /// like any head: when the rest never comes, the connection is closed then, not at the (longer) idle timeout.
    /// (Behind NIO's decoder, such bytes are not seen as a head begun, and the idle timeout closes the connection.)
    @Test func partialHeadLeftBehindGetsTheHeadTimeout() async throws {
        let fast = "true"
        let rig = try await RelayTests.rig(
            environment: ["LIMITS__HEADER_TIMEOUT": "1s", "LIMITS__IDLE_TIMEOUT": "30s", "UPSTREAM__FAST_PATH": fast])
        try await T.warm(rig)
        let client = try await T.connect(rig)
        let status = try await blocking { () -> Int in
            try client.write(Array((T.post("{}") + "POST /v1/m").utf8))
            return try client.readResponse().status
        }
        let started = ContinuousClock.now
        let closedAfter = try await Self.closedAfter(client, since: started)
        try await rig.stop()
        #expect(status == 200)
        #expect(
            closedAfter.map { $0 < .seconds(15) } == true,
            "fast=\(fast): closed after \(String(describing: closedAfter)) (head timeout 1 s, idle timeout 30 s)")
    }

    /// A connection's first bytes that never become a whole head (slowloris) are closed at the request-head timeout:
    /// the direct path, which keeps those bytes itself, tells the head timer behind it of the read.
    @Test func partialFirstHeadGetsTheHeadTimeout() async throws {
        let rig = try await RelayTests.rig(
            environment: ["LIMITS__HEADER_TIMEOUT": "1s", "LIMITS__IDLE_TIMEOUT": "30s"])
        try await T.warm(rig)
        let client = try await T.connect(rig)
        let started = ContinuousClock.now
        let closedAfter = try await Self.closedAfter(
            client, since: started, writingFirst: Array("POST /v1/messages HTTP/1.1\r\nHost: local".utf8))
        try await rig.stop()
        #expect(
            closedAfter.map { $0 < .seconds(15) } == true,
            "closed after \(String(describing: closedAfter)) (head timeout 1 s, idle timeout 30 s)")
    }

    /// A refused body (413) is read and dropped only up to a limit: one that announces far more than that ends the
    /// connection right after the answer, rather than holding it open for the rest (here the client sends no more).
    @Test func refusedBodyFarOverTheDiscardLimitEndsTheConnection() async throws {
        let rig = try await RelayTests.rig(
            environment: ["LIMITS__MAX_REQUEST_BODY": "2048", "LIMITS__IDLE_TIMEOUT": "30s"])
        try await T.warm(rig)
        let client = try await T.connect(rig)
        let head =
            "POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nx-api-key: \(RelayTests.adminKey)\r\n"
            + "content-length: \(64 << 20)\r\n\r\n"
        let started = ContinuousClock.now
        let (status, closedAfter) = try await blocking { () -> (Int, Duration?) in
            try client.write(Array((head + String(repeating: "x", count: 8192)).utf8))
            let status = try client.readResponse().status
            do {
                _ = try client.socket.receiveUntilClosed()
                return (status, ContinuousClock.now - started)
            } catch {
                return (status, nil)
            }
        }
        try await rig.stop()
        #expect(status == 413)
        #expect(
            closedAfter.map { $0 < .seconds(10) } == true,
            "closed after \(String(describing: closedAfter)) (idle timeout 30 s)")
    }
}
