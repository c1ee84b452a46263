import Foundation
import Prometheus
import ProxyCore
import ProxyUpstream
import Synchronization

/// The Prometheus metrics of `/metrics` (swift-prometheus' registry, no global metrics system). Labelled series
/// are made once per label set and kept, so a request pays a dictionary lookup under a lock, not a registration.
public final class ProxyMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    /// What a finished request updates, under one lock: its `requests_total` and `tokens_total` series and the
    /// dashboard's recent traffic.
    private let perRequest = Mutex(PerRequest())
    private let authFailures: [String: Counter]
    private let refreshes: [RefreshResult: Counter]
    private let upstreamLatency: DurationHistogram
    private let timeToFirstByte: DurationHistogram
    private let poolConnections: Gauge
    private let poolStreams: Gauge
    private let poolQueued: Gauge
    /// Read at scrape time for the pool gauges.
    private let pools = Mutex<UpstreamPools?>(nil)

    struct RequestKey: Hashable {
        var status: Int
        var account: String
        var model: String

        func matches(status: Int, account: String, model: String) -> Bool {
            self.status == status && self.account == account && self.model == model
        }
    }

    struct TokenKey: Hashable {
        var account: String
        var client: String

        func matches(account: String, client: String) -> Bool {
            self.account == account && self.client == client
        }
    }

    /// The four `tokens_total` series of one account and client key, found with one lookup.
    struct TokenCounters {
        let input: Counter
        let output: Counter
        let cacheCreation: Counter
        let cacheRead: Counter

        func add(_ usage: Usage) {
            func add(_ value: Int, to counter: Counter) {
                if value > 0 { counter.increment(by: Int64(value)) }
            }
            add(usage.inputTokens, to: input)
            add(usage.outputTokens, to: output)
            add(usage.cacheCreationInputTokens, to: cacheCreation)
            add(usage.cacheReadInputTokens, to: cacheRead)
        }
    }

    struct PerRequest {
        var requests: [RequestKey: Counter] = [:]
        var tokens: [TokenKey: TokenCounters] = [:]
        /// The series the last request used: traffic repeats its labels, and comparing them is cheaper than hashing.
        var lastRequest: (key: RequestKey, counter: Counter)?
        var lastTokens: (key: TokenKey, counters: TokenCounters)?
        /// Recent requests for the dashboard's summary: one slot per minute of the last hour.
        var recent = RecentTraffic()
    }

    static let latencyBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        .seconds(30), .seconds(60), .seconds(300),
    ]

    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "claude_proxy", metricName: name, unitName: "", helpText: help)
    }

    public init() {
        let registry = registry
        authFailures = Dictionary(
            uniqueKeysWithValues: ["v1", "admin"].map { area in
                let name = Self.descriptor("auth_failures_total", "Requests refused for a missing or wrong key")
                return (area, registry.makeCounter(descriptor: name, labels: [("area", area)]))
            })
        refreshes = Dictionary(
            uniqueKeysWithValues: RefreshResult.allCases.map { result in
                let name = Self.descriptor("token_refreshes_total", "Token refreshes by result")
                return (result, registry.makeCounter(descriptor: name, labels: [("result", result.rawValue)]))
            })
        upstreamLatency = registry.makeDurationHistogram(
            descriptor: Self.descriptor(
                "upstream_response_seconds", "From sending a request upstream to its response head"),
            buckets: Self.latencyBuckets)
        timeToFirstByte = registry.makeDurationHistogram(
            descriptor: Self.descriptor(
                "time_to_first_byte_seconds", "From the client's request to the first response body byte relayed"),
            buckets: Self.latencyBuckets)
        poolConnections = registry.makeGauge(
            descriptor: Self.descriptor("upstream_connections", "Open upstream connections"))
        poolStreams = registry.makeGauge(descriptor: Self.descriptor("upstream_streams", "Open upstream streams"))
        poolQueued = registry.makeGauge(
            descriptor: Self.descriptor("upstream_queued_requests", "Requests waiting for an upstream stream"))
    }

    func watch(_ pools: UpstreamPools) {
        self.pools.withLock { $0 = pools }
    }

    func authenticationFailed(area: String) {
        authFailures[area]?.increment()
    }

    public func refreshed(_ result: RefreshResult) {
        refreshes[result]?.increment()
    }

    func upstreamAnswered(after duration: Duration) {
        upstreamLatency.record(duration)
    }

    func firstByte(after duration: Duration) {
        timeToFirstByte.record(duration)
    }

    /// One finished `/v1` request: its final status, the account that served it ("none" if none did) and model.
    func requestFinished(
        status: Int, account: String, model: String, usage: Usage, client: String, at now: Date = Date()
    ) {
        // Counted under the lock, in place: the series found are not copied out (a retain and release each).
        perRequest.withLock { state in
            state.recent.add(errors: status >= 500 || status == 429 ? 1 : 0, tokens: usage, at: now)
            state.countRequest(status: status, account: account, model: model, registry: registry)
            if usage != Usage() { state.countTokens(usage, account: account, client: client, registry: registry) }
        }
    }

    /// The dashboard's per-minute traffic of the last hour.
    func recentTraffic() -> [RecentTraffic.Minute] {
        perRequest.withLock { $0.recent.lastHour() }
    }

    /// The text exposition, with the pool gauges read now.
    public func render() -> [UInt8] {
        if let pools = pools.withLock({ $0 }) {
            poolConnections.set(Int64(pools.connectionCount))
            poolStreams.set(Int64(pools.openStreamCount))
            poolQueued.set(Int64(pools.queuedRequestCount))
        }
        return registry.emitToBuffer()
    }
}

