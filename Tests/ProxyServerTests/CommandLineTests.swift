import Foundation
import ProxyServer
import ProxyTesting
import Testing

/// The `claude-proxy` executable as an operator meets it: exit codes and one-line messages.
@Suite struct CommandLineTests {
    static let validKey = "cli-test-admin-key-0123456789"

    /// Off the cooperative pool (a subprocess waited for on one of its threads stalls every task of the process).
    func checkConfig(yaml: String?, environment: [String: String] = [:]) async throws -> ProcessResult {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        var arguments = ["check-config"]
        if let yaml {
            try folder.write(yaml, to: "config.yaml")
            arguments += ["--config", folder.file("config.yaml")]
        }
        let command = arguments
        return try await throttledCommand { try ProxyProcess.run(command, environment: environment) }
    }

    static let plain = ["SERVER__TLS__ENABLED": "false"]
    static let keyed = ["AUTH__API_KEY": validKey]
    static let plainKeyed = plain.merging(keyed) { $1 }

    /// Each bad configuration exits with status 2 and one line on stderr that names the key.
    @Test(arguments: [
        ("server:\n  prot: 4000\n", plainKeyed, "server.prot"),
        ("server:\n  port: not-a-number\n", plainKeyed, "server.port"),
        ("server:\n  tls:\n    enabled: maybe\n", keyed, "server.tls.enabled"),
        ("limits:\n  header_timeout: 10 parsecs\n", plainKeyed, "limits.header_timeout"),
        ("server:\n  tls:\n    cert_file: /nonexistent/server.crt\n", keyed, "server.tls.cert_file"),
        ("auth:\n  api_key: short\n", plain, "auth.api_key"),
        ("auth:\n  api_key: \"change-me-to-a-long-random-secret\"\n", plain, "auth.api_key"),
    ])
    func badConfigurationExitsWithCode2NamingTheKey(yaml: String, environment: [String: String], key: String)
        async throws
    {
        let result = try await checkConfig(yaml: yaml, environment: environment)
        #expect(result.exitCode == 2, "\(result.output)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(key), "\(result.stderr)")
    }

    @Test func missingAdminKeyIsRefused() async throws {
        let result = try await checkConfig(yaml: nil, environment: ["SERVER__TLS__ENABLED": "false"])
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains("auth.api_key"))
    }

    @Test func unknownEnvironmentKeyIsAnError() async throws {
        let result = try await checkConfig(
            yaml: nil,
            environment: ["AUTH__API_KEY": Self.validKey, "SERVER__TLS__ENABLED": "false", "SERVER__PROT": "1"]
        )
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains("server.prot"))
    }

    @Test func environmentWinsOverTheFile() async throws {
        let result = try await checkConfig(
            yaml: "server:\n  port: 4000\n  tls:\n    enabled: false\nauth:\n  api_key: \(Self.validKey)\n",
            environment: ["SERVER__PORT": "8443"]
        )
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(result.stdout.contains(":8443"), "\(result.stdout)")
    }

    @Test func keyNeverAppearsInOutput() async throws {
        let secret = "super-secret-admin-key-never-printed"
        let results = [
            try await checkConfig(yaml: "auth:\n  api_key: \(secret)\nserver:\n  prot: 1\n"),
            try await checkConfig(yaml: "auth:\n  api_key: \(secret)\n  extra: 1\n"),
            try await checkConfig(yaml: nil, environment: ["AUTH__API_KEY": secret, "SERVER__TLS__ENABLED": "false"]),
        ]
        for result in results {
            #expect(!result.output.contains(secret))
        }
    }

    @Test func genCertWritesPrivateFilesThatVerify() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let out = folder.file("certs")
        let result = try await throttledCommand {
            try ProxyProcess.run(["gen-cert", "--out", out, "--host", "proxy.internal", "--host", "10.1.2.3"])
        }
        #expect(result.exitCode == 0, "\(result.output)")
        for name in ["ca.crt", "ca.key", "server.crt", "server.key"] {
            let mode = try FileManager.default.attributesOfItem(atPath: out + "/" + name)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(name)")
        }
        let verify = try await blocking {
            try ProcessRunner.run(["openssl", "verify", "-CAfile", out + "/ca.crt", out + "/server.crt"])
        }
        #expect(verify.stdout.contains("OK"))
        let names = try await blocking {
            try ProcessRunner.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", out + "/server.crt"])
        }
        #expect(names.stdout.contains("DNS:proxy.internal") && names.stdout.contains("IP Address:10.1.2.3"))
        let again = try await throttledCommand { try ProxyProcess.run(["gen-cert", "--out", out]) }
        #expect(again.exitCode != 0, "existing files are not overwritten without --force")
    }

    @Test func versionPrintsTheVersion() async throws {
        let result = try await throttledCommand { try ProxyProcess.run(["version"]) }
        #expect(result.exitCode == 0)
        #expect(result.stdout == "claude-proxy \(ProxyVersion.current)\n")
    }

    @Test func exampleConfigWorksOnceTheKeyIsReplaced() async throws {
        let example = try String(contentsOfFile: Self.repositoryFile("config.example.yaml"), encoding: .utf8)
        let refused = try await checkConfig(yaml: example, environment: ["SERVER__TLS__ENABLED": "false"])
        #expect(refused.exitCode == 2)
        #expect(refused.stderr.contains("placeholder"))
        let edited = example.replacingOccurrences(
            of: "  api_key: \"change-me-to-a-long-random-secret\"", with: "  api_key: \"\(Self.validKey)\"")
        let accepted = try await checkConfig(yaml: edited, environment: ["SERVER__TLS__ENABLED": "false"])
        #expect(accepted.exitCode == 0, "\(accepted.output)")
    }

    static func repositoryFile(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(name).path
    }
}
