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

/// The upstream HTTP/2 pool over real sockets and real TLS, against our own h2 server and against nghttpd.
@Suite struct UpstreamPoolTests {
    static func routes(_ router: Router<BasicRequestContext>) {
        router.get("/slow") { _, _ -> String in
            // Long enough that every stream of a burst is still open when the last one is sent, even on a
            // busy machine: the connection count then depends only on the stream limit.
            try await Task.sleep(for: .seconds(2))
            return "slow"
        }
        router.post("/echo") { request, _ -> Response in
            Response(status: .ok, body: ResponseBody(asyncSequence: request.body))
        }
    }

    func pool(for server: TestServer, _ certificates: TestCertificates, maxConnections: Int = 8) throws -> UpstreamPool
    {
        let tls = try TLSContext(
            client: .init(alpnProtocols: ["h2"], extraCAFile: certificates.caFile, useSystemTrustStore: false))
        var configuration = UpstreamPool.Configuration()
        configuration.maxConnections = maxConnections
        return UpstreamPool(
            origin: UpstreamOrigin(isTLS: true, host: "localhost", port: server.port), tls: tls,
            group: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }

    static func request(_ method: String, _ path: String, port: Int) -> [H2Field] {
        [
            H2Field(":method", method), H2Field(":scheme", "https"), H2Field(":authority", "localhost:\(port)"),
            H2Field(":path", path),
        ]
    }

    static func collect(_ stream: H2ClientStream) async throws -> ([H2Field], [UInt8]) {
        let head = try await stream.head.get()
        var body: [UInt8] = []
        for try await chunk in stream.body { body += chunk.readableBytesView }
        return (head, body)
    }

    /// Local ports of the pool's TCP connections to `port`, read with `ss`.
    static func clientPorts(to port: Int) async throws -> Set<String> {
        let listing = try await blocking {
            try ProcessRunner.run(["ss", "-Htn", "state", "established", "( dport = :\(port) )"])
        }.stdout
        return Set(
            listing.split(separator: "\n").compactMap { line in
                line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first?
                    .split(separator: ":").last.map(String.init)
            })
    }

    /// The server says GOAWAY (graceful, after its second stream: `limits.max_streams_per_connection`) while
    /// that stream is in flight: it completes, and the next request goes out on a new connection.
    @Test func goAwayFromTheServerMovesNewStreamsToANewConnection() async throws {
        let routes: @Sendable (Router<BasicRequestContext>) -> Void = { router in
            router.get("/slow") { _, _ -> Response in
                try await Task.sleep(for: .milliseconds(100))  // the GOAWAY leaves before this response
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "finished anyway")))
            }
        }
        try await TestServer.withTLSServer({ $0.limits.maxStreamsPerConnection = 2 }, routes: routes) {
            server, certificates in
            let pool = try pool(for: server, certificates)
            defer { pool.shutdown() }
            let first = try await pool.stream(Self.request("GET", "/health", port: server.port), endStream: true)
            #expect(try await Self.collect(first).0[field: ":status"] == "200")
            let before = try await Self.clientPorts(to: server.port)
            let draining = try await pool.stream(Self.request("GET", "/slow", port: server.port), endStream: true)
            let (head, body) = try await Self.collect(draining)
            #expect(head[field: ":status"] == "200" && String(decoding: body, as: UTF8.self) == "finished anyway")
            for _ in 0..<3 {
                let next = try await pool.stream(Self.request("GET", "/health", port: server.port), endStream: true)
                #expect(try await Self.collect(next).0[field: ":status"] == "200")
            }
            let after = try await Self.clientPorts(to: server.port)
            #expect(before.count == 1)
            #expect(!after.isEmpty && after.isDisjoint(with: before), "new connections: \(before) then \(after)")
        }
    }

    @Test func requestReachesOurHTTP2ServerThroughThePool() async throws {
        try await TestServer.withTLSServer { server, certificates in
            let pool = try pool(for: server, certificates)
            defer { pool.shutdown() }
            let stream = try await pool.stream(Self.request("GET", "/health", port: server.port), endStream: true)
            let (head, body) = try await Self.collect(stream)
            #expect(head[field: ":status"] == "200")
            #expect(String(decoding: body, as: UTF8.self).contains(#""status":"no_accounts""#))
            #expect(pool.connectionCount == 1)
        }
    }

    @Test func concurrentStreamsOpenConnectionsOnlyPastTheStreamLimit() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        var config = ProxyConfig.testing(certificates: certificates)
        config.limits.maxConcurrentStreams = 10
        let server = try await TestServer.start(config: config, additionalRoutes: Self.routes)
        let pool = try pool(for: server, certificates)
        let statuses = try await withThrowingTaskGroup(of: String?.self) { group in
            for _ in 0..<25 {
                group.addTask {
                    let stream = try await pool.stream(Self.request("GET", "/slow", port: server.port), endStream: true)
                    return try await Self.collect(stream).0[field: ":status"]
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses.count == 25 && statuses.allSatisfy { $0 == "200" })
        #expect(pool.connectionCount == 3, "ceil(25 / 10) connections")
        pool.shutdown()
        try await server.stop()
    }

    @Test func oneMegabyteUploadComesBackThroughEcho() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let server = try await TestServer.start(
            config: .testing(certificates: certificates), additionalRoutes: Self.routes)
        let pool = try pool(for: server, certificates)
        let stream = try await pool.stream(Self.request("POST", "/echo", port: server.port), endStream: false)
        let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        async let response = Self.collect(stream)
        for start in stride(from: 0, to: payload.count, by: 64 << 10) {
            try await stream.writeBody(ByteBuffer(bytes: payload[start..<min(start + (64 << 10), payload.count)]))
        }
        try await stream.finish()
        let (head, body) = try await response
        #expect(head[field: ":status"] == "200")
        #expect(body.count == payload.count && body == payload)
        pool.shutdown()
        try await server.stop()
    }

    @Test func refusedConnectionFailsTheRequest() async throws {
        let tls = try TLSContext(client: .init(alpnProtocols: ["h2"], useSystemTrustStore: false))
        let pool = UpstreamPool(
            origin: UpstreamOrigin(isTLS: true, host: "127.0.0.1", port: 9), tls: tls,
            group: MultiThreadedEventLoopGroup.singleton)
        await #expect(throws: UpstreamError.self) {
            _ = try await pool.stream(Self.request("GET", "/", port: 9), endStream: true)
        }
        pool.shutdown()
    }

    @Test func interoperatesWithNghttpd() async throws {
        let certificates = try TestCertificates()
        let docroot = try TemporaryDirectory()
        defer { certificates.remove(); docroot.remove() }
        try docroot.write(String(repeating: "nghttpd says hello\n", count: 1000), to: "hello.txt")
        let port = UpstreamInteropTests.unusedPort()
        let process = try UpstreamInteropTests.run([
            "nghttpd", "--htdocs=\(docroot.path)", "\(port)", certificates.keyFile, certificates.certificateFile,
        ])
        defer { kill(process.processIdentifier, SIGKILL) }  // nghttpd does not stop on SIGTERM
        // Wait until it listens.
        _ = try await blocking { () -> Bool in
            for _ in 0..<200 {
                if (try? BlockingSocket(port: port)) != nil { return true }
                Thread.sleep(forTimeInterval: 0.02)
            }
            return false
        }
        let tls = try TLSContext(
            client: .init(alpnProtocols: ["h2"], extraCAFile: certificates.caFile, useSystemTrustStore: false))
        let pool = UpstreamPool(
            origin: UpstreamOrigin(isTLS: true, host: "localhost", port: port), tls: tls,
            group: MultiThreadedEventLoopGroup.singleton)
        defer { pool.shutdown() }
        let stream = try await pool.stream(Self.request("GET", "/hello.txt", port: port), endStream: true)
        let (head, body) = try await Self.collect(stream)
        #expect(head[field: ":status"] == "200")
        #expect(body.count == 19_000)
    }
}

