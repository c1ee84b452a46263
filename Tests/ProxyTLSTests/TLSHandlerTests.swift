import NIOCore
import NIOEmbedded
import ProxyTesting
import Testing

@testable import ProxyTLS

/// Holds every write until the test releases it and records when `close` arrives: a socket whose peer is slow.
final class SlowSocket: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var held: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    var delivered: [UInt8] = []
    var closeRequested = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        held.append((unwrapOutboundIn(data), promise))
    }

    func flush(context: ChannelHandlerContext) {}

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        closeRequested = true
        context.close(mode: mode, promise: promise)
    }

    /// Lets everything written so far reach the peer.
    func release() {
        let writes = held
        held = []
        for (buffer, promise) in writes {
            delivered += buffer.readableBytesView
            promise?.succeed(())
        }
    }
}

/// Stands for the handler behind TLS that links itself (`HTTP1DirectPath`).
final class PlaintextRecorder: TLSPlaintextReceiver {
    var received = ""
    var readsCompleted = 0

    func plaintextRead(_ plaintext: ByteBuffer) {
        received += String(buffer: plaintext)
    }

    func plaintextReadComplete() {
        readsCompleted += 1
    }
}

/// Counts the writes and flushes that pass it.
final class WriteCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var writes = 0
    var flushes = 0

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        writes += 1
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        flushes += 1
        context.flush()
    }
}

@Suite struct TLSHandlerTests {
    /// A server `TLSHandler` on an EmbeddedChannel behind a `SlowSocket`, handshaken with a client session;
    /// `above` (if any) sits behind the handler.
    func connectedChannel(above: (any ChannelHandler)? = nil, halfClosure: Bool = false) throws -> (
        EmbeddedChannel, SlowSocket, TLSSession
    ) {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let socket = SlowSocket()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(socket)
        try channel.pipeline.syncOperations.addHandler(
            TLSHandler(session: certificates.serverContext().makeServerSession()))
        if let above { try channel.pipeline.syncOperations.addHandler(above) }
        if halfClosure { try channel.syncOptions!.setOption(ChannelOptions.allowRemoteHalfClosure, value: true) }
        try channel.connect(to: .init(ipAddress: "127.0.0.1", port: 443)).wait()
        let client = try certificates.clientContext().makeClientSession(serverName: "localhost")
        for _ in 0..<10 where client.handshake() != .complete {
            try channel.writeInbound(ByteBuffer(bytes: client.takeCiphertext()))
            socket.release()
            socket.delivered.withUnsafeBytes { client.receiveCiphertext($0) }
            socket.delivered = []
        }
        // The client's Finished completes the server's side; the tickets it answers with go to the client.
        try channel.writeInbound(ByteBuffer(bytes: client.takeCiphertext()))
        socket.release()
        #expect(decrypt(socket.delivered, with: client).data.isEmpty)
        socket.delivered = []
        #expect(client.isHandshakeComplete)
        return (channel, socket, client)
    }

    /// Handshakes `client` with the server handler on an `EmbeddedChannel` whose writes are read back from it, up
    /// to and including the client's Finished.
    func handshake(_ client: TLSSession, over channel: EmbeddedChannel) throws {
        for _ in 0..<10 where client.handshake() != .complete {
            try channel.writeInbound(ByteBuffer(bytes: client.takeCiphertext()))
            var fromServer: [UInt8] = []
            while let out = try channel.readOutbound(as: ByteBuffer.self) { fromServer += out.readableBytesView }
            fromServer.withUnsafeBytes { client.receiveCiphertext($0) }
        }
        try channel.writeInbound(ByteBuffer(bytes: client.takeCiphertext()))
    }

