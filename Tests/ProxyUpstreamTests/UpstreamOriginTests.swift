import Testing

@testable import ProxyUpstream

@Suite struct UpstreamOriginTests {
    @Test(arguments: [
        ("https://api.anthropic.com", true, "api.anthropic.com", 443, "api.anthropic.com"),
        ("https://localhost:19443/v1/x?y=1", true, "localhost", 19443, "localhost:19443"),
        ("http://127.0.0.1:8080", false, "127.0.0.1", 8080, "127.0.0.1:8080"),
        ("http://[::1]:4000/", false, "::1", 4000, "[::1]:4000"),
        ("https://[::1]", true, "::1", 443, "[::1]"),
    ])
    func parses(url: String, tls: Bool, host: String, port: Int, authority: String) throws {
        let origin = try #require(UpstreamOrigin(url: url))
        #expect(origin.isTLS == tls && origin.host == host && origin.port == port)
        #expect(origin.authority == authority)
    }

    @Test(arguments: ["ftp://x", "https://", "https://host:0", "https://host:99999", "host:443", "https://[::1"])
    func rejects(url: String) {
        #expect(UpstreamOrigin(url: url) == nil)
    }

    @Test(arguments: [
        ("https://h/v1/oauth/token", "/v1/oauth/token"),
        ("https://h", "/"),
        ("https://h:1/a?b=c#frag", "/a?b=c"),
        ("https://h?x=1", "/?x=1"),
    ])
    func requestTargets(url: String, target: String) {
        #expect(requestTarget(of: url) == target)
    }
}
