import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ProxyServer
import ProxyTLS
import ProxyUpstream
import ServiceLifecycle

/// The real front door (`ProxyApplication`) served in-process on a free loopback port.
public final class TestServer: Sendable {
    public let port: Int
    public let application: ProxyApplication
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Starts the server on a free loopback port (`config.server.host` and `port` are replaced). `alpnProtocols`
    /// restricts what the TLS front door offers, e.g. `["http/1.1"]` for an HTTP/1.1-only server.
    public static func start(
        config: ProxyConfig,
        logger: Logger = Logger(label: "test-server"),
        additionalRoutes: (@Sendable (Router<BasicRequestContext>) -> Void)? = nil,
        handleSignals: Bool = false,
        alpnProtocols: [String] = ProxyApplication.alpnProtocols
    ) async throws -> TestServer {
        var config = config
        config.server.host = "127.0.0.1"
        config.server.port = 0
        var application = try ProxyApplication(config: config, logger: logger, alpnProtocols: alpnProtocols)
        application.additionalRoutes = additionalRoutes
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let group = application.makeServiceGroup(handleSignals: handleSignals) { address in
            continuation.yield(address?.port ?? 0)
            continuation.finish()
        }
        let task = Task { try await group.run() }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            task.cancel()
            throw TestServerError.didNotStart
        }
        return TestServer(port: port, application: application, group: group, task: task)
    }

    private init(port: Int, application: ProxyApplication, group: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.application = application
        self.group = group
        self.task = task
    }

    /// Graceful shutdown, as on SIGTERM; returns once the server has stopped.
    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// Waits for the server to stop by itself (e.g. after a signal).
    public func waitUntilStopped() async throws {
        try await task.value
    }
}

public enum TestServerError: Error {
    case didNotStart
}

extension ProxyConfig {
    /// A configuration for tests: TLS with the given certificates (or plain HTTP), a valid admin key, short timeouts.
    public static func testing(certificates: TestCertificates?) -> ProxyConfig {
        var config = ProxyConfig(auth: .init(apiKey: "test-admin-key-0123456789"))
        if let certificates {
            config.server.tls = .init(
                enabled: true,
                certFile: certificates.certificateFile,
                keyFile: certificates.keyFile,
                handshakeTimeout: .seconds(10),
                reloadInterval: .zero
            )
        } else {
            config.server.tls.enabled = false
        }
        return config
    }
}

extension TestServer {
    /// Runs `body` against a TLS server with fresh certificates (after `adjust` edits the test configuration),
    /// then stops the server and removes the certificates, also when `body` throws.
    public static func withTLSServer(
        _ adjust: (inout ProxyConfig) -> Void = { _ in },
        routes: (@Sendable (Router<BasicRequestContext>) -> Void)? = nil,
        _ body: (TestServer, TestCertificates) async throws -> Void
    ) async throws {
        StallWatchdog.ensureRunning()
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        var config = ProxyConfig.testing(certificates: certificates)
        adjust(&config)
        let server = try await TestServer.start(config: config, additionalRoutes: routes)
        do {
            try await body(server, certificates)
        } catch {
            try? await server.stop()
            throw error
        }
        try await server.stop()
    }
}

extension UpstreamPool {
    /// A pool to a test server over TLS (ALPN h2), trusting only the test CA.
    public static func testing(port: Int, certificates: TestCertificates, maxConnections: Int = 8) throws
        -> UpstreamPool
    {
        let tls = try TLSContext(
            client: .init(alpnProtocols: ["h2"], extraCAFile: certificates.caFile, useSystemTrustStore: false))
        var configuration = Configuration()
        configuration.maxConnections = maxConnections
        return UpstreamPool(
            origin: UpstreamOrigin(isTLS: true, host: "localhost", port: port), tls: tls,
            group: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }
}

extension TestServer {
    /// A TLS test server with `routes` (short shutdown timeout: stalled streams must not hold the test) and an
    /// upstream pool to it; both torn down after `body`.
    public static func withUpstreamPool(
        routes: @escaping @Sendable (Router<BasicRequestContext>) -> Void,
        _ body: (UpstreamPool, Int) async throws -> Void
    ) async throws {
        try await withTLSServer({ $0.server.shutdownTimeout = .milliseconds(500) }, routes: routes) {
            server, certificates in
            let pool = try UpstreamPool.testing(port: server.port, certificates: certificates)
            defer { pool.shutdown() }
            try await body(pool, server.port)
        }
    }
}
