import Glibc
import NIOCore
import ProxyTesting
import Testing

@testable import ProxyReactor

/// Outbound connections: `ReactorChannel.connect`.
@Suite(.timeLimit(.minutes(1))) struct ReactorConnectTests {
    @Test func aConnectedChannelCarriesBytesBothWays() async throws {
        let reactor = try Reactor(name: "connect")
        defer { reactor.shutdownGracefully { _ in } }
        let listening = try BlockingListener()
        defer { listening.close() }
        let handler = RecordingHandler()
        let activeAtConnect = try await reactor.submit { () -> EventLoopFuture<ReactorChannel> in
            ReactorChannel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: listening.port), on: reactor) {
                try $0.pipeline.syncOperations.addHandler(handler)
            }
        }.flatMap { $0 }.get()
        let peer = try await blocking { accept(listening.fd, nil, nil) }
        #expect(peer >= 0)
        defer { close(peer) }
        #expect(activeAtConnect.isActive)
        #expect(activeAtConnect.remoteAddress?.port == listening.port)
        var ping = Array("ping".utf8)
        _ = send(peer, &ping, ping.count, 0)
        try await handler.whenReceived(4, on: reactor).get()
        try await activeAtConnect.writeAndFlush(ByteBuffer(string: "pong")).get()
        let reply = try await blocking {
            var reply = [UInt8](repeating: 0, count: 4)
            return recv(peer, &reply, 4, CInt(MSG_WAITALL)) == 4 ? reply : []
        }
        #expect(reply == Array("pong".utf8))
        try await reactor.submit {
            #expect(handler.received == Array("ping".utf8))
            #expect(handler.events == ["active"])
        }.get()
        try await activeAtConnect.close().get()
        try await reactor.submit { #expect(handler.events == ["active", "inactive"]) }.get()
    }

    /// Nothing listens: the future fails, the handlers never saw the channel active, and nothing stays registered.
    @Test func aRefusedConnectionFailsTheFuture() async throws {
        let reactor = try Reactor(name: "refused")
        defer { reactor.shutdownGracefully { _ in } }
        let closedPort = try BlockingListener()
        let port = closedPort.port
        closedPort.close()
        let handler = RecordingHandler()
        let connect = try await reactor.submit {
            ReactorChannel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: port), on: reactor) {
                try $0.pipeline.syncOperations.addHandler(handler)
            }
        }.get()
        await #expect(throws: IOError.self) { try await connect.get() }
        try await reactor.submit {
            #expect(handler.events.isEmpty)
            #expect(reactor.registeredCount == 0)
        }.get()
    }
}
