import NIOCore
import ProxyHTTP2
import Testing

@testable import ProxyServer

/// The fast path's HTTP/1.1 response bytes: status line, fields, and the body's framing.
@Suite struct HTTP1ResponseBytesTests {
    func wire(_ fields: [H2Field], body: [String]) -> String? {
        var response = HTTP1ResponseBytes()
        let allocator = ByteBufferAllocator()
        guard var out = response.head(fields, allocator: allocator) else { return nil }
        for part in body {
            if var prefix = response.prefix(part.utf8.count, allocator: allocator) { out.writeBuffer(&prefix) }
            out.writeString(part)
            if let suffix = response.suffix(part.utf8.count) { out.writeStaticString(suffix) }
        }
        if let end = response.end { out.writeStaticString(end) }
        return String(buffer: out)
    }

    @Test func bodyWithoutLengthIsChunked() {
        let text = wire(
            [H2Field(":status", "200"), H2Field("content-type", "text/event-stream")],
            body: ["event: ping\n\n", "", String(repeating: "x", count: 300)])
        #expect(
            text
                == "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                + "d\r\nevent: ping\n\n\r\n12c\r\n" + String(repeating: "x", count: 300) + "\r\n0\r\n\r\n")
    }

    @Test func bodyWithLengthIsSentAsItIs() {
        let text = wire(
            [H2Field(":status", "429"), H2Field("content-length", "2"), H2Field("retry-after", "7")], body: ["{}"])
        #expect(text == "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\nretry-after: 7\r\n\r\n{}")
    }

    @Test func statusesWithoutBodyGetNoFraming() {
        #expect(wire([H2Field(":status", "204")], body: []) == "HTTP/1.1 204 No Content\r\n\r\n")
        #expect(
            wire([H2Field(":status", "304"), H2Field("etag", "\"a\"")], body: [])
                == "HTTP/1.1 304 Not Modified\r\netag: \"a\"\r\n\r\n")
    }

    @Test func missingOrBadStatusIsRefused() {
        #expect(wire([H2Field("content-type", "a/b")], body: []) == nil)
        #expect(wire([H2Field(":status", "2x0")], body: []) == nil)
        #expect(wire([H2Field(":status", "1000")], body: []) == nil)
    }
}
