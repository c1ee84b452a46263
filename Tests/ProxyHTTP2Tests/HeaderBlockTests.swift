import Testing

@testable import ProxyHTTP2

/// A header block being received: its size limit, and long values that repeat from the connection's last blocks
/// reused as the same string.
@Suite struct HeaderBlockTests {
    static func block(
        _ fields: [(String, String)], recent: inout [String], limit: Int = 1 << 16, streamID: Int32 = 1
    ) -> HeaderBlock? {
        var block = HeaderBlock(streamID: streamID)
        for (name, value) in fields {
            let added = Array(name.utf8).withUnsafeBytes { name in
                Array(value.utf8).withUnsafeBytes { value in
                    block.add(name: name, value: value, limit: limit, recent: &recent)
                }
            }
            if !added { return nil }
        }
        return block
    }

    static func storage(_ text: String) -> UnsafeRawPointer? {
        text.utf8.withContiguousStorageIfAvailable { UnsafeRawPointer($0.baseAddress) } ?? nil
    }

    @Test func repeatedLongValuesAreTheSameStringAndChangedOnesAreNew() throws {
        var recent: [String] = []
        let agent = "Anthropic/Python 0.75.0"
        let beta = "oauth-2025-04-20,interleaved-thinking-2025-05-14"
        let first = try #require(
            Self.block([(":method", "POST"), ("user-agent", agent), ("anthropic-beta", beta)], recent: &recent))
        let second = try #require(
            Self.block([(":method", "POST"), ("user-agent", agent), ("anthropic-beta", beta + ",x")], recent: &recent))
        #expect(
            second.fields == [
                H2Field(":method", "POST"), H2Field("user-agent", agent), .init("anthropic-beta", beta + ",x"),
            ])
        #expect(Self.storage(second.fields[1].value) == Self.storage(first.fields[1].value))
        #expect(Self.storage(second.fields[2].value) != Self.storage(first.fields[2].value))
        // The changed value is now the one remembered at its place.
        let third = try #require(
            Self.block([(":method", "GET"), ("user-agent", agent), ("anthropic-beta", beta + ",x")], recent: &recent))
        #expect(Self.storage(third.fields[2].value) == Self.storage(second.fields[2].value))
        #expect(third.fields[0].value == "GET")
    }

    @Test func aValueInAnotherPlaceIsReadAnew() throws {
        var recent: [String] = []
        let agent = "Anthropic/Python 0.75.0"
        _ = try #require(Self.block([("user-agent", agent)], recent: &recent))
        let moved = try #require(Self.block([("accept", "*/*"), ("user-agent", agent)], recent: &recent))
        #expect(moved.fields == [H2Field("accept", "*/*"), H2Field("user-agent", agent)])
    }

    /// RFC 9113 §6.5.2's size: name + value + 32 per field.
    @Test func aBlockPastTheLimitIsRefused() {
        var recent: [String] = []
        #expect(Self.block([("a", "b")], recent: &recent, limit: 34) != nil)
        #expect(Self.block([("a", "b"), ("c", "d")], recent: &recent, limit: 67) == nil)
    }
}
