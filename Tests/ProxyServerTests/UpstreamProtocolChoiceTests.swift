import Foundation
import NIOCore
import NIOPosix
import ProxyHTTP2
import ProxyServer
import ProxyTLS
import ProxyTesting
import ProxyUpstream
import Testing

/// `upstream.protocol` through `UpstreamPools`: `auto` learns HTTP/1.1 from an origin's ALPN answer (HAProxy
/// with `alpn http/1.1`) and stays on HTTP/2 for an HTTP/2 origin; `http1` works over plain `http://`.
@Suite struct UpstreamProtocolChoiceTests {
    static func fields(_ path: String, authority: String) -> [H2Field] {
        [
            H2Field(":method", "GET"), H2Field(":scheme", "https"), H2Field(":authority", authority),
            H2Field(":path", path),
        ]
    }

    static func text(of exchange: UpstreamExchange) async throws -> String {
        var body = ""
        for try await chunk in exchange.body(idleTimeout: .seconds(30)) { body += String(buffer: chunk) }
        return body
    }

    @Test func autoLearnsHTTP1FromHAProxyWithALPNHTTP1AndKeepsConnectionsAlive() async throws {
        let certificates = try TestCertificates()
        let folder = try TemporaryDirectory()
        defer { certificates.remove(); folder.remove() }
        try folder.write(
            try String(contentsOfFile: certificates.certificateFile, encoding: .utf8)
                + String(contentsOfFile: certificates.keyFile, encoding: .utf8), to: "server.pem")
        let port = UpstreamInteropTests.unusedPort()
        try folder.write(
            """
            global
                log stderr format raw local0 emerg
            defaults
                mode http
                timeout client 60s
                timeout server 60s
                timeout connect 5s
                timeout http-keep-alive 60s
            frontend upstream
                bind 127.0.0.1:\(port) ssl crt \(folder.file("server.pem")) alpn http/1.1
                http-request return status 200 content-type text/plain string "haproxy over http/1.1" if { path /hello }
                http-request return status 404

            """, to: "haproxy.cfg")
        let haproxy = try UpstreamInteropTests.run(
            ["haproxy", "-db", "-f", folder.file("haproxy.cfg")], log: folder.file("haproxy.log"))
        defer { kill(haproxy.processIdentifier, SIGTERM) }
        try await UpstreamInteropTests.waitForListener(port)
        #expect(haproxy.isRunning)
        let pools = try UpstreamPools(
            origin: UpstreamOrigin(isTLS: true, host: "localhost", port: port), protocol: .auto,
            trust: .init(extraCAFile: certificates.caFile, useSystemTrustStore: false),
            group: MultiThreadedEventLoopGroup.singleton)
        defer { pools.shutdown() }
        #expect(pools.negotiatedProtocol == nil, "not known before the first handshake")
        // The first requests arrive together and wait on the HTTP/2 pool while its first handshake finds out.
        let first = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let exchange = try await pools.send(
                        Self.fields("/hello", authority: "localhost:\(port)"), body: nil,
                        responseHeadTimeout: .seconds(30))
                    return "\(exchange.protocolName) \(exchange.status) \(try await Self.text(of: exchange))"
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(first == Array(repeating: "http/1.1 200 haproxy over http/1.1", count: 4))
        #expect(pools.negotiatedProtocol == "http/1.1")
        for _ in 0..<20 {
            let exchange = try await pools.send(
                Self.fields("/hello", authority: "localhost:\(port)"), body: nil, responseHeadTimeout: .seconds(30))
            #expect(exchange.protocolName == "http/1.1" && exchange.status == 200)
            #expect(try await Self.text(of: exchange) == "haproxy over http/1.1")
        }
        #expect(pools.connectionCount <= 4, "24 requests; at most one connection per request that ran at once")
        #expect(
            try await HTTP1UpstreamPoolTests.eventually {
                try await HTTP1UpstreamPoolTests.establishedConnections(to: port) == pools.connectionCount
            }, "the HTTP/2 probe is closed; the rest is the HTTP/1.1 pool")
    }

    @Test func autoStaysOnHTTP2ForAnHTTP2Origin() async throws {
        try await TestServer.withTLSServer { server, certificates in
            let pools = try UpstreamPools(
                origin: UpstreamOrigin(isTLS: true, host: "localhost", port: server.port), protocol: .auto,
                trust: .init(extraCAFile: certificates.caFile, useSystemTrustStore: false),
                group: MultiThreadedEventLoopGroup.singleton)
            defer { pools.shutdown() }
            let exchange = try await pools.send(
                Self.fields("/health", authority: "localhost:\(server.port)"), body: nil,
                responseHeadTimeout: .seconds(30))
            _ = try await Self.text(of: exchange)
            #expect(exchange.protocolName == "h2" && exchange.status == 200)
            #expect(pools.negotiatedProtocol == "h2")
        }
    }

    @Test func http1OverPlainHTTP() async throws {
        var config = ProxyConfig.testing(certificates: nil)
        config.server.shutdownTimeout = .milliseconds(500)
        let server = try await TestServer.start(config: config)
        let pools = try UpstreamPools(
            origin: UpstreamOrigin(isTLS: false, host: "127.0.0.1", port: server.port), protocol: .http1,
            trust: .init(useSystemTrustStore: false), group: MultiThreadedEventLoopGroup.singleton)
        for _ in 0..<3 {
            let exchange = try await pools.send(
                Self.fields("/health", authority: "127.0.0.1:\(server.port)"), body: nil,
                responseHeadTimeout: .seconds(30))
            let body = try await Self.text(of: exchange)
            #expect(exchange.protocolName == "http/1.1" && exchange.status == 200)
            #expect(body.contains(#""status""#))
        }
        #expect(pools.connectionCount == 1)
        pools.shutdown()
        try await server.stop()
    }
}
