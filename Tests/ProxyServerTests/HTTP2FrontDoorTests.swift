import Foundation
import Hummingbird
import NIOCore
import ProxyHTTP2
import ProxyServer
import ProxyTesting
import ProxyUpstream
import Synchronization
import Testing

/// HTTP/2 for clients: real clients (curl, nghttp, h2load), and the floods a public h2 server must survive —
/// each closes the offending connection with GOAWAY and the server keeps serving others.
@Suite struct HTTP2FrontDoorTests {
    func healthOverH2(_ server: TestServer, _ certificates: TestCertificates) async throws -> String {
        try await blocking {
            try ProcessRunner.run([
                "curl", "-sS", "--http2", "--cacert", certificates.caFile, "-o", "/dev/null", "-w",
                "%{http_code} %{http_version}",
                "https://localhost:\(server.port)/health",
            ]).stdout
        }
    }

    @Test func nghttpAndH2loadSpeakH2WithTheFrontDoor() async throws {
        try await TestServer.withTLSServer { server, certificates in
            let nghttp = try await blocking {
                try ProcessRunner.run(["nghttp", "-v", "--no-verify-peer", "https://localhost:\(server.port)/health"])
            }
            #expect(nghttp.exitCode == 0, "\(nghttp.output)")
            #expect(nghttp.stdout.contains(":status: 200"))
            #expect(nghttp.stdout.contains(#""status":"no_accounts""#))
            let date = nghttp.stdout.split(separator: "\n").first { $0.contains("date: ") }
            let text = date.map { String($0.split(separator: "date: ", maxSplits: 1).last ?? "") } ?? ""
            #expect(
                text.range(
                    of: #"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$"#,
                    options: .regularExpression)
                    != nil, "an IMF-fixdate Date header (RFC 9110 §6.6.1): \(text)")
            let h2load = try await blocking {
                try ProcessRunner.run([
                    "h2load", "-n", "2000", "-c", "4", "-m", "32", "https://127.0.0.1:\(server.port)/health",
                ])
            }
            #expect(h2load.stdout.contains("Application protocol: h2"), "\(h2load.output)")
            #expect(h2load.stdout.contains("2000 succeeded, 0 failed, 0 errored"), "\(h2load.stdout)")
            #expect(h2load.stdout.contains("status codes: 2000 2xx"))
        }
    }

    @Test func rapidResetIsAnsweredWithEnhanceYourCalm() async throws {
        try await TestServer.withTLSServer { server, certificates in
            let (events, closedBecause) = try await blocking { () -> ([H2Event], String?) in
                let client = try H2TestClient(port: server.port, certificates: certificates)
                // CVE-2023-44487: open and immediately cancel streams, far faster than any real client.
                // Each request is flushed on its own (a stream nghttp2 never sent is dropped silently on reset).
                // The server may hang up before the flood is over: that ends our sending, not the test.
                do {
                    for _ in 0..<1500 {
                        let id = try client.get("/health")
                        client.session.resetStream(id, errorCode: H2ErrorCode.cancel)
                    }
                    try client.flush()
                } catch {}
                let events = client.read(rounds: 2000) { events in
                    events.contains { if case .goAway = $0 { true } else { false } }
                }
                return (events, client.closedBecause)
            }
            // GOAWAY ENHANCE_YOUR_CALM, or — when the close overtook our last writes and reset the connection —
            // at least a server that hung up; never one that goes on serving the flood.
            let calm = events.contains {
                if case .goAway(_, H2ErrorCode.enhanceYourCalm, _) = $0 { true } else { false }
            }
            let otherGoAway = events.contains {
                if case .goAway(_, let code, _) = $0 { code != H2ErrorCode.enhanceYourCalm } else { false }
            }
            #expect(!otherGoAway, "\(events.suffix(3))")
            #expect(
                calm || closedBecause?.hasPrefix("server closed") == true,
                "\(closedBecause ?? "open") \(events.suffix(3))")
            #expect(try await healthOverH2(server, certificates) == "200 2")
        }
    }

    @Test func pingFloodFromAClientThatDoesNotReadIsCutOff() async throws {
        try await TestServer.withTLSServer { server, certificates in
            let (events, closedBecause) = try await blocking { () -> ([H2Event], String?) in
                // A small receive buffer and 400k PINGs (6.8 MB of ACKs, more than the server's socket buffers
                // hold) without reading a single ACK: they can only pile up on the server.
                let client = try H2TestClient(port: server.port, certificates: certificates, receiveBuffer: 4096)
                for _ in 0..<400 {
                    for _ in 0..<1000 { client.session.ping() }
                    try? client.flush()
                }
                let events = client.read(rounds: 100_000) { events in
                    events.contains { if case .goAway = $0 { true } else { false } }
                }
                return (events, client.closedBecause)
            }
            // The server ends the connection: with GOAWAY ENHANCE_YOUR_CALM when the client gets to read it, or a
            // close/reset when the GOAWAY is stuck behind the ACKs the client never read — never by going on.
            let calm = events.contains {
                if case .goAway(_, H2ErrorCode.enhanceYourCalm, _) = $0 { true } else { false }
            }
            #expect(
                calm || closedBecause?.hasPrefix("server closed") == true,
                "\(closedBecause ?? "open") \(events.suffix(2))")
            #expect(try await healthOverH2(server, certificates) == "200 2")
        }
    }

    /// A download the client does not read stops the handler writing (the stream window and the server's
    /// per-stream buffer bound it) instead of buffering 50 MB in the server.
    @Test func unreadDownloadStallsTheWriterInsteadOfBuffering() async throws {
        let chunks = Chunks()
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        var config = ProxyConfig.testing(certificates: certificates)
        config.server.shutdownTimeout = .milliseconds(500)  // the stalled stream cannot finish gracefully
        let server = try await TestServer.start(config: config) { router in
            router.get("/fifty-megabytes") { _, _ -> Response in
                Response(
                    status: .ok,
                    body: ResponseBody { writer in
                        for _ in 0..<800 {
                            try await writer.write(ByteBuffer(repeating: 0x7A, count: 64 << 10))
                            chunks.written.add(1, ordering: .relaxed)
                        }
                        try await writer.finish(nil)
                    })
            }
        }
        var smallWindows = H2Session.Settings()
        smallWindows.initialWindowSize = 65_535
        smallWindows.connectionWindowSize = 65_535
        let settings = smallWindows
        let client = try await blocking {
            try H2TestClient(port: server.port, certificates: certificates, settings: settings)
        }
        _ = try await blocking { try client.get("/fifty-megabytes") }
        // Read what arrives without ever consuming it: the windows stay shut.
        _ = try await blocking { client.read(rounds: 20) }
        try await Task.sleep(for: .milliseconds(500))
        let written = chunks.written.load(ordering: .relaxed)
        // Window (64 KiB) + per-stream high-water mark (256 KiB) + in-flight socket buffers: a few MiB at most.
        #expect(written < 80, "the handler wrote \(written) × 64 KiB into a client that reads nothing")
        // Shutdown with the stalled stream still open: the writer is cancelled, the server stops.
        try await server.stop()
        #expect(chunks.written.load(ordering: .relaxed) < 800)
    }

    final class Chunks: Sendable {
        let written = Atomic<Int>(0)
    }
}

