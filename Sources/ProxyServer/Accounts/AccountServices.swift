import Logging
import NIOCore
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
    /// Picks accounts for `/v1/*`; told about token refreshes by the refresher.
    public let balancer: Balancer
    /// Per-account usage from the responses, saved every few seconds.
    public let usage: UsageRecorder
    /// What the admin API does to accounts.
    public let administration: AccountAdministration
    public let login: OAuthLogin
    public let metrics: ProxyMetrics

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
        let balancer = Balancer(clock: clock, readyMargin: buffer)
        let metrics = ProxyMetrics()
        let refresher = TokenRefresher(
            repository: store, client: oauth, clock: clock, buffer: buffer, observer: balancer, logger: logger,
            onRefresh: { metrics.refreshed($0) })
        let usage = UsageRecorder(repository: store, ledger: ClientUsageLedger(folder: store.folder), logger: logger)
        self.metrics = metrics
        self.balancer = balancer
        self.usage = usage
        self.administration = AccountAdministration(
            store: store, balancer: balancer, refresher: refresher, usage: usage, clock: clock)
        self.login = OAuthLogin(client: oauth, pending: PendingAuthorizations(clock: clock))
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

extension AccountServices {
    /// Loads the accounts into the balancer and builds the `/v1/*` relay over a pool to `claude.base_url`.
    public func makeRelay(config: ProxyConfig, logger: Logger) async throws -> ProxyRelay {
        balancer.replaceAccounts(try await store.list())
        guard let origin = UpstreamOrigin(url: config.claude.baseURL) else {
            throw ConfigError(key: "claude.base_url", problem: "not an http(s) URL")
        }
        var pool = UpstreamPool.Configuration()
        pool.maxConnections = config.upstream.maxConnections
        pool.idleTimeout = TimeAmount(config.upstream.idleTimeout)
        pool.connectTimeout = TimeAmount(config.upstream.connectTimeout)
        pool.queueTimeout = TimeAmount(config.upstream.queueTimeout)
        let upstream: UpstreamPools
        do {
            upstream = try UpstreamPools(
                origin: origin, protocol: config.upstream.protocol,
                trust: .init(extraCAFile: config.claude.caFile), group: config.server.io.eventLoopGroup,
                configuration: pool, logger: logger)
        } catch {
            throw ConfigError(key: "claude.ca_file", problem: "\(error)")
        }
        metrics.watch(upstream)
        return ProxyRelay(
            config: config, pools: upstream, balancer: balancer, refresher: refresher, usage: usage, metrics: metrics)
    }
}

extension AccountServices {
    /// The admin API over these services.
    public func makeAdminRoutes(config: ProxyConfig) -> AdminRoutes {
        AdminRoutes(config: config, administration: administration, login: login, usage: usage, metrics: metrics)
    }
}
