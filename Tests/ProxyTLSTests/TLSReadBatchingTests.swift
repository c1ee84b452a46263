import NIOCore
import NIOEmbedded
import ProxyTesting
import Testing

@testable import ProxyTLS

/// Records what reaches the handler above TLS, keeping every buffer as it came.
final class ReadRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var reads: [ByteBuffer] = []
    var events: [String] = []
    var onRead: ((ChannelHandlerContext, ByteBuffer) -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        reads.append(bytes)
        events.append("read \(bytes.readableBytes)")
        onRead?(context, bytes)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { events.append("inputClosed") }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        events.append("inactive")
    }

    var joined: [UInt8] { reads.flatMap { Array($0.readableBytesView) } }
}

@Suite struct TLSReadBatchingTests {
    func connected(halfClosure: Bool = false) throws -> (EmbeddedChannel, SlowSocket, TLSSession, ReadRecorder) {
        let recorder = ReadRecorder()
        let (channel, socket, client) = try TLSHandlerTests().connectedChannel(
            above: recorder, halfClosure: halfClosure)
        return (channel, socket, client, recorder)
    }

    func pattern(_ count: Int, seed: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) } }

    @Test func manyRecordsInOneReadArriveWholeAndInOrder() throws {
        let (channel, _, client, recorder) = try connected()
        var expected: [UInt8] = []
        for (index, size) in [10, 40_000, 5, 16_384, 1, 3000].enumerated() {
            let part = pattern(size, seed: index)
            expected += part
            #expect(part.withUnsafeBytes { client.writePlaintext($0) } == nil)
        }
        try channel.writeInbound(ByteBuffer(bytes: client.takeCiphertext()))
        let arrivedWhole = recorder.joined == expected  // compared outside #expect: it would print both arrays
        #expect(arrivedWhole)
    }

    @Test func readsSplitMidRecordUseTheSpareAndStayIntact() throws {
        let (channel, _, client, recorder) = try connected()
        var expected: [UInt8] = []
        for index in 0..<4 {
            let part = pattern(16_384, seed: index)
            expected += part
            _ = part.withUnsafeBytes { client.writePlaintext($0) }
        }
        let ciphertext = client.takeCiphertext()
        // Odd chunk sizes: some reads complete no record (the spare), others several.
        var offset = 0
        for size in [300, 700, 5000, 20_000, 17, 1, 40_000, 100_000] where offset < ciphertext.count {
            let end = min(ciphertext.count, offset + size)
            try channel.writeInbound(ByteBuffer(bytes: ciphertext[offset..<end]))
            offset = end
        }
        #expect(offset == ciphertext.count)
        let arrivedWhole = recorder.joined == expected  // compared outside #expect: it would print both arrays
        #expect(arrivedWhole)
        // Buffers handed up earlier are unchanged by later reads.
        #expect(recorder.reads.allSatisfy { $0.readableBytes > 0 })
    }

    @Test func dataThenCloseNotifyInOneReadWithHalfClosure() throws {
        let (channel, _, client, recorder) = try connected(halfClosure: true)
        _ = Array("hello".utf8).withUnsafeBytes { client.writePlaintext($0) }
        _ = Array("world".utf8).withUnsafeBytes { client.writePlaintext($0) }
        _ = client.shutdown()
        try channel.writeInbound(ByteBuffer(bytes: client.takeCiphertext()))
        #expect(recorder.joined == Array("helloworld".utf8))
        #expect(recorder.events.last == "inputClosed")
        #expect(channel.isActive)
    }

    @Test func closingTheChannelFromAReadIsSafe() throws {
        let (channel, socket, client, recorder) = try connected()
        recorder.onRead = { context, _ in context.close(promise: nil) }
        for index in 0..<3 { _ = pattern(20_000, seed: index).withUnsafeBytes { client.writePlaintext($0) } }
        try channel.writeInbound(ByteBuffer(bytes: client.takeCiphertext()))
        socket.release()
        #expect(recorder.reads.count >= 1)
    }
}

/// One socket read goes up in one buffer, however many records it held and whatever the read before left as
/// spare; and no read-sized buffer is left behind unwritten on an idle connection.
extension TLSReadBatchingTests {
    func send(_ parts: [[UInt8]], from client: TLSSession, to channel: EmbeddedChannel) throws {
        for part in parts { _ = part.withUnsafeBytes { client.writePlaintext($0) } }
        try channel.writeInbound(ByteBuffer(bytes: client.takeCiphertext()))  // all records in one socket read
    }

    @Test func smallRecordsOfOneReadGoUpInOneChannelRead() throws {
        let (channel, _, client, recorder) = try connected()
        try send(
            [Array("POST /v1/messages HTTP/1.1\r\ncontent-length: 2\r\n\r\n".utf8), Array("{}".utf8)],
            from: client, to: channel)
        #expect(recorder.joined.count == 51)
        #expect(recorder.reads.count == 1, "one channelRead per socket read")
    }

    @Test func aLargeReadAfterASmallOneGoesUpInOneChannelRead() throws {
        let (channel, _, client, recorder) = try connected()
        try send([Array("a".utf8)], from: client, to: channel)
        recorder.reads.removeAll()
        try send(
            [pattern(16_384, seed: 1), pattern(16_384, seed: 2), pattern(8000, seed: 3)], from: client, to: channel)
        #expect(recorder.joined.count == 40_768)
        #expect(recorder.reads.map(\.readableBytes) == [40_768])
    }

    @Test func aNearlyFullReadLeavesNoReadSizedSpareBehind() throws {
        let (channel, _, client, recorder) = try connected()
        let records = [16_384, 16_384, 16_384, 16_274].enumerated().map { pattern($0.element, seed: $0.offset) }
        try send(records, from: client, to: channel)  // starts in the handshake's 1 KiB spare, leaves none
        // 65 514 bytes of ciphertext: its 64 KiB buffer ends 110 bytes short of full.
        try send(records, from: client, to: channel)
        recorder.reads.removeAll()
        // The connection idles; then one byte arrives.
        try send([Array("x".utf8)], from: client, to: channel)
        #expect(recorder.reads.count == 1)
        let capacity = recorder.reads.first?.capacity ?? 0
        #expect(capacity <= 16 * 1024, "a \(capacity)-byte buffer sat idle and now carries one byte")
    }
}
