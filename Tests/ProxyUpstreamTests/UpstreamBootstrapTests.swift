import NIOCore
import NIOPosix
import Testing

@testable import ProxyUpstream

/// Upstream sockets get TCP_NODELAY and nothing that needs privileges: SO_DEBUG (what
/// `ChannelOptions.socketOption(.tcp_nodelay)` sets) needs CAP_NET_ADMIN, and failed every upstream connect of a
/// proxy not run as root.
@Suite struct UpstreamBootstrapTests {
    @Test func upstreamSocketsGetNoDelayAndNoDebug() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        let channel = try await UpstreamBootstrap.make(group: group, connectTimeout: .seconds(5))
            .connect(host: "127.0.0.1", port: port).get()
        let noDelay = try await channel.getOption(ChannelOptions.tcpOption(.tcp_nodelay)).get()
        let debug = try await channel.getOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_DEBUG)).get()
        try await channel.close()
        try await listener.close()
        #expect(noDelay != 0)
        #expect(debug == 0, "SO_DEBUG needs CAP_NET_ADMIN: an unprivileged proxy could not connect upstream")
    }
}
