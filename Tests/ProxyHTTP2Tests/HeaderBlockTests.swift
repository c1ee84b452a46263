import Testing

@testable import ProxyHTTP2

/// A header block being received: its size limit (RFC 9113 §6.5.2: name + value + 32 per field).
@Suite struct HeaderBlockTests {
    static func block(_ fields: [(String, String)], limit: Int) -> HeaderBlock? {
        var block = HeaderBlock(streamID: 1)
        for (name, value) in fields {
            let added = Array(name.utf8).withUnsafeBytes { name in
                Array(value.utf8).withUnsafeBytes { value in block.add(name: name, value: value, limit: limit) }
            }
            if !added { return nil }
        }
        return block
    }

    @Test func aBlockPastTheLimitIsRefused() {
        #expect(Self.block([("a", "b")], limit: 34) != nil)
        #expect(Self.block([("a", "b"), ("c", "d")], limit: 67) == nil)
    }
}
