import Foundation
import ProxyServer
import ProxyTLS
import ProxyTesting
import Testing

/// Certificate and key replaced while the server runs: new connections get the new pair, open ones go on.
@Suite struct CertificateReloadTests {
    /// Both CAs in one bundle, so one client context trusts the old and the new certificate.
    func clientTrusting(_ sets: TestCertificates...) throws -> (TLSContext, TemporaryDirectory) {
        let folder = try TemporaryDirectory()
        let bundle = try sets.map { try String(contentsOfFile: $0.caFile, encoding: .utf8) }.joined()
        try folder.write(bundle, to: "bundle.pem")
        let context = try TLSContext(
            client: .init(
                alpnProtocols: ["http/1.1"], extraCAFile: folder.file("bundle.pem"), useSystemTrustStore: false))
        return (context, folder)
    }

    /// Replaces `target`'s files with `source`'s the way certbot does: write elsewhere, then rename over.
    func install(_ source: TestCertificates, over target: TestCertificates) throws {
        for (from, to) in [(source.certificateFile, target.certificateFile), (source.keyFile, target.keyFile)] {
            try? FileManager.default.removeItem(atPath: to + ".new")
            try FileManager.default.copyItem(atPath: from, toPath: to + ".new")
            guard rename(to + ".new", to) == 0 else { throw SocketError.failed("rename", errno) }
        }
    }

    /// Connects until a new connection presents `serial` (the reload is asynchronous); gives up after ~10 s.
    func waitForSerial(_ serial: String, port: Int, context: TLSContext) async throws -> Bool {
        try await blocking {
            for _ in 0..<500 {
                if try TestTLSClient(port: port, context: context).session.peerCertificateSerial == serial {
                    return true
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
            return false
        }
    }

    @Test func changedFilesAreServedToNewConnectionsWhileOpenOnesContinue() async throws {
        let live = try TestCertificates()
        let next = try TestCertificates()
        let (context, bundle) = try clientTrusting(live, next)
        defer { [live, next].forEach { $0.remove() }; bundle.remove() }
        var config = ProxyConfig.testing(certificates: live)
        config.server.tls.reloadInterval = .milliseconds(50)
        let server = try await TestServer.start(config: config)

        let open = try await blocking { try TestTLSClient(port: server.port, context: context) }
        #expect(open.session.peerCertificateSerial == live.serial)
        #expect(try await blocking { try open.get("/health").status } == 200)

        try install(next, over: live)
        #expect(try await waitForSerial(next.serial, port: server.port, context: context))

        // The connection opened before the reload still works, still on the old certificate.
        #expect(try await blocking { try open.get("/health").status } == 200)
        #expect(open.session.peerCertificateSerial == live.serial)
        try await server.stop()
    }

    @Test func brokenNewPairIsRefusedAndTheOldOneKept() async throws {
        let live = try TestCertificates()
        let other = try TestCertificates()
        defer { [live, other].forEach { $0.remove() } }
        let server = try await TestServer.start(config: .testing(certificates: live))
        let store = try #require(server.application.tlsContexts)

        // A key that belongs to another certificate, then a certificate file that is not PEM.
        try FileManager.default.removeItem(atPath: live.keyFile)
        try FileManager.default.copyItem(atPath: other.keyFile, toPath: live.keyFile)
        guard case .failed(let mismatch) = store.reload() else {
            Issue.record("a mismatched key was accepted")
            return
        }
        #expect(mismatch.description.contains(live.keyFile))
        try "not a certificate".write(toFile: live.certificateFile, atomically: true, encoding: .utf8)
        guard case .failed = store.reload() else {
            Issue.record("a broken certificate file was accepted")
            return
        }
        #expect(store.reload() == .unchanged, "a broken pair is reported once, not on every check")

        let serial = try await blocking {
            try TestTLSClient(port: server.port, context: live.clientContext()).session.peerCertificateSerial
        }
        #expect(serial == live.serial)
        try await server.stop()
    }

    @Test func sighupReloadsTheRunningBinary() async throws {
        let live = try TestCertificates()
        let next = try TestCertificates()
        let (context, bundle) = try clientTrusting(live, next)
        let logs = try TemporaryDirectory()
        defer { [live, next].forEach { $0.remove() }; bundle.remove(); logs.remove() }
        let proxy = try ProxyProcess(
            ["serve"],
            environment: [
                "AUTH__API_KEY": "test-admin-key-0123456789", "SERVER__HOST": "127.0.0.1", "SERVER__PORT": "0",
                "SERVER__TLS__CERT_FILE": live.certificateFile, "SERVER__TLS__KEY_FILE": live.keyFile,
                "STORAGE__DATA_FOLDER": logs.file("data"),
                "SERVER__TLS__RELOAD_INTERVAL": "0s",  // only the signal may trigger the reload
            ],
            logFile: logs.file("proxy.log")
        )
        let port = try await blocking { try proxy.listeningPort() }
        #expect(
            try await blocking { try TestTLSClient(port: port, context: context).session.peerCertificateSerial }
                == live.serial)

        try install(next, over: live)
        proxy.signal(SIGHUP)
        #expect(try await waitForSerial(next.serial, port: port, context: context), "\(proxy.log)")
        #expect(proxy.log.contains("TLS certificate reloaded"))

        proxy.signal(SIGTERM)
        #expect(try await blocking { try proxy.waitForExit() } == 0)
    }
}
