import NIOCore
import NIOPosix
import ProxyCore
import ProxyReactor
import ProxyUpstream

/// The proxy's settings, as read by ``ConfigLoader`` from `config.yaml` and the environment.
///
/// The initialisers' default values are the documented defaults (see `config.example.yaml`). Paths in them
/// are as written there; ``ConfigLoader`` expands `~` and makes them absolute.
public struct ProxyConfig: Sendable, Equatable {
    public struct TLS: Sendable, Equatable {
        public var enabled: Bool
        public var certFile: String
        public var keyFile: String
        public var handshakeTimeout: Duration
        /// How often the certificate files are checked for changes; `.zero` turns reloading off.
        public var reloadInterval: Duration

        public init(
            enabled: Bool = true,
            certFile: String = "certs/server.crt",
            keyFile: String = "certs/server.key",
            handshakeTimeout: Duration = .seconds(10),
            reloadInterval: Duration = .seconds(5)
        ) {
            self.enabled = enabled
            self.certFile = certFile
            self.keyFile = keyFile
            self.handshakeTimeout = handshakeTimeout
            self.reloadInterval = reloadInterval
        }
    }

    public struct Server: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var tls: TLS
        public var shutdownTimeout: Duration
        /// Whose event loops run the sockets: NIO's, or our own reactors.
        public var io: ServerIO

