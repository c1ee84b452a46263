import HTTPTypes
import ProxyHTTP2
import Testing

@testable import ProxyServer

/// The request head sent upstream (ANTHROPIC-WIRE.md): credentials swapped, betas merged, extras applied.
@Suite struct UpstreamRequestHeadersTests {
    static func client(_ pairs: [(String, String)]) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in pairs { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        return fields
    }

    static func values(_ fields: [H2Field], _ name: String) -> [String] {
        fields.filter { $0.name == name }.map(\.value)
    }

    @Test func clientCredentialsAreReplacedAndBetasMerged() {
        let fields = UpstreamRequestHeaders.fields(
            method: "POST", authority: "api.example", path: "/v1/messages",
            client: Self.client([
                ("x-api-key", "client-key"), ("authorization", "Bearer client-key"), ("cookie", "c=1"),
                ("anthropic-beta", "a, b"), ("anthropic-beta", "b,oauth-2025-04-20"), ("content-type", "json"),
                ("accept-encoding", "gzip"), ("connection", "keep-alive"), ("x-claude-proxy-handover", "1f"),
            ]),
            authorization: "Bearer account-token", bodyLength: 2)
        #expect(Self.values(fields, "authorization") == ["Bearer account-token"])
        #expect(Self.values(fields, "x-api-key").isEmpty && Self.values(fields, "cookie").isEmpty)
        #expect(Self.values(fields, "x-claude-proxy-handover").isEmpty, "our internal hand-over id stays here")
        #expect(Self.values(fields, "anthropic-beta") == ["a,b,oauth-2025-04-20"])
        #expect(Self.values(fields, "anthropic-version") == ["2023-06-01"])
        #expect(Self.values(fields, "accept-encoding") == ["identity"])
        #expect(Self.values(fields, "connection").isEmpty)
        #expect(Self.values(fields, "content-length") == ["2"])
        #expect(Self.values(fields, "content-type") == ["json"])
    }

    @Test func extraHeadersReplaceTheClientsAndAddBetas() {
        let fields = UpstreamRequestHeaders.fields(
            method: "POST", authority: "api.example", path: "/v1/messages",
            client: Self.client([("user-agent", "sdk/1"), ("anthropic-version", "2026-10-21")]),
            authorization: "Bearer t", bodyLength: nil,
            extra: [("user-agent", "team/2"), ("anthropic-beta", "extra-beta"), ("x-team", "blue")])
        #expect(Self.values(fields, "user-agent") == ["team/2"])
        #expect(Self.values(fields, "x-team") == ["blue"])
        #expect(Self.values(fields, "anthropic-beta") == ["extra-beta,oauth-2025-04-20"])
        #expect(Self.values(fields, "anthropic-version") == ["2026-10-21"])
    }
}

@Suite struct FieldNameSetTests {
    @Test func containsExactlyItsNames() {
        let names = ["te", "host", "upgrade", "trailer", "connection", "keep-alive", "x-claude-proxy-handover"]
        let set = FieldNameSet(names)
        for name in names { #expect(set.contains(name), "\(name)") }
        for other in ["", "t", "tf", "hosts", "upgradE", "trailers", "x-claude-proxy-handovers", "content-type"] {
            #expect(!set.contains(other), "\(other)")
        }
        #expect(!FieldNameSet([]).contains("te"))
    }

    /// Names of 63 bytes or more share one length bit: each is still compared whole.
    @Test func longNamesAreComparedWhole() {
        let long = String(repeating: "a", count: 70)
        let set = FieldNameSet([long, "te"])
        #expect(set.contains(long))
        #expect(!set.contains(String(repeating: "a", count: 63)))
        #expect(!set.contains(String(repeating: "a", count: 71)))
        #expect(!set.contains(String(repeating: "a", count: 69) + "b"))
        let bytes = Array(long.uppercased().utf8)
        #expect(bytes.withUnsafeBytes { set.contains($0) }, "case-blind over bytes")
    }
}
