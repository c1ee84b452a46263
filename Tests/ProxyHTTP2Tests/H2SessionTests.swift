import NIOCore
import Testing

@testable import ProxyHTTP2

/// A client and a server `H2Session` connected through memory.
final class H2Pair {
    let client: H2Session
    let server: H2Session
    var clientEvents: [H2Event] = []
    var serverEvents: [H2Event] = []
    /// When set, body bytes are consumed (window reopened) as they arrive.
    var autoConsume = true

    init(clientSettings: H2Session.Settings = .init(), serverSettings: H2Session.Settings = .init()) throws {
        client = try H2Session(role: .client, settings: clientSettings)
        server = try H2Session(role: .server, settings: serverSettings)
    }

    func pump() {
        for _ in 0..<10_000 {
            let toServer = client.takeOutput()
            let toClient = server.takeOutput()
            if toServer.isEmpty && toClient.isEmpty { return }
            #expect(toServer.withUnsafeBytes { server.receive($0) } == nil)
            #expect(toClient.withUnsafeBytes { client.receive($0) } == nil)
            collect(server.takeEvents(), into: &serverEvents, session: server)
            collect(client.takeEvents(), into: &clientEvents, session: client)
        }
    }

    private func collect(_ events: [H2Event], into list: inout [H2Event], session: H2Session) {
        for event in events {
            if autoConsume, case .data(let id, let bytes) = event { session.consume(streamID: id, bytes.readableBytes) }
            list.append(event)
        }
    }

    /// A GET the server has answered with a 200 head and `body`, the stream left open (`endStream` false) or ended.
    func answeredGet(_ fields: [H2Field], body: String, endStream: Bool) throws -> Int32 {
        let stream = try client.submitRequest(fields, endStream: true)
        pump()
        try server.submitResponse(streamID: stream, [H2Field(":status", "200")], endStream: false)
        server.sendBody(streamID: stream, ByteBuffer(string: body), endStream: endStream)
        pump()
        return stream
    }

    static func body(of events: [H2Event], stream: Int32) -> [UInt8] {
        events.flatMap { event -> [UInt8] in
            if case .data(let id, let bytes) = event, id == stream { return Array(bytes.readableBytesView) }
            return []
        }
    }

    static func heads(of events: [H2Event], stream: Int32) -> [[H2Field]] {
        events.compactMap { event in
            if case .headers(let id, let fields, _) = event, id == stream { return fields.fields }
            return nil
        }
    }
}

@Suite struct H2SessionTests {
    static let get = [
        H2Field(":method", "GET"), H2Field(":scheme", "https"), H2Field(":authority", "example"),
        H2Field(":path", "/v1/models"),
    ]
    static let post = [
        H2Field(":method", "POST"), H2Field(":scheme", "https"), H2Field(":authority", "example"),
        H2Field(":path", "/v1/messages"),
    ]

