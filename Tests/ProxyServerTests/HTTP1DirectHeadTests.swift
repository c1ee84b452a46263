import NIOCore
import ProxyHTTP2
import Testing

@testable import ProxyHTTP2
@testable import ProxyServer

/// The direct path's own request-head parser reads only the plain shape; everything else must come back `.unusual`
/// (NIO's decoder then judges it), never as a head framed differently from how llhttp would frame it.
@Suite struct HTTP1DirectHeadTests {
    static func parse(_ text: String) -> HTTP1DirectHead.Parse {
        HTTP1DirectHead.parse(ByteBuffer(string: text))
    }

    static func head(_ text: String) -> HTTP1DirectHead? {
        if case .head(let head) = parse(text) { return head }
        return nil
    }

    static func isUnusual(_ text: String) -> Bool {
        if case .unusual = parse(text) { return true }
        return false
    }

    /// The fields are read where they lie: the head's block points into the buffer the bytes came in (no copy, no
    /// string per field), names as they came, looked up case-blind and listed lower-cased.
    @Test func fieldsLieInTheBytesTheHeadCameIn() throws {
        var buffer = ByteBuffer(string: "xx")
        buffer.moveReaderIndex(forwardBy: 2)
        buffer.writeString("GET /v1/models HTTP/1.1\r\nUser-Agent: Anthropic/Python 0.75.0\r\nX-Api-Key: k\r\n\r\n")
        guard case .head(let head) = HTTP1DirectHead.parse(buffer) else {
            Issue.record("not read")
            return
        }
        let start = buffer.withUnsafeReadableBytes { $0.baseAddress }
        // `/v1/models` is the target after `GET `, where the head came in.
        #expect(head.fields.withFields { $0.value(1).baseAddress } == start.map { $0 + 4 })
        #expect(head.fields.value(named: "user-agent") == "Anthropic/Python 0.75.0")
        #expect(head.fields.withFields { $0.nameIs(2, "user-agent") && $0.name(2).first == UInt8(ascii: "U") })
        #expect(head.fields.fields.map(\.name) == [":method", ":path", "user-agent", "x-api-key"])
    }

