import Foundation
import ProxyServer
import ProxyTesting
import Testing

/// `server.tls.enabled: false`: plain HTTP/1.1 for deployments behind a load balancer that terminates TLS.
@Suite struct PlainHTTPTests {
    @Test func healthOverPlainHTTPWithRequestID() async throws {
        let server = try await TestServer.start(config: .testing(certificates: nil))
        let result = try await blocking {
            try ProcessRunner.run(["curl", "-sS", "-i", "http://127.0.0.1:\(server.port)/health"])
        }
        try await server.stop()
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(result.stdout.lowercased().contains("\r\nx-request-id: "))
        let body = try #require(result.stdout.components(separatedBy: "\r\n\r\n").last)
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        #expect(json?["status"] as? String == "no_accounts", "a server without accounts cannot serve /v1")
        #expect(json?["version"] as? String == ProxyVersion.current)
        #expect(json?["uptime_s"] is Int)
    }

    @Test func tlsClientAgainstPlainServerFailsCleanly() async throws {
        let server = try await TestServer.start(config: .testing(certificates: nil))
        let result = try await blocking {
            try ProcessRunner.run(["curl", "-sS", "-k", "https://127.0.0.1:\(server.port)/health"])
        }
        let after = try await blocking {
            try ProcessRunner.run([
                "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(server.port)/health",
            ])
        }
        try await server.stop()
        #expect(result.exitCode != 0, "a plain server does not pretend to speak TLS")
        #expect(after.stdout == "200")
    }
}
