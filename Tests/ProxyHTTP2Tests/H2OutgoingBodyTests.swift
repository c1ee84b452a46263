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