    @Test func plainPostIsReadWithItsFieldsInOrder() throws {
        let text =
            "POST /v1/messages?beta=true HTTP/1.1\r\nHost: localhost\r\nX-Api-Key:  sk-key \t\r\n"
            + "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"model\":12}"
        let head = try #require(Self.head(text))
        #expect(head.contentLength == 12)
        #expect(head.close == false)
        #expect(head.length == text.utf8.count - 12, "the head ends after its empty line")
        #expect(
            head.fields.fields == [
                H2Field(":method", "POST"), H2Field(":path", "/v1/messages?beta=true"), H2Field("host", "localhost"),
                H2Field("x-api-key", "sk-key"), H2Field("content-type", "application/json"),
                H2Field("content-length", "12"),
            ])
    }

    @Test func getWithoutBodyAndConnectionClose() throws {
        let head = try #require(Self.head("GET /v1/models HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\n"))
        #expect(head.fields.value(named: ":method") == "GET")
        #expect(head.contentLength == 0)
        #expect(head.close)
        #expect(Self.head("GET /v1/models HTTP/1.1\r\nconnection: keep-alive\r\n\r\n")?.close == false)
    }

    @Test(arguments: [
        "POST /v1/messages HTTP/1.1\r\n",
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\n",
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\n\r",
        "POS",
    ])
    func headWithoutItsEndIsIncomplete(text: String) {
        guard case .incomplete = Self.parse(text) else {
            Issue.record("\(text.debugDescription) is not incomplete")
            return
        }
    }

    @Test(arguments: [
        ("another path", "GET /health HTTP/1.1\r\n\r\n"),
        ("v1 without its slash", "POST /v1 HTTP/1.1\r\n\r\n"),
        ("another method", "PUT /v1/messages HTTP/1.1\r\n\r\n"),
        ("HEAD", "HEAD /v1/models HTTP/1.1\r\n\r\n"),
        ("HTTP/1.0", "POST /v1/messages HTTP/1.0\r\n\r\n"),
        ("an absolute target", "POST http://x/v1/messages HTTP/1.1\r\n\r\n"),
        ("two spaces", "POST  /v1/messages HTTP/1.1\r\n\r\n"),
        ("chunked", "POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("two lengths", "POST /v1/messages HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
        ("a length that is not a number", "POST /v1/messages HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"),
        ("a signed length", "POST /v1/messages HTTP/1.1\r\nContent-Length: +1\r\n\r\n"),
        ("an empty length", "POST /v1/messages HTTP/1.1\r\nContent-Length: \r\n\r\n"),
        ("a huge length", "POST /v1/messages HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
        ("expect", "POST /v1/messages HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"),
        ("upgrade", "GET /v1/models HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n"),
        ("content-encoding", "POST /v1/messages HTTP/1.1\r\nContent-Encoding: gzip\r\n\r\n"),
        ("another connection option", "GET /v1/models HTTP/1.1\r\nConnection: x-private\r\n\r\n"),
        ("a folded line", "GET /v1/models HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n"),
        ("a space before the colon", "GET /v1/models HTTP/1.1\r\nX-A : 1\r\n\r\n"),
        ("an empty name", "GET /v1/models HTTP/1.1\r\n: 1\r\n\r\n"),
        ("a bare LF", "GET /v1/models HTTP/1.1\r\nX-A: 1\nX-B: 2\r\n\r\n"),
        ("a bare CR in a value", "GET /v1/models HTTP/1.1\r\nX-A: 1\r2\r\n\r\n"),
        ("a bare CR at a line's start", "GET /v1/models HTTP/1.1\r\n\rX: 1\r\n\r\n"),
        ("a control byte", "GET /v1/models HTTP/1.1\r\nX-A: 1\u{1}\r\n\r\n"),
        ("DEL", "GET /v1/models HTTP/1.1\r\nX-A: 1\u{7F}\r\n\r\n"),
        ("a control byte in the target", "GET /v1/mo\u{1}dels HTTP/1.1\r\n\r\n"),
        ("LF line ends", "GET /v1/models HTTP/1.1\n\n"),
        ("LF line ends, unfinished", "GET /v1/models HTTP/1.1\nHost: a"),
        ("a CR after the line end", "GET /v1/models HTTP/1.1\r\n\rX"),
    ])
    func anythingElseIsUnusual(what: String, text: String) {
        #expect(Self.isUnusual(text), "\(what): \(text.debugDescription)")
    }

    @Test func headOverTheLimitIsUnusualEvenUnfinished() {
        let long = "GET /v1/models HTTP/1.1\r\nX-A: " + String(repeating: "a", count: HTTP1DirectHead.Limits.ceiling)
        #expect(Self.isUnusual(long))
        #expect(Self.isUnusual(long + "\r\n\r\n"))
    }

    /// The configured limits (`limits.max_header_size`, the decoder's field cap) hold here too: over them, NIO's
    /// decoder gets the head and answers 431.
    @Test func configuredLimitsAreKept() {
        let head = "GET /v1/models HTTP/1.1\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n"
        func parse(_ limits: HTTP1DirectHead.Limits) -> HTTP1DirectHead.Parse {
            HTTP1DirectHead.parse(ByteBuffer(string: head), limits: limits)
        }
        if case .head = parse(.init(length: head.utf8.count, fields: 3)) {} else { Issue.record("at the limits") }
        if case .unusual = parse(.init(length: head.utf8.count - 1, fields: 3)) {} else { Issue.record("length") }
        if case .unusual = parse(.init(length: 4096, fields: 2)) {} else { Issue.record("fields") }
        #expect(HTTP1DirectHead.Limits(length: 1 << 20, fields: 1).length == HTTP1DirectHead.Limits.ceiling)
    }

    @Test func onlyTheFirstHeadIsRead() throws {
        let first = "GET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n"
        let head = try #require(Self.head(first + "GET /health HTTP/1.1\r\n\r\n"))
        #expect(head.length == first.utf8.count)
        #expect(head.fields.fields.last == H2Field("host", "a"))
    }

    /// Values are read eight bytes at a time: a control byte or DEL anywhere in a long value still makes the head
    /// unusual, and a tab anywhere is kept, with spaces and tabs around the value dropped.
    @Test func longValuesAreJudgedAtEveryPosition() throws {
        let prefix = "GET /v1/models HTTP/1.1\r\nX-Long: "
        for position in 0..<24 {
            for bad in ["\u{1}", "\u{1F}", "\u{7F}", "\u{0}", "\n", "\r"] {
                var value = Array(repeating: "v", count: 24)
                value[position] = bad
                let text = prefix + value.joined() + "\r\n\r\n"
                #expect(Self.isUnusual(text), "\(bad.debugDescription) at \(position)")
            }
            // Inside the value (a tab at either end would be space around it).
            guard position > 0, position < 23 else { continue }
            var value = Array(repeating: "é", count: 12) + Array(repeating: "v", count: 12)
            value[position] = "\t"
            let head = try #require(Self.head(prefix + " \t " + value.joined() + " \t \r\nX-B: 1\r\n\r\n"))
            #expect(head.fields.fields.dropFirst(2).map(\.value) == [value.joined(), "1"], "tab at \(position)")
        }
    }

    @Test func valuesMayBeEmptyOrCarryTabsAndUTF8() throws {
        let head = try #require(Self.head("GET /v1/models HTTP/1.1\r\nX-Empty:\r\nX-Tab: a\tb\r\nX-U: é\r\n\r\n"))
        #expect(head.fields.fields.dropFirst(2).map(\.value) == ["", "a\tb", "é"])
    }
}

/// The direct path writes relayed responses itself: framing as NIO's encoder would.
@Suite struct HTTP1ResponseWriterTests {
    static func write(
        _ fields: [H2Field], endStream: Bool = false, close: Bool = false
    ) -> (String, HTTP1ResponseWriter.Framing?) {
        var buffer = ByteBuffer()
        let framing = HTTP1ResponseWriter.head(
            FieldBlock(fields), endStream: endStream, close: close, into: &buffer)
        return (String(buffer: buffer), framing)
    }

    @Test func upstreamLengthIsKeptAndHopByHopFieldsDropped() {
        let (text, framing) = Self.write([
            H2Field(":status", "200"), H2Field("content-type", "application/json"), H2Field("content-length", "5"),
            H2Field("connection", "keep-alive"), H2Field("transfer-encoding", "chunked"), H2Field("request-id", "r"),
        ])
        #expect(framing == .length)
        #expect(
            text
                == "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5\r\nrequest-id: r\r\n\r\n")
    }

    @Test func streamWithoutLengthIsChunked() {
        let (text, framing) = Self.write([H2Field(":status", "200"), H2Field("content-type", "text/event-stream")])
        #expect(framing == .chunked)
        #expect(text == "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        var body = ByteBuffer()
        HTTP1ResponseWriter.body(ByteBuffer(string: "event: ping\n\n"), framing: .chunked, last: false, into: &body)
        HTTP1ResponseWriter.body(ByteBuffer(), framing: .chunked, last: false, into: &body)
        HTTP1ResponseWriter.body(ByteBuffer(string: "x"), framing: .chunked, last: true, into: &body)
        #expect(String(buffer: body) == "d\r\nevent: ping\n\n\r\n1\r\nx\r\n0\r\n\r\n")
    }

    @Test func headThatEndsTheResponseSaysNoBodyAndCloseIsAnnounced() {
        let (text, framing) = Self.write([H2Field(":status", "429")], endStream: true, close: true)
        #expect(framing == .length)
        #expect(text == "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    }

    @Test func statusesWithoutBodyDropIt() {
        for status in ["204", "304", "103"] {
            let (text, framing) = Self.write([H2Field(":status", status)])
            #expect(framing == HTTP1ResponseWriter.Framing.none, "\(status)")
            #expect(!text.contains("transfer-encoding"), "\(status)")
        }
        var body = ByteBuffer()
        HTTP1ResponseWriter.body(ByteBuffer(string: "x"), framing: .none, last: true, into: &body)
        #expect(body.readableBytes == 0)
    }

    @Test func missingOrBrokenStatusIsRefused() {
        #expect(Self.write([H2Field("content-type", "x")]).1 == nil)
        #expect(Self.write([H2Field(":status", "2xx")]).1 == nil)
        #expect(Self.write([H2Field(":status", "42")]).1 == nil)
    }
}