    /// A field new in every response (a request id) is sent as a never-indexed literal: the encoder's table keeps
    /// what repeats and does not grow, or churn, with the ids; the client still reads every id.
    @Test(arguments: ["x-request-id", "request-id", "cf-ray"])
    func idsNewInEveryResponseAreNotIndexed(name: String) throws {
        let pair = try H2Pair()
        var sizes: [Int] = []
        for index in 0..<40 {
            let stream = try pair.client.submitRequest(Self.get, endStream: true)
            pair.pump()
            try pair.server.submitResponse(streamID: stream, endStream: true) { head in
                head.add(static: ":status", "200")
                head.add(static: "x-claude-proxy-account", "account-1")
                name.utf8.withContiguousStorageIfAvailable { name in
                    "req_\(index)_0123456789abcdef".utf8.withContiguousStorageIfAvailable { value in
                        head.add(name: UnsafeRawBufferPointer(name), value: UnsafeRawBufferPointer(value))
                    }
                }
            }
            pair.pump()
            #expect(
                H2Pair.heads(of: pair.clientEvents, stream: stream).first?.contains(
                    H2Field(name, "req_\(index)_0123456789abcdef")) == true)
            sizes.append(pair.server.encoderTableSize)
        }
        // The account field, indexed once: 32 + its name and value (RFC 7541 §4.1).
        #expect(sizes.allSatisfy { $0 == 32 + 22 + 9 })
    }

    @Test func requestAndResponse() throws {
        let pair = try H2Pair()
        let stream = try pair.client.submitRequest(Self.get + [H2Field("x-api-key", "k")], endStream: true)
        pair.pump()
        #expect(
            pair.serverEvents.contains(
                .headers(streamID: stream, fields: FieldBlock(Self.get + [H2Field("x-api-key", "k")]), endStream: true))
        )
        try pair.server.submitResponse(
            streamID: stream, [H2Field(":status", "200"), H2Field("content-type", "text/plain")], endStream: false)
        pair.server.sendBody(streamID: stream, ByteBuffer(string: "hello"), endStream: true)
        pair.pump()
        #expect(H2Pair.heads(of: pair.clientEvents, stream: stream).first?[field: ":status"] == "200")
        #expect(H2Pair.body(of: pair.clientEvents, stream: stream) == Array("hello".utf8))
        #expect(pair.clientEvents.contains(.endStream(streamID: stream)))
        #expect(pair.clientEvents.contains(.streamClosed(streamID: stream, errorCode: H2ErrorCode.noError)))
    }

    /// Heads larger than the session's head space at first (1 KiB of bytes, 32 fields), written as an array, through
    /// the writer, and through the writer with literal names among copied ones, arrive whole; so does a small head
    /// after them, laid out in the grown space.
    @Test func headsThatOutgrowTheHeadSpaceArriveWhole() throws {
        let pair = try H2Pair()
        let letters = Array("abcdef")
        let extra = (0..<60).map { H2Field("x-field-\($0)", String(repeating: letters[$0 % 6], count: 90)) }
        let asArray = try pair.client.submitRequest(Self.get + extra, endStream: true)
        let written = try pair.client.submitRequest(endStream: true) { head in
            head.add(Self.get)
            for index in extra.indices { head.add(extra[index].name, extra[index].value) }
        }
        // Names passed as literals (nghttp2 takes them in place) between names copied into the space as it grows.
        let literals = try pair.client.submitRequest(endStream: true) { head in
            head.add(static: ":method", "GET")
            head.add(static: ":scheme", "https")
            head.add(name: FieldBytes.bytes(":authority"), value: FieldBytes.bytes("example"))
            head.add(static: ":path", "/v1/models")
            for index in extra.indices {
                if index % 2 == 0 { head.add(extra[index].name, extra[index].value) }
                head.add(static: "x-literal", extra[index].value)
            }
        }
        let small = try pair.client.submitRequest(Self.get, endStream: true)
        pair.pump()
        #expect(H2Pair.heads(of: pair.serverEvents, stream: asArray) == [Self.get + extra])
        #expect(H2Pair.heads(of: pair.serverEvents, stream: written) == [Self.get + extra])
        let interleaved = extra.indices.flatMap { index in
            (index % 2 == 0 ? [extra[index]] : []) + [H2Field("x-literal", extra[index].value)]
        }
        #expect(H2Pair.heads(of: pair.serverEvents, stream: literals) == [Self.get + interleaved])
        #expect(H2Pair.heads(of: pair.serverEvents, stream: small) == [Self.get])
    }

    @Test func settingsAreExchanged() throws {
        var settings = H2Session.Settings()
        settings.maxConcurrentStreams = 7
        let pair = try H2Pair(serverSettings: settings)
        pair.pump()
        #expect(pair.client.peerMaxConcurrentStreams == 7)
        #expect(pair.clientEvents.contains { if case .settings(7, _) = $0 { true } else { false } })
    }

    @Test func oneMegabyteBodiesBothWays() throws {
        let pair = try H2Pair()
        let upload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let download = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        let stream = try pair.client.submitRequest(Self.post, endStream: false)
        for chunk in stride(from: 0, to: upload.count, by: 100_000) {
            pair.client.sendBody(
                streamID: stream, ByteBuffer(bytes: upload[chunk..<min(chunk + 100_000, upload.count)]),
                endStream: false)
        }
        pair.client.sendBody(streamID: stream, ByteBuffer(), endStream: true)
        pair.pump()
        #expect(H2Pair.body(of: pair.serverEvents, stream: stream) == upload)
        #expect(pair.serverEvents.contains(.endStream(streamID: stream)))
        try pair.server.submitResponse(streamID: stream, [H2Field(":status", "200")], endStream: false)
        pair.server.sendBody(streamID: stream, ByteBuffer(bytes: download), endStream: true)
        pair.pump()
        #expect(H2Pair.body(of: pair.clientEvents, stream: stream) == download)
    }

    @Test func unconsumedDataKeepsTheWindowShutUntilConsumed() throws {
        var small = H2Session.Settings()
        small.initialWindowSize = 65_535
        let pair = try H2Pair(serverSettings: small)
        pair.autoConsume = false
        let stream = try pair.client.submitRequest(Self.post, endStream: false)
        pair.pump()  // SETTINGS first, so the client knows the small window
        let body = [UInt8](repeating: 0x61, count: 300_000)
        pair.client.sendBody(streamID: stream, ByteBuffer(bytes: body), endStream: true)
        pair.pump()
        // The server's consumer took nothing: exactly one window's worth crossed, the rest waits at the client.
        #expect(H2Pair.body(of: pair.serverEvents, stream: stream).count == 65_535)
        #expect(pair.client.bufferedBodyBytes(streamID: stream) == 300_000 - 65_535)
    }

    @Test func windowReopensStepByStep() throws {
        var small = H2Session.Settings()
        small.initialWindowSize = 65_535
        let pair = try H2Pair(serverSettings: small)
        pair.autoConsume = false
        let stream = try pair.client.submitRequest(Self.post, endStream: false)
        pair.pump()
        let body = [UInt8](repeating: 0x62, count: 300_000)
        pair.client.sendBody(streamID: stream, ByteBuffer(bytes: body), endStream: true)
        var total = 0
        for _ in 0..<50 {
            pair.pump()
            let arrived = H2Pair.body(of: pair.serverEvents, stream: stream).count
            pair.serverEvents.removeAll()
            total += arrived
            if arrived == 0 { break }
            #expect(arrived <= 65_535, "never more than the window")
            pair.server.consume(streamID: stream, arrived)
        }
        #expect(total == body.count)
        #expect(pair.client.bufferedBodyBytes(streamID: stream) == 0)
    }

    @Test func resetMidBodyReachesThePeer() throws {
        let pair = try H2Pair()
        let stream = try pair.answeredGet(Self.get, body: "partial", endStream: false)
        #expect(H2Pair.body(of: pair.clientEvents, stream: stream) == Array("partial".utf8))
        pair.client.resetStream(stream, errorCode: H2ErrorCode.cancel)
        pair.pump()
        #expect(pair.serverEvents.contains(.reset(streamID: stream, errorCode: H2ErrorCode.cancel)))
        #expect(pair.server.resetsReceived == 1)
        // Body the server still queues for the reset stream goes nowhere.
        pair.server.sendBody(streamID: stream, ByteBuffer(string: "more"), endStream: true)
        pair.pump()
        #expect(H2Pair.body(of: pair.clientEvents, stream: stream) == Array("partial".utf8))
    }

    /// A server keeps no closed streams (nghttp2's `no_closed_streams`): a WINDOW_UPDATE and an RST_STREAM that
    /// arrive for a stream it has already finished are ignored (RFC 9113 §5.1, "closed"), and the connection serves
    /// the next request.
    @Test func framesForAFinishedStreamAreIgnored() throws {
        let pair = try H2Pair()
        let first = try pair.answeredGet(Self.get, body: "done", endStream: true)
        #expect(pair.serverEvents.contains { if case .streamClosed(first, _) = $0 { true } else { false } })
        // Frame header: length (3 bytes), type, flags, stream id; then a 4-byte payload.
        func frame(type: UInt8, payload: UInt32) -> [UInt8] {
            let id = UInt32(first)
            return [0, 0, 4, type, 0] + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: id >> $0) }
                + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: payload >> $0) }
        }
        let late = frame(type: 0x8, payload: 1000) + frame(type: 0x3, payload: H2ErrorCode.cancel)
        #expect(late.withUnsafeBytes { pair.server.receive($0) } == nil)
        pair.pump()
        #expect(!pair.clientEvents.contains { if case .goAway = $0 { true } else { false } })
        let second = try pair.client.submitRequest(Self.get, endStream: true)
        pair.pump()
        try pair.server.submitResponse(streamID: second, [H2Field(":status", "204")], endStream: true)
        pair.pump()
        #expect(H2Pair.heads(of: pair.clientEvents, stream: second).first?[field: ":status"] == "204")
    }

    @Test func goAwayLetsInFlightStreamsFinishAndRefusesLaterOnes() throws {
        let pair = try H2Pair()
        let first = try pair.client.submitRequest(Self.get, endStream: true)
        let second = try pair.client.submitRequest(Self.get, endStream: true)
        pair.pump()
        pair.server.goAway(errorCode: H2ErrorCode.noError)
        // A request the client sends before it has seen the GOAWAY: above last-stream-id, never processed.
        let late = try pair.client.submitRequest(Self.get, endStream: true)
        pair.pump()
        #expect(
            pair.clientEvents.contains(.goAway(lastStreamID: second, errorCode: H2ErrorCode.noError, debugData: "")))
        #expect(H2Pair.heads(of: pair.serverEvents, stream: late).isEmpty, "the server never saw it")
        #expect(
            pair.clientEvents.contains {
                if case .streamClosed(late, H2ErrorCode.refusedStream) = $0 { true } else { false }
            })
        for stream in [first, second] {
            try pair.server.submitResponse(streamID: stream, [H2Field(":status", "204")], endStream: true)
        }
        pair.pump()
        for stream in [first, second] {
            #expect(H2Pair.heads(of: pair.clientEvents, stream: stream).first?[field: ":status"] == "204")
        }
        #expect(throws: H2Error.self) { try pair.client.submitRequest(Self.get, endStream: true) }
    }

    @Test func garbageFromThePeerIsAConnectionError() throws {
        let server = try H2Session(role: .server)
        let garbage = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(garbage.withUnsafeBytes { server.receive($0) } != nil)
    }

    @Test func pingIsAcknowledged() throws {
        let pair = try H2Pair()
        pair.pump()
        pair.client.ping()
        pair.pump()
        #expect(pair.clientEvents.contains(.pingAcknowledged))
    }

    /// Stream 0 is the connection: a response on it is refused with an error (as nghttp2 refuses it), not a trap
    /// in the session's stream table, which cannot hold id 0.
    @Test func aResponseOnStreamZeroIsAnErrorNotATrap() throws {
        let server = try H2Session(role: .server)
        #expect(throws: H2Error.self) {
            try server.submitResponse(streamID: 0, [H2Field(":status", "200")], endStream: false)
        }
        #expect(server.bufferedBodyBytes(streamID: 0) == 0)
    }

    /// DATA received from a `ByteBuffer`: a frame that fills a good part of the buffer becomes a slice of it (the
    /// same memory, not a copy), a small one a copy; both keep their bytes when the caller then reuses its buffer.
    @Test func largeDataIsASliceOfTheReceivedBuffer() throws {
        let pair = try H2Pair()
        let large = try pair.client.submitRequest(Self.get, endStream: true)
        let small = try pair.client.submitRequest(Self.get, endStream: true)
        pair.pump()
        let largeBody = (0..<6000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for (stream, body) in [(large, largeBody), (small, Array("tiny".utf8))] {
            try pair.server.submitResponse(streamID: stream, [H2Field(":status", "200")], endStream: false)
            pair.server.sendBody(streamID: stream, ByteBuffer(bytes: body), endStream: true)
        }
        var received = ByteBuffer(bytes: pair.server.takeOutput())
        let start = received.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let end = start + UInt(received.readableBytes)
        #expect(pair.client.receive(received) == nil)
        var data: [Int32: ByteBuffer] = [:]
        for event in pair.client.takeEvents() {
            guard case .data(let id, let bytes) = event else { continue }
            #expect(data[id] == nil, "one DATA chunk a stream")
            data[id] = bytes
        }
        func lies(inReceived stream: Int32) -> Bool {
            let address = data[stream]?.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } ?? 0
            return address >= start && address < end
        }
        #expect(lies(inReceived: large), "the 6000-byte frame is read where it was received")
        #expect(!lies(inReceived: small), "the 4-byte frame is copied")
        received.clear()
        received.writeBytes([UInt8](repeating: 0xFF, count: received.capacity))
        #expect(data[large].map { Array($0.readableBytesView) } == largeBody)
        #expect(data[small].map { Array($0.readableBytesView) } == Array("tiny".utf8))
    }
}
