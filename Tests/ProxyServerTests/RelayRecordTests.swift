import Testing

@testable import ProxyServer

@Suite struct RelayRecordTests {
    @Test func fastRequestIDsAreHummingbirdShapedAndCountUp() throws {
        let first = FastRequestID.next().description
        let second = FastRequestID.next().description
        for id in [first, second] {
            #expect(id.utf8.count == 32)
            #expect(id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) })
        }
        // A per-thread half, then a counter (both made on this thread).
        #expect(first.prefix(16) == second.prefix(16))
        let low = try #require(UInt64(first.suffix(16), radix: 16))
        #expect(UInt64(second.suffix(16), radix: 16) == low &+ 1)
    }

    @Test(arguments: [
        (#"{"model":"claude-sonnet-4-5","max_tokens":5}"#, "claude-sonnet-4-5"),
        (#"{"max_tokens":5, "model" : "claude-opus-4@2025"}"#, "claude-opus-4@2025"),
        (#"{"model":"bad model"}"#, nil),
        (#"{"model":5}"#, nil),
        (#"{"max_tokens":5}"#, nil),
    ])
    func requestModelIsTheFirstModelKeysNameLikeValue(body: String, expected: String?) {
        #expect(Array(body.utf8).withUnsafeBytes(RequestModel.scan) == expected)
    }

    /// A name seen before is the same string (same storage), not a new one; past the bound names are still read
    /// right, just not kept.
    @Test func requestModelNamesAreInternedUpToABound() {
        func scan(_ name: String) -> String? {
            Array(#"{"model":"\#(name)"}"#.utf8).withUnsafeBytes(RequestModel.scan)
        }
        func storage(_ text: String?) -> UnsafeRawPointer? {
            text?.utf8.withContiguousStorageIfAvailable { UnsafeRawPointer($0.baseAddress) } ?? nil
        }
        let first = scan("claude-interning-test-model-a")
        let second = scan("claude-interning-test-model-a")
        #expect(first == "claude-interning-test-model-a")
        #expect(storage(first) != nil && storage(first) == storage(second))
        for index in 0..<(RequestModel.internLimit + 5) {
            #expect(scan("claude-interning-test-model-\(index)-x") == "claude-interning-test-model-\(index)-x")
        }
        #expect(storage(scan("claude-interning-test-model-a")) == storage(first), "kept names stay kept")
    }
}
