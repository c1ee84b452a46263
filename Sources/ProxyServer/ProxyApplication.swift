import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ProxyTLS
import ServiceLifecycle
import UnixSignals

/// Assembles the server from a loaded configuration: router, front door (OpenSSL TLS or plain HTTP/1.1 with
/// request-head guard and limits), and the services that run beside it.
public struct ProxyApplication: Sendable {
    public let config: ProxyConfig
    public let logger: Logger
    /// Present when TLS is on: the context store new connections take their certificate from.
    public let tlsContexts: TLSContextStore?
    /// Routes added after the built-in ones (tests use it for endpoints such as a slow download).
    public var additionalRoutes: (@Sendable (Router<BasicRequestContext>) -> Void)?

    /// Loads the TLS certificate and key; a failure names the config key of the file at fault.
    public init(config: ProxyConfig, logger: Logger) throws(ConfigError) {
        self.config = config
        self.logger = logger
        guard config.server.tls.enabled else {
            tlsContexts = nil
            return
        }
        let tls = TLSContext.ServerConfiguration(
            certificateChainFile: config.server.tls.certFile,
            privateKeyFile: config.server.tls.keyFile,
            alpnProtocols: Self.alpnProtocols
        )
        do {
            tlsContexts = try TLSContextStore(configuration: tls)
        } catch {
            let key =
                error.kind == .file(path: config.server.tls.keyFile) ? "server.tls.key_file" : "server.tls.cert_file"
            throw ConfigError(key: key, problem: "\(error)")
        }
    }

    /// What ALPN offers: only protocols the front door serves (HTTP/2 joins with the nghttp2 server session).
    static let alpnProtocols = ["http/1.1"]

    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestLogMiddleware())
        HealthRoutes(startedAt: .now).register(on: router)
        additionalRoutes?(router)
        return router
    }

    public func makeServerBuilder() -> HTTPServerBuilder {
        let limits = config.limits
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestHeadObserver()],
            idleTimeout: TimeAmount(limits.idleTimeout),
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: limits.maxHeaderSize,
                maxHeaderListSize: limits.maxHeaderSize,
                maxHeaderFieldCount: 200
            )
        )
        let headerTimeout = TimeAmount(limits.headerTimeout)
        let handshakeTimeout = TimeAmount(config.server.tls.handshakeTimeout)
        let contexts = tlsContexts
        return HTTPServerBuilder { responder in
            let guarded = RequestHeadGuardChannel(
                HTTP1Channel(responder: responder, configuration: http1), timeout: headerTimeout)
            guard let contexts else { return guarded }
            return OpenSSLChannel(guarded, contexts: contexts, handshakeTimeout: handshakeTimeout)
        }
    }

    /// The application as a `Service`; `onServerRunning` receives the listening channel (tests read the port).
    public func makeApplication(
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: makeRouter(),
            server: makeServerBuilder(),
            configuration: .init(
                address: .hostname(config.server.host, port: config.server.port),
                serverName: nil,
                availableConnectionsDelegate: MaximumAvailableConnections(config.limits.maxConnections)
            ),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }

    /// Serves until SIGTERM/SIGINT and the graceful shutdown that follows have finished.
    public func run() async throws {
        let logger = logger
        try await makeServiceGroup(onServerRunning: { channel in
            logger.notice("listening", metadata: ["address": "\(channel.localAddress?.description ?? "?")"])
        }).run()
    }

    /// Everything that runs: the server and, with TLS, the certificate reloader. SIGTERM/SIGINT stop accepting,
    /// let in-flight requests finish for up to `server.shutdown_timeout`, then cancel what is left.
    public func makeServiceGroup(
        handleSignals: Bool = true,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> ServiceGroup {
        var services: [any Service] = [makeApplication(onServerRunning: onServerRunning)]
        if let tlsContexts {
            services.append(
                CertificateReloadService(
                    store: tlsContexts,
                    pollInterval: config.server.tls.reloadInterval,
                    logger: logger
                )
            )
        }
        var configuration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger
        )
        configuration.maximumGracefulShutdownDuration = config.server.shutdownTimeout
        configuration.maximumCancellationDuration = .seconds(5)
        return ServiceGroup(configuration: configuration)
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
