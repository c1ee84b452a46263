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
    /// follows (framed as `content-length: 0` when the upstream did not say). `close`: `connection: close`. Names are
    /// written lower-cased.
    static func head(
        _ block: borrowing FieldBlock, adding added: AddedResponseFields? = nil, endStream: Bool, close: Bool,
        into buffer: inout ByteBuffer
    ) -> Framing? {
        let hopByHop = Self.hopByHop  // once: each use of the static is a retain and a release of its table
        return block.withFields { fields -> Framing? in
            var code: Int?
            var hasLength = false
            var size = 96  // the status line and what may be added
            for index in 0..<fields.count {
                let nameCount = fields.name(index).count
                size += nameCount + fields.value(index).count + 4
                if nameCount == 7, code == nil, fields.nameIs(index, ":status") {
                    code = Self.status(fields.value(index))
                }
                if nameCount == 14, fields.nameIs(index, "content-length") { hasLength = true }
            }
            guard let code else { return nil }
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
            if let added {
                size += 40 + added.account.utf8.count + FastRequestID.length + (added.date?.utf8.count ?? 0)
            }
            // One pass of copies into the reserved space: writing piece by piece through ByteBuffer checks capacity
            // and uniqueness for every piece.
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
                var cursor = Cursor(out: out)
                cursor.append("HTTP/1.1 ")
                cursor.append(String(code))
                cursor.append(" ")
                cursor.append(reason)
                cursor.append("\r\n")
                for index in 0..<fields.count {
                    let name = fields.name(index)
                    // Hop by hop: this connection's framing is ours.
                    if name.first == UInt8(ascii: ":") || hopByHop.contains(name) { continue }
                    cursor.append(name, lowercasing: true)
                    cursor.append(": ")
                    cursor.append(fields.value(index))
                    cursor.append("\r\n")
                }
                if let added {
                    cursor.append(field: "x-claude-proxy-account", added.account)
                    cursor.append(field: "x-request-id", added.requestID)
                    if let date = added.date { cursor.append(field: "date", date) }
                }
                if case .length = framing, !hasLength { cursor.append("content-length: 0\r\n") }
                if case .chunked = framing { cursor.append("transfer-encoding: chunked\r\n") }
                if close { cursor.append("connection: close\r\n") }
                cursor.append("\r\n")
                return cursor.offset
            }
            return framing
        }
    }

    /// Three digits, 100-999.
    private static func status(_ digits: UnsafeRawBufferPointer) -> Int? {
        guard digits.count == 3, let code = FieldBytes.decimal(digits, maxDigits: 3), code >= 100 else { return nil }
        return code
    }

    /// Copies into space reserved for them.
    private struct Cursor {
        let out: UnsafeMutableRawBufferPointer
        var offset = 0

        mutating func append(_ text: String) {
            offset += FieldText.copy(text, to: out.baseAddress! + offset)
        }

        mutating func append(field name: StaticString, _ value: String) {
            append(FieldBytes.bytes(name))
            append(": ")
            append(value)
            append("\r\n")
        }

        mutating func append(field name: StaticString, _ id: FastRequestID) {
            append(FieldBytes.bytes(name))
            append(": ")
            id.write(to: out.baseAddress! + offset)
            offset += FastRequestID.length
            append("\r\n")
        }

        mutating func append(_ bytes: UnsafeRawBufferPointer, lowercasing: Bool = false) {
            guard bytes.count > 0 else { return }
            let target = out.baseAddress! + offset
            if lowercasing {
                FieldBytes.copyLowercased(bytes.baseAddress!, to: target, count: bytes.count)
            } else {
                target.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            }
            offset += bytes.count
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
