import NIOCore
import NIOPosix

/// The one place upstream connections get their socket options (both pools).
enum UpstreamBootstrap {
    /// NIO's client bootstrap sets TCP_NODELAY (an IPPROTO_TCP option) itself. Spelled as
    /// `ChannelOptions.socketOption(.tcp_nodelay)` it would be SOL_SOCKET option 1, SO_DEBUG, which needs
    /// CAP_NET_ADMIN: for a proxy not run as root, every upstream connect then failed.
    static func make(group: any EventLoopGroup, connectTimeout: TimeAmount) -> ClientBootstrap {
        ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
    }
}
