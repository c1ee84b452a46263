import NIOCore
import NIOHTTP1
import ProxyHTTP2

/// Writes a relayed response as HTTP/1.1 bytes for `HTTP1DirectPath`, sans I/O: the fields come as the relay has
/// them (`:status` and lower-case names, as from an HTTP/2 upstream), and the body is framed as NIO's encoder would
/// frame it: by the upstream's `content-length` when there is one, chunked otherwise, not at all where the status
/// allows no body (RFC 9112 §6.3).
enum HTTP1ResponseWriter {
    enum Framing {
        /// 1xx, 204, 304: whatever body comes is dropped.
        case none
        case length
        case chunked
    }

    private static let hopByHop = FieldNameSet([
        "connection", "transfer-encoding", "keep-alive", "proxy-connection", "upgrade",
    ])

    /// The status line and the fields, or nil when `:status` is missing or not a status. `endStream`: no body
    /// follows (framed as `content-length: 0` when the upstream did not say). `close`: `connection: close`.
    static func head(_ fields: [H2Field], endStream: Bool, close: Bool, into buffer: inout ByteBuffer) -> Framing? {
        // Fields are read in place by index: a `for field in fields` loop copies each field, a retain and a release
        // of both strings per field and pass, which was most of the cost of writing a head.
        let hopByHop = Self.hopByHop  // once: each use of the static is a retain and a release of its table
        var code: Int?
        var hasLength = false
        var size = 96  // the status line and what may be added
        for index in fields.indices {
            let nameCount = fields[index].name.utf8.count
            size += nameCount + fields[index].value.utf8.count + 4
            if nameCount == 7, code == nil, fields[index].name == ":status" { code = Int(fields[index].value) }
            if nameCount == 14, fields[index].name == "content-length" { hasLength = true }
        }
        guard let code, (100...999).contains(code) else { return nil }
        let framing: Framing
        if code < 200 || code == 204 || code == 304 {
            framing = .none
        } else if hasLength || endStream {
            framing = .length
        } else {
            framing = .chunked
        }
        let reason = code == 200 ? "OK" : HTTPResponseStatus(statusCode: code).reasonPhrase
        size += reason.utf8.count
        buffer.reserveCapacity(minimumWritableBytes: size)
        // One pass of copies into the reserved space: writing field by field through ByteBuffer checks capacity and
        // uniqueness for every piece.
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var cursor = Cursor(out: out)
            cursor.append("HTTP/1.1 ")
            cursor.append(String(code))
            cursor.append(" ")
            cursor.append(reason)
            cursor.append("\r\n")
            for index in fields.indices {
                // Hop by hop: this connection's framing is ours.
                if fields[index].name.utf8.first == UInt8(ascii: ":") || hopByHop.contains(fields[index].name) {
                    continue
                }
                cursor.append(fields[index].name)
                cursor.append(": ")
                cursor.append(fields[index].value)
                cursor.append("\r\n")
            }
            if case .length = framing, !hasLength { cursor.append("content-length: 0\r\n") }
            if case .chunked = framing { cursor.append("transfer-encoding: chunked\r\n") }
            if close { cursor.append("connection: close\r\n") }
            cursor.append("\r\n")
            return cursor.offset
        }
        return framing
    }

    /// Copies into space reserved for them.
    private struct Cursor {
        let out: UnsafeMutableRawBufferPointer
        var offset = 0

        mutating func append(_ text: String) {
            offset += FieldText.copy(text, to: out.baseAddress! + offset)
        }
    }

    /// Body bytes, and with `last` the end of the body.
    static func body(_ bytes: ByteBuffer, framing: Framing, last: Bool, into buffer: inout ByteBuffer) {
        switch framing {
        case .none:
            return
        case .length:
            buffer.writeImmutableBuffer(bytes)
        case .chunked:
            if bytes.readableBytes > 0 {
                buffer.writeString(String(bytes.readableBytes, radix: 16))
                buffer.writeStaticString("\r\n")
                buffer.writeImmutableBuffer(bytes)
                buffer.writeStaticString("\r\n")
            }
            if last { buffer.writeStaticString("0\r\n\r\n") }
        }
    }
}
