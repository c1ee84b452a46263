import Foundation
import Hummingbird
import ProxyServer
import ProxyTLS
import ProxyTesting
import Synchronization
import Testing

/// SIGTERM: stop accepting, let what is in flight finish, then stop.
@Suite(.serialized) struct GracefulShutdownTests {
    static let chunk = 16 * 1024
    static let chunks = 64  // 1 MiB

    /// A 1 MiB download: the first chunk, then `started` fires and the rest waits for `release` (so the test
    /// decides how long the response stays in flight, however slow the machine), then 63 chunks 10 ms apart.
    static func slowDownload(started: AsyncStream<Void>.Continuation, release: AsyncStream<Void>)
        -> @Sendable (Router<BasicRequestContext>) -> Void
    {
        { router in
            router.get("/test/slow-megabyte") { _, _ -> Response in
                Response(
                    status: .ok,
                    headers: [.contentType: "application/octet-stream"],
                    body: ResponseBody { writer in
                        for index in 0..<chunks {
                            try await writer.write(ByteBuffer(repeating: UInt8(index), count: chunk))
                            if index == 0 {
                                started.yield()
                                var released = release.makeAsyncIterator()
                                await released.next()
                            }
                            try await Task.sleep(for: .milliseconds(10))
                        }
                        try await writer.finish(nil)
                    }
                )
            }
        }
    }

    /// On NIO's loops (Hummingbird's server) and on our reactors (`ReactorFrontDoor`).
    @Test(arguments: ProxyConfig.ServerIO.allCases)
    func slowResponseStartedBeforeSIGTERMArrivesComplete(io: ProxyConfig.ServerIO) async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        let (release, releaseContinuation) = AsyncStream.makeStream(of: Void.self)
        var config = ProxyConfig.testing(certificates: certificates)
        config.server.io = io
        let server = try await TestServer.start(
            config: config,
            additionalRoutes: Self.slowDownload(started: startedContinuation, release: release),
            handleSignals: true
        )
        let context = try certificates.clientContext()
        async let download = blocking {
            try TestTLSClient(port: server.port, context: context).get("/test/slow-megabyte")
        }
        var iterator = started.makeAsyncIterator()
        await iterator.next()
        // The same signal an operator or systemd sends; the server's ServiceGroup traps it in this process.
        kill(getpid(), SIGTERM)

        // While the download is held in flight, the listener is closed: new connections are refused. Up to 20 s
        // for the server to get there on a loaded machine; only then does the rest of the download go out.
        let refused = try await blocking { () -> Bool in
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                do { _ = try BlockingSocket(port: server.port) } catch {
                    if "\(error)".contains("refused") { return true }
                }
                Thread.sleep(forTimeInterval: 0.01)
            }
            return false
        }
        releaseContinuation.yield()
        #expect(refused)

        let response = try await download
        #expect(response.status == 200)
        #expect(response.body.count == Self.chunk * Self.chunks)
        let intact = (0..<Self.chunks).allSatisfy { index in
            response.body[(index * Self.chunk)..<((index + 1) * Self.chunk)].allSatisfy { $0 == UInt8(index) }
        }
        #expect(intact, "every byte of every chunk arrived in order")
        try await server.waitUntilStopped()
    }

    @Test func binaryExitsZeroOnSIGTERMAndSIGINT() async throws {
        for signal in [SIGTERM, SIGINT] {
            let certificates = try TestCertificates()
            let logs = try TemporaryDirectory()
            defer { certificates.remove(); logs.remove() }
            let proxy = try ProxyProcess(
                ["serve"],
                environment: [
                    "AUTH__API_KEY": "test-admin-key-0123456789", "SERVER__HOST": "127.0.0.1", "SERVER__PORT": "0",
                    "SERVER__TLS__CERT_FILE": certificates.certificateFile,
                    "SERVER__TLS__KEY_FILE": certificates.keyFile,
                    "STORAGE__DATA_FOLDER": logs.file("data"),
                    "LOGGER__LEVEL": "trace", "LOGGER__FORMAT": "json",
                ],
                logFile: logs.file("proxy.log")
            )
            let port = try await blocking { try proxy.listeningPort() }
            let status = try await blocking {
                try TestTLSClient(port: port, context: certificates.clientContext()).get("/health").status
            }
            #expect(status == 200)
            proxy.signal(signal)
            #expect(try await blocking { try proxy.waitForExit() } == 0, "\(proxy.log)")
            #expect(proxy.log.contains("stopped"))
            #expect(!proxy.log.contains("test-admin-key-0123456789"), "the admin key never reaches the log")
        }
    }
}
