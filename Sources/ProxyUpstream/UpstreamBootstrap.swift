import NIOCore
import NIOPosix
import ProxyReactor

/// The one place upstream connections are made (both pools): with NIO's client bootstrap on NIO's loops, or as a
/// `ReactorChannel` when the pool's loop is a reactor (`server.io: reactor`). Either way TCP_NODELAY is on and
/// `initialize` adds the handlers before the connection is up.
enum UpstreamBootstrap {
    static func connect(
        host: String, port: Int, on loop: any EventLoop, timeout: TimeAmount, autoRead: Bool = true,
        initialize: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        if let reactor = loop as? Reactor {
            return connect(host: host, port: port, on: reactor, timeout: timeout, autoRead: autoRead, initialize)
        }
        // NIO's client bootstrap sets TCP_NODELAY (an IPPROTO_TCP option) itself. Spelled as
        // `ChannelOptions.socketOption(.tcp_nodelay)` it would be SOL_SOCKET option 1, SO_DEBUG, which needs
        // CAP_NET_ADMIN: for a proxy not run as root, every upstream connect then failed.
        return ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.autoRead, value: autoRead)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try initialize(channel) } }
            .connect(host: host, port: port)
    }

    /// Resolves off the loop (a name; an IP literal needs no lookup), then tries the addresses in the system's
    /// order until one connects, each within `timeout`.
    private static func connect(
        host: String, port: Int, on reactor: Reactor, timeout: TimeAmount, autoRead: Bool,
        _ initialize: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        let addresses =
            HostResolver.isLiteral(host)
            ? reactor.makeCompletedFuture { try HostResolver.resolve(host: host, port: port) }
            : NIOThreadPool.singleton.runIfActive(eventLoop: reactor) {
                try HostResolver.resolve(host: host, port: port)
            }
        @Sendable func attempt(_ candidates: ArraySlice<SocketAddress>) -> EventLoopFuture<any Channel> {
            ReactorChannel.connect(to: candidates.first!, on: reactor, timeout: timeout) { channel in
                let options = channel.syncOptions!
                try options.setOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                try options.setOption(ChannelOptions.autoRead, value: autoRead)
                try initialize(channel)
            }.map { $0 as any Channel }.flatMapError { error in
                candidates.count > 1 ? attempt(candidates.dropFirst()) : reactor.makeFailedFuture(error)
            }
        }
        return addresses.flatMap { attempt($0[...]) }
    }
}
