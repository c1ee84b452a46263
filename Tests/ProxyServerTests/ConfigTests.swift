import Foundation
import ProxyCore
import ProxyTesting
import ProxyUpstream
import Testing

@testable import ProxyServer

/// A folder under the temporary directory, removed by `withTempFolder` when the test body returns.
private struct TempFolder {
    let path: String

    func write(_ relativePath: String, _ contents: String = "") throws {
        let url = URL(fileURLWithPath: path).appendingPathComponent(relativePath)
        try FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: url)
    }

    /// The files the default `server.tls` settings point at.
    func writeDefaultCertificates() throws {
        try write("certs/server.crt", "cert")
        try write("certs/server.key", "key")
    }

    func file(_ relativePath: String) -> String {
        path + "/" + relativePath
    }
}

private func withTempFolder<Result>(_ body: (TempFolder) throws -> Result) throws -> Result {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
        "config-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(TempFolder(path: url.standardizedFileURL.path))
}

/// Configuration loading: defaults, YAML, environment, errors, the example file.
@Suite struct ConfigTests {}

private let validKey = "test-admin-secret-0123456789"
private let home = "/home/tester"
private let baseEnvironment = ["AUTH__API_KEY": validKey, "HOME": home]

/// Loads with TLS off, so tests about other keys need no certificate files.
private func loadWithoutTLS(_ yaml: String, environment: [String: String] = [:]) throws(ConfigError)
    -> ProxyConfig
{
    let env = baseEnvironment.merging(["SERVER__TLS__ENABLED": "false"]) { _, new in new }
        .merging(environment) { _, new in new }
    return try ConfigLoader.load(yaml: yaml, baseDirectory: "/srv/proxy", environment: env)
}

private func loadFileError(path: String, environment: [String: String]) -> ConfigError? {
    do {
        _ = try ConfigLoader.load(path: path, environment: environment)
        return nil
    } catch {
        return error
    }
}

private func loadError(
    _ yaml: String,
    environment: [String: String] = baseEnvironment,
    baseDirectory: String = "/srv/proxy"
) -> ConfigError? {
    do {
        _ = try ConfigLoader.load(yaml: yaml, baseDirectory: baseDirectory, environment: environment)
        return nil
    } catch {
        return error
    }
}

extension ConfigTests {
    @Suite struct Defaults {
        @Test func defaultsWithoutFileAreTheDocumentedValues() throws {
            try withTempFolder { folder in
                try folder.writeDefaultCertificates()
                let config = try ConfigLoader.load(
                    yaml: "", baseDirectory: folder.path, environment: baseEnvironment)

                #expect(config.server.host == "0.0.0.0")
                #expect(config.server.port == 4000)
                #expect(config.server.shutdownTimeout == .seconds(30))
                #expect(config.server.tls.enabled)
                #expect(config.server.tls.certFile == folder.file("certs/server.crt"))
                #expect(config.server.tls.keyFile == folder.file("certs/server.key"))
                #expect(config.server.tls.handshakeTimeout == .seconds(10))
                #expect(config.server.tls.reloadInterval == .seconds(5))
                #expect(config.limits.maxHeaderSize == 32768)
                #expect(config.limits.idleTimeout == .seconds(60))
                #expect(config.limits.headerTimeout == .seconds(10))
                #expect(config.limits.maxConnections == 10000)
                #expect(config.oauth.clientID == "9d1c250a-e61b-44d9-88ed-5944d1962f5e")
                #expect(config.oauth.authorizeURL == "https://claude.ai/oauth/authorize")
                #expect(config.oauth.tokenURL == "https://platform.claude.com/v1/oauth/token")
                #expect(config.oauth.redirectURI == "https://platform.claude.com/oauth/code/callback")
                #expect(
                    config.oauth.scope
                        == "org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
                )
                #expect(config.claude.baseURL == "https://api.anthropic.com")
                #expect(config.claude.caFile == nil)
                #expect(config.storage.dataFolder == "\(home)/.claude-proxy/data")
                #expect(config.auth.apiKey == validKey)
                #expect(config.logger.level == .info)
                #expect(config.logger.format == .text)
                #expect(config.retry.maxRetries == 3)
                #expect(config.retry.retryDelay == .seconds(1))
            }
        }

