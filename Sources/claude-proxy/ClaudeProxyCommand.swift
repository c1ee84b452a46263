import ArgumentParser
import Foundation
import Logging
import ProxyCore
import ProxyServer
import ProxyTLS

@main
struct ClaudeProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "claude-proxy",
        abstract: "Multi-account Claude API reverse proxy with an OpenSSL TLS front door.",
        version: ProxyVersion.current,
        subcommands: [
            Serve.self, CheckConfig.self, GenCert.self, Accounts.self, RotateSecret.self, Version.self,
        ],
        defaultSubcommand: Serve.self
    )
}

/// `--config FILE`, shared by the commands that read the configuration.
struct ConfigOption: ParsableArguments {
    @Option(
        name: .long, help: "Configuration file (YAML). Without it: defaults plus SECTION__KEY environment variables.")
    var config: String?

    /// Loads the configuration or exits with status 2 and one line naming the key at fault.
    func load() throws -> ProxyConfig {
        do {
            return try ConfigLoader.load(path: config, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ConfigurationFailure(error)
        }
    }
}

/// Prints one line to stderr and exits with status 2 (the documented exit code for a bad configuration).
struct ConfigurationFailure: Error, CustomStringConvertible {
    let error: ConfigError
    init(_ error: ConfigError) { self.error = error }
    var description: String { error.description }
}

extension ParsableCommand {
    /// Runs `body`, turning a configuration failure into its one-line message and exit code 2.
    static func exitingOnConfigError<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as ConfigurationFailure {
            FileHandle.standardError.write(Data((failure.description + "\n").utf8))
            throw ExitCode(2)
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(2)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve HTTPS (the default command).")

    @OptionGroup var options: ConfigOption

    func run() async throws {
        var (application, config) = try Self.exitingOnConfigError {
            let config = try options.load()
            ProxyLogHandler.bootstrap(level: config.logger.level, format: config.logger.format)
            let application = try ProxyApplication(config: config, logger: Logger(label: "claude-proxy"))
            return (application, config)
        }
        // A wrong admin secret, an insecure data folder or an unfinished rotation stops start-up here, before
        // anything is written.
        let store = try Self.exitingOnVaultError {
            try FileAccountStore.open(path: config.storage.dataFolder, secret: Secret(config.auth.apiKey))
        }
        let loaded = try await store.loadAll()
        for problem in loaded.problems {
            application.logger.error("account file skipped", metadata: ["problem": "\(problem)"])
        }
        application.accounts = store
        let accountServices = try Self.exitingOnConfigError {
            try AccountServices(config: config, store: store, logger: application.logger)
        }
        application.backgroundServices = [accountServices.scheduler, accountServices.usage]
        application.admin = accountServices.makeAdminRoutes(config: config)
        let administration = accountServices.administration
        application.currentAccounts = { try await administration.accounts() }
        do {
            application.relay = try await accountServices.makeRelay(config: config, logger: application.logger)
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(2)
        }
        let scheme = config.server.tls.enabled ? "https" : "http"
        application.logger.notice(
            "starting",
            metadata: [
                "version": "\(ProxyVersion.current)",
                "listen": "\(scheme)://\(config.server.host):\(config.server.port)",
                "certificate_serial": "\(application.tlsContexts?.current.certificateSerial ?? "-")",
                "accounts": "\(loaded.accounts.count)",
                "allocator": "\(Allocator.description)",
            ]
        )
        try await application.run()
        application.logger.notice("stopped")
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration (and load the TLS certificate) without serving."
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        let config = try Self.exitingOnConfigError {
            let config = try options.load()
            _ = try ProxyApplication(config: config, logger: Logger(label: "claude-proxy"))
            return config
        }
        let tls = config.server.tls.enabled ? "TLS with \(config.server.tls.certFile)" : "plain HTTP (TLS off)"
        print("configuration OK: \(config.server.host):\(config.server.port), \(tls)")
    }
}

struct GenCert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen-cert",
        abstract: "Generate a development CA and a server certificate signed by it (ECDSA P-256)."
    )

    @Option(name: .long, help: "Folder for ca.crt, ca.key, server.crt, server.key.")
    var out = "certs"

    @Option(name: .customLong("host"), help: "A DNS name or IP address for the certificate (repeatable).")
    var hosts: [String] = ["localhost", "127.0.0.1", "::1"]

    @Flag(name: .long, help: "Replace existing files.")
    var force = false

    func run() throws {
        let certificates = try DevCertificateAuthority.generate(hosts: hosts)
        try DevCertificateAuthority.write(certificates, to: out, overwrite: force)
        print(
            "wrote \(out)/ca.crt, ca.key, server.crt, server.key (serial \(certificates.serverSerialHex)) for \(hosts.joined(separator: ", "))"
        )
        print("trust \(out)/ca.crt in clients, e.g. curl --cacert \(out)/ca.crt https://localhost:4000/health")
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")

    func run() {
        print("claude-proxy \(ProxyVersion.current)")
    }
}
