import ProxyCore
import Testing

@Suite struct ClientKeyTests {
    @Test func plainKeyMatchesOnlyItself() throws {
        let key = try #require(ClientKey("sk-team-alpha"))
        #expect(key.matches("sk-team-alpha"))
        #expect(!key.matches("sk-team-alphb"))
        #expect(!key.matches("sk-team-alph"))
        #expect(!key.matches("sk-team-alpha "))
        #expect(!key.matches(""))
        // A key from a substring (not the original string's storage) is compared the same way.
        let presented = "Bearer sk-team-alpha".dropFirst(7)
        #expect(key.matches(String(presented)))
    }

    @Test func hashedKeyMatchesTheKeyItsDigestIsOf() throws {
        // printf 'sk-team-alpha' | openssl dgst -sha256
        let key = try #require(ClientKey("sha256:4e9f7b2de42cf35abb0b00d0092d54818f2056256033cf5bc44a536034aff788"))
        #expect(key.matches("sk-team-alpha"))
        #expect(!key.matches("sk-team-alphA"))
    }

    /// Lengths that differ by a multiple of 256, the longer one padded with zero bytes: a length difference
    /// truncated to a byte would take them as equal.
    @Test func lengthsFarApartNeverCompareEqual() {
        let short: [UInt8] = Array("key".utf8)
        let padded = short + [UInt8](repeating: 0, count: 256)
        #expect(!ClientKey.constantTimeEquals(short, padded))
        #expect(!ClientKey.constantTimeEquals(padded, short))
        #expect(ClientKey.constantTimeEquals(short, short))
        #expect(ClientKey.constantTimeEquals([], []))
    }
}