        @Test(arguments: [
            "", "~", "null", "# only a comment\n", "server:\n", "server:\n  tls:\n", "server:\n  port:\n",
        ])
        func emptyOrNullYAMLMeansDefaults(yaml: String) throws {
            #expect(try loadWithoutTLS(yaml) == loadWithoutTLS(""))
        }

        @Test func pathNilReadsDefaultsAndEnvironmentRelativeToCurrentDirectory() throws {
            let env = baseEnvironment.merging([
                "SERVER__TLS__ENABLED": "no", "STORAGE__DATA_FOLDER": "rel/data",
            ]) { $1 }
            let config = try ConfigLoader.load(path: nil, environment: env)
            let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL
                .path
            #expect(config.storage.dataFolder == cwd + "/rel/data")
            #expect(config.server.tls.enabled == false)
        }
    }
}

extension ConfigTests {
    @Suite struct Values {
        @Test func yamlSetsEveryKey() throws {
            try withTempFolder { folder in
                try folder.write("tls/proxy.crt")
                try folder.write("tls/proxy.key")
                try folder.write("ca.pem")
                let yaml = """
                    server:
                      host: 127.0.0.1
                      port: 8443
                      shutdown_timeout: 2m
                      tls:
                        enabled: yes
                        cert_file: tls/proxy.crt
                        key_file: ./tls/proxy.key
                        handshake_timeout: 1.5s
                        reload_interval: 0s
                    limits:
                      max_header_size: 1024
                      idle_timeout: 90
                      header_timeout: 500ms
                      max_connections: 1
                    oauth:
                      client_id: client
                      authorize_url: http://localhost:9000/authorize
                      token_url: http://localhost:9000/token
                      redirect_uri: http://localhost:9000/callback
                      scope: user:inference
                    claude:
                      base_url: http://127.0.0.1:8080
                      ca_file: ca.pem
                    storage:
                      data_folder: /var/lib/claude-proxy
                    auth:
                      api_key: "yaml-secret-0123456789"
                    logger:
                      level: debug
                      format: json
                    retry:
                      max_retries: 0
                      retry_delay: 1h
                    """
                let config = try ConfigLoader.load(
                    yaml: yaml, baseDirectory: folder.path, environment: ["HOME": home])
                let expected = ProxyConfig(
                    server: .init(
                        host: "127.0.0.1", port: 8443,
                        tls: .init(
                            enabled: true, certFile: folder.file("tls/proxy.crt"),
                            keyFile: folder.file("tls/proxy.key"),
                            handshakeTimeout: .milliseconds(1500), reloadInterval: .zero),
                        shutdownTimeout: .seconds(120)),
                    limits: .init(
                        maxHeaderSize: 1024, idleTimeout: .seconds(90), headerTimeout: .milliseconds(500),
                        maxConnections: 1),
                    oauth: .init(
                        clientID: "client", authorizeURL: "http://localhost:9000/authorize",
                        tokenURL: "http://localhost:9000/token", redirectURI: "http://localhost:9000/callback",
                        scope: "user:inference"),
                    claude: .init(baseURL: "http://127.0.0.1:8080", caFile: folder.file("ca.pem")),
                    storage: .init(dataFolder: "/var/lib/claude-proxy"),
                    auth: .init(apiKey: "yaml-secret-0123456789"),
                    logger: .init(level: .debug, format: .json),
                    retry: .init(maxRetries: 0, retryDelay: .seconds(3600)))
                #expect(config == expected)
            }
        }

