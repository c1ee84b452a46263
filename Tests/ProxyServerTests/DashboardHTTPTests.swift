import Foundation
import ProxyServer
import ProxyTesting
import Testing

/// The dashboard on the built binary over TLS (curl): every file without a key, with the security headers,
/// validators and gzip; every API call with the key only.
@Suite struct DashboardHTTPTests {
    typealias Relay = RelayTests
    typealias Admin = AdminAPITests

    static let assetPaths = [
        "/", "/app.css", "/favicon.svg", "/js/app.js", "/js/admin-client.js", "/js/accounts-table.js",
        "/js/account-login.js", "/js/dialogs.js", "/js/format.js", "/js/health-strip.js", "/js/traffic-chart.js",
    ]

    static let securityHeaders = [
        "content-security-policy: default-src 'self'; frame-ancestors 'none'", "strict-transport-security: max-age=",
        "x-content-type-options: nosniff", "referrer-policy: no-referrer",
    ]

    static func header(_ name: String, in answer: Admin.Answer) -> String? {
        answer.headers.split(separator: "\r\n").first { $0.hasPrefix(name + ":") }.map {
            String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces)
        }
    }

    @Test func everyFileIsServedWithoutAKeyWithHeadersValidatorsAndGzip() async throws {
        let rig = try await Relay.rig()
        for path in Self.assetPaths {
            for key in [nil, "a-wrong-key-the-page-ignores"] {
                let plain = try await Admin.call(rig, "GET", path, key: key)
                #expect(plain.status == 200, "\(path) needs no key")
                for header in Self.securityHeaders + ["cache-control: no-cache", "etag: \""] {
                    #expect(plain.headers.contains(header), "\(path): \(header)")
                }
                #expect(Self.header("content-encoding", in: plain) == nil, "\(path) is plain without Accept-Encoding")
            }
            let plain = try await Admin.call(rig, "GET", path, key: nil)
            let tag = try #require(Self.header("etag", in: plain))
            let type = try #require(Self.header("content-type", in: plain))
            #expect(path.hasSuffix(".js") ? type.hasPrefix("text/javascript") : true)

            let compressedFile = rig.folder.file("compressed")
            let compressed = try await Admin.call(
                rig, "GET", path, key: nil, extra: ["--compressed", "-o", compressedFile])
            #expect(Self.header("content-encoding", in: compressed) == "gzip", "\(path)")
            #expect(Self.header("vary", in: compressed) == "accept-encoding")
            #expect(
                try String(contentsOfFile: compressedFile, encoding: .utf8) == plain.body,
                "\(path): the gzip copy decodes to the same bytes")
            let compressedTag = try #require(Self.header("etag", in: compressed))
            #expect(compressedTag != tag, "each representation has its own strong tag")

            let revalidated = try await Admin.call(rig, "GET", path, key: nil, extra: ["-H", "if-none-match: \(tag)"])
            #expect(revalidated.status == 304 && revalidated.body.isEmpty, "\(path)")
            for header in Self.securityHeaders { #expect(revalidated.headers.contains(header), "304 \(path)") }
            let stale = try await Admin.call(
                rig, "GET", path, key: nil, extra: ["-H", #"if-none-match: "0000""#])
            #expect(stale.status == 200 && stale.body == plain.body)
        }
        let page = try await Admin.call(rig, "GET", "/", key: nil)
        #expect(page.body.contains(#"<script type="module" src="/js/app.js">"#))
        #expect(
            !page.body.contains("<script>") && !page.body.contains("style="), "nothing inline for the CSP to refuse")
        #expect(try await Admin.call(rig, "GET", "/no-such-file.js", key: nil).status == 404)
        try await rig.stop()
    }

    @Test func everyAPICallNeedsTheAdminKey() async throws {
        let rig = try await Relay.rig()
        let id = "acc_0123456789abcdef"
        let calls: [(String, String, String?)] = [
            ("GET", "/api/accounts", nil), ("POST", "/api/accounts", #"{"code":"c#s"}"#),
            ("POST", "/api/accounts/import", "{}"), ("GET", "/api/accounts/\(id)", nil),
            ("PATCH", "/api/accounts/\(id)", #"{"disabled":true}"#), ("DELETE", "/api/accounts/\(id)", nil),
            ("POST", "/api/accounts/\(id)/refresh", nil), ("GET", "/api/usage", nil), ("GET", "/api/stats", nil),
            ("GET", "/oauth/authorize", nil), ("POST", "/oauth/exchange", #"{"code":"c#s"}"#), ("GET", "/metrics", nil),
        ]
        for (method, path, body) in calls {
            for key in [nil, "a-wrong-key-0123456789", Relay.clientKey] {
                let refused = try await Admin.call(rig, method, path, key: key, body: body)
                #expect(refused.status == (key == Relay.clientKey ? 403 : 401), "\(method) \(path)")
                for header in Self.securityHeaders { #expect(refused.headers.contains(header), "\(path): \(header)") }
            }
        }
        let stats = try await Admin.call(rig, "GET", "/api/stats")
        #expect(stats.status == 200 && (stats.json["minutes"] as? [Any])?.count == 60, "\(stats.body.prefix(200))")
        try await rig.stop()
    }

    @Test func theCallbackPageUsesTheDashboardStylesheet() async throws {
        let rig = try await Relay.rig()
        let page = try await Admin.call(rig, "GET", "/oauth/callback?error=access_denied", key: nil)
        #expect(page.body.contains(#"href="/app.css""#) && page.body.contains(#"href="/favicon.svg""#))
        let css = try await Admin.call(rig, "GET", "/app.css", key: nil)
        #expect(css.status == 200 && css.body.contains("body.callback"))
        try await rig.stop()
    }
}
