import Foundation
import ProxyServer
import ProxyTesting
import Testing

/// The admin API on the built binary over TLS (curl): key checks, OAuth login, account edits, health, metrics.
@Suite struct AdminAPITests {
    typealias Relay = RelayTests
    static let adminKey = RelayTests.adminKey

    struct Answer {
        var status: Int
        var headers: String
        var body: String

        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
        var errorType: String? { (json["error"] as? [String: Any])?["type"] as? String }
    }

    static func call(
        _ rig: RelayTests.Rig, _ method: String, _ path: String, key: String? = adminKey, body: String? = nil,
        extra: [String] = []
    ) async throws -> Answer {
        var arguments = ["-s", "-D", "-", "-X", method, "https://localhost:\(rig.port)\(path)"] + extra
        if let key { arguments += ["-H", "x-api-key: \(key)"] }
        if let body { arguments += ["-H", "content-type: application/json", "--data-binary", body] }
        let output = try await rig.curl(arguments).stdout
        let parts = output.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return Answer(status: status, headers: head.lowercased(), body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// Every file in the data folder with its bytes: a failed request must leave them all as they were.
    static func snapshot(_ rig: RelayTests.Rig) throws -> [String: Data] {
        let folder = rig.folder.file("data")
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))
        }
        return files
    }

    @Test func onlyTheAdminKeyOpensTheAPI() async throws {
        let rig = try await Relay.rig()
        let missing = try await Self.call(rig, "GET", "/api/accounts", key: nil)
        #expect(missing.status == 401 && missing.errorType == "authentication_error", "\(missing.body)")
        #expect(missing.json["request_id"] as? String != nil)
        let wrong = try await Self.call(rig, "GET", "/api/accounts", key: "not-the-admin-key-at-all")
        #expect(wrong.status == 401)
        let client = try await Self.call(rig, "GET", "/api/accounts", key: Relay.clientKey)
        #expect(client.status == 403 && client.errorType == "permission_error", "\(client.body)")
        let listed = try await Self.call(rig, "GET", "/api/accounts")
        #expect(listed.status == 200, "\(listed.body)")
        let accounts = try #require(listed.json["accounts"] as? [[String: Any]])
        #expect(accounts.count == 1)
        #expect(accounts.first?["state"] as? String == "available")
        #expect(accounts.first?["token_hint"] as? String == "…" + String(rig.accessToken.suffix(4)))
        let leaked = containsAnySecret(listed.body, [rig.accessToken, "refresh-"])
        #expect(!leaked, "no token in the list")
        for header in [
            "x-content-type-options: nosniff", "referrer-policy: no-referrer",
            "content-security-policy: default-src 'self'; frame-ancestors 'none'", "strict-transport-security:",
            "cache-control: no-store",
        ] {
            #expect(listed.headers.contains(header) && missing.headers.contains(header), "\(header)")
        }
        try await rig.stop()
    }

    @Test func loginThroughAuthorizeAndExchangeAddsAnAccount() async throws {
        let newAccess = Relay.token("new")
        let rig = try await Relay.rig(refresh: (newAccess, "refresh-new-" + UUID().uuidString))
        let started = try await Self.call(rig, "GET", "/oauth/authorize")
        #expect(started.status == 200, "\(started.body)")
        let state = try #require(started.json["state"] as? String)
        let url = try #require(started.json["authorization_url"] as? String)
        #expect(url.contains("code_challenge=") && url.contains("state=\(state)"))
        #expect(started.json["code_verifier"] == nil, "the verifier stays on the server")
        let before = try Self.snapshot(rig)
        for (body, type) in [
            ("{not json", "invalid_request_error"), (#"{"code":"abc#unknown-state"}"#, "invalid_request_error"),
            (#"{"code":"   "}"#, "invalid_request_error"), (#"{"state":"x"}"#, "invalid_request_error"),
        ] {
            let failed = try await Self.call(rig, "POST", "/oauth/exchange", body: body)
            #expect(failed.status == 400 && failed.errorType == type, "\(body): \(failed.body)")
        }
        #expect(try Self.snapshot(rig) == before, "failed exchanges change no file")
        let added = try await Self.call(rig, "POST", "/oauth/exchange", body: #"{"code":"the-code#\#(state)"}"#)
        #expect(added.status == 201, "\(added.body)")
        #expect((added.json["id"] as? String)?.hasPrefix("acc_") == true)
        let leaked = containsAnySecret(added.body, [newAccess])
        #expect(!leaked)
        let reused = try await Self.call(rig, "POST", "/oauth/exchange", body: #"{"code":"the-code#\#(state)"}"#)
        #expect(reused.status == 400, "a state is good for one login")
        let listed = try await Self.call(rig, "GET", "/api/accounts")
        #expect((listed.json["accounts"] as? [Any])?.count == 2)
        let health = try await Self.call(rig, "GET", "/health", key: nil)
        #expect(health.json["status"] as? String == "ok")
        #expect((health.json["accounts"] as? [String: Int])?["available"] == 2)
        try await rig.stop()
    }

    @Test func callbackCompletesTheLoginOrExplainsTheFailure() async throws {
        let rig = try await Relay.rig(refresh: (Relay.token("cb"), "refresh-cb-" + UUID().uuidString))
        let denied = try await Self.call(rig, "GET", "/oauth/callback?error=access_denied", key: nil)
        #expect(denied.status == 400 && denied.body.contains("did not allow access"))
        let unknown = try await Self.call(rig, "GET", "/oauth/callback?code=x&state=nope", key: nil)
        #expect(unknown.status == 400 && unknown.body.contains("start the login again"), "\(unknown.body)")
        let state = try #require(try await Self.call(rig, "GET", "/oauth/authorize").json["state"] as? String)
        let done = try await Self.call(rig, "GET", "/oauth/callback?code=abc&state=\(state)", key: nil)
        #expect(done.status == 200 && done.body.contains("Account added"), "\(done.body)")
        #expect(done.headers.contains("content-security-policy"))
        try await rig.stop()
    }

    @Test func accountsAreEditedRefreshedAndDeleted() async throws {
        let rotated = Relay.token("rotated")
        let rig = try await Relay.rig(refresh: (rotated, "refresh-rotated-" + UUID().uuidString))
        let id = try #require(
            (try await Self.call(rig, "GET", "/api/accounts").json["accounts"] as? [[String: Any]])?.first?["id"]
                as? String)
        let before = try Self.snapshot(rig)
        for body in [#"{"name":""}"#, #"{"disabled":"yes"}"#, #"{"token":"x"}"#, "{}", "[1]"] {
            let rejected = try await Self.call(rig, "PATCH", "/api/accounts/\(id)", body: body)
            #expect(rejected.status == 400 && rejected.errorType == "invalid_request_error", "\(body)")
        }
        for (method, path) in [
            ("GET", "/api/accounts/acc_0000000000000000"), ("DELETE", "/api/accounts/acc_0000000000000000"),
            ("PATCH", "/api/accounts/acc_0000000000000000"), ("POST", "/api/accounts/acc_0000000000000000/refresh"),
            ("GET", "/api/accounts/..%2Fvault"),
        ] {
            let missing = try await Self.call(rig, method, path, body: method == "PATCH" ? #"{"name":"x"}"# : nil)
            #expect(missing.status == 404 && missing.errorType == "not_found_error", "\(method) \(path)")
        }
        #expect(try Self.snapshot(rig) == before, "rejected edits change no file")
        let renamed = try await Self.call(
            rig, "PATCH", "/api/accounts/\(id)", body: #"{"name":"team","disabled":true}"#)
        #expect(renamed.json["name"] as? String == "team" && renamed.json["state"] as? String == "disabled")
        let health = try await Self.call(rig, "GET", "/health", key: nil)
        #expect(health.json["status"] as? String == "no_accounts")
        #expect(try await Self.call(rig, "GET", "/ready", key: nil).status == 503)
        let refused = try await rig.curl([
            "-H", "x-api-key: \(Self.adminKey)", "-d", "{}", "-w", "\n%{http_code}", rig.url,
        ])
        #expect(refused.stdout.hasSuffix("\n503"), "a disabled account serves nothing")
        _ = try await Self.call(rig, "PATCH", "/api/accounts/\(id)", body: #"{"disabled":false}"#)
        #expect(try await Self.call(rig, "GET", "/ready", key: nil).status == 200)
        let refreshed = try await Self.call(rig, "POST", "/api/accounts/\(id)/refresh")
        #expect(refreshed.status == 200, "\(refreshed.body)")
        #expect(refreshed.json["token_hint"] as? String == "…" + String(rotated.suffix(4)), "new token in use")
        #expect(try await Self.call(rig, "DELETE", "/api/accounts/\(id)").status == 204)
        #expect(try await Self.call(rig, "GET", "/api/accounts/\(id)").status == 404)
        #expect(try Self.snapshot(rig).keys.filter { $0.hasPrefix("account_") }.isEmpty, "the file is gone")
        let log = rig.proxy.log
        try await rig.stop()
        let leaked = containsAnySecret(log, [rotated, rig.accessToken, Self.adminKey])
        #expect(!leaked)
    }

    @Test func importTakesClaudeCodeCredentials() async throws {
        let rig = try await Relay.rig()
        let access = Relay.token("imported")
        let expiry = Int(Date().addingTimeInterval(3600).timeIntervalSince1970 * 1000)
        let credentials =
            #"{"claudeAiOauth":{"accessToken":"\#(access)","refreshToken":"refresh-\#(UUID().uuidString)","expiresAt":\#(expiry)}}"#
        let imported = try await Self.call(rig, "POST", "/api/accounts/import?name=laptop", body: credentials)
        #expect(imported.status == 201 && imported.json["name"] as? String == "laptop", "\(imported.body)")
        let leaked = containsAnySecret(imported.body, [access])
        #expect(!leaked)
        let before = try Self.snapshot(rig)
        let broken = try await Self.call(rig, "POST", "/api/accounts/import", body: #"{"claudeAiOauth":{}}"#)
        #expect(broken.status == 400 && broken.body.contains("accessToken is missing"), "\(broken.body)")
        let hugeFile = rig.folder.file("huge.json")
        try String(repeating: "x", count: 1_100_000).write(toFile: hugeFile, atomically: true, encoding: .utf8)
        let huge = try await Self.call(
            rig, "POST", "/api/accounts/import", extra: ["--data-binary", "@\(hugeFile)"])
        #expect(huge.status == 413 && huge.errorType == "request_too_large")
        #expect(try Self.snapshot(rig) == before)
        try await rig.stop()
    }

    @Test func metricsUsageAndCooldownsAreReported() async throws {
        let limited = Relay.token("limited")
        let working = Relay.token("working")
        let rig = try await Relay.rig(accepted: [limited: "status-429", working: ""], imported: [limited, working])
        for _ in 0..<3 {
            let answer = try await rig.curl([
                "-H", "authorization: Bearer \(Relay.clientKey)", "-d", #"{"model":"claude-sonnet-4-5"}"#, "-w",
                "\n%{http_code}", rig.url,
            ])
            #expect(answer.stdout.hasSuffix("\n200"))
        }
        #expect(try await Self.call(rig, "GET", "/metrics", key: nil).status == 401, "metrics need the key")
        let metrics = try await Self.call(rig, "GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.body.contains(#"claude_proxy_requests_total{status="200""#), "\(metrics.body.prefix(400))")
        #expect(metrics.body.contains(#"model="claude-sonnet-4-5""#))
        #expect(metrics.body.contains(#"claude_proxy_tokens_total{"#) && metrics.body.contains(#"type="output""#))
        #expect(metrics.body.contains("claude_proxy_upstream_connections"))
        let usage = try await Self.call(rig, "GET", "/api/usage")
        let clients = try #require(usage.json["client_keys"] as? [String: [String: Int]])
        let label = "key_" + String(try Relay.sha256Hex(Relay.clientKey).prefix(8))
        #expect(clients[label]?["requests"] == 3, "\(usage.body)")
        let accounts = try #require(
            (try await Self.call(rig, "GET", "/api/accounts")).json["accounts"] as? [[String: Any]])
        let states = accounts.compactMap { $0["state"] as? String }.sorted()
        #expect(states == ["available", "cooling_down"], "\(states)")
        #expect(accounts.contains { $0["cooling_down_until"] as? String != nil })
        let health = try await Self.call(rig, "GET", "/health", key: nil)
        #expect(health.json["status"] as? String == "degraded")
        let data = rig.folder.file("data")
        try await rig.stop(keepingFiles: true)
        defer { rig.folder.remove() }
        let files = try FileManager.default.contentsOfDirectory(atPath: data)
        let texts = try files.filter { $0.hasPrefix("account_") }.map {
            try String(contentsOfFile: data + "/" + $0, encoding: .utf8)
        }
        #expect(texts.contains { $0.contains("coolingDownUntil") || $0.contains("cooling_down_until") }, "kept")
        #expect(files.contains("client_usage.json"))
    }

    @Test func gzipRequestBodiesAreDecoded() async throws {
        let rig = try await Relay.rig()
        let plain = rig.folder.file("body.json")
        try #"{"stream":true}"#.write(toFile: plain, atomically: true, encoding: .utf8)
        _ = try await blocking { try ProcessRunner.run(["gzip", "-k", plain]) }
        let streamed = try await rig.curl([
            "-H", "x-api-key: \(Self.adminKey)", "-H", "content-encoding: gzip", "--data-binary", "@\(plain).gz",
            rig.url,
        ])
        #expect(streamed.stdout == MockClaudeAPI.sseEvents.joined(), "the decoded body asked for a stream")
        let corrupt = try await rig.curl([
            "-H", "x-api-key: \(Self.adminKey)", "-H", "content-encoding: gzip", "-d", "not gzip", "-w",
            "\n%{http_code}", rig.url,
        ])
        #expect(corrupt.stdout.hasSuffix("\n400") && corrupt.stdout.contains("invalid_request_error"))
        try await rig.stop()
    }
}