/// Faults an upstream can throw at the pool, served by our own stack.
@Suite struct UpstreamPoolFaultTests {
    static func routes(_ router: Router<BasicRequestContext>) {
        router.get("/stall") { _, _ -> String in
            try await Task.sleep(for: .seconds(30))
            return "late"
        }
        router.get("/drip-then-stall") { _, _ -> Response in
            Response(
                status: .ok,
                body: ResponseBody { writer in
                    for _ in 0..<3 {
                        try await writer.write(ByteBuffer(string: "data: drip\n\n"))
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    try await Task.sleep(for: .seconds(30))
                    try await writer.finish(nil)
                })
        }
        router.get("/break-mid-body") { _, _ -> Response in
            Response(
                status: .ok,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "first part;"))
                    try await Task.sleep(for: .milliseconds(50))
                    throw CancellationError()  // the server resets the stream mid-body
                })
        }
    }

    func withPool(_ body: (UpstreamPool, Int) async throws -> Void) async throws {
        try await TestServer.withUpstreamPool(routes: Self.routes, body)
    }

    @Test func stalledResponseHeadTimesOutAndCancelsTheStream() async throws {
        try await withPool { pool, port in
            await #expect {
                _ = try await pool.send(
                    UpstreamPoolTests.request("GET", "/stall", port: port), body: nil,
                    responseHeadTimeout: .milliseconds(200))
            } throws: { error in
                if case .timeout(_, let phase) = error as? UpstreamError { return phase == "the response head" }
                return false
            }
            // The connection is still good for the next request.
            let exchange = try await pool.send(
                UpstreamPoolTests.request("GET", "/health", port: port), body: nil, responseHeadTimeout: .seconds(5))
            #expect(exchange.status == 200)
        }
    }

    @Test func upstreamThatGoesQuietMidBodyTimesOut() async throws {
        try await withPool { pool, port in
            let exchange = try await pool.send(
                UpstreamPoolTests.request("GET", "/drip-then-stall", port: port), body: nil,
                responseHeadTimeout: .seconds(5))
            var received = 0
            await #expect {
                for try await chunk in exchange.body(idleTimeout: .seconds(2)) { received += chunk.readableBytes }
            } throws: { error in
                if case .timeout(_, let phase) = error as? UpstreamError { return phase == "the next body bytes" }
                return false
            }
            // Counted in bytes: on a loaded machine two drips can arrive in one read.
            #expect(received == 3 * "data: drip\n\n".utf8.count, "the drip (50 ms apart) passed, the stall did not")
        }
    }

    @Test func resetMidBodyEndsTheBodyWithAnError() async throws {
        try await withPool { pool, port in
            let exchange = try await pool.send(
                UpstreamPoolTests.request("GET", "/break-mid-body", port: port), body: nil,
                responseHeadTimeout: .seconds(5))
            #expect(exchange.status == 200)
            var received: [UInt8] = []
            await #expect(throws: H2StreamClosedError.self) {
                for try await chunk in exchange.stream.body { received += chunk.readableBytesView }
            }
            #expect(String(decoding: received, as: UTF8.self) == "first part;")
        }
    }
}

