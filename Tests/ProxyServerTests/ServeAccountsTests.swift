import Foundation
import ProxyTesting
import Testing

/// `serve` opens the account vault before it listens.
@Suite struct ServeAccountsTests {
    static let adminKey = "serve-test-admin-key-0123456789"

    struct Fixture {
        let folder: TemporaryDirectory
        var data: String { folder.file("data") }

        func environment(key: String = ServeAccountsTests.adminKey) -> [String: String] {
            [
                "SERVER__TLS__ENABLED": "false", "SERVER__HOST": "127.0.0.1", "SERVER__PORT": "0",
                "AUTH__API_KEY": key, "STORAGE__DATA_FOLDER": data, "LOGGER__LEVEL": "trace",
            ]
        }

        /// Imports one account with fake tokens built at run time; returns the tokens.
        func importAccount() async throws -> [String] {
            let tokens = ["oat", "ort"].map {
                "sk-ant-\($0)01-test-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
            }
            let expiry = Int(Date().addingTimeInterval(8 * 3600).timeIntervalSince1970 * 1000)
            try folder.write(
                #"{"claudeAiOauth":{"accessToken":"\#(tokens[0])","refreshToken":"\#(tokens[1])","expiresAt":\#(expiry)}}"#,
                to: "credentials.json")
            let (credentials, environment) = (folder.file("credentials.json"), environment())
            let result = try await throttledCommand {
                try ProxyProcess.run(["accounts", "import", credentials], environment: environment)
            }
            #expect(result.exitCode == 0, "\(result.output)")
            return tokens
        }

        func snapshot() throws -> [String: Data] {
            var files: [String: Data] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: data) {
                files[name] = try Data(contentsOf: URL(fileURLWithPath: data + "/" + name))
            }
            return files
        }
    }

    @Test func wrongAdminSecretStopsStartUpAndTouchesNoFile() async throws {
        let fixture = Fixture(folder: try TemporaryDirectory())
        defer { fixture.folder.remove() }
        _ = try await fixture.importAccount()
        let before = try fixture.snapshot()
        let proxy = try ProxyProcess(
            ["serve"], environment: fixture.environment(key: "a-different-admin-key-0123456789"),
            logFile: fixture.folder.file("proxy.log"))
        let status = try await blocking { try proxy.waitForExit() }
        #expect(status == 2, "\(proxy.log)")
        #expect(proxy.log.contains("does not open"), "\(proxy.log)")
        #expect(!proxy.log.contains("listening"))
        #expect(try fixture.snapshot() == before)
    }

    @Test func healthSummarisesTheAccountsWithoutSecrets() async throws {
        let fixture = Fixture(folder: try TemporaryDirectory())
        defer { fixture.folder.remove() }
        let tokens = try await fixture.importAccount()
        let proxy = try ProxyProcess(
            ["serve"], environment: fixture.environment(), logFile: fixture.folder.file("proxy.log"))
        let port = try await blocking { try proxy.listeningPort() }
        let result = try await blocking { try ProcessRunner.run(["curl", "-sS", "http://127.0.0.1:\(port)/health"]) }
        proxy.signal(SIGTERM)
        #expect(try await blocking { try proxy.waitForExit() } == 0)
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let accounts = json?["accounts"] as? [String: Int]
        #expect(accounts?["total"] == 1, "\(result.stdout)")
        #expect(accounts?["available"] == 1)
        #expect(accounts?["needs_reauth"] == 0 && accounts?["cooling_down"] == 0 && accounts?["disabled"] == 0)
        for token in tokens {
            let leaked = containsAnySecret(result.stdout + proxy.log, [token])
            #expect(!leaked)
            let tailLeaked = containsAnySecret(proxy.log, [String(token.suffix(8))])
            #expect(!tailLeaked)
        }
        let keyLeaked = containsAnySecret(proxy.log, [Self.adminKey])
        #expect(!keyLeaked)
    }
}
