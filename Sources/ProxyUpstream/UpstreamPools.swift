import Logging
import NIOCore
import NIOPosix
import ProxyHTTP2
import ProxyTLS

/// One `UpstreamPool` (HTTP/2) and one `HTTP1UpstreamPool` per event loop. A request is served by the pools of
/// the loop it runs on (the client connection's loop: the front door runs each connection's handler there), so
/// the client connection, the upstream connection and the handler share one thread — no cross-thread wake-up per
/// frame, as with HAProxy's per-thread connection pools. Each loop's pool may open `maxConnections / loops`
/// connections (at least one). The loops are NIO's or our reactors (`server.io`).
///
/// Which of the two serves the origin is `upstream.protocol`: fixed, or under `auto` learned from the first TLS
/// handshake (see `OriginProtocol`). Only the chosen pool opens connections, apart from those first handshakes
/// (at most one per loop): an HTTP/1.1 answer costs one TLS handshake that carries no request.
public final class UpstreamPools: Sendable {
    public let origin: UpstreamOrigin
    private let pools: [(loop: any EventLoop, http2: UpstreamPool, http1: HTTP1UpstreamPool)]
    private let originProtocol: OriginProtocol

    /// HTTP/2 only, over `tls` as given (its ALPN list should be `["h2"]`).
    public convenience init(
        origin: UpstreamOrigin, tls: TLSContext?, group: any EventLoopGroup,
        configuration: UpstreamPool.Configuration = .init(), logger: Logger = Logger(label: "claude-proxy.upstream")
    ) {
        self.init(
            origin: origin, protocol: .h2, http2TLS: tls, http1TLS: nil, group: group, configuration: configuration,
            logger: logger)
    }

    /// Pools for `protocol`, with TLS contexts built from `trust` (CA files; the ALPN lists are set here: HTTP/2
    /// connections offer `h2` — and `http/1.1` under `auto` —, HTTP/1.1 connections offer `http/1.1` only).
    public convenience init(
        origin: UpstreamOrigin, protocol choice: UpstreamProtocol, trust: TLSContext.ClientConfiguration,
        group: any EventLoopGroup, configuration: UpstreamPool.Configuration = .init(),
        logger: Logger = Logger(label: "claude-proxy.upstream")
    ) throws(OpenSSLError) {
        var http2Trust = trust
        http2Trust.alpnProtocols = choice.http2ALPN
        var http1Trust = trust
        http1Trust.alpnProtocols = ["http/1.1"]
        self.init(
            origin: origin, protocol: choice,
            http2TLS: origin.isTLS ? try TLSContext(client: http2Trust) : nil,
            http1TLS: origin.isTLS ? try TLSContext(client: http1Trust) : nil,
            group: group, configuration: configuration, logger: logger)
    }

    private init(
        origin: UpstreamOrigin, protocol choice: UpstreamProtocol, http2TLS: TLSContext?, http1TLS: TLSContext?,
        group: any EventLoopGroup, configuration: UpstreamPool.Configuration, logger: Logger
    ) {
        self.origin = origin
        let originProtocol = OriginProtocol(choice, origin: origin, logger: logger)
        let loops = Array(group.makeIterator())
        var perLoop = configuration
        perLoop.maxConnections = max(1, configuration.maxConnections / max(1, loops.count))
        if originProtocol.mode == .undecided {
            perLoop.onNegotiated = { originProtocol.learned($0) }
        }
        let pools = loops.map { loop in
            (
                loop: loop,
                http2: UpstreamPool(
                    origin: origin, tls: http2TLS, group: loop, configuration: perLoop, logger: logger),
                http1: HTTP1UpstreamPool(
                    origin: origin, tls: http1TLS, group: loop, configuration: perLoop, logger: logger)
            )
        }
        originProtocol.whenHTTP1 {
            for entry in pools { entry.http2.shutdown() }
        }
        self.pools = pools
        self.originProtocol = originProtocol
    }

    /// Sends a request (body in memory, replayable) through the calling loop's pool for the origin's protocol
    /// and waits for the response head; see `UpstreamPool.send` and `HTTP1UpstreamPool.send`.
    public func send(_ fields: [H2Field], body: ByteBuffer?, responseHeadTimeout: TimeAmount) async throws
        -> UpstreamExchange
    {
        let entry = currentEntry
        if originProtocol.mode == .http1 {
            return UpstreamExchange(
                try await entry.http1.send(fields, body: body, responseHeadTimeout: responseHeadTimeout))
        }
        do {
            return UpstreamExchange(
                try await entry.http2.send(fields, body: body, responseHeadTimeout: responseHeadTimeout))
        } catch  where originProtocol.mode == .http1 {
            // The first handshake found an HTTP/1.1-only origin while this request waited for HTTP/2.
            return UpstreamExchange(
                try await entry.http1.send(fields, body: body, responseHeadTimeout: responseHeadTimeout))
        }
    }

    /// The HTTP/2 pool of the calling thread's event loop, or the first one when called from elsewhere (every request
    /// of the fast relay asks).
    public var current: UpstreamPool { pools[currentIndex].http2 }

    private var currentEntry: (loop: any EventLoop, http2: UpstreamPool, http1: HTTP1UpstreamPool) {
        pools[currentIndex]
    }

    /// The calling thread's event loop's entry, found by index (an entry handed to a closure is a copy: three
    /// retains), or the first one when called from elsewhere.
    private var currentIndex: Int {
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop {
            for index in pools.indices where pools[index].loop === loop { return index }
        } else {
            for index in pools.indices where pools[index].loop.inEventLoop { return index }
        }
        return 0
    }

    /// The protocol requests go out with now: `h2`, `http/1.1`, or nil while `auto` has not learned it yet.
    public var negotiatedProtocol: String? {
        switch originProtocol.mode {
        case .undecided: nil
        case .http2: "h2"
        case .http1: "http/1.1"
        }
    }

    public var connectionCount: Int { pools.reduce(0) { $0 + $1.http2.connectionCount + $1.http1.connectionCount } }
    /// HTTP/2 streams plus HTTP/1.1 connections carrying a request.
    public var openStreamCount: Int {
        pools.reduce(0) { $0 + $1.http2.openStreamCount + $1.http1.busyConnectionCount }
    }
    public var queuedRequestCount: Int {
        pools.reduce(0) { $0 + $1.http2.queuedRequestCount + $1.http1.queuedRequestCount }
    }

    public func shutdown() {
        for entry in pools {
            entry.http2.shutdown()
            entry.http1.shutdown()
        }
    }
}