/// Upstream servers nobody here wrote: nghttpd over cleartext (h2c prior knowledge) and HAProxy with `alpn h2`.
@Suite struct UpstreamInteropTests {
    /// A port for a server the test starts on its own (haproxy, nghttpd): below the kernel's ephemeral range
    /// (32768 and up here), so no server bound to port 0 and no outgoing connection of the suite running in
    /// parallel holds it.
    static func unusedPort() -> Int {
        Int.random(in: 20000..<32000)
    }

    /// Waits (up to 15 s: a loaded machine starts processes slowly) until something listens on `port`.
    static func waitForListener(_ port: Int) async throws {
        let listening = try await blocking { () -> Bool in
            for _ in 0..<750 {
                if (try? BlockingSocket(port: port)) != nil { return true }
                Thread.sleep(forTimeInterval: 0.02)
            }
            return false
        }
        try #require(listening, "nothing listens on port \(port)")
    }

    static func run(_ arguments: [String], log: String? = nil) throws -> Process {
        // Output goes through the shell (see ProxyProcess: no FileHandle shared by stdout and stderr).
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", #"exec "$@" > "$TEST_LOG" 2>&1 < /dev/null"#, "sh"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["TEST_LOG"] = log ?? "/dev/null"
        process.environment = environment
        try process.run()
        return process
    }

