import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import ProxyHTTP2

/// The client handler's keep-alive (a PING without an acknowledgement closes the connection), and streams read by
/// delegates on the event loop.
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

    /// What a delegate heard, in order.
    final class Listener: H2ClientStreamDelegate {
        var heard: [String] = []
        func responseHead(_ fields: consuming FieldBlock) {
            heard.append("head " + (fields.value(named: ":status") ?? "?"))
        }
        func responseData(_ bytes: ByteBuffer) { heard.append("data " + String(buffer: bytes)) }
        func responseEnded() { heard.append("end") }
        func responseEnded(lastData bytes: ByteBuffer) { heard.append("last " + String(buffer: bytes)) }
        func streamFailed(_ error: any Error) { heard.append("failed") }
    }

    /// A client handler on an embedded channel, a server session, and `pump`, which carries bytes both ways until
    /// neither side has more to say.
    static func connectedToServerSession() throws -> (H2ClientHandler, H2Session, () throws -> Void) {
        let handler = try H2ClientHandler { _ in }
        let channel = EmbeddedChannel(handler: handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        let server = try H2Session(role: .server)
        func pump() throws {
            for _ in 0..<20 {
                channel.embeddedEventLoop.run()  // the handler's flushes are scheduled on its loop
                var sent = ByteBuffer()
                while var chunk = try channel.readOutbound(as: ByteBuffer.self) { sent.writeBuffer(&chunk) }
                let bytes = Array(sent.readableBytesView)
                #expect(bytes.withUnsafeBytes { server.receive($0) } == nil)
                let answer = server.takeOutput()
                if bytes.isEmpty && answer.isEmpty { return }
                try channel.writeInbound(ByteBuffer(bytes: answer))
            }
        }
        try pump()
        return (handler, server, pump)
    }

    static func openGet(_ handler: H2ClientHandler, _ listener: Listener, path: String) throws -> Int32 {
        try handler.open(endStream: true, delegate: listener) { head in
            head.add([
                H2Field(":method", "GET"), H2Field(":scheme", "https"), H2Field(":authority", "example"),
                H2Field(":path", path),
            ])
        }
    }

    /// Streams opened one after another on a connection (whose per-stream state is kept and used again once a
    /// stream is closed) each hear only their own response, and a finished one hears nothing more.
    @Test func delegateStreamsOneAfterAnotherHearOnlyTheirOwnResponses() throws {
        let (handler, server, pump) = try Self.connectedToServerSession()
        var listeners: [Listener] = []
        for round in 0..<3 {
            let listener = Listener()
            listeners.append(listener)
            let id = try Self.openGet(handler, listener, path: "/\(round)")
            try pump()
            let requests = server.takeEvents().filter { if case .headers = $0 { true } else { false } }
            #expect(requests.count == 1)
            try server.submitResponse(streamID: id, [H2Field(":status", "20\(round)")], endStream: false)
            server.sendBody(streamID: id, ByteBuffer(string: "body \(round)"), endStream: true)
            try pump()
        }
        for (round, listener) in listeners.enumerated() {
            #expect(listener.heard == ["head 20\(round)", "last body \(round)"])
        }
    }

    /// The last DATA frame's bytes reach a delegate together with the end of the stream when the frame carries
    /// END_STREAM; an empty DATA frame that ends the stream on its own, or a body in two frames, is heard frame by
    /// frame and then the end.
    @Test func lastDataBytesComeWithTheEndOfTheStream() throws {
        let (handler, server, pump) = try Self.connectedToServerSession()
        let whole = Listener()
        let wholeID = try Self.openGet(handler, whole, path: "/whole")
        let split = Listener()
        let splitID = try Self.openGet(handler, split, path: "/split")
        let twoFrames = Listener()
        let twoFramesID = try Self.openGet(handler, twoFrames, path: "/two")
        try pump()
        for id in [wholeID, splitID, twoFramesID] {
            try server.submitResponse(streamID: id, [H2Field(":status", "200")], endStream: false)
        }
        server.sendBody(streamID: wholeID, ByteBuffer(string: "all of it"), endStream: true)
        server.sendBody(streamID: splitID, ByteBuffer(string: "before the end"), endStream: false)
        server.sendBody(streamID: twoFramesID, ByteBuffer(string: "first"), endStream: false)
        try pump()
        server.sendBody(streamID: splitID, ByteBuffer(), endStream: true)
        server.sendBody(streamID: twoFramesID, ByteBuffer(string: "second"), endStream: true)
        try pump()
        #expect(whole.heard == ["head 200", "last all of it"])
        #expect(split.heard == ["head 200", "data before the end", "end"])
        #expect(twoFrames.heard == ["head 200", "data first", "last second"])
    }
}