        @Test func environmentWinsOverYAML() throws {
            let yaml = """
                server:
                  port: 5000
                  host: "::"
                logger:
                  level: warning
                auth:
                  api_key: "yaml-secret-0123456789"
                """
            let config = try loadWithoutTLS(
                yaml,
                environment: [
                    "SERVER__PORT": "6000", "LOGGER__LEVEL": "DEBUG", "RETRY__RETRY_DELAY": "250ms",
                    "AUTH__API_KEY": "env-secret-0123456789",
                ])
            #expect(config.server.port == 6000)
            #expect(config.server.host == "::")
            #expect(config.logger.level == .debug)
            #expect(config.retry.retryDelay == .milliseconds(250))
            #expect(config.auth.apiKey == "env-secret-0123456789")
        }

        @Test func environmentReplacesAnInvalidYAMLValue() throws {
            let config = try loadWithoutTLS("server:\n  port: abc\n", environment: ["SERVER__PORT": "0"])
            #expect(config.server.port == 0)
        }

        @Test func otherEnvironmentVariablesAreIgnored() throws {
            let env = [
                "PATH": "/bin", "SERVER_PORT": "1", "MYAPP__SERVER__PORT": "x", "server__port": "x",
            ]
            #expect(try loadWithoutTLS("", environment: env) == loadWithoutTLS(""))
        }

        @Test(arguments: [
            ("true", true), ("false", false), ("1", true), ("0", false), ("yes", true), ("no", false),
            ("TRUE", true),
        ])
        func environmentBooleans(text: String, value: Bool) throws {
            try withTempFolder { folder in
                try folder.writeDefaultCertificates()
                let env = baseEnvironment.merging(["SERVER__TLS__ENABLED": text]) { $1 }
                let config = try ConfigLoader.load(yaml: "", baseDirectory: folder.path, environment: env)
                #expect(config.server.tls.enabled == value)
            }
        }

        @Test(arguments: [
            ("1s", Duration.seconds(1)), ("500ms", .milliseconds(500)), ("1h", .seconds(3600)),
            ("2m", .seconds(120)),
            ("1.5s", .milliseconds(1500)), ("0s", .zero), ("30", .seconds(30)),
            ("0.25", .milliseconds(250)),
        ])
        func durations(text: String, duration: Duration) throws {
            #expect(try loadWithoutTLS("retry:\n  retry_delay: \(text)\n").retry.retryDelay == duration)
            #expect(
                try loadWithoutTLS("", environment: ["RETRY__RETRY_DELAY": text]).retry.retryDelay
                    == duration)
        }

        @Test(arguments: [
            "", "s", "ms", "1.2.3s", "-1s", "1e3s", "inf", "nan", "1 d", "1d", "10 s", "1s2",
        ])
        func badDurationsNameTheKey(text: String) {
            let error = loadError(
                "", environment: baseEnvironment.merging(["LIMITS__IDLE_TIMEOUT": text]) { $1 })
            #expect(error?.key == "limits.idle_timeout")
        }