extension HTTP2FrontDoorTests {
    /// CVE-2024-27316: a HEADERS frame without END_HEADERS followed by an endless run of CONTINUATION frames.
    @Test func continuationFloodIsCutOff() async throws {
        try await TestServer.withTLSServer { server, certificates in
            let events = try await blocking { () -> [H2Event] in
                let client = try H2TestClient(port: server.port, certificates: certificates)
                client.read(rounds: 1)  // the server's SETTINGS
                // Frame header: 24-bit length, type, flags, 31-bit stream id (RFC 9113 §4.1).
                func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
                    let length = payload.count
                    return [UInt8(length >> 16), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF), type, flags]
                        + [
                            UInt8(stream >> 24), UInt8((stream >> 16) & 0xFF), UInt8((stream >> 8) & 0xFF),
                            UInt8(stream & 0xFF),
                        ]
                        + payload
                }
                // HPACK: literal header field without indexing, new name "x-a", value "b" (RFC 7541 §6.2.2).
                let field: [UInt8] = [0x00, 0x03] + Array("x-a".utf8) + [0x01] + Array("b".utf8)
                // Indexed :method GET, :scheme https, :path /.
                var flood = frame(type: 0x1, flags: 0x0, stream: 1, payload: [0x82, 0x87, 0x84])
                for _ in 0..<5000 { flood += frame(type: 0x9, flags: 0x0, stream: 1, payload: field) }
                try? client.tls.write(flood)
                return client.read(rounds: 500) { events in
                    events.contains { if case .goAway = $0 { true } else { false } }
                }
            }
            let goAway = events.compactMap { event -> UInt32? in
                if case .goAway(_, let code, _) = event { return code }
                return nil
            }.first
            #expect(goAway == H2ErrorCode.enhanceYourCalm, "\(events.suffix(3))")
            #expect(try await healthOverH2(server, certificates) == "200 2")
        }
    }
}

