import Logging
import NIOCore
import NIOPosix
import ProxyTLS

/// One `UpstreamPool` per event loop. A request is served by the pool of the loop it runs on (the client
/// connection's loop: the front door runs each connection's handler there), so the client connection, the
/// upstream connection and the handler share one thread — no cross-thread wake-up per frame, as with HAProxy's
/// per-thread connection pools. Each loop's pool may open `maxConnections / loops` connections (at least one).
public final class UpstreamPools: Sendable {
    public let origin: UpstreamOrigin
    private let pools: [(loop: any EventLoop, pool: UpstreamPool)]

    public init(
        origin: UpstreamOrigin, tls: TLSContext?, group: MultiThreadedEventLoopGroup,
        configuration: UpstreamPool.Configuration = .init(), logger: Logger = Logger(label: "claude-proxy.upstream")
    ) {
        self.origin = origin
        let loops = Array(group.makeIterator())
        var perLoop = configuration
        perLoop.maxConnections = max(1, configuration.maxConnections / max(1, loops.count))
        pools = loops.map { loop in
            (loop, UpstreamPool(origin: origin, tls: tls, group: loop, configuration: perLoop, logger: logger))
        }
    }

    /// The pool of the calling thread's event loop, or the first one when called from elsewhere.
    public var current: UpstreamPool {
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop,
            let match = pools.first(where: { $0.loop === loop })
        {
            return match.pool
        }
        return pools[0].pool
    }

    public var connectionCount: Int { pools.reduce(0) { $0 + $1.pool.connectionCount } }
    public var openStreamCount: Int { pools.reduce(0) { $0 + $1.pool.openStreamCount } }
    public var queuedRequestCount: Int { pools.reduce(0) { $0 + $1.pool.queuedRequestCount } }

    public func shutdown() {
        for entry in pools { entry.pool.shutdown() }
    }
}