        @Test func zeroTimeoutIsRefusedButZeroReloadIntervalIsOff() throws {
            #expect(
                loadError("server:\n  tls:\n    handshake_timeout: 0s\n")?.key
                    == "server.tls.handshake_timeout")
            #expect(
                try loadWithoutTLS("server:\n  tls:\n    reload_interval: 0\n").server.tls.reloadInterval
                    == .zero)
        }

        @Test(arguments: [
            ("~", home), ("~/", home), ("~/data", "\(home)/data"), ("/abs/data", "/abs/data"),
            ("data", "/srv/proxy/data"), ("./a/../data", "/srv/proxy/data"), ("../data", "/srv/data"),
        ])
        func pathsAreExpandedAndResolvedAgainstTheBaseDirectory(written: String, resolved: String)
            throws
        {
            #expect(
                try loadWithoutTLS("storage:\n  data_folder: \"\(written)\"\n").storage.dataFolder
                    == resolved)
            #expect(
                try loadWithoutTLS("", environment: ["STORAGE__DATA_FOLDER": written]).storage.dataFolder
                    == resolved)
        }

        @Test func relativePathsInAFileAreRelativeToThatFile() throws {
            try withTempFolder { folder in
                try folder.write("conf/certs/server.crt")
                try folder.write("conf/certs/server.key")
                try folder.write("conf/config.yaml", "storage:\n  data_folder: data\n")
                let config = try ConfigLoader.load(
                    path: folder.file("conf/config.yaml"), environment: baseEnvironment)
                #expect(config.storage.dataFolder == folder.file("conf/data"))
                #expect(config.server.tls.certFile == folder.file("conf/certs/server.crt"))
            }
        }

        @Test func upstreamProtocolFromYAMLOrEnvironment() throws {
            #expect(try loadWithoutTLS("").upstream.protocol == .auto)
            #expect(try loadWithoutTLS("upstream:\n  protocol: http1\n").upstream.protocol == .http1)
            let fromEnvironment = try loadWithoutTLS(
                "upstream:\n  protocol: http1\n", environment: ["UPSTREAM__PROTOCOL": "H2"])
            #expect(fromEnvironment.upstream.protocol == .h2)
        }

        @Test func emptyCAFileFromEnvironmentMeansNone() throws {
            let config = try loadWithoutTLS(
                "claude:\n  ca_file: missing.pem\n", environment: ["CLAUDE__CA_FILE": ""])
            #expect(config.claude.caFile == nil)
        }

        @Test func extraHeadersComeFromAListOrOnePerLineFromTheEnvironment() throws {
            let yaml =
                "claude:\n  extra_headers:\n    - \"User-Agent: team-proxy/1.0 (Linux; x86_64)\"\n    - \"x-b: 1, 2\"\n"
            let config = try loadWithoutTLS(yaml)
            #expect(config.claude.extraHeaders.map(\.name) == ["user-agent", "x-b"])
            #expect(config.claude.extraHeaders.map(\.value) == ["team-proxy/1.0 (Linux; x86_64)", "1, 2"])
            let fromEnvironment = try loadWithoutTLS("", environment: ["CLAUDE__EXTRA_HEADERS": "x-a: 1\nx-b: 2"])
            #expect(fromEnvironment.claude.extraHeaders.map(\.name) == ["x-a", "x-b"])
            for bad in ["authorization: Bearer x", "no colon", "bad name: x", "x-api-key: k"] {
                let error = loadError("claude:\n  extra_headers: [\"\(bad)\"]\n", environment: baseEnvironment)
                #expect(error?.key == "claude.extra_headers", "\(bad)")
            }
        }
    }
}

/// One way to get the configuration wrong, and the key the error must name.
struct ConfigErrorCase: Sendable, CustomStringConvertible {
    var yaml: String
    var environment: [String: String] = [:]
    var key: String

    var description: String {
        "\(key) from \(environment.isEmpty ? "yaml \(yaml.debugDescription)" : "\(environment)")"
    }
}

