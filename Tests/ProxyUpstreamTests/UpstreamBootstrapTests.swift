import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProxyReactor
import Testing

@testable import ProxyUpstream

/// Upstream sockets get TCP_NODELAY and nothing that needs privileges: SO_DEBUG (what
/// `ChannelOptions.socketOption(.tcp_nodelay)` sets) needs CAP_NET_ADMIN, and failed every upstream connect of a
/// proxy not run as root. On NIO's loops and on reactors alike; a name is resolved (the listener has only the IPv4
/// loopback address, which need not be the first `localhost` resolves to) and the handlers are added before the
/// connection is up.
@Suite struct UpstreamBootstrapTests {
    @Test(arguments: [LoopKind.nio, .reactor])
    func upstreamSocketsGetNoDelayAndNoDebug(loops: LoopKind) async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        let loop = loops.group.next()
        let initializedBeforeActive = NIOLockedValueBox(false)
        let channel = try await UpstreamBootstrap.connect(
            host: "localhost", port: port, on: loop, timeout: .seconds(5), autoRead: false
        ) { channel in
            initializedBeforeActive.withLockedValue { $0 = !channel.isActive }
        }.get()
        #expect(channel.eventLoop === loop)
        #expect(initializedBeforeActive.withLockedValue { $0 })
        let noDelay = try await channel.getOption(ChannelOptions.tcpOption(.tcp_nodelay)).get()
        let debug = try await channel.getOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_DEBUG)).get()
        let autoRead = try await channel.getOption(ChannelOptions.autoRead).get()
        try await channel.close()
        try await listener.close()
        #expect(noDelay != 0)
        #expect(debug == 0, "SO_DEBUG needs CAP_NET_ADMIN: an unprivileged proxy could not connect upstream")
        #expect(!autoRead)
    }

    @Test func aNameThatDoesNotResolveFailsTheConnect() async throws {
        let loop = ReactorGroup.singleton.next()
        await #expect(throws: HostResolver.UnknownHost.self) {
            _ = try await UpstreamBootstrap.connect(
                host: "no-such-host.invalid", port: 443, on: loop, timeout: .seconds(5)
            ) { _ in }.get()
        }
    }
}

/// NIO's loops or our reactors (`server.io`).
enum LoopKind: CustomStringConvertible, Sendable {
    case nio, reactor

    var group: any EventLoopGroup {
        switch self {
        case .nio: MultiThreadedEventLoopGroup.singleton
        case .reactor: ReactorGroup.singleton
        }
    }

    var description: String { self == .nio ? "nio" : "reactor" }
}
