import NIOHTTP1
import ProxyHTTP2
import Testing

@testable import ProxyUpstream

/// The HTTP/2-shaped fields of the relay as an HTTP/1.1 request head, and a response head back.
@Suite struct HTTP1MessageTests {
    static let origin = UpstreamOrigin(isTLS: true, host: "upstream.test", port: 8443)

    static func fields(_ method: String, _ extra: [H2Field] = []) -> [H2Field] {
        [
            H2Field(":method", method), H2Field(":scheme", "https"), H2Field(":authority", "upstream.test:8443"),
            H2Field(":path", "/v1/messages?beta=true"),
        ] + extra
    }

    @Test func requestHeadCarriesHostPathAndTheBodyLength() {
        let head = HTTP1Message.requestHead(
            Self.fields("POST", [H2Field("content-type", "application/json"), H2Field("anthropic-version", "x")]),
            bodyLength: 27, origin: Self.origin)
        #expect(head.method == .POST && head.uri == "/v1/messages?beta=true" && head.version == .http1_1)
        #expect(head.headers["host"] == ["upstream.test:8443"])
        #expect(head.headers["content-length"] == ["27"])
        #expect(head.headers["content-type"] == ["application/json"])
        #expect(head.headers["anthropic-version"] == ["x"])
        #expect(!head.headers.contains { $0.name.hasPrefix(":") }, "no pseudo-header leaks into HTTP/1.1")
    }

    @Test func connectionSpecificAndFramingFieldsAreNotCopied() {
        let given = [
            "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host",
            "content-length", "expect",
        ].map { H2Field($0, "from-the-caller") }
        let head = HTTP1Message.requestHead(Self.fields("POST", given), bodyLength: 5, origin: Self.origin)
        #expect(!head.headers.contains { $0.value == "from-the-caller" }, "\(head.headers)")
        #expect(head.headers["content-length"] == ["5"], "the length of the body actually sent")
    }

    @Test(arguments: [("POST", ["0"]), ("PUT", ["0"]), ("GET", []), ("DELETE", [])])
    func aRequestWithoutBody(method: String, contentLength: [String]) {
        let head = HTTP1Message.requestHead(Self.fields(method), bodyLength: nil, origin: Self.origin)
        #expect(head.headers["content-length"] == contentLength)
    }

    @Test func hostFallsBackToTheOrigin() {
        let head = HTTP1Message.requestHead(
            [H2Field(":method", "GET"), H2Field(":path", "/")], bodyLength: nil, origin: Self.origin)
        #expect(head.headers["host"] == ["upstream.test:8443"])
    }

    @Test func responseFieldsHaveTheStatusAndLowerCaseNames() {
        var head = HTTPResponseHead(version: .http1_1, status: .tooManyRequests)
        head.headers.add(name: "Retry-After", value: "7")
        head.headers.add(name: "Content-Type", value: "application/json")
        #expect(
            HTTP1Message.fields(of: head) == [
                H2Field(":status", "429"), H2Field("retry-after", "7"), H2Field("content-type", "application/json"),
            ])
    }
}
