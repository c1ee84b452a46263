import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// The mock's test-only control API (loopback, no key):
/// - `POST /mock/control/fault {"account","fault","count"?}` arms a `MockFault` for the account's next `count`
///   requests (all of them without `count`); `"fault":"none"` disarms.
/// - `POST /mock/control/revoke {"account"}`: its access tokens get 401 until the client refreshes.
/// - `POST /mock/control/authorize {"account","code_challenge"}` → `{"code"}`: what the login page would hand the
///   user; the exchange must bring the matching verifier.
/// - `GET /mock/control/stats` → `MockStatistics`; `GET /mock/control/secrets` → `MockSecrets`.
struct MockControlRoutes: Sendable {
    let service: MockClaudeService

    struct FaultRequest: Decodable {
        var account: String
        var fault: String
        var count: Int?
    }

    struct AccountRequest: Decodable {
        var account: String
    }

    struct AuthorizeRequest: Decodable {
        var account: String
        var code_challenge: String
    }

    func register(on router: Router<BasicRequestContext>) {
        let service = service
        router.post("/mock/control/fault") { request, _ -> Response in
            guard let body = try await Self.decode(FaultRequest.self, request) else { return Self.badRequest }
            let fault = MockFault(rawValue: body.fault)
            guard fault != nil || body.fault == "none" else {
                return MockClaudeBodies.json(400, #"{"error":"unknown fault"}"#)
            }
            service.state.withLock { $0.arm(fault, for: body.account, count: body.count) }
            return Response(status: .noContent)
        }
        router.post("/mock/control/revoke") { request, _ -> Response in
            guard let body = try await Self.decode(AccountRequest.self, request) else { return Self.badRequest }
            let revoked = service.state.withLock { $0.revoke(account: body.account) }
            return MockClaudeBodies.json(200, #"{"revoked":\#(revoked)}"#)
        }
        router.post("/mock/control/authorize") { request, _ -> Response in
            guard let body = try await Self.decode(AuthorizeRequest.self, request),
                MockClaudeState.isAccountName(body.account)
            else { return Self.badRequest }
            let code = service.state.withLock { $0.authorize(account: body.account, challenge: body.code_challenge) }
            return MockClaudeBodies.json(200, #"{"code":"\#(code)"}"#)
        }
        router.get("/mock/control/stats") { _, _ in try Self.encode(service.statistics) }
        router.get("/mock/control/secrets") { _, _ in try Self.encode(service.secrets) }
    }

    static var badRequest: Response { MockClaudeBodies.json(400, #"{"error":"malformed control request"}"#) }

    static func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T? {
        let body = try await request.body.collect(upTo: 1 << 16)
        return try? JSONDecoder().decode(type, from: Data(body.readableBytesView))
    }

    static func encode(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