    @Test func h2cPriorKnowledgeAgainstNghttpd() async throws {
        let docroot = try TemporaryDirectory()
        defer { docroot.remove() }
        try docroot.write("cleartext h2\n", to: "plain.txt")
        let port = Self.unusedPort()
        let nghttpd = try Self.run(["nghttpd", "--no-tls", "--htdocs=\(docroot.path)", "\(port)"])
        defer { kill(nghttpd.processIdentifier, SIGKILL) }  // nghttpd does not stop on SIGTERM
        try await Self.waitForListener(port)
        let pool = UpstreamPool(
            origin: UpstreamOrigin(isTLS: false, host: "127.0.0.1", port: port), tls: nil,
            group: MultiThreadedEventLoopGroup.singleton)
        defer { pool.shutdown() }
        let fields = [
            H2Field(":method", "GET"), H2Field(":scheme", "http"), H2Field(":authority", "127.0.0.1:\(port)"),
            H2Field(":path", "/plain.txt"),
        ]
        let exchange = try await pool.send(fields, body: nil, responseHeadTimeout: .seconds(5))
        var body: [UInt8] = []
        for try await chunk in exchange.stream.body { body += chunk.readableBytesView }
        #expect(exchange.status == 200)
        #expect(String(decoding: body, as: UTF8.self) == "cleartext h2\n")
    }

    @Test func haproxyWithALPNh2AsTheUpstream() async throws {
        let certificates = try TestCertificates()
        let folder = try TemporaryDirectory()
        defer { certificates.remove(); folder.remove() }
        let pem =
            try String(contentsOfFile: certificates.certificateFile, encoding: .utf8)
            + String(contentsOfFile: certificates.keyFile, encoding: .utf8)
        try folder.write(pem, to: "server.pem")
        let port = Self.unusedPort()
        try folder.write(
            """
            global
                log stderr format raw local0 emerg
            defaults
                mode http
                timeout client 60s
                timeout server 60s
                timeout connect 5s
            frontend upstream
                bind 127.0.0.1:\(port) ssl crt \(folder.file("server.pem")) alpn h2
                http-request return status 200 content-type text/plain string "haproxy over h2" if { path /hello }
                http-request return status 404

            """, to: "haproxy.cfg")
        let haproxy = try Self.run(
            ["haproxy", "-db", "-f", folder.file("haproxy.cfg")], log: folder.file("haproxy.log"))
        defer { kill(haproxy.processIdentifier, SIGTERM) }
        try await Self.waitForListener(port)
        #expect(
            haproxy.isRunning, "\((try? String(contentsOfFile: folder.file("haproxy.log"), encoding: .utf8)) ?? "")")
        let tls = try TLSContext(
            client: .init(alpnProtocols: ["h2"], extraCAFile: certificates.caFile, useSystemTrustStore: false))
        let pool = UpstreamPool(
            origin: UpstreamOrigin(isTLS: true, host: "localhost", port: port), tls: tls,
            group: MultiThreadedEventLoopGroup.singleton)
        defer { pool.shutdown() }
        for _ in 0..<20 {
            let exchange = try await pool.send(
                UpstreamPoolTests.request("GET", "/hello", port: port), body: nil, responseHeadTimeout: .seconds(5))
            var body: [UInt8] = []
            for try await chunk in exchange.stream.body { body += chunk.readableBytesView }
            #expect(exchange.status == 200)
            #expect(String(decoding: body, as: UTF8.self) == "haproxy over h2")
        }
        #expect(pool.connectionCount == 1, "20 requests, one multiplexed connection")
    }

    @Test func http11OnlyUpstreamIsRefusedClearly() async throws {
        // Our own front door with HTTP/2 switched off at the ALPN level is not configurable; HAProxy is.
        let certificates = try TestCertificates()
        let folder = try TemporaryDirectory()
        defer { certificates.remove(); folder.remove() }
        try folder.write(
            try String(contentsOfFile: certificates.certificateFile, encoding: .utf8)
                + String(contentsOfFile: certificates.keyFile, encoding: .utf8), to: "server.pem")
        let port = Self.unusedPort()
        try folder.write(
            """
            defaults
                mode http
                timeout client 60s
                timeout server 60s
                timeout connect 5s
            frontend upstream
                bind 127.0.0.1:\(port) ssl crt \(folder.file("server.pem")) alpn http/1.1
                http-request return status 200

            """, to: "haproxy.cfg")
        let haproxy = try Self.run(["haproxy", "-db", "-f", folder.file("haproxy.cfg")])
        defer { kill(haproxy.processIdentifier, SIGTERM) }
        try await Self.waitForListener(port)
        #expect(haproxy.isRunning, "the HTTP/1.1-only upstream is up; the failure below is about ALPN")
        let tls = try TLSContext(
            client: .init(alpnProtocols: ["h2"], extraCAFile: certificates.caFile, useSystemTrustStore: false))
        var configuration = UpstreamPool.Configuration()
        configuration.queueTimeout = .seconds(5)
        let pool = UpstreamPool(
            origin: UpstreamOrigin(isTLS: true, host: "localhost", port: port), tls: tls,
            group: MultiThreadedEventLoopGroup.singleton,
            configuration: configuration)
        defer { pool.shutdown() }
        await #expect {
            _ = try await pool.send(
                UpstreamPoolTests.request("GET", "/", port: port), body: nil, responseHeadTimeout: .seconds(5))
        } throws: { error in
            // TLS worked, then the connection was dropped for its ALPN choice: reported as a failed connection.
            if case .connectFailed(_, let reason) = error as? UpstreamError {
                return reason.contains("did not select h2")
            }
            return false
        }
    }
}