    func decrypt(_ bytes: [UInt8], with client: TLSSession) -> (data: [UInt8], closeNotify: Bool) {
        bytes.withUnsafeBytes { client.receiveCiphertext($0) }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            switch buffer.withUnsafeMutableBytes({ client.readPlaintext(into: $0) }) {
            case .bytes(let count): data += buffer.prefix(count)
            case .closed: return (data, true)
            case .wantRead, .failed: return (data, false)
            }
        }
    }

    @Test func closeWaitsUntilTheLastResponseByteLeftThenSendsCloseNotify() throws {
        let (channel, socket, client) = try connectedChannel()
        let response = Array(repeating: UInt8(ascii: "r"), count: 100_000)
        channel.write(ByteBuffer(bytes: response), promise: nil)
        channel.flush()
        channel.embeddedEventLoop.run()  // the flush waits for the end of the loop turn
        let closed = channel.close()

        // The socket still holds the response: closing now would drop it, so the handler must not close yet.
        #expect(!socket.closeRequested)
        socket.release()
        #expect(socket.closeRequested)
        try closed.wait()

        let received = decrypt(socket.delivered, with: client)
        #expect(received.data.count == response.count)
        #expect(received.data.allSatisfy { $0 == UInt8(ascii: "r") })
        #expect(received.closeNotify, "close_notify follows the data")
    }

    @Test func writesUpToAFlushLeaveAsOneRecordAndAllTheirPromisesComplete() throws {
        let (channel, socket, client) = try connectedChannel()
        let parts = ["HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", "ok"]
        let written = parts.map { channel.write(ByteBuffer(string: $0)) }
        #expect(socket.held.isEmpty, "nothing is encrypted before the flush")
        channel.flush()
        channel.embeddedEventLoop.run()  // the flush waits for the end of the loop turn
        #expect(socket.held.count == 1, "one socket write for the whole batch")
        socket.release()
        for future in written { try future.wait() }
        socket.delivered.withUnsafeBytes { client.receiveCiphertext($0) }
        var buffer = [UInt8](repeating: 0, count: 16384)
        guard case .bytes(let count) = buffer.withUnsafeMutableBytes({ client.readPlaintext(into: $0) }) else {
            Issue.record("no data")
            return
        }
        #expect(String(decoding: buffer.prefix(count), as: UTF8.self) == parts.joined(), "one record holds both parts")
    }

    /// Small flushes reuse their ciphertext buffer once the socket let go of it; one the socket still holds is left
    /// as it is. Three flushes, the first two held until after the third: every byte arrives, in order.
    @Test func ciphertextBuffersAreReusedOnlyWhenTheSocketLetGo() throws {
        let (channel, socket, client) = try connectedChannel()
        var expected: [UInt8] = []
        for (index, letter) in "abc".utf8.enumerated() {
            let part = [UInt8](repeating: letter, count: 300 + index)
            expected += part
            channel.write(ByteBuffer(bytes: part), promise: nil)
            channel.flush()
            channel.embeddedEventLoop.run()
        }
        #expect(socket.held.count == 3)
        socket.release()
        for letter in "de".utf8 {
            let part = [UInt8](repeating: letter, count: 200)
            expected += part
            channel.write(ByteBuffer(bytes: part), promise: nil)
            channel.flush()
            channel.embeddedEventLoop.run()
            socket.release()  // let go: the next flush fills the same buffer again
        }
        #expect(decrypt(socket.delivered, with: client).data == expected)
    }

    /// For a protocol handler that flushes once per loop turn itself (HTTP/2), a flush goes out at once: no
    /// second wait for the end of the turn.
    @Test func aHandlerThatDoesNotDeferFlushesWritesAtTheFlush() throws {
        let (channel, socket, client) = try connectedChannel()
        try channel.pipeline.syncOperations.handler(type: TLSHandler.self).defersFlushes = false
        channel.write(ByteBuffer(string: "frames"), promise: nil)
        #expect(socket.held.isEmpty, "nothing is encrypted before the flush")
        channel.flush()
        #expect(socket.held.count == 1, "written at the flush, without running the loop")
        socket.release()
        #expect(decrypt(socket.delivered, with: client).data == Array("frames".utf8))
    }

    @Test func halfCloseSendsCloseNotifyAfterTheData() throws {
        let (channel, socket, client) = try connectedChannel()
        channel.write(ByteBuffer(string: "last words"), promise: nil)
        channel.flush()
        channel.embeddedEventLoop.run()  // the flush waits for the end of the loop turn
        channel.close(mode: .output, promise: nil)
        socket.release()
        let received = decrypt(socket.delivered, with: client)
        #expect(received.data == Array("last words".utf8))
        #expect(received.closeNotify)
        #expect(throws: (any Error).self) { try channel.writeAndFlush(ByteBuffer(string: "more")).wait() }
    }

    @Test func writesBeforeTheHandshakeFinishesAreSentAfterIt() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            TLSHandler(session: certificates.serverContext().makeServerSession()))
        try channel.connect(to: .init(ipAddress: "127.0.0.1", port: 443)).wait()
        let early = channel.writeAndFlush(ByteBuffer(string: "early"))
        let client = try certificates.clientContext().makeClientSession(serverName: "localhost")
        try handshake(client, over: channel)
        var fromServer: [UInt8] = []
        while let out = try channel.readOutbound(as: ByteBuffer.self) { fromServer += out.readableBytesView }
        try early.wait()
        #expect(decrypt(fromServer, with: client).data == Array("early".utf8))
    }

    /// A handler linked to the TLS handler (the HTTP/1.1 direct path) gets plaintext by a direct call, not through
    /// the pipeline, and its writes leave encrypted; once unlinked, plaintext goes up the pipeline again.
    @Test func aLinkedReceiverTakesPlaintextAndWritesDirectly() throws {
        let (channel, socket, client) = try connectedChannel()
        let tls = try channel.pipeline.syncOperations.handler(type: TLSHandler.self)
        let receiver = PlaintextRecorder()
        func send(_ text: String) throws {
            _ = Array(text.utf8).withUnsafeBytes { client.writePlaintext($0) }
            try channel.writeInbound(ByteBuffer(bytes: client.takeCiphertext()))
        }

        try send("before")
        #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "before")

        tls.link(receiver)
        try send("linked")
        #expect(receiver.received == "linked")
        #expect(receiver.readsCompleted == 1)
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil, "nothing went up the pipeline")

        tls.writePlaintext(ByteBuffer(string: "reply"))
        #expect(socket.held.isEmpty, "nothing is encrypted before the flush")
        tls.flushPlaintext()
        channel.embeddedEventLoop.run()  // the flush waits for the end of the loop turn
        socket.release()
        #expect(decrypt(socket.delivered, with: client).data == Array("reply".utf8))

        tls.unlink()
        try send("after")
        #expect(receiver.received == "linked")
        #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "after")
    }

    /// First in the pipeline, the handler writes and flushes ciphertext to the channel's core itself: a handler put
    /// in front of it (which the set-up never does) sees none of it, and the client still gets every byte.
    @Test(arguments: [true, false])
    func firstInPipelineWritesStraightToTheSocket(first: Bool) throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let channel = EmbeddedChannel()
        let front = WriteCounter()
        let handler = TLSHandler(session: try certificates.serverContext().makeServerSession())
        handler.firstInPipeline = first
        try channel.pipeline.syncOperations.addHandlers(front, handler)
        try channel.connect(to: .init(ipAddress: "127.0.0.1", port: 443)).wait()
        let client = try certificates.clientContext().makeClientSession(serverName: "localhost")
        try handshake(client, over: channel)
        var fromServer: [UInt8] = []
        let written = channel.writeAndFlush(ByteBuffer(string: "response"))
        channel.embeddedEventLoop.run()  // the flush waits for the end of the loop turn
        try written.wait()
        while let out = try channel.readOutbound(as: ByteBuffer.self) { fromServer += out.readableBytesView }
        #expect(decrypt(fromServer, with: client).data == Array("response".utf8))
        if first {
            #expect(front.writes == 0 && front.flushes == 0)
        } else {
            #expect(front.writes > 0 && front.flushes > 0)
        }
    }

    @Test func handshakeTimeoutClosesTheChannel() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let channel = EmbeddedChannel()
        let handler = TLSHandler(
            session: try certificates.serverContext().makeServerSession(), handshakeTimeout: .seconds(10))
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: .init(ipAddress: "127.0.0.1", port: 443)).wait()
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
        #expect(throws: OpenSSLError.self) { try channel.throwIfErrorCaught() }
    }
}
