import Foundation
import Hummingbird
import ProxyCore

/// `GET /health`: no authentication; 200 with a JSON status while the server is serving, with a summary of
/// the accounts once there are any (counts only, never anything about tokens).
struct HealthRoutes: Sendable {
    let startedAt: ContinuousClock.Instant
    let accounts: (any AccountStore)?

    struct Status: ResponseEncodable {
        var status: String
        var version: String
        var uptime_s: Int
        var accounts: AccountSummary?
    }

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/health") { _, _ -> Response in
            let uptime = (ContinuousClock.now - startedAt).components.seconds
            var summary: AccountSummary?
            if let accounts, let list = try? await accounts.list(), !list.isEmpty {
                summary = AccountSummary(list, now: Date())
            }
            let status = Status(status: "ok", version: ProxyVersion.current, uptime_s: Int(uptime), accounts: summary)
            var response = try JSONEncoder().encodeAsResponse(status)
            response.headers[.cacheControl] = "no-store"
            return response
        }
    }
}

extension JSONEncoder {
    func encodeAsResponse(_ value: some Encodable) throws -> Response {
        outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encode(value)
        return Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