extension ConfigTests {
    @Suite struct Errors {
        static let cases: [ConfigErrorCase] = [
            // unknown keys, YAML
            .init(yaml: "server:\n  prot: 1\n", key: "server.prot"),
            .init(yaml: "server:\n  tls:\n    cert: x\n", key: "server.tls.cert"),
            .init(yaml: "srv:\n  port: 1\n", key: "srv"),
            .init(yaml: "auth:\n  apikey: \(validKey)\n", key: "auth.apikey"),
            // unknown keys, environment
            .init(yaml: "", environment: ["SERVER__PROT": "1"], key: "server.prot"),
            .init(yaml: "", environment: ["SERVER__TLS__CERT": "x"], key: "server.tls.cert"),
            .init(yaml: "", environment: ["SERVER__TLS": "x"], key: "server.tls"),
            .init(yaml: "", environment: ["RETRY__DELAY": "1s"], key: "retry.delay"),
            // wrong types and values
            .init(yaml: "server:\n  port: abc\n", key: "server.port"),
            .init(yaml: "server:\n  port: \"abc\"\n", key: "server.port"),
            .init(yaml: "server:\n  port: 65536\n", key: "server.port"),
            .init(yaml: "server:\n  port: [1, 2]\n", key: "server.port"),
            .init(yaml: "server:\n  tls: 5\n", key: "server.tls"),
            .init(yaml: "server: [a]\n", key: "server"),
            .init(yaml: "server:\n  tls:\n    enabled: maybe\n", key: "server.tls.enabled"),
            .init(yaml: "server:\n  host: {a: 1}\n", key: "server.host"),
            .init(yaml: "server:\n  host: \"\"\n", key: "server.host"),
            .init(yaml: "limits:\n  max_header_size: 1023\n", key: "limits.max_header_size"),
            .init(yaml: "limits:\n  max_connections: 0\n", key: "limits.max_connections"),
            .init(yaml: "retry:\n  max_retries: -1\n", key: "retry.max_retries"),
            .init(yaml: "logger:\n  level: loud\n", key: "logger.level"),
            .init(yaml: "logger:\n  format: xml\n", key: "logger.format"),
            .init(yaml: "claude:\n  base_url: ftp://example.com\n", key: "claude.base_url"),
            .init(yaml: "claude:\n  base_url: \"https://\"\n", key: "claude.base_url"),
            .init(yaml: "claude:\n  base_url: api.anthropic.com\n", key: "claude.base_url"),
            .init(yaml: "oauth:\n  token_url: not a url\n", key: "oauth.token_url"),
            .init(yaml: "upstream:\n  protocol: http3\n", key: "upstream.protocol"),
            .init(yaml: "", environment: ["SERVER__PORT": "80x"], key: "server.port"),
            .init(yaml: "", environment: ["SERVER__TLS__ENABLED": "maybe"], key: "server.tls.enabled"),
            // bad durations
            .init(yaml: "server:\n  shutdown_timeout: soon\n", key: "server.shutdown_timeout"),
            .init(yaml: "limits:\n  header_timeout: 10x\n", key: "limits.header_timeout"),
            // files
            .init(yaml: "claude:\n  ca_file: missing.pem\n", key: "claude.ca_file"),
            // the document itself
            .init(yaml: "- a\n- b\n", key: "<yaml>"),
            .init(yaml: "just text", key: "<yaml>"),
            .init(yaml: "server:\n  port: 1\n port: 2\n", key: "<yaml>"),
            .init(yaml: "server:\n  port: 1\n  port: 2\n", key: "<yaml>"),
        ]

        @Test(arguments: cases)
        func errorNamesTheKey(errorCase: ConfigErrorCase) throws {
            // Certificates present, so that TLS stays on and `server.tls.*` values from YAML are not overridden.
            try withTempFolder { folder in
                try folder.writeDefaultCertificates()
                let environment = baseEnvironment.merging(errorCase.environment) { $1 }
                let error = loadError(errorCase.yaml, environment: environment, baseDirectory: folder.path)
                #expect(error?.key == errorCase.key)
                if let error {
                    #expect(error.description.hasPrefix("config: \(errorCase.key): "))
                    #expect(!error.description.contains { $0.isNewline })
                    let leaked = containsAnySecret(error.description, [validKey])
                    #expect(!leaked)
                }
            }
        }

