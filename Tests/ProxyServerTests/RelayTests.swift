import Foundation
import Hummingbird
import ProxyServer
import ProxyTesting
import Testing

/// The `/v1/*` relay end to end: curl → claude-proxy (the built binary, TLS) → mock Claude API (HTTP/2, TLS).
@Suite struct RelayTests {
    static let adminKey = "relay-test-admin-key-0123456789"

    struct Rig {
        let folder: TemporaryDirectory
        let proxyCertificates: TestCertificates
        let upstream: TestServer
        let proxy: ProxyProcess
        let port: Int
        let accessToken: String

        func curl(_ arguments: [String]) async throws -> ProcessResult {
            let base = ["curl", "-sS", "--cacert", proxyCertificates.caFile]
            return try await blocking { try ProcessRunner.run(base + arguments) }
        }

        var url: String { "https://localhost:\(port)/v1/messages" }

        func stop(keepingFiles: Bool = false) async throws {
            proxy.signal(SIGTERM)
            _ = try await blocking { try proxy.waitForExit() }
            try await upstream.stop()
            proxyCertificates.remove()
            if !keepingFiles { folder.remove() }
        }
    }

    static let clientKey = "client-key-plain"
    static let hashedClientKey = "client-key-hashed"

    static func token(_ label: String) -> String {
        "sk-ant-" + "oat01-\(label)-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
    }

    /// The mock accepts `accepted` tokens (each with a fault it always gets, "" for none); the proxy holds one
    /// account per entry of `imported` (an access token, accepted by the mock or not). `upstreamALPN` is what the
    /// mock offers (`["http/1.1"]`: an HTTP/1.1-only upstream).
    static func rig(
        accepted: [String: String]? = nil, imported: [String]? = nil,
        refresh: (accessToken: String, refreshToken: String)? = nil, environment extra: [String: String] = [:],
        upstreamRoutes: (@Sendable (Router<BasicRequestContext>) -> Void)? = nil,
        upstreamALPN: [String] = ProxyApplication.alpnProtocols
    ) async throws -> Rig {
        let folder = try TemporaryDirectory()
        let upstreamCertificates = try TestCertificates()
        let proxyCertificates = try TestCertificates()
        // Access tokens are built at run time (no token-shaped strings in the repository).
        let accessToken = token("test")
        let accepted = accepted ?? [accessToken: ""]
        let imported = imported ?? [accessToken]
        // A stalled mock handler (the `stall` fault) must not hold the test for the default 30 s at stop.
        var upstreamConfig = ProxyConfig.testing(certificates: upstreamCertificates)
        upstreamConfig.server.shutdownTimeout = .seconds(2)
        let upstream = try await TestServer.start(
            config: upstreamConfig,
            additionalRoutes: { [mock = MockClaudeAPI.routes(tokens: accepted, refresh: refresh)] router in
                mock(router)
                upstreamRoutes?(router)
            }, alpnProtocols: upstreamALPN)
        var environment = [
            "AUTH__API_KEY": adminKey, "SERVER__HOST": "127.0.0.1", "SERVER__PORT": "0",
            "SERVER__TLS__CERT_FILE": proxyCertificates.certificateFile,
            "SERVER__TLS__KEY_FILE": proxyCertificates.keyFile,
            "STORAGE__DATA_FOLDER": folder.file("data"), "CLAUDE__BASE_URL": "https://localhost:\(upstream.port)",
            "CLAUDE__CA_FILE": upstreamCertificates.caFile, "LOGGER__LEVEL": "trace",
            "AUTH__CLIENT_KEYS": "\(clientKey), sha256:\(hashedClientKeyHex)",
            "OAUTH__TOKEN_URL": "https://localhost:\(upstream.port)/v1/oauth/token",
        ]
        environment.merge(extra) { $1 }
        let expiry = Int(Date().addingTimeInterval(8 * 3600).timeIntervalSince1970 * 1000)
        for (index, access) in imported.enumerated() {
            try folder.write(
                #"{"claudeAiOauth":{"accessToken":"\#(access)","refreshToken":"refresh-\#(UUID().uuidString)","expiresAt":\#(expiry)}}"#,
                to: "credentials-\(index).json")
            // Off the cooperative pool: dozens of rigs start at once, and a subprocess waited for on one of its
            // (two) threads stalls every task of the test process.
            let credentials = folder.file("credentials-\(index).json")
            let environment = environment
            let result = try await throttledCommand {
                try ProxyProcess.run(
                    ["accounts", "import", credentials, "--name", "account-\(index)"], environment: environment)
            }
            #expect(result.exitCode == 0, "\(result.output)")
        }
        let proxy = try ProxyProcess(["serve"], environment: environment, logFile: folder.file("proxy.log"))
        let port = try await blocking { try proxy.listeningPort() }
        return Rig(
            folder: folder, proxyCertificates: proxyCertificates, upstream: upstream, proxy: proxy, port: port,
            accessToken: accessToken)
    }

