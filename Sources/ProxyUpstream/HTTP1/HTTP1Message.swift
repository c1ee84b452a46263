import NIOCore
import NIOHTTP1
import ProxyHTTP2

/// Translation between the HTTP/2-shaped fields the relay works with and HTTP/1.1 message heads.
enum HTTP1Message {
    /// Fields that describe one connection, not the message (RFC 9110 §7.6.1), the framing we set ourselves, and
    /// `expect` (the whole body goes out with the head, so there is nothing to wait for): never copied from the
    /// caller's fields.
    static let connectionSpecific: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host",
        "content-length", "expect",
    ]

    /// Methods whose request carries content even when it is empty (RFC 9110 §8.6: a user agent sends
    /// `content-length: 0` for them rather than leaving the length to guesswork).
    static let methodsWithContent: Set<String> = ["POST", "PUT", "PATCH"]

    /// The request head for `fields` (`:method`, `:path`, `:authority` pseudo-headers, then regular fields):
    /// `host` from `:authority` (or the origin), `content-length` from the body actually sent.
    static func requestHead(_ fields: [H2Field], bodyLength: Int?, origin: UpstreamOrigin) -> HTTPRequestHead {
        let method = fields[field: ":method"] ?? "GET"
        var head = HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: method), uri: fields[field: ":path"] ?? "/")
        head.headers.reserveCapacity(fields.count)
        head.headers.add(name: "host", value: fields[field: ":authority"] ?? origin.authority)
        for field in fields where !field.name.hasPrefix(":") && !connectionSpecific.contains(field.name) {
            head.headers.add(name: field.name, value: field.value)
        }
        if let bodyLength {
            head.headers.add(name: "content-length", value: "\(bodyLength)")
        } else if methodsWithContent.contains(method) {
            head.headers.add(name: "content-length", value: "0")
        }
        return head
    }

    /// The response head as the relay reads it: `:status`, then the fields with lower-case names.
    static func fields(of head: HTTPResponseHead) -> [H2Field] {
        var fields = [H2Field(":status", "\(head.status.code)")]
        fields.reserveCapacity(head.headers.count + 1)
        for (name, value) in head.headers {
            fields.append(H2Field(name.lowercased(), value))
        }
        return fields
    }
}
