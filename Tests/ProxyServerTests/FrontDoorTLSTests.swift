import Foundation
import ProxyServer
import ProxyTLS
import ProxyTesting
import Testing

/// The TLS front door over real sockets, checked with clients nobody here wrote (openssl s_client, curl).
@Suite struct FrontDoorTLSTests {
    func withServer(
        _ adjust: (inout ProxyConfig) -> Void = { _ in },
        _ body: (TestServer, TestCertificates) async throws -> Void
    ) async throws {
        try await TestServer.withTLSServer(adjust, body)
    }

    static let healthRequest = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

    func sClient(_ port: Int, _ certificates: TestCertificates, _ flags: [String], environment: [String: String]? = nil)
        async throws -> ProcessResult
    {
        let arguments =
            ["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost", "-ign_eof"] + flags
        return try await blocking {
            try ProcessRunner.run(arguments, input: Self.healthRequest, environment: environment)
        }
    }

    @Test(arguments: [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")])
    func opensslClientGetsHealth(flag: String, version: String) async throws {
        try await withServer { server, certificates in
            let result = try await sClient(
                server.port, certificates, [flag, "-CAfile", certificates.caFile, "-verify_return_error"])
            #expect(result.exitCode == 0, "\(result.stderr)")
            #expect(result.stdout.contains("New, \(version), Cipher is"))
            #expect(result.stdout.contains("Verify return code: 0 (ok)"))
            #expect(result.stdout.contains("HTTP/1.1 200 OK"))
            #expect(result.stdout.contains(#""status":"no_accounts""#))
        }
    }

    @Test func tls11IsRefusedWithAProtocolVersionAlert() async throws {
        try await withServer { server, certificates in
            // Lift the client's own floor (Debian's openssl.cnf and security level 1) so that it really offers
            // TLS 1.1; the alert then comes from our server.
            var environment = ProcessInfo.processInfo.environment
            environment["OPENSSL_CONF"] = "/dev/null"
            let result = try await sClient(
                server.port, certificates, ["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"], environment: environment)
            #expect(result.exitCode != 0)
            #expect(result.output.contains("alert protocol version"), "\(result.output)")
            #expect(!result.stdout.contains("HTTP/1.1 200"))
        }
    }

    @Test func sslv3ClientHelloGetsAFatalAlert() async throws {
        try await withServer { server, _ in
            let reply = try await blocking {
                let socket = try BlockingSocket(port: server.port)
                try socket.send(Self.sslv3ClientHello())
                return try socket.receiveUntilClosed()
            }
            // No ServerHello: a fatal alert record (content type 21, level 2), then EOF. OpenSSL 3.0 answers a
            // legacy-version hello with handshake_failure (40) or protocol_version (70).
            #expect(reply.first == 0x15, "\(reply)")
            #expect(reply.count == 7 && reply[5] == 2 && [40, 70].contains(reply[6]), "\(reply)")
        }
    }

    /// An SSL 3.0 ClientHello (RFC 6101 §5.6.1.2) offering TLS_RSA_WITH_AES_128_CBC_SHA and
    /// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (so a shared suite exists; only the version is wrong).
    static func sslv3ClientHello() -> [UInt8] {
        var body: [UInt8] = [0x03, 0x00] + (0..<32).map { UInt8($0) } + [0x00]
        body += [0x00, 0x04, 0x00, 0x2F, 0xC0, 0x2B, 0x01, 0x00]
        let handshake: [UInt8] = [0x01, 0x00, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        return [0x16, 0x03, 0x00, UInt8(handshake.count >> 8), UInt8(handshake.count & 0xFF)] + handshake
    }

    @Test(arguments: [
        ("h2,http/1.1", "ALPN protocol: h2", false),
        ("http/1.1,h2", "ALPN protocol: h2", false),  // the server's preference wins
        ("http/1.1", "ALPN protocol: http/1.1", true),
        ("spdy/3", "No ALPN negotiated", true),  // nothing shared: HTTP/1.1 without ALPN
    ])
    func alpnSelectsWhatIsServed(offer: String, expected: String, speaksHTTP1: Bool) async throws {
        try await withServer { server, certificates in
            let result = try await sClient(server.port, certificates, ["-alpn", offer, "-CAfile", certificates.caFile])
            #expect(result.stdout.contains(expected), "\(result.stdout)")
            #expect(result.stdout.contains("HTTP/1.1 200 OK") == speaksHTTP1)
        }
    }

    @Test(arguments: [("--http1.1", "1.1"), ("--http2", "2")], ProxyConfig.ServerIO.allCases)
    func curlGetsHealth(protocol: (flag: String, version: String), io: ProxyConfig.ServerIO) async throws {
        let (flag, version) = `protocol`
        try await withServer({ $0.server.io = io }) { server, certificates in
            let url = "https://localhost:\(server.port)/health"
            let result = try await blocking {
                try ProcessRunner.run([
                    "curl", "-sS", flag, "--cacert", certificates.caFile, "-w", "\n%{http_code} %{http_version}", url,
                ])
            }
            #expect(result.exitCode == 0, "\(result.stderr)")
            #expect(result.stdout.contains(#""status":"no_accounts""#))
            #expect(result.stdout.hasSuffix("200 \(version)"), "\(result.stdout)")
        }
    }

    /// A connection counts against `limits.max_connections` until it closes, and it closes when the client has: with
    /// a limit of one, one request after another each gets its answer. (HTTP/2 connections the client had closed
    /// stayed open until the idle timeout, and the next client waited that long.)
    @Test(arguments: ["--http1.1", "--http2"], ProxyConfig.ServerIO.allCases)
    func connectionsClosedByTheClientMakeRoomUnderTheLimit(flag: String, io: ProxyConfig.ServerIO) async throws {
        try await withServer({
            $0.server.io = io
            $0.limits.maxConnections = 1
        }) { server, certificates in
            for _ in 0..<3 {
                let result = try await blocking {
                    try ProcessRunner.run([
                        "curl", "-sS", flag, "--max-time", "20", "--cacert", certificates.caFile, "-w",
                        "\n%{http_code}",
                        "https://localhost:\(server.port)/health",
                    ])
                }
                #expect(result.exitCode == 0, "\(result.stderr)")
                #expect(result.stdout.hasSuffix("200"), "\(result.stdout)")
            }
        }
    }

    @Test func curlRejectsTheServerWithoutTheCA() async throws {
        try await withServer { server, _ in
            let result = try await blocking {
                try ProcessRunner.run(["curl", "-sS", "https://localhost:\(server.port)/health"])
            }
            #expect(result.exitCode == 60, "curl must not trust a development certificate by itself")
        }
    }
}