    @Test func messagesFlowThroughOverHTTP1AndHTTP2WithEitherKeyHeader() async throws {
        let rig = try await Self.rig()
        for version in ["--http1.1", "--http2"] {
            for auth in ["x-api-key: \(Self.adminKey)", "authorization: Bearer \(Self.adminKey)"] {
                let json = try await rig.curl([
                    version, "-i", "-H", auth, "-H", "content-type: application/json", "-d",
                    #"{"model":"m","max_tokens":8}"#, rig.url,
                ])
                #expect(json.stdout.contains(" 200"), "\(json.output)")
                #expect(json.stdout.contains("Hello from the mock."))
                #expect(json.stdout.lowercased().contains("x-claude-proxy-account: acc_"))
            }
            let sse = try await rig.curl([
                version, "-N", "-H", "x-api-key: \(Self.adminKey)", "-d", #"{"stream":true}"#, rig.url,
            ])
            #expect(sse.stdout == MockClaudeAPI.sseEvents.joined(), "the event stream arrives byte for byte")
        }
        let log = rig.proxy.log
        try await rig.stop()
        let leaked = containsAnySecret(log, [rig.accessToken, Self.adminKey])
        #expect(!leaked, "no secret in the trace-level log")
        let relayed = log.split(separator: "\n").filter {
            $0.contains("path=/v1/messages") && $0.contains("status=200")
        }
        #expect(relayed.count == 6, "one line per request")
        #expect(relayed.filter { $0.contains("relay=fast") }.count >= 3, "requests on a warm pool take the fast path")
    }

    /// No response head within `upstream.response_header_timeout`: 504 `timeout_error`, on either path.
    @Test(arguments: ["--http1.1", "--http2"])
    func upstreamThatNeverAnswersTimesOut(version: String) async throws {
        let rig = try await Self.rig(
            environment: ["UPSTREAM__RESPONSE_HEADER_TIMEOUT": "1s", "RETRY__MAX_RETRIES": "0"])
        let result = try await rig.curl([
            version, "-H", "x-api-key: \(Self.adminKey)", "-H", "x-mock-fault: stall", "-d", "{}", "-w",
            "\n%{http_code}", rig.url,
        ])
        #expect(result.stdout.hasSuffix("\n504"), "\(result.output)")
        #expect(result.stdout.contains(#""type":"timeout_error""#))
        try await rig.stop()
    }

    /// An upstream that goes quiet in the middle of an event stream: after the same timeout, the client's stream
    /// ends with an `error` event (nothing is retried after the first byte), on both client protocols.
    @Test(arguments: ["--http1.1", "--http2"])
    func upstreamThatStallsMidBodyEndsTheStreamWithAnErrorEvent(version: String) async throws {
        let rig = try await Self.rig(environment: ["UPSTREAM__RESPONSE_HEADER_TIMEOUT": "1s"])
        for _ in 0..<4 {
            _ = try await rig.curl([version, "-H", "x-api-key: \(Self.adminKey)", "-d", "{}", rig.url])
        }
        let result = try await rig.curl([
            version, "-N", "--max-time", "20", "-H", "x-api-key: \(Self.adminKey)", "-H",
            "x-mock-fault: stall-mid-body", "-d", #"{"stream":true}"#, rig.url,
        ])
        let log = rig.proxy.log
        try await rig.stop()
        let half = MockClaudeAPI.sseEvents.prefix(MockClaudeAPI.sseEvents.count / 2).joined()
        #expect(result.stdout.hasPrefix(half), "the events before the stall: \(result.stdout)")
        #expect(result.stdout.dropFirst(half.count).hasPrefix("event: error\n"), "\(result.stdout)")
        #expect(result.stdout.contains(#""type":"timeout_error""#), "\(result.stdout)")
        let line = log.split(separator: "\n").first { $0.contains("timed out waiting for the body") }
        #expect(line?.contains("relay=fast") == true, "the fast path served it: \(line ?? "no line")")
    }

    /// Computed once (a subprocess each time would hold a cooperative thread in every rig).
    static let hashedClientKeyHex: String = (try? sha256Hex(hashedClientKey)) ?? ""

    static func sha256Hex(_ text: String) throws -> String {
        let result = try ProcessRunner.run(["sha256sum"], input: text)
        return String(result.stdout.prefix(64))
    }

