import ArgumentParser
import Foundation
import ProxyCore
import ProxyServer

struct Accounts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List and import the Claude accounts in storage.data_folder.",
        subcommands: [AccountsList.self, AccountsImport.self]
    )
}

extension ParsableCommand {
    /// Loads the configuration and opens the account store with `auth.api_key`; a configuration or vault
    /// problem (wrong secret, insecure folder, unfinished rotation) exits with status 2 and one line.
    static func openStore(_ options: ConfigOption) async throws -> (ProxyConfig, FileAccountStore) {
        let config = try exitingOnConfigError { try options.load() }
        let store = try exitingOnVaultError {
            try FileAccountStore.open(path: config.storage.dataFolder, secret: Secret(config.auth.apiKey))
        }
        return (config, store)
    }

    static func exitingOnVaultError<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as VaultError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(2)
        }
    }

    static func reportProblems(_ problems: [AccountFileProblem]) {
        for problem in problems {
            FileHandle.standardError.write(Data("skipped \(problem)\n".utf8))
        }
    }
}

struct AccountsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Show each account's id, name, email, status and token expiry (no secrets).")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let (config, store) = try await Self.openStore(options)
        let result = try await store.loadAll()
        Self.reportProblems(result.problems)
        guard !result.accounts.isEmpty else {
            print("no accounts in \(config.storage.dataFolder)")
            return
        }
        let rows =
            [["ID", "NAME", "EMAIL", "STATUS", "EXPIRES"]]
            + result.accounts.sorted { $0.id < $1.id }.map { account in
                [
                    account.id.rawValue, account.name, account.email ?? "-",
                    account.disabled ? "disabled" : account.status.rawValue,
                    account.credentials.expiresAt.formatted(.iso8601),
                ]
            }
        let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let cells = zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
            print(cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
    }
}

struct AccountsImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import an account from the seed's account JSON or Claude Code's .credentials.json.",
        discussion: "Run it while the proxy is stopped. Importing the same refresh token again updates that account."
    )

    @Argument(help: "The JSON file to import.")
    var file: String

    @Option(name: .long, help: "Display name for the account.")
    var name: String?

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let (_, store) = try await Self.openStore(options)
        guard let data = FileManager.default.contents(atPath: file) else {
            FileHandle.standardError.write(Data("import: cannot read \(file)\n".utf8))
            throw ExitCode(1)
        }
        var account: Account
        do {
            account = try AccountImport.parse(data, name: name, now: Date())
        } catch {
            FileHandle.standardError.write(Data("\(error) (\(file))\n".utf8))
            throw ExitCode(1)
        }
        let result = try await store.loadAll()
        Self.reportProblems(result.problems)
        let existing = result.accounts.first {
            $0.id == account.id || $0.credentials.refreshToken == account.credentials.refreshToken
        }
        if var existing {
            existing.credentials = account.credentials
            if name != nil || existing.id == account.id { existing.name = account.name }
            existing.status = .active
            existing.lastRefreshError = nil
            if !account.scopes.isEmpty { existing.scopes = account.scopes }
            existing.subscriptionType = account.subscriptionType ?? existing.subscriptionType
            existing.email = account.email ?? existing.email
            account = existing
        }
        try await store.save(account)
        let verb = existing == nil ? "imported" : "updated"
        print(
            "\(verb) account \(account.id) (\(account.name)), token expires \(account.credentials.expiresAt.formatted(.iso8601))"
        )
    }
}

struct RotateSecret: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-secret",
        abstract: "Re-encrypt every account under a new admin secret (crash-safe; rerun to finish).",
        discussion: """
            Run it while the proxy is stopped, with auth.api_key still set to the current secret. Then set \
            auth.api_key (or AUTH__API_KEY) to the new secret. If it is interrupted, rerun the same command.
            """
    )

    @Option(name: .long, help: "Name of the environment variable that holds the new secret.")
    var newSecretEnv: String

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let config = try Self.exitingOnConfigError { try options.load() }
        let newSecret = try Self.exitingOnConfigError { () throws(ConfigError) -> String in
            guard let value = ProcessInfo.processInfo.environment[newSecretEnv], !value.isEmpty else {
                throw ConfigError(key: newSecretEnv, problem: "environment variable not set (the new admin secret)")
            }
            guard value.count >= ConfigLoader.minimumAPIKeyLength else {
                throw ConfigError(
                    key: newSecretEnv, problem: "too short: use at least \(ConfigLoader.minimumAPIKeyLength) characters"
                )
            }
            guard value != config.auth.apiKey else {
                throw ConfigError(key: newSecretEnv, problem: "is the current auth.api_key; choose a new secret")
            }
            return value
        }
        let outcome = try Self.exitingOnVaultError {
            try SecretRotation.run(
                folderPath: config.storage.dataFolder, currentSecret: Secret(config.auth.apiKey),
                newSecret: Secret(newSecret))
        }
        if outcome.wasAlreadyComplete {
            print("the new secret already opens the vault (generation \(outcome.generation)): nothing to do")
        } else {
            Self.reportProblems(outcome.skipped)
            print(
                "re-encrypted \(outcome.reencrypted) account(s)"
                    + (outcome.alreadyDone > 0 ? " (\(outcome.alreadyDone) done by an earlier run)" : "")
                    + " under vault generation \(outcome.generation); now set auth.api_key to the new secret")
        }
        if !outcome.skipped.isEmpty { throw ExitCode(1) }
    }
}