        @Test func wrongTypeSaysWhatWasExpected() {
            #expect(loadError("server:\n  port: abc\n")?.problem.contains("integer") == true)
            #expect(
                loadError("server:\n  tls:\n    enabled: maybe\n")?.problem.contains("true or false")
                    == true)
            #expect(loadError("server:\n  tls: 5\n")?.problem.contains("mapping") == true)
            #expect(
                loadError("", environment: baseEnvironment.merging(["SERVER__PROT": "1"]) { $1 })?.problem
                    .contains("unknown key") == true)
        }

        @Test func missingCertificateOrKeyFileNamesItsKey() throws {
            try withTempFolder { folder in
                let crt = loadError("", baseDirectory: folder.path)
                #expect(crt?.key == "server.tls.cert_file")
                #expect(crt?.problem == "file not found: \(folder.file("certs/server.crt"))")

                try folder.write("certs/server.crt")
                let key = loadError("", baseDirectory: folder.path)
                #expect(key?.key == "server.tls.key_file")
                #expect(key?.problem == "file not found: \(folder.file("certs/server.key"))")

                try folder.write("certs/server.key")
                #expect(loadError("", baseDirectory: folder.path) == nil)
            }
        }

        @Test func certificateFilesAreNotNeededWithoutTLS() throws {
            try withTempFolder { folder in
                let env = baseEnvironment.merging(["SERVER__TLS__ENABLED": "false"]) { $1 }
                #expect(loadError("", environment: env, baseDirectory: folder.path) == nil)
            }
        }

        @Test func missingConfigFileNamesTheFile() {
            let path = "/nonexistent-\(UUID().uuidString)/config.yaml"
            let error = loadFileError(path: path, environment: baseEnvironment)
            #expect(error?.key == path)
            #expect(error?.problem.contains("not found") == true)
        }

        @Test func malformedFileNamesTheFileOnOneLine() throws {
            try withTempFolder { folder in
                let secret = "secret-in-a-broken-file-123456"
                try folder.write("config.yaml", "auth:\n  api_key: \"\(secret)\n server: [\n")
                let error = try #require(loadFileError(path: folder.file("config.yaml"), environment: [:]))
                #expect(error.key == folder.file("config.yaml"))
                #expect(error.problem.hasPrefix("invalid YAML"))
                #expect(!error.description.contains { $0.isNewline })
                #expect(!error.description.contains(secret))
            }
        }
    }
}

extension ConfigTests {
    @Suite struct APIKey {
        @Test func missingAPIKeyIsRequired() {
            let error = loadError("", environment: ["SERVER__TLS__ENABLED": "false"])
            #expect(error?.key == "auth.api_key")
            #expect(error?.problem.hasPrefix("required") == true)
            #expect(error?.problem.contains("AUTH__API_KEY") == true)
        }

        @Test(arguments: ["auth:\n  api_key:\n", "auth:\n  api_key: \"\"\n", "auth:\n"])
        func emptyAPIKeyIsMissing(yaml: String) {
            #expect(
                loadError(yaml, environment: ["SERVER__TLS__ENABLED": "false"])?.key == "auth.api_key")
        }

        @Test(arguments: ["Q7", "fifteen-chars!!", "abc123XYZ"])
        func shortAPIKeyIsRefusedWithoutShowingIt(key: String) {
            for (yaml, env) in [
                ("auth:\n  api_key: \"\(key)\"\n", [String: String]()), ("", ["AUTH__API_KEY": key]),
            ] {
                let error = loadError(
                    yaml, environment: env.merging(["SERVER__TLS__ENABLED": "false"]) { $1 })
                #expect(error?.key == "auth.api_key")
                #expect(error?.problem.contains("too short") == true)
                #expect(error?.description.contains(key) == false)
            }
        }

        @Test func placeholderAPIKeyIsRefused() {
            let env = ["AUTH__API_KEY": ConfigLoader.placeholderAPIKey, "SERVER__TLS__ENABLED": "false"]
            let error = loadError("", environment: env)
            #expect(error?.key == "auth.api_key")
            #expect(error?.problem.contains("placeholder") == true)
            #expect(error?.problem.contains("openssl rand") == true)
            #expect(error?.description.contains(ConfigLoader.placeholderAPIKey) == false)
        }

