import Foundation
import HTTPTypes
import Hummingbird
import ProxyCore
import Synchronization

/// `/api/accounts` and `/api/usage`, `/api/stats` (docs/admin-api.md). Mounted behind ``AdminGuard``.
struct AccountRoutes: Sendable {
    let administration: AccountAdministration
    let login: OAuthLogin
    let usage: UsageRecorder?
    let metrics: ProxyMetrics?

    func register(on api: RouterGroup<BasicRequestContext>) {
        api.get("accounts") { _, _ -> Response in
            let now = Date()
            let accounts = try await administration.accounts().map { AccountJSON($0, now: now) }
            return try JSONEncoder().encodeAsResponse(AccountListJSON(accounts: accounts))
        }
        api.post("accounts") { request, _ -> Response in try await exchange(request) }
        api.post("accounts/import") { request, _ -> Response in
            let data = try await AdminBody.bytes(request)
            let name = request.uri.queryParameters.get("name")
            let account = try await perform { try await administration.importAccount(data, name: name) }
            return try JSONEncoder().encodeAsResponse(AccountJSON(account, now: Date()), status: .created)
        }
        api.get("accounts/:id") { _, context -> Response in
            let id = try Self.id(context)
            guard let account = try await administration.account(id) else { throw AdminError.notFound(id) }
            return try JSONEncoder().encodeAsResponse(AccountJSON(account, now: Date()))
        }
        api.patch("accounts/:id") { request, context -> Response in
            let id = try Self.id(context)
            let (name, disabled) = try Self.edits(try await AdminBody.bytes(request))
            guard let account = try await perform({ try await administration.edit(id, name: name, disabled: disabled) })
            else { throw AdminError.notFound(id) }
            return try JSONEncoder().encodeAsResponse(AccountJSON(account, now: Date()))
        }
        api.delete("accounts/:id") { _, context -> Response in
            let id = try Self.id(context)
            guard try await perform({ try await administration.delete(id) }) else { throw AdminError.notFound(id) }
            return Response(status: .noContent)
        }
        api.post("accounts/:id/refresh") { _, context -> Response in
            let id = try Self.id(context)
            let account = try await perform { try await administration.refreshNow(id) }
            return try JSONEncoder().encodeAsResponse(AccountJSON(account, now: Date()))
        }
        api.get("usage") { _, _ -> Response in
            let accounts = try await administration.accounts()
            return try JSONEncoder().encodeAsResponse(
                UsageReportJSON(
                    accounts: Dictionary(
                        uniqueKeysWithValues: accounts.map { ($0.id.rawValue, AccountJSON.UsageJSON($0.usage)) }),
                    client_keys: (usage?.clientKeyUsage ?? [:]).mapValues(AccountJSON.UsageJSON.init)))
        }
        api.get("stats") { _, _ -> Response in
            let accounts = try await administration.accounts()
            let minutes = metrics?.recentTraffic() ?? []
            return try JSONEncoder().encodeAsResponse(StatsJSON(accounts: accounts, minutes: minutes))
        }
    }

    /// `POST /api/accounts` and `POST /oauth/exchange`: `{code[, state][, code_verifier][, name]}`.
    func exchange(_ request: Request) async throws -> Response {
        let body = try await AdminBody.object(request)
        let code = try AdminBody.string(body, "code", required: true) ?? ""
        let state = try AdminBody.string(body, "state")
        let verifier = try AdminBody.string(body, "code_verifier").map(Secret.init)
        let name = try AdminBody.string(body, "name")
        let account = try await perform {
            let tokens = try await login.complete(pasted: code, state: state, verifier: verifier)
            return try await administration.add(tokens, name: name)
        }
        return try JSONEncoder().encodeAsResponse(AccountJSON(account, now: Date()), status: .created)
    }

    /// Runs an admin operation, turning its failure into the documented status and error body.
    private func perform<T>(_ operation: () async throws -> T) async throws -> T {
        do {
            return try await operation()
        } catch {
            throw AdminError.from(error)
        }
    }

    static func id(_ context: BasicRequestContext) throws -> AccountID {
        let text = context.parameters.get("id") ?? ""
        let id = AccountID(text)
        guard AccountFileName.isValid(id) else { throw AdminError(404, "not_found_error", "no account \(text)") }
        return id
    }

    struct Edit: Decodable {
        var name: String?
        var disabled: Bool?
    }

    static func edits(_ data: Data) throws -> (name: String?, disabled: Bool?) {
        let body = try AdminBody.object(data)
        if let unknown = body.keys.sorted().first(where: { $0 != "name" && $0 != "disabled" }) {
            throw AdminError.badRequest("unknown field \(unknown): only name and disabled can be changed")
        }
        let edit: Edit
        do {
            edit = try JSONDecoder().decode(Edit.self, from: data)
        } catch {
            throw AdminError.badRequest("name must be a string and disabled true or false")
        }
        var name: String?
        if let text = edit.name {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty, trimmed.count <= 100 else {
                throw AdminError.badRequest("name must be 1 to 100 characters")
            }
            name = trimmed
        }
        guard name != nil || edit.disabled != nil else {
            throw AdminError.badRequest("nothing to change: give name or disabled")
        }
        return (name, edit.disabled)
    }
}

struct UsageReportJSON: Encodable {
    var accounts: [String: AccountJSON.UsageJSON]
    var client_keys: [String: AccountJSON.UsageJSON]
}

/// The dashboard's health strip and chart: account counts, last-minute rate, error rate over the hour, and the
/// per-minute series.
struct StatsJSON: Encodable {
    var accounts: AccountSummary
    var requests_last_minute: Int
    var requests_last_hour: Int
    var error_rate_last_hour: Double
    var minutes: [RecentTraffic.Minute]

    init(accounts: [Account], minutes: [RecentTraffic.Minute]) {
        self.accounts = AccountSummary(accounts, now: Date())
        self.minutes = minutes
        requests_last_minute = minutes.last?.requests ?? 0
        requests_last_hour = minutes.reduce(0) { $0 + $1.requests }
        let errors = minutes.reduce(0) { $0 + $1.errors }
        error_rate_last_hour = requests_last_hour == 0 ? 0 : Double(errors) / Double(requests_last_hour)
    }
}