extension UpstreamPoolTests {
    /// 1000 concurrent streams reach the upstream over ceil(1000 / SETTINGS_MAX_CONCURRENT_STREAMS) connections.
    @Test func thousandConcurrentStreamsUseEightConnections() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        var config = ProxyConfig.testing(certificates: certificates)
        config.limits.maxConcurrentStreams = 128
        let server = try await TestServer.start(config: config, additionalRoutes: Self.routes)
        let pool = try pool(for: server, certificates, maxConnections: 64)
        let ok = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<1000 {
                group.addTask {
                    let exchange = try await pool.send(
                        Self.request("GET", "/slow", port: server.port), body: nil, responseHeadTimeout: .seconds(30))
                    for try await _ in exchange.stream.body {}
                    return exchange.status == 200
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(ok == 1000)
        #expect(pool.connectionCount == 8, "ceil(1000 / 128)")
        pool.shutdown()
        try await server.stop()
    }

    /// The proxied client went away: the upstream stream is reset at once and the server's handler stops.
    @Test func cancellingAStreamResetsItOnTheServer() async throws {
        let stopped = StopFlag()
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let server = try await TestServer.start(config: .testing(certificates: certificates)) { router in
            router.get("/endless") { _, _ -> Response in
                Response(
                    status: .ok,
                    body: ResponseBody { writer in
                        do {
                            while true {
                                try await writer.write(ByteBuffer(string: "data: tick\n\n"))
                                try await Task.sleep(for: .milliseconds(10))
                            }
                        } catch {
                            stopped.value.store(true, ordering: .relaxed)
                            throw error
                        }
                    })
            }
        }
        let pool = try pool(for: server, certificates)
        let exchange = try await pool.send(
            Self.request("GET", "/endless", port: server.port), body: nil, responseHeadTimeout: .seconds(5))
        var iterator = exchange.stream.body.makeAsyncIterator()
        _ = try await iterator.next()
        exchange.stream.cancel()
        for _ in 0..<200 where !stopped.value.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(10)) }
        let sawReset = stopped.value.load(ordering: .relaxed)
        #expect(sawReset, "the server-side writer saw the reset")
        pool.shutdown()
        try await server.stop()
    }

    final class StopFlag: Sendable {
        let value = Atomic<Bool>(false)
    }
}
