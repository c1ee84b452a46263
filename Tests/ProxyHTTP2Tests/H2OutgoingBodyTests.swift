import NIOCore
import Testing

@testable import ProxyHTTP2

@Suite struct H2OutgoingBodyTests {
    @Test func interleavedStreamsDeferResumeAndDrain() throws {
        var small = H2Session.Settings()
        small.initialWindowSize = 20_000
        let pair = try H2Pair(serverSettings: small)
        pair.pump()
        var streams: [Int32] = []
        var sent: [Int32: [UInt8]] = [:]
        for _ in 0..<6 {
            let id = try pair.client.submitRequest(H2SessionTests.post, endStream: false)
            streams.append(id)
            sent[id] = []
        }
        pair.pump()  // every provider defers: nothing queued
        var rng = SystemRandomNumberGenerator()
        for round in 0..<40 {
            for id in streams {
                let count = Int.random(in: 0..<9000, using: &rng)
                let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &+ round &+ Int(id)) }
                sent[id]! += bytes
                pair.client.sendBody(streamID: id, ByteBuffer(bytes: bytes), endStream: round == 39)
                if round < 39, Bool.random(using: &rng) {
                    pair.client.sendBody(streamID: id, ByteBuffer(bytes: bytes.prefix(3)), endStream: false)
                    sent[id]! += bytes.prefix(3)
                }
            }
            if round % 3 == 0 { pair.pump() }
        }
        pair.pump()
        for id in streams {
            #expect(H2Pair.body(of: pair.serverEvents, stream: id) == sent[id]!)
            #expect(pair.serverEvents.contains(.endStream(streamID: id)))
            #expect(pair.client.bufferedBodyBytes(streamID: id) == 0)
        }
    }

    /// The DATA of many frames read at once shares one buffer, each event its own slice: every stream's bytes come
    /// out whole and in order, chunks over the shared buffer's size included, and stay intact after later reads.
    @Test func dataReadAtOnceArrivesWholePerStreamAndStaysIntact() throws {
        let pair = try H2Pair()
        pair.pump()
        // Small bodies (each stream's chunks go out as one frame: many frames, one read) and one over the limit.
        var sent: [Int32: [UInt8]] = [:]
        for index in 0..<5 {
            let sizes = index == 4 ? [H2Session.sharedDataLimit + 4000] : [10, 500, 3, 700 + index]
            let id = try pair.client.submitRequest(H2SessionTests.post, endStream: false)
            var body: [UInt8] = []
            for (part, size) in sizes.enumerated() {
                let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ part &+ index * 31) }
                body += bytes
                pair.client.sendBody(streamID: id, ByteBuffer(bytes: bytes), endStream: part == sizes.count - 1)
            }
            sent[id] = body
        }
        pair.pump()
        let first = pair.serverEvents
        // A later read must not touch what the first one handed out.
        let later = try pair.client.submitRequest(H2SessionTests.post, endStream: false)
        pair.client.sendBody(streamID: later, ByteBuffer(repeating: 0xEE, count: 9000), endStream: true)
        pair.pump()
        for (id, body) in sent {
            let arrived = H2Pair.body(of: first, stream: id) == body  // outside #expect: it would print the bodies
            #expect(arrived, "stream \(id)")
        }
        let laterArrived = H2Pair.body(of: pair.serverEvents, stream: later) == [UInt8](repeating: 0xEE, count: 9000)
        #expect(laterArrived)
    }

    @Test func emptyEndAfterDeferralEndsTheStream() throws {
        let pair = try H2Pair()
        let id = try pair.client.submitRequest(H2SessionTests.post, endStream: false)
        pair.client.sendBody(streamID: id, ByteBuffer(string: "a"), endStream: false)
        pair.pump()
        pair.client.sendBody(streamID: id, ByteBuffer(), endStream: false)
        pair.pump()
        pair.client.sendBody(streamID: id, ByteBuffer(), endStream: true)
        pair.pump()
        #expect(H2Pair.body(of: pair.serverEvents, stream: id) == Array("a".utf8))
        #expect(pair.serverEvents.contains(.endStream(streamID: id)))
    }
}