extension ProxyMetrics.PerRequest {
    /// Labelled series are made on first use and kept: later requests pay one dictionary lookup, or none when their
    /// labels are the last request's.
    mutating func countRequest(status: Int, account: String, model: String, registry: PrometheusCollectorRegistry) {
        // Compared where it is kept: binding the last series to a name copied its key and counter.
        if lastRequest?.key.matches(status: status, account: account, model: model) == true {
            lastRequest?.counter.increment()
            return
        }
        let key = ProxyMetrics.RequestKey(status: status, account: account, model: model)
        let counter: Counter
        if let existing = requests[key] {
            counter = existing
        } else {
            counter = registry.makeCounter(
                descriptor: ProxyMetrics.descriptor(
                    "requests_total", "Relayed /v1 requests by final status, account and model"),
                labels: [("status", "\(status)"), ("account", account), ("model", model)])
            requests[key] = counter
        }
        lastRequest = (key, counter)
        counter.increment()
    }

    mutating func countTokens(_ usage: Usage, account: String, client: String, registry: PrometheusCollectorRegistry) {
        if lastTokens?.key.matches(account: account, client: client) != true {
            let key = ProxyMetrics.TokenKey(account: account, client: client)
            let counters: ProxyMetrics.TokenCounters
            if let existing = tokens[key] {
                counters = existing
            } else {
                counters = Self.makeTokenCounters(account: account, client: client, registry: registry)
                tokens[key] = counters
            }
            lastTokens = (key, counters)
        }
        lastTokens?.counters.add(usage)
    }

    private static func makeTokenCounters(
        account: String, client: String, registry: PrometheusCollectorRegistry
    ) -> ProxyMetrics.TokenCounters {
        func counter(_ kind: String) -> Counter {
            registry.makeCounter(
                descriptor: ProxyMetrics.descriptor(
                    "tokens_total", "Tokens reported in responses' usage, by account, client key and type"),
                labels: [("account", account), ("client_key", client), ("type", kind)])
        }
        return ProxyMetrics.TokenCounters(
            input: counter("input"), output: counter("output"), cacheCreation: counter("cache_creation"),
            cacheRead: counter("cache_read"))
    }
}
