import Foundation
import ProxyTesting
import Testing

/// `claude-proxy accounts list|import` and `rotate-secret` as an operator runs them.
@Suite struct VaultCommandLineTests {
    static let adminKey = "vault-cli-admin-key-0123456789"
    static let newKey = "vault-cli-new-admin-key-987654"

    struct Fixture {
        let folder: TemporaryDirectory
        var data: String { folder.file("data") }
        var environment: [String: String] {
            [
                "SERVER__TLS__ENABLED": "false", "AUTH__API_KEY": VaultCommandLineTests.adminKey,
                "STORAGE__DATA_FOLDER": data,
            ]
        }

        /// Off the cooperative pool (a subprocess waited for on one of its threads stalls every task of the process).
        func run(_ arguments: [String], extra: [String: String] = [:]) async throws -> ProcessResult {
            let environment = environment.merging(extra) { $1 }
            return try await throttledCommand { try ProxyProcess.run(arguments, environment: environment) }
        }
    }

    /// Built at run time: the repository must not contain token-shaped strings.
    static func token(_ kind: String) -> String {
        "sk-ant-" + kind + "01-test-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
    }

    @Test func importBothFormatsThenListWithoutSecrets() async throws {
        let fixture = Fixture(folder: try TemporaryDirectory())
        defer { fixture.folder.remove() }
        let tokens = (0..<4).map { Self.token($0 % 2 == 0 ? "oat" : "ort") }
        let claudeCode = """
            {"claudeAiOauth":{"accessToken":"\(tokens[0])","refreshToken":"\(tokens[1])","expiresAt":1800000000000,\
            "scopes":["user:inference","user:profile"],"subscriptionType":"max"}}
            """
        let seed = """
            {"id":"acc_seed01","name":"seed account","access_token":"\(tokens[2])","refresh_token":"\(tokens[3])",\
            "expires_at":"2027-03-01T10:00:00Z","email":"ops@example.com"}
            """
        try fixture.folder.write(claudeCode, to: "credentials.json")
        try fixture.folder.write(seed, to: "seed.json")

        let first = try await fixture.run([
            "accounts", "import", fixture.folder.file("credentials.json"), "--name", "laptop",
        ])
        #expect(first.exitCode == 0, "\(first.output)")
        #expect(first.stdout.contains("imported account acc_"))
        let second = try await fixture.run(["accounts", "import", fixture.folder.file("seed.json")])
        #expect(second.exitCode == 0, "\(second.output)")
        // The same Claude Code file again updates its account instead of adding one.
        let again = try await fixture.run(["accounts", "import", fixture.folder.file("credentials.json")])
        #expect(again.stdout.contains("updated account"), "\(again.output)")

        let list = try await fixture.run(["accounts", "list"])
        #expect(list.exitCode == 0, "\(list.output)")
        let lines = list.stdout.split(separator: "\n")
        #expect(lines.count == 3, "\(list.stdout)")
        #expect(lines.first?.hasPrefix("ID") == true)
        #expect(list.stdout.contains("laptop") && list.stdout.contains("2027-01-15T08:00:00Z"))
        #expect(list.stdout.contains("acc_seed01") && list.stdout.contains("seed account"))
        #expect(list.stdout.contains("ops@example.com") && list.stdout.contains("2027-03-01T10:00:00Z"))
        for result in [first, second, again, list] {
            for token in tokens {
                let leaked = containsAnySecret(result.output, [token, String(token.suffix(12))])
                #expect(!leaked)
            }
            let keyLeaked = containsAnySecret(result.output, [Self.adminKey])
            #expect(!keyLeaked)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: fixture.data).sorted()
        #expect(names.count == 3 && names.contains("account_acc_seed01.json") && names.contains("vault.json"))
    }

    @Test func wrongSecretExitsWith2AndOneLine() async throws {
        let fixture = Fixture(folder: try TemporaryDirectory())
        defer { fixture.folder.remove() }
        #expect(try await fixture.run(["accounts", "list"]).stdout.contains("no accounts"))
        let result = try await fixture.run(
            ["accounts", "list"], extra: ["AUTH__API_KEY": "another-admin-key-0123456789"])
        #expect(result.exitCode == 2)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("does not open") && !result.stderr.contains("another-admin-key"))
    }

    @Test func folderReadableByOthersExitsWith2AndSaysHowToFixIt() async throws {
        let fixture = Fixture(folder: try TemporaryDirectory())
        defer { fixture.folder.remove() }
        try FileManager.default.createDirectory(atPath: fixture.data, withIntermediateDirectories: false)
        chmod(fixture.data, 0o755)
        let result = try await fixture.run(["accounts", "list"])
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains("chmod 700 '\(fixture.data)'"), "\(result.stderr)")
    }

    @Test func rotateSecretThenListWithTheNewSecret() async throws {
        let fixture = Fixture(folder: try TemporaryDirectory())
        defer { fixture.folder.remove() }
        let seed = """
            {"id":"acc_rot","name":"rotating","access_token":"\(Self.token("oat"))",\
            "refresh_token":"\(Self.token("ort"))","expires_at":1800000000}
            """
        try fixture.folder.write(seed, to: "seed.json")
        #expect(try await fixture.run(["accounts", "import", fixture.folder.file("seed.json")]).exitCode == 0)

        let missing = try await fixture.run(["rotate-secret", "--new-secret-env", "NEW_ADMIN_KEY"])
        #expect(missing.exitCode == 2 && missing.stderr.contains("NEW_ADMIN_KEY"))
        let rotated = try await fixture.run(
            ["rotate-secret", "--new-secret-env", "NEW_ADMIN_KEY"], extra: ["NEW_ADMIN_KEY": Self.newKey])
        #expect(rotated.exitCode == 0, "\(rotated.output)")
        #expect(rotated.stdout.contains("re-encrypted 1 account"))
        let newKeyLeaked = containsAnySecret(rotated.output, [Self.newKey])
        #expect(!newKeyLeaked)

        #expect(try await fixture.run(["accounts", "list"]).exitCode == 2, "the old secret no longer opens the vault")
        let list = try await fixture.run(["accounts", "list"], extra: ["AUTH__API_KEY": Self.newKey])
        #expect(list.exitCode == 0 && list.stdout.contains("acc_rot"), "\(list.output)")
    }
}
