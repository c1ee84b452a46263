import Foundation
import ProxyCore
import ProxyTesting

/// Shared pieces of the vault tests: a cheap KDF (the default costs ~0.1 s per open), accounts with tokens
/// built at run time, and a byte-exact snapshot of a folder.
enum VaultFixture {
    static let cheapKDF = KeyDerivation.scrypt(n: 1 << 10, r: 8, p: 1)
    static let secret = Secret("vault-test-admin-secret-0001")
    static let otherSecret = Secret("vault-test-admin-secret-0002")

    /// A token that looks like Anthropic's but is built here, random each run.
    static func token(_ kind: String) -> String {
        "sk-ant-" + kind + "01-test-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
    }

    static func account(_ id: String, index: Int = 0) -> Account {
        var account = Account(
            id: AccountID(id), name: "account \(id)",
            credentials: Credentials(
                accessToken: Secret(token("oat")), refreshToken: Secret(token("ort")),
                expiresAt: Date(timeIntervalSince1970: 1_800_000_000.125 + Double(index))),
            email: "\(id)@example.com", organization: "Example Org", organizationID: "org-\(index)",
            scopes: ["user:inference", "user:profile"], subscriptionType: "max",
            createdAt: Date(timeIntervalSince1970: 1_700_000_000))
        account.refreshAt = Date(timeIntervalSince1970: 1_799_999_000)
        account.lastRefreshAt = Date(timeIntervalSince1970: 1_799_990_000.5)
        account.lastRefreshError = index % 2 == 0 ? nil : "token endpoint said 503"
        account.lastUsedAt = Date(timeIntervalSince1970: 1_799_990_100)
        account.disabled = index % 3 == 2
        account.rateLimit.coolingDownUntil = Date(timeIntervalSince1970: 1_799_990_200)
        account.rateLimit.consecutiveRateLimits = index
        account.rateLimit.unifiedStatus = "allowed_warning"
        account.usage.requests = 10 + index
        account.usage.inputTokens = 1000
        account.usage.outputTokens = 200
        account.usage.cacheCreationInputTokens = 30
        account.usage.cacheReadInputTokens = 40
        return account
    }

    static func openStore(_ path: String, secret: Secret = secret) throws -> FileAccountStore {
        try FileAccountStore.open(path: path, secret: secret, kdf: cheapKDF)
    }

    /// Every file's name and bytes (folder listing included), for "not one byte changed" checks.
    static func snapshot(_ path: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: path) {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: path + "/" + name))
        }
        return files
    }

    static func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }

    /// The built test-only child (`Tests/VaultCrashWriter`), next to the test bundle.
    static var crashWriterPath: String {
        URL(fileURLWithPath: ProxyProcess.executablePath).deletingLastPathComponent()
            .appendingPathComponent("vault-crash-writer").path
    }

    /// Starts the crash writer with its output in `logFile`; returns once it printed "ready".
    static func startCrashWriter(_ arguments: [String], environment: [String: String], logFile: String) throws
        -> Process
    {
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        // Output through the shell, which then becomes the writer (same PID for SIGKILL): a FileHandle given to
        // Process as both stdout and stderr is closed twice by Foundation, hitting some other open file.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments =
            ["-c", #"exec "$0" "$@" > "$CRASH_WRITER_LOG" 2>&1 < /dev/null"#, crashWriterPath] + arguments
        var childEnvironment = environment
        childEnvironment["CRASH_WRITER_LOG"] = logFile
        childEnvironment["PATH"] = childEnvironment["PATH"] ?? "/usr/bin:/bin"
        process.environment = childEnvironment
        try process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            if text.contains("ready") { return process }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.002)
        }
        kill(process.processIdentifier, SIGKILL)
        throw VaultError.io(operation: "start crash writer", path: logFile, errno: EIO)
    }
}