        @Test func sixteenCharactersAreEnough() throws {
            #expect(
                try loadWithoutTLS("", environment: ["AUTH__API_KEY": "0123456789abcdef"]).auth.apiKey.count
                    == 16)
        }

        @Test func secretsNeverAppearInErrors() {
            let secret = "do-not-print-me-0123456789"
            let yamls = [
                "auth: \(secret)\n",
                "auth:\n  api_key: [\(secret)]\n",
                "auth:\n  api_key: {\(secret): 1}\n",
                "auth:\n  api_key: \"\(secret)\"\nserver:\n  port: nope\n",
                "auth:\n  api_key: \"\(secret)\n",
            ]
            for yaml in yamls {
                let error = loadError(yaml, environment: ["SERVER__TLS__ENABLED": "false"])
                #expect(error != nil, "\(yaml.debugDescription) loaded")
                #expect(error?.description.contains(secret) == false, "\(yaml.debugDescription)")
            }
        }
    }
}

extension ConfigTests {
    @Suite struct ExampleFile {
        static let examplePath = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config.example.yaml").path

        @Test func exampleLoadsAndEqualsDefaults() throws {
            try withTempFolder { folder in
                try folder.writeDefaultCertificates()
                try folder.write("config.yaml", String(contentsOfFile: Self.examplePath, encoding: .utf8))
                let fromExample = try ConfigLoader.load(
                    path: folder.file("config.yaml"), environment: baseEnvironment)
                let defaults = try ConfigLoader.load(
                    yaml: "", baseDirectory: folder.path, environment: baseEnvironment)
                #expect(fromExample == defaults)
            }
        }

        @Test func exampleAPIKeyIsThePlaceholderAndIsRefused() throws {
            try withTempFolder { folder in
                try folder.writeDefaultCertificates()
                try folder.write("config.yaml", String(contentsOfFile: Self.examplePath, encoding: .utf8))
                let error = loadFileError(path: folder.file("config.yaml"), environment: ["HOME": home])
                #expect(error?.key == "auth.api_key")
                #expect(error?.problem.contains("placeholder") == true)
            }
        }

        /// The Makefile replaces this exact line with a random key.
        @Test func exampleHasTheAPIKeyLineTheMakefileReplaces() throws {
            let lines = try String(contentsOfFile: Self.examplePath, encoding: .utf8).split(
                separator: "\n")
            #expect(lines.filter { $0 == "  api_key: \"\(ConfigLoader.placeholderAPIKey)\"" }.count == 1)
        }
    }
}

@Suite struct ClientKeysConfigTests {
    static let base = "auth:\n  api_key: \"a-valid-admin-key-0123456789\"\nserver:\n  tls:\n    enabled: false\n"

    @Test func yamlListAndEnvironmentListBothWork() throws {
        let hex = String(repeating: "ab", count: 32)
        let yaml = Self.base.replacingOccurrences(
            of: "auth:\n", with: "auth:\n  client_keys:\n    - first-key\n    - \"sha256:\(hex)\"\n")
        let fromYAML = try ConfigLoader.load(yaml: yaml, baseDirectory: "/tmp", environment: [:])
        #expect(fromYAML.auth.clientKeys.count == 2)
        #expect(fromYAML.auth.clientKeys[0].matches("first-key"))
        let fromEnvironment = try ConfigLoader.load(
            yaml: Self.base, baseDirectory: "/tmp", environment: ["AUTH__CLIENT_KEYS": "one, two"])
        #expect(fromEnvironment.auth.clientKeys.map { $0.matches("two") } == [false, true])
    }

    @Test func badHashIsRejectedWithoutEchoingTheKeys() {
        #expect {
            try ConfigLoader.load(
                yaml: Self.base, baseDirectory: "/tmp",
                environment: ["AUTH__CLIENT_KEYS": "secret-client-key,sha256:zz"])
        } throws: { error in
            let text = "\(error)"
            return (error as? ConfigError)?.key == "auth.client_keys" && !text.contains("secret-client-key")
        }
    }
}
