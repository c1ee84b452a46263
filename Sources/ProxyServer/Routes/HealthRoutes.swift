import Foundation
import Hummingbird
import ProxyCore

/// `GET /health` and `GET /ready`: no authentication, counts only, never anything about tokens.
/// `/health` is 200 while the server is serving; `/ready` is 503 when no account can serve, for load balancers.
struct HealthRoutes: Sendable {
    let startedAt: ContinuousClock.Instant
    /// The accounts as they are now (live cooldowns included); `nil` when the server holds no account store.
    let accounts: (@Sendable () async throws -> [Account])?

    struct Status: ResponseEncodable {
        var status: String
        var version: String
        var uptime_s: Int
        var accounts: AccountSummary
    }

    struct Readiness: ResponseEncodable {
        var ready: Bool
        var available: Int
    }

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/health") { _, _ -> Response in
            let uptime = (ContinuousClock.now - startedAt).components.seconds
            let summary = await summary()
            let status = Status(
                status: Self.status(summary), version: ProxyVersion.current, uptime_s: Int(uptime), accounts: summary)
            var response = try JSONEncoder().encodeAsResponse(status)
            response.headers[.cacheControl] = "no-store"
            return response
        }
        router.get("/ready") { _, _ -> Response in
            let summary = await summary()
            var response = try JSONEncoder().encodeAsResponse(
                Readiness(ready: summary.available > 0, available: summary.available),
                status: summary.available > 0 ? .ok : .serviceUnavailable)
            response.headers[.cacheControl] = "no-store"
            return response
        }
    }

    private func summary() async -> AccountSummary {
        guard let accounts, let list = try? await accounts() else { return AccountSummary() }
        return AccountSummary(list, now: Date())
    }

    /// `no_accounts`: nothing can serve; `degraded`: something can, but an enabled account cannot; `ok`: all can.
    static func status(_ summary: AccountSummary) -> String {
        if summary.available == 0 { return "no_accounts" }
        return summary.available < summary.total - summary.disabled ? "degraded" : "ok"
    }
}

extension JSONEncoder {
    func encodeAsResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
