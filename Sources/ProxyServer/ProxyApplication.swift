import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import ProxyCore
import ProxyHTTP2
import ProxyReactor
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
    /// The accounts, when the server has opened its data folder (`serve` does; front-door tests need not).
    public var accounts: (any AccountStore)?
    /// `/v1/*`, once accounts and the upstream pool exist (`serve` sets it).
    public var relay: ProxyRelay?
    /// `/api/*`, `/oauth/*`, `/metrics` (`serve` sets it with the account services).
    public var admin: AdminRoutes?
    /// The accounts as they are now, for `/health` and `/ready` (live cooldowns); defaults to the store's list.
    public var currentAccounts: (@Sendable () async throws -> [Account])?
    /// Services that run beside the listener (the scheduled token refresh).
    public var backgroundServices: [any Service] = []
    /// Routes added after the built-in ones (tests use it for endpoints such as a slow download).
    public var additionalRoutes: (@Sendable (Router<BasicRequestContext>) -> Void)?

    /// Loads the TLS certificate and key; a failure names the config key of the file at fault. `alpnProtocols`
    /// is what the front door offers (tests restrict it to play an HTTP/1.1-only server).
    public init(
        config: ProxyConfig, logger: Logger, alpnProtocols: [String] = ProxyApplication.alpnProtocols
    ) throws(ConfigError) {
        self.config = config
        self.logger = logger
        guard config.server.tls.enabled else {
            tlsContexts = nil
            return
        }
        let tls = TLSContext.ServerConfiguration(
            certificateChainFile: config.server.tls.certFile,
            privateKeyFile: config.server.tls.keyFile,
            alpnProtocols: alpnProtocols
        )
        do {
            tlsContexts = try TLSContextStore(configuration: tls)
        } catch {
            let key =
                error.kind == .file(path: config.server.tls.keyFile) ? "server.tls.key_file" : "server.tls.cert_file"
            throw ConfigError(key: key, problem: "\(error)")
        }
    }

    /// What ALPN offers, in our order of preference: HTTP/2 (nghttp2), then HTTP/1.1.
    public static let alpnProtocols = ["h2", "http/1.1"]

    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestLogMiddleware(loggedElsewhere: relay == nil ? nil : "/v1/"))
        let stored = accounts.map { store in { @Sendable in try await store.list() } }
        HealthRoutes(startedAt: .now, accounts: currentAccounts ?? stored).register(on: router)
        relay?.register(on: router)
        admin?.register(on: router)
        additionalRoutes?(router)
        return router
    }

    /// Header fields an HTTP/1.1 request may have (NIO's decoder and `HTTP1DirectPath`).
    static let maxHeaderFieldCount = 200

    public func makeServerBuilder(router: Router<BasicRequestContext>) -> HTTPServerBuilder {
        let routerResponder = router.buildResponder()
        return HTTPServerBuilder { responder in makeFrontDoorChannel(router: routerResponder, responder: responder) }
    }

    /// The front door's child channel, answering HTTP/1.1 requests through `responder` (Hummingbird's application
    /// makes it; on reactors, `http1Responder`) and HTTP/2 ones through the router.
    func makeFrontDoorChannel(
        router: RouterResponder<BasicRequestContext>, responder: @escaping HTTPChannelHandler.Responder
    ) -> FrontDoorChannel {
        let limits = config.limits
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestHeadObserver()],
            idleTimeout: nil,  // HTTP1FastPath keeps it: it sees the requests the relay takes over too
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: limits.maxHeaderSize,
                maxHeaderListSize: limits.maxHeaderSize,
                maxHeaderFieldCount: Self.maxHeaderFieldCount
            )
        )
        var http2Settings = H2ServerHandler.Configuration()
        http2Settings.session.maxConcurrentStreams = UInt32(limits.maxConcurrentStreams)
        http2Settings.session.maxHeaderListSize = UInt32(limits.maxHeaderSize)
        http2Settings.idleTimeout = TimeAmount(limits.idleTimeout)
        http2Settings.maxStreamsPerConnection = limits.maxStreamsPerConnection
        http2Settings.logger = logger
        let fastPath = config.upstream.fastPath ? relay.map { FastRelay(relay: $0, logger: logger) } : nil
        http2Settings.interceptor = fastPath
        let http2 = http2Settings
        let headerTimeout = TimeAmount(limits.headerTimeout)
        let tls = tlsContexts.map {
            FrontDoorChannel.TLS(contexts: $0, handshakeTimeout: TimeAmount(config.server.tls.handshakeTimeout))
        }
        let http2Responder = HTTP2StreamResponder(responder: router, relay: relay, logger: logger)
        return FrontDoorChannel(
            http1: RequestHeadGuardChannel(
                HTTP1Channel(responder: responder, configuration: http1), timeout: headerTimeout,
                idleTimeout: TimeAmount(limits.idleTimeout), fastPath: fastPath,
                headLimits: .init(length: limits.maxHeaderSize, fields: Self.maxHeaderFieldCount)),
            http2: http2Responder,
            http2Configuration: http2,
            tls: tls
        )
    }

    /// The application as a `Service`; `onServerRunning` receives the listening channel (tests read the port).
    public func makeApplication(
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = makeRouter()
        return Application(
            router: router,
            server: makeServerBuilder(router: router),
            configuration: .init(
                address: .hostname(config.server.host, port: config.server.port),
                serverName: nil,
                availableConnectionsDelegate: MaximumAvailableConnections(config.limits.maxConnections)
            ),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }

    /// The front door on our reactors (`server.io: reactor`), in place of Hummingbird's server.
    func makeReactorFrontDoor(
        onServerRunning: @escaping @Sendable (SocketAddress?) async -> Void
    ) -> some Service {
        let router = makeRouter().buildResponder()
        return ReactorFrontDoor(
            childChannel: makeFrontDoorChannel(router: router, responder: Self.http1Responder(router, logger: logger)),
            host: config.server.host, port: config.server.port, group: ReactorGroup.singleton,
            maxConnections: config.limits.maxConnections, logger: logger, onServerRunning: onServerRunning)
    }

    /// What Hummingbird's application does for each HTTP/1.1 request: a request context with its own id, the
    /// router's response (500 for an error it did not map), the `Date` header, the response written.
    static func http1Responder(_ responder: RouterResponder<BasicRequestContext>, logger: Logger)
        -> HTTPChannelHandler.Responder
    {
        { request, writer, channel in
            var logger = logger  // the application's (a `Logger(label:)` here asked the logging system for a handler)
            logger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
            let context = BasicRequestContext(source: .init(channel: channel, logger: logger))
            var response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch let error as HTTPParserError {
                throw error
            } catch {
                logger.debug("unhandled error", metadata: ["error": "\(error)"])
                response = Response(status: .internalServerError, body: .init())
            }
            response.headers[.date] = HTTPDate.now()
            do {
                try await writer.write(response: response.head, body: response.body)
            } catch is HTTPParserError {
                throw ParseErrorWhileWritingResponse()  // that one would be answered with a 400: close instead
            }
        }
    }

    /// A parse error met while the response was written: the connection closes without a second response.
    struct ParseErrorWhileWritingResponse: Error {}

    /// Serves until SIGTERM/SIGINT and the graceful shutdown that follows have finished.
    public func run() async throws {
        let logger = logger
        try await makeServiceGroup(onServerRunning: { address in
            logger.notice("listening", metadata: ["address": "\(address?.description ?? "?")"])
        }).run()
    }

    /// Everything that runs: the server and, with TLS, the certificate reloader. SIGTERM/SIGINT stop accepting,
    /// let in-flight requests finish for up to `server.shutdown_timeout`, then cancel what is left.
    public func makeServiceGroup(
        handleSignals: Bool = true,
        onServerRunning: @escaping @Sendable (SocketAddress?) async -> Void = { _ in }
    ) -> ServiceGroup {
        let server: any Service =
            switch config.server.io {
            case .nio: makeApplication { await onServerRunning($0.localAddress) }
            case .reactor: makeReactorFrontDoor(onServerRunning: onServerRunning)
            }
        var services: [any Service] = backgroundServices + [server]
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
