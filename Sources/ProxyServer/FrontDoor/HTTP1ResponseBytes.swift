import NIOCore
import NIOHTTP1
import ProxyHTTP2

/// An HTTP/1.1 response as bytes, for the relay's fast path: the head straight from the response's fields (no
/// `HTTPHeaders`, no HTTP part enums through the pipeline), and the body framed by `content-length` when the
/// upstream gave one, else chunked (RFC 9112 §6–7). Sans I/O: it only fills buffers.
struct HTTP1ResponseBytes {
    enum Framing: Equatable {
        /// No body may follow (1xx, 204, 304).
        case none
        case length
        case chunked
    }

    private(set) var framing = Framing.none

    /// The status line and header section of `fields` (`:status` and lower-case names; hop-by-hop fields are
    /// already gone); nil when `:status` is missing or not a status code.
    mutating func head(_ fields: [H2Field], allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard let status = fields.first(where: { $0.name == ":status" }).flatMap({ Int($0.value) }),
            (100...999).contains(status)
        else { return nil }
        var size = 32
        var hasLength = false
        for field in fields where !field.name.hasPrefix(":") {
            size += field.name.utf8.count + field.value.utf8.count + 4
            if field.name == "content-length" { hasLength = true }
        }
        var buffer = allocator.buffer(capacity: size + 32)
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(status))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(HTTPResponseStatus(statusCode: status).reasonPhrase)
        buffer.writeStaticString("\r\n")
        for field in fields where !field.name.hasPrefix(":") {
            buffer.writeString(field.name)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        if status < 200 || status == 204 || status == 304 {
            framing = .none
        } else if hasLength {
            framing = .length
        } else {
            framing = .chunked
            buffer.writeStaticString("transfer-encoding: chunked\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// The bytes before a body part (a chunk's size line), if its framing has any.
    func prefix(_ count: Int, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard framing == .chunked, count > 0 else { return nil }
        var buffer = allocator.buffer(capacity: 18)
        buffer.writeString(String(count, radix: 16))
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// After a body part: a chunk ends with CRLF.
    func suffix(_ count: Int) -> StaticString? {
        framing == .chunked && count > 0 ? "\r\n" : nil
    }

    /// The end of the body: the last chunk.
    var end: StaticString? {
        framing == .chunked ? "0\r\n\r\n" : nil
    }
}
