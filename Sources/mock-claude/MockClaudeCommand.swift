import ArgumentParser
import Foundation
import Logging
import ProxyServer
import ProxyTLS
import ProxyTesting

/// `mock-claude --tls-folder DIR`: serves `MockClaudeService` over TLS (HTTP/2 and HTTP/1.1) on a free loopback
/// port for the end-to-end suite. Uses `DIR/server.crt` and `DIR/server.key` (a development CA and certificate
/// are generated there first when missing), prints one JSON line `{"port":N,"ca_file":"DIR/ca.crt"}` on stdout
/// and serves until SIGTERM or SIGINT.
@main
struct MockClaudeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock-claude", abstract: "Stateful mock Claude API and OAuth token endpoint, for tests.")

    @Option(name: .long, help: "Folder with ca.crt, server.crt and server.key (generated when missing).")
    var tlsFolder: String

    @Option(name: .long, help: "Log level of the mock's own log (stderr).")
    var logLevel: String = "warning"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let certificateFile = tlsFolder + "/server.crt"
        let keyFile = tlsFolder + "/server.key"
        if !FileManager.default.fileExists(atPath: certificateFile) || !FileManager.default.fileExists(atPath: keyFile)
        {
            try DevCertificateAuthority.write(
                try DevCertificateAuthority.generate(hosts: ["localhost", "127.0.0.1", "::1"]), to: tlsFolder,
                overwrite: true)
        }
        // The admin key only keys the unused vault of the test front door; it is random and never shown.
        var config = ProxyConfig(auth: .init(apiKey: UUID().uuidString + UUID().uuidString))
        config.server.tls = .init(
            enabled: true, certFile: certificateFile, keyFile: keyFile, handshakeTimeout: .seconds(10),
            reloadInterval: .zero)
        config.server.shutdownTimeout = .seconds(1)
        let service = MockClaudeService()
        let server = try await TestServer.start(
            config: config, logger: Logger(label: "mock-claude"), additionalRoutes: service.routes,
            handleSignals: true)
        let ready = #"{"port":\#(server.port),"ca_file":"\#(tlsFolder)/ca.crt"}"# + "\n"
        FileHandle.standardOutput.write(Data(ready.utf8))
        try await server.waitUntilStopped()
    }
}