        public init(
            host: String = "0.0.0.0",
            port: Int = 4000,
            tls: TLS = TLS(),
            shutdownTimeout: Duration = .seconds(30),
            io: ServerIO = .reactor
        ) {
            self.host = host
            self.port = port
            self.tls = tls
            self.shutdownTimeout = shutdownTimeout
            self.io = io
        }
    }

    /// `server.io`: the event loops the front door's and the upstream pools' sockets run on.
    public enum ServerIO: String, Sendable, CaseIterable {
        /// SwiftNIO's socket channels (Hummingbird's server, NIO's client bootstrap).
        case nio
        /// `ProxyReactor` (the default): our epoll loops and channels, one loop a core, with the same handlers on
        /// them; 5-8 % less CPU a request than NIO's for HTTP/1.1 clients (docs/benchmarks.md, session 19).
        case reactor

        /// The group whose loops run the sockets (one loop a core, made on first use).
        public var eventLoopGroup: any EventLoopGroup {
            switch self {
            case .nio: MultiThreadedEventLoopGroup.singleton
            case .reactor: ReactorGroup.singleton
            }
        }
    }

    public struct Limits: Sendable, Equatable {
        /// Bytes.
        public var maxHeaderSize: Int
        public var idleTimeout: Duration
        public var headerTimeout: Duration
        public var maxConnections: Int
        /// SETTINGS_MAX_CONCURRENT_STREAMS announced to HTTP/2 clients.
        public var maxConcurrentStreams: Int
        /// Bytes of a `/v1` request body (after gzip decoding), kept whole so it can be replayed on failover.
        public var maxRequestBody: Int
        /// HTTP/2 streams served per client connection before a graceful GOAWAY (0: no limit).
        public var maxStreamsPerConnection: Int

        public init(
            maxHeaderSize: Int = 32768,
            idleTimeout: Duration = .seconds(60),
            headerTimeout: Duration = .seconds(10),
            maxConnections: Int = 10000,
            maxConcurrentStreams: Int = 128,
            maxRequestBody: Int = 32 << 20,
            maxStreamsPerConnection: Int = 0
        ) {
            self.maxStreamsPerConnection = maxStreamsPerConnection
            self.maxHeaderSize = maxHeaderSize
            self.idleTimeout = idleTimeout
            self.headerTimeout = headerTimeout
            self.maxConnections = maxConnections
            self.maxConcurrentStreams = maxConcurrentStreams
            self.maxRequestBody = maxRequestBody
        }
    }

    /// `oauth.*`: the core's settings type, so the defaults live in one place.
    public typealias OAuth = OAuthSettings

    public struct Claude: Sendable, Equatable {
        public var baseURL: String
        /// Extra CA bundle (PEM) trusted for the upstream, besides the system roots; `nil` for none.
        public var caFile: String?
        /// Headers added to every upstream request (`name: value`), after the client's; they replace a client
        /// header of the same name.
        public var extraHeaders: [(name: String, value: String)]

        public init(
            baseURL: String = "https://api.anthropic.com", caFile: String? = nil,
            extraHeaders: [(name: String, value: String)] = []
        ) {
            self.baseURL = baseURL
            self.caFile = caFile
            self.extraHeaders = extraHeaders
        }

        public static func == (lhs: Claude, rhs: Claude) -> Bool {
            lhs.baseURL == rhs.baseURL && lhs.caFile == rhs.caFile
                && lhs.extraHeaders.map { "\($0.name): \($0.value)" }
                    == rhs.extraHeaders.map { "\($0.name): \($0.value)" }
        }
    }

    public struct Storage: Sendable, Equatable {
        public var dataFolder: String

        public init(dataFolder: String = "~/.claude-proxy/data") {
            self.dataFolder = dataFolder
        }
    }

    public struct Auth: Sendable, Equatable {
        public var apiKey: String
        /// Keys clients may use on `/v1/*` besides the admin key; they cannot call the admin API.
        public var clientKeys: [ClientKey]

        public init(apiKey: String, clientKeys: [ClientKey] = []) {
            self.apiKey = apiKey
            self.clientKeys = clientKeys
        }
    }

    public enum LogLevel: String, Sendable, Equatable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
    }

    public enum LogFormat: String, Sendable, Equatable, CaseIterable {
        case text, json
    }

    public struct Logger: Sendable, Equatable {
        public var level: LogLevel
        public var format: LogFormat

        public init(level: LogLevel = .info, format: LogFormat = .text) {
            self.level = level
            self.format = format
        }
    }

    public struct Retry: Sendable, Equatable {
        public var maxRetries: Int
        public var retryDelay: Duration

        public init(maxRetries: Int = 3, retryDelay: Duration = .seconds(1)) {
            self.maxRetries = maxRetries
            self.retryDelay = retryDelay
        }
    }

    /// Token refresh: on demand `buffer` before expiry, and on a schedule (every `interval`, shifted by `offset`
    /// from the hour boundaries; the default runs at minute 0 of every hour).
    public struct Refresh: Sendable, Equatable {
        public var buffer: Duration
        public var interval: Duration
        public var offset: Duration

        public init(buffer: Duration = .seconds(60), interval: Duration = .seconds(3600), offset: Duration = .zero) {
            self.buffer = buffer
            self.interval = interval
            self.offset = offset
        }
    }

    /// The pooled connections to `claude.base_url`: HTTP/2, or keep-alive HTTP/1.1 for an origin that speaks only
    /// that.
    public struct Upstream: Sendable, Equatable {
        /// `auto` (ALPN decides for https; h2c for http), `h2` or `http1`.
        public var `protocol`: UpstreamProtocol
        /// Per origin; with HTTP/1.1 also the number of requests in flight (one per connection).
        public var maxConnections: Int
        public var idleTimeout: Duration
        public var connectTimeout: Duration
        /// Non-streaming requests can take minutes before the first response byte.
        public var responseHeaderTimeout: Duration
        /// How long a request may wait for a free stream when every connection is busy.
        public var queueTimeout: Duration
        /// `/v1` requests (HTTP/1.1 and HTTP/2 clients) relayed on the connection's event loop when nothing unusual happens
        /// (no waiting, refreshing or retrying); off: every request takes the async relay.
        public var fastPath: Bool

        public init(
            protocol: UpstreamProtocol = .auto,
            maxConnections: Int = 8,
            idleTimeout: Duration = .seconds(90),
            connectTimeout: Duration = .seconds(10),
            responseHeaderTimeout: Duration = .seconds(600),
            queueTimeout: Duration = .seconds(30),
            fastPath: Bool = true
        ) {
            self.fastPath = fastPath
            self.protocol = `protocol`
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
            self.connectTimeout = connectTimeout
            self.responseHeaderTimeout = responseHeaderTimeout
            self.queueTimeout = queueTimeout
        }
    }

    public struct Metrics: Sendable, Equatable {
        /// `/metrics` without the admin key (for a scraper on a private network).
        public var isPublic: Bool

        public init(isPublic: Bool = false) { self.isPublic = isPublic }
    }

    public var server: Server
    public var limits: Limits
    public var oauth: OAuth
    public var claude: Claude
    public var storage: Storage
    public var auth: Auth
    public var logger: Logger
    public var retry: Retry
    public var refresh: Refresh
    public var upstream: Upstream
    public var metrics: Metrics

    public init(
        server: Server = Server(),
        limits: Limits = Limits(),
        oauth: OAuth = OAuth(),
        claude: Claude = Claude(),
        storage: Storage = Storage(),
        auth: Auth,
        logger: Logger = Logger(),
        retry: Retry = Retry(),
        refresh: Refresh = Refresh(),
        upstream: Upstream = Upstream(),
        metrics: Metrics = Metrics()
    ) {
        self.server = server
        self.limits = limits
        self.oauth = oauth
        self.claude = claude
        self.storage = storage
        self.auth = auth
        self.logger = logger
        self.retry = retry
        self.refresh = refresh
        self.upstream = upstream
        self.metrics = metrics
    }
}
