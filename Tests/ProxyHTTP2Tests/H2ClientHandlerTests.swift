import NIOCore
import NIOEmbedded
import ProxyHTTP2
import Synchronization
import Testing

/// The client handler's keep-alive: a PING without an acknowledgement closes the connection.
@Suite struct H2ClientHandlerTests {
    /// An empty SETTINGS frame from the server, and the ACK of a PING with 8 zero bytes of opaque data.
    static let serverSettings: [UInt8] = [0, 0, 0, 0x4, 0, 0, 0, 0, 0]
    static let pingAck: [UInt8] = [0, 0, 8, 0x6, 0x1, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 8)

    final class Reasons: Sendable {
        let list = Mutex<[String]>([])
    }

    static func connected() throws -> (EmbeddedChannel, H2ClientHandler, Reasons) {
        let closedReasons = Reasons()
        var configuration = H2ClientHandler.Configuration()
        configuration.pingTimeout = .seconds(5)
        let handler = try H2ClientHandler(configuration: configuration) { event in
            if case .closed(let reason) = event { closedReasons.list.withLock { $0.append(reason) } }
        }
        let channel = EmbeddedChannel(handler: handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        try channel.writeInbound(ByteBuffer(bytes: serverSettings))
        return (channel, handler, closedReasons)
    }

    /// Frame types in what the handler wrote.
    static func sentFrameTypes(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var bytes = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { bytes.writeBuffer(&chunk) }
        var all = Array(bytes.readableBytesView)
        let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        if all.starts(with: preface) { all.removeFirst(preface.count) }
        var types: [UInt8] = []
        var index = 0
        while index + 9 <= all.count {
            let length = Int(all[index]) << 16 | Int(all[index + 1]) << 8 | Int(all[index + 2])
            types.append(all[index + 3])
            index += 9 + length
        }
        return types
    }

    @Test func unansweredPingClosesTheConnection() throws {
        let (channel, handler, closedReasons) = try Self.connected()
        _ = try Self.sentFrameTypes(channel)
        handler.ping()
        #expect(try Self.sentFrameTypes(channel).contains(0x6), "a PING went out")
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive, "still within the deadline")
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "closed once the deadline passed")
        #expect(closedReasons.list.withLock { $0.first?.contains("PING") ?? false })
    }

    @Test func acknowledgedPingKeepsTheConnection() throws {
        let (channel, handler, closedReasons) = try Self.connected()
        handler.ping()
        try channel.writeInbound(ByteBuffer(bytes: Self.pingAck))
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(channel.isActive)
        handler.ping()  // the next keep-alive round arms a new deadline
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(!channel.isActive)
        #expect(closedReasons.list.withLock { $0.count } == 1)
    }
}
