import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// `POST /v1/oauth/token`: the two grants of ANTHROPIC-WIRE.md, JSON in and out.
extension MockClaudeService {
    struct TokenRequest: Decodable {
        var grant_type: String?
        var code: String?
        var code_verifier: String?
        var refresh_token: String?
    }

    struct TokenGrantBody: Encodable {
        struct Organization: Encodable {
            var uuid: String
            var name: String
        }
        struct AccountInfo: Encodable {
            var uuid: String
            var email_address: String
        }
        var token_type = "Bearer"
        var access_token: String
        var refresh_token: String
        var expires_in = 28800
        var scope = "user:inference user:profile"
        var organization: Organization
        var account: AccountInfo
    }

    func token(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 1 << 20)
        guard let decoded = try? JSONDecoder().decode(TokenRequest.self, from: Data(body.readableBytesView)) else {
            return Self.oauthError("invalid_request", "the body is not JSON")
        }
        let outcome: MockClaudeState.TokenOutcome =
            switch decoded.grant_type {
            case "authorization_code":
                state.withLock { $0.exchange(code: decoded.code ?? "", verifier: decoded.code_verifier) }
            case "refresh_token":
                state.withLock { $0.refresh(token: decoded.refresh_token) }
            default:
                .refused(error: "unsupported_grant_type", description: "unknown grant_type")
            }
        switch outcome {
        case .refused(let error, let description):
            return Self.oauthError(error, description)
        case .granted(let grant):
            let body = TokenGrantBody(
                access_token: grant.accessToken, refresh_token: grant.refreshToken,
                organization: .init(uuid: "org-\(grant.account)", name: "Example"),
                account: .init(uuid: "user-\(grant.account)", email_address: "\(grant.account)@example.com"))
            let data = try JSONEncoder().encode(body)
            return Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    /// RFC 6749 §5.2: 400 with `error` and `error_description`.
    static func oauthError(_ error: String, _ description: String) -> Response {
        MockClaudeBodies.json(400, #"{"error":"\#(error)","error_description":"\#(description)"}"#)
    }
}