    @Test func clientKeysPlainAndHashedAreAccepted() async throws {
        let rig = try await Self.rig()
        for key in [Self.clientKey, Self.hashedClientKey] {
            let result = try await rig.curl([
                "-H", "authorization: Bearer \(key)", "-d", "{}", "-w", "\n%{http_code}", rig.url,
            ])
            #expect(result.stdout.hasSuffix("\n200"), "\(result.output)")
        }
        let hashText = try await rig.curl([
            "-H", "x-api-key: sha256:\(Self.hashedClientKeyHex)", "-d", "{}", "-w", "\n%{http_code}",
            rig.url,
        ])
        #expect(hashText.stdout.hasSuffix("\n401"), "the hash itself is not a key")
        try await rig.stop()
    }

    @Test func rateLimitedAccountIsSkippedForTheNextOne() async throws {
        let limited = Self.token("limited")
        let working = Self.token("working")
        let rig = try await Self.rig(accepted: [limited: "status-429", working: ""], imported: [limited, working])
        var accounts: Set<String> = []
        for _ in 0..<6 {
            let result = try await rig.curl(["-i", "-H", "x-api-key: \(Self.adminKey)", "-d", "{}", rig.url])
            #expect(
                result.stdout.hasPrefix("HTTP/2 200") || result.stdout.hasPrefix("HTTP/1.1 200"),
                "\(result.stdout.prefix(200))")
            if let line = result.stdout.split(separator: "\r\n").first(where: {
                $0.lowercased().hasPrefix("x-claude-proxy-account:")
            }) {
                accounts.insert(String(line.split(separator: ":")[1]).trimmingCharacters(in: .whitespaces))
            }
        }
        #expect(accounts.count == 1, "every answer came from the account that is not rate limited: \(accounts)")
        let log = rig.proxy.log
        try await rig.stop()
        let leaked = containsAnySecret(log, [limited, working])
        #expect(!leaked)
    }

    @Test func rejectedTokenIsRefreshedOnceThenTheRequestSucceeds() async throws {
        let stale = Self.token("stale")
        let fresh = Self.token("fresh")
        let rig = try await Self.rig(
            accepted: [fresh: ""], imported: [stale], refresh: (fresh, "refresh-rotated-" + UUID().uuidString))
        let result = try await rig.curl([
            "-H", "x-api-key: \(Self.adminKey)", "-d", "{}", "-w", "\n%{http_code}", rig.url,
        ])
        #expect(result.stdout.hasSuffix("\n200"), "\(result.output)")
        #expect(result.stdout.contains("Hello from the mock."))
        let log = rig.proxy.log
        try await rig.stop()
        let leaked = containsAnySecret(log, [stale, fresh])
        #expect(!leaked, "tokens never reach the log")
    }

    /// 529 on every attempt: retried `retry.max_retries` times with backoff over the accounts in turn (an
    /// overload cools no account down), then the last 529 is relayed.
    @Test func overloadedUpstreamIsRetriedAndFinallyRelayed() async throws {
        let first = Self.token("first")
        let second = Self.token("second")
        let rig = try await Self.rig(
            accepted: [first: "", second: ""], imported: [first, second],
            environment: ["RETRY__MAX_RETRIES": "5", "RETRY__RETRY_DELAY": "10ms"])
        let result = try await rig.curl([
            "-H", "x-api-key: \(Self.adminKey)", "-H", "x-mock-fault: status-529", "-d", "{}", "-w", "\n%{http_code}",
            rig.url,
        ])
        #expect(result.stdout.hasSuffix("\n529"), "\(result.output)")
        #expect(result.stdout.contains(#""type":"overloaded_error""#))
        let log = rig.proxy.log
        #expect(log.components(separatedBy: "retrying on another attempt").count - 1 == 5, "max_retries retries")
        let retried = Set(
            log.split(separator: "\n").filter { $0.contains("retrying on another attempt") }.compactMap { line in
                line.split(separator: " ").first { $0.hasPrefix("account=") }
            })
        #expect(retried.count == 2, "the retries went round both accounts: \(retried)")
        try await rig.stop()
    }

    @Test func usageIsCountedPerAccountAndSaved() async throws {
        let rig = try await Self.rig()
        for body in [#"{}"#, #"{}"#, #"{"stream":true}"#] {
            let result = try await rig.curl([
                "-H", "x-api-key: \(Self.adminKey)", "-d", body, "-w", "\n%{http_code}", rig.url,
            ])
            #expect(result.stdout.hasSuffix("\n200"))
        }
        let data = rig.folder.file("data")
        try await rig.stop(keepingFiles: true)  // SIGTERM: the recorder writes what it collected
        defer { rig.folder.remove() }
        let name = try #require(
            try FileManager.default.contentsOfDirectory(atPath: data).first { $0.hasPrefix("account_") })
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: data + "/" + name)))
            as? [String: Any]
        let usage = try #require(json?["usage"] as? [String: Int])
        #expect(usage["requests"] == 3)
        #expect(usage["input_tokens"] == 36)
        #expect(usage["output_tokens"] == 18)
    }

    /// After the first byte nothing is retried: a stream that breaks mid-way ends with an SSE `error` event.
    @Test func streamBrokenAfterTheFirstByteEndsWithAnErrorEvent() async throws {
        let rig = try await Self.rig()
        let result = try await rig.curl([
            "-N", "-H", "x-api-key: \(Self.adminKey)", "-H", "x-mock-fault: rst-mid-body", "-d", #"{"stream":true}"#,
            rig.url,
        ])
        let events = MockClaudeAPI.sseEvents
        #expect(
            result.stdout.hasPrefix(events.prefix(events.count / 2).joined()),
            "everything before the break, byte for byte")
        #expect(result.stdout.hasSuffix("\n\n") && result.stdout.contains("event: error\ndata: {\"type\":\"error\""))
        #expect(result.stdout.contains(#""type":"api_error""#))
        try await rig.stop()
    }

    @Test func wrongKeyGetsAnAnthropicError() async throws {
        let rig = try await Self.rig()
        let denied = try await rig.curl(["-H", "x-api-key: not-the-key", "-d", "{}", "-w", "\n%{http_code}", rig.url])
        #expect(denied.stdout.hasSuffix("\n401"))
        #expect(denied.stdout.contains(#""type":"authentication_error""#) && denied.stdout.contains(#""request_id":"#))
        try await rig.stop()
    }

    /// The only account answers 429: the retry finds no other account, so the upstream's own answer is relayed
    /// (its body and headers) — on both paths; the next request finds the account cooling down and gets ours.
    @Test(arguments: ["--http1.1", "--http2"])
    func rateLimitOfTheOnlyAccountIsRelayedAsItCame(version: String) async throws {
        let rig = try await Self.rig()
        for _ in 0..<6 {  // upstream connections on both event loops: HTTP/2 then takes the fast path
            _ = try await rig.curl([version, "-H", "x-api-key: \(Self.adminKey)", "-d", "{}", rig.url])
        }
        let limited = try await rig.curl([
            version, "-i", "-H", "x-api-key: \(Self.adminKey)", "-H", "x-mock-fault: status-429", "-d", "{}", rig.url,
        ])
        #expect(
            limited.stdout.contains(" 429") && limited.stdout.lowercased().contains("retry-after: 7"),
            "\(limited.stdout)")
        #expect(limited.stdout.contains(#""type":"rate_limit_error""#))
        #expect(limited.stdout.contains(#""request_id":"req_mock""#), "the upstream's body: \(limited.stdout)")
        let next = try await rig.curl([
            version, "-i", "-H", "x-api-key: \(Self.adminKey)", "-d", "{}", rig.url,
        ])
        #expect(next.stdout.contains(" 429") && next.stdout.contains("all accounts are rate limited"))
        try await rig.stop()
    }

    /// A JSON response that breaks off mid-body after the head went out: the client's stream ends in error, and
    /// the request is logged and counted once (over HTTP/2 on a warm pool: the fast path).
    @Test func brokenJSONBodyEndsTheClientStreamAndIsCountedOnce() async throws {
        let rig = try await Self.rig(upstreamRoutes: { router in
            router.post("/v1/broken") { _, _ -> Response in
                Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: ResponseBody { writer in
                        try await writer.write(ByteBuffer(string: #"{"id":"msg_1","content":["#))
                        try await Task.sleep(for: .milliseconds(50))
                        throw CancellationError()
                    })
            }
        })
        for _ in 0..<6 {
            _ = try await rig.curl(["--http2", "-H", "x-api-key: \(Self.adminKey)", "-d", "{}", rig.url])
        }
        let broken = try await rig.curl([
            "--http2", "-H", "x-api-key: \(Self.adminKey)", "-d", "{}", "https://localhost:\(rig.port)/v1/broken",
        ])
        #expect(broken.exitCode != 0, "the client sees the stream fail, not a complete body")
        try await Task.sleep(for: .milliseconds(300))
        let usage = try await rig.curl([
            "-H", "x-api-key: \(Self.adminKey)", "https://localhost:\(rig.port)/api/usage",
        ])
        let log = rig.proxy.log
        try await rig.stop()
        let lines = log.split(separator: "\n").filter { $0.contains("path=/v1/broken") }
        #expect(lines.count == 1, "one line: \(lines)")
        #expect(usage.stdout.contains(#""requests":7"#), "6 + 1 relayed responses counted: \(usage.stdout)")
    }
}
