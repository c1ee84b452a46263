import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import ProxyCore
import ProxyTLS
import ProxyTesting
import ProxyUpstream
import Synchronization
import Testing

@testable import ProxyServer

/// The production path of a token refresh: OAuthClient → UpstreamHTTPTransport → HTTP1Exchange (OpenSSL client
/// TLS, verified against the test CA) → a mock token endpoint served by our own server stack.
@Suite struct TokenEndpointTransportTests {
    /// A token endpoint that answers refresh grants and records what it was sent.
    final class Recorder: Sendable {
        let bodies = Mutex<[String]>([])
    }

    static func tokenEndpoint(received: Recorder) -> @Sendable (Router<BasicRequestContext>) -> Void {
        { router in
            router.post("/v1/oauth/token") { request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 16)
                let text = String(buffer: body)
                received.bodies.withLock { $0.append(text) }
                let reply =
                    #"{"token_type":"Bearer","access_token":"new-access-1234","refresh_token":"new-refresh-5678","expires_in":28800}"#
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: reply)))
            }
        }
    }

    @Test func refreshTravelsOverVerifiedTLSAndReturnsTheNewTokens() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let received = Recorder()
        let server = try await TestServer.start(
            config: .testing(certificates: certificates), additionalRoutes: Self.tokenEndpoint(received: received))
        let tls = try TLSContext(
            client: .init(alpnProtocols: ["http/1.1"], extraCAFile: certificates.caFile, useSystemTrustStore: false))
        let transport = UpstreamHTTPTransport(
            exchange: HTTP1Exchange(group: MultiThreadedEventLoopGroup.singleton, tls: tls))
        let settings = OAuthSettings(tokenURL: "https://localhost:\(server.port)/v1/oauth/token")
        let client = OAuthClient(settings: settings, transport: transport, clock: SystemClock())

        let tokens = try await client.refresh(refreshToken: Secret("old-refresh-abcd"))
        try await server.stop()

        #expect(tokens.accessToken.reveal() == "new-access-1234")
        #expect(tokens.refreshToken?.reveal() == "new-refresh-5678")
        let sent = try #require(received.bodies.withLock { $0.first })
        let json = try JSONSerialization.jsonObject(with: Data(sent.utf8)) as? [String: String]
        #expect(json?["grant_type"] == "refresh_token")
        #expect(json?["refresh_token"] == "old-refresh-abcd")
        #expect(json?["client_id"] == settings.clientID)
    }

    @Test func untrustedCertificateFailsTheExchange() async throws {
        let certificates = try TestCertificates()
        let stranger = try TestCertificates()
        defer { certificates.remove(); stranger.remove() }
        let server = try await TestServer.start(
            config: .testing(certificates: certificates), additionalRoutes: Self.tokenEndpoint(received: Recorder()))
        let tls = try TLSContext(
            client: .init(alpnProtocols: ["http/1.1"], extraCAFile: stranger.caFile, useSystemTrustStore: false))
        let exchange = HTTP1Exchange(group: MultiThreadedEventLoopGroup.singleton, tls: tls)
        await #expect(throws: UpstreamError.self) {
            _ = try await exchange.send(
                method: "POST", url: "https://localhost:\(server.port)/v1/oauth/token", headers: [], body: nil)
        }
        try await server.stop()
    }

    @Test func refusedConnectionIsAConnectError() async throws {
        let tls = try TLSContext(client: .init(alpnProtocols: ["http/1.1"], useSystemTrustStore: false))
        let exchange = HTTP1Exchange(group: MultiThreadedEventLoopGroup.singleton, tls: tls)
        // Port 9 on loopback: nothing listens (discard service is not installed here).
        await #expect {
            _ = try await exchange.send(method: "GET", url: "http://127.0.0.1:9/", headers: [], body: nil)
        } throws: { error in
            if case .connectFailed = error as? UpstreamError { return true }
            return false
        }
    }
}
