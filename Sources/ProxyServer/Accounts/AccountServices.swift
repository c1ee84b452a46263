import Logging
import NIOPosix
import ProxyCore
import ProxyTLS
import ProxyUpstream
import ServiceLifecycle

/// The account side of a running server: the store, the OAuth client, the single-flight token refresher and
/// the scheduled refresh that runs beside the listener.
public struct AccountServices: Sendable {
    public let store: FileAccountStore
    public let oauth: OAuthClient
    public let refresher: TokenRefresher
    public let scheduler: RefreshScheduler

    public init(config: ProxyConfig, store: FileAccountStore, logger: Logger) throws(ConfigError) {
        let tls: TLSContext
        do {
            tls = try TLSContext(client: .init(alpnProtocols: ["http/1.1"], extraCAFile: config.claude.caFile))
        } catch {
            throw ConfigError(key: "claude.ca_file", problem: "\(error)")
        }
        let transport = UpstreamHTTPTransport(
            exchange: HTTP1Exchange(group: MultiThreadedEventLoopGroup.singleton, tls: tls))
        let clock = SystemClock()
        let oauth = OAuthClient(settings: config.oauth, transport: transport, clock: clock)
        let buffer = config.refresh.buffer.seconds
        let refresher = TokenRefresher(repository: store, client: oauth, clock: clock, buffer: buffer, logger: logger)
        self.store = store
        self.oauth = oauth
        self.refresher = refresher
        self.scheduler = RefreshScheduler(
            refresher: refresher,
            repository: store,
            clock: clock,
            schedule: RefreshSchedule(interval: config.refresh.interval.seconds, offset: config.refresh.offset.seconds),
            buffer: buffer,
            logger: logger
        )
    }
}

extension Duration {
    /// Seconds as a `TimeInterval`, for the core's Foundation-based clock.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