extension HTTP2FrontDoorTests {
    /// A header list over `limits.max_header_size` resets that stream only; the connection goes on.
    @Test func oversizedHeaderListResetsOnlyThatStream() async throws {
        try await TestServer.withTLSServer({ $0.limits.maxHeaderSize = 4096 }) { server, certificates in
            let events = try await blocking { () -> [H2Event] in
                let client = try H2TestClient(port: server.port, certificates: certificates)
                let big = try client.session.submitRequest(
                    [
                        H2Field(":method", "GET"), H2Field(":scheme", "https"), H2Field(":authority", "localhost"),
                        H2Field(":path", "/health"), H2Field("x-padding", String(repeating: "p", count: 8000)),
                    ], endStream: true)
                try client.flush()
                let small = try client.get("/health")
                return client.read(rounds: 200) { events in
                    events.contains { if case .headers(small, _, _) = $0 { true } else { false } }
                        && events.contains { if case .reset(big, _) = $0 { true } else { false } }
                }
            }
            #expect(events.contains { if case .reset = $0 { true } else { false } }, "\(events)")
            #expect(
                events.contains {
                    if case .headers(_, let fields, _) = $0 { fields.value(named: ":status") == "200" } else { false }
                })
        }
    }

    /// The idle timeout runs from when the last stream ended, not from when the connection first ran out of
    /// streams: a request every 100 ms for 1.75 times the timeout keeps the connection; after them it closes.
    /// A round in which the machine stalled the client for half the timeout between two requests proves
    /// nothing either way (the server may rightly have closed), so it is run again on a new connection.
    @Test func busyHTTP2ConnectionOutlivesTheIdleTimeoutThenCloses() async throws {
        let timeout = Duration.seconds(2)
        try await TestServer.withTLSServer({ $0.limits.idleTimeout = timeout }) { server, certificates in
            var round: BusyRound?
            for _ in 0..<3 where round?.clientStalled ?? true {
                round = try await blocking { try Self.busyRound(server.port, certificates, stall: timeout / 2) }
            }
            let last = try #require(round)
            #expect(!last.clientStalled, "the client was stalled for \(timeout / 2) in each of 3 rounds")
            #expect(last.answered == 35)
            #expect(!last.goAwayWhileBusy)
            #expect(last.closing.contains { if case .goAway(_, H2ErrorCode.noError, _) = $0 { true } else { false } })
        }
    }

    struct BusyRound: Sendable {
        var answered = 0
        var goAwayWhileBusy = false
        var clientStalled = false
        var closing: [H2Event] = []
    }

    /// 35 requests 100 ms apart on one connection, then a wait for the server's GOAWAY.
    static func busyRound(_ port: Int, _ certificates: TestCertificates, stall: Duration) throws -> BusyRound {
        let client = try H2TestClient(port: port, certificates: certificates)
        var round = BusyRound()
        var lastSent = ContinuousClock.now
        for index in 0..<35 {
            // From one request to the next: the server's idle time lies within it.
            if index > 0, ContinuousClock.now - lastSent > stall { round.clientStalled = true }
            if round.goAwayWhileBusy { return round }
            let id = try client.get("/health")
            lastSent = .now
            let events = client.read(rounds: 200) { events in
                events.contains { if case .streamClosed(id, _) = $0 { true } else { false } }
            }
            if events.contains(where: { if case .headers(id, _, _) = $0 { true } else { false } }) {
                round.answered += 1
            }
            if events.contains(where: { if case .goAway = $0 { true } else { false } }) { round.goAwayWhileBusy = true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        round.closing = client.read(rounds: 50) { events in
            events.contains { if case .goAway = $0 { true } else { false } }
        }
        return round
    }

    @Test func idleHTTP2ConnectionIsClosed() async throws {
        try await TestServer.withTLSServer({ $0.limits.idleTimeout = .milliseconds(300) }) { server, certificates in
            let events = try await blocking { () -> [H2Event] in
                let client = try H2TestClient(port: server.port, certificates: certificates)
                return client.read(rounds: 50) { events in
                    events.contains { if case .goAway = $0 { true } else { false } }
                }
            }
            #expect(
                events.contains { if case .goAway(_, H2ErrorCode.noError, _) = $0 { true } else { false } }, "\(events)"
            )
        }
    }
}

extension HTTP2FrontDoorTests {
    /// Request bodies a handler never reads (a 401 before the upload is read) are given back to the
    /// connection's receive window: 24 × 1 MiB on one connection whose window is 16 MiB all get answered.
    @Test(.timeLimit(.minutes(1))) func unreadRequestBodiesDoNotExhaustTheConnectionWindow() async throws {
        try await TestServer.withUpstreamPool(routes: { router in
            router.post("/reject") { _, _ -> Response in Response(status: .unauthorized) }
        }) { pool, port in
            let upload = ByteBuffer(repeating: 0x41, count: 1 << 20)
            for _ in 0..<24 {
                let exchange = try await pool.send(
                    [
                        H2Field(":method", "POST"), H2Field(":scheme", "https"),
                        H2Field(":authority", "localhost:\(port)"), H2Field(":path", "/reject"),
                    ],
                    body: upload, responseHeadTimeout: .seconds(10))
                #expect(exchange.status == 401)
                for try await _ in exchange.stream.body {}
            }
            #expect(pool.connectionCount == 1)
        }
    }
}
