import Foundation
import NIOCore
import ProxyHTTP2

/// An HTTP/1.1 request head read straight from the connection's bytes for `HTTP1DirectPath`, sans I/O. Only the
/// plain shape the relay's fast path takes is read here: `POST` or `GET` of a `/v1/` target over HTTP/1.1, CRLF line
/// ends, token field names, a body framed by at most one `Content-Length`, and `Connection` naming only `close` or
/// `keep-alive`. Anything else (`Transfer-Encoding`, `Expect`, `Upgrade`, `Content-Encoding`, a folded line, a bare
/// CR or LF, a control byte, a head over `limit`) is `.unusual`, and NIO's decoder gets the bytes: where the two
/// parsers could disagree about where a request ends, this one steps aside.
struct HTTP1DirectHead {
    enum Parse {
        /// No end of the head yet.
        case incomplete
        /// Not a head this parser reads: NIO's decoder judges it.
        case unusual
        case head(HTTP1DirectHead)
    }

    /// `:method`, `:path`, then the header fields in order, where they lie in the head's bytes: names as they came,
    /// values without surrounding spaces.
    let fields: FieldBlock
    let contentLength: Int
    /// `Connection: close`: the connection ends with this request's response.
    let close: Bool
    /// Bytes of the head, its empty line included.
    let length: Int

    /// What a head read here may have; a longer head or more fields go to NIO's decoder, which answers them by its
    /// own limits (431).
    struct Limits {
        /// Bytes of the whole head, at most `ceiling`.
        var length: Int
        var fields: Int

        init(length: Int, fields: Int) {
            self.length = min(length, Self.ceiling)
            self.fields = fields
        }

        static let ceiling = 16 << 10
        static let standard = Limits(length: ceiling, fields: 200)
    }

    static func parse(_ buffer: ByteBuffer, limits: Limits = .standard) -> Parse {
        var builder = FieldBlockBuilder(chunkSize: 1024)
        return parse(buffer, limits: limits, builder: &builder)
    }

    /// The head at the start of `buffer`'s readable bytes; its fields are read where they lie, in a slice of it, and
    /// `builder` (the connection's) lays out where.
    static func parse(_ buffer: ByteBuffer, limits: Limits = .standard, builder: inout FieldBlockBuilder) -> Parse {
        let searched = min(buffer.readableBytes, limits.length)
        guard searched > 0 else { return .incomplete }
        let end = buffer.withUnsafeReadableBytes { endOfHead($0.baseAddress!, searched) }
        guard let length = end else { return searched == limits.length ? .unusual : .incomplete }
        guard length > 0, let head = buffer.getSlice(at: buffer.readerIndex, length: length) else { return .unusual }
        builder.begin()
        let read = head.withUnsafeReadableBytes { bytes in
            var reader = LineReader(bytes: bytes, maxFields: limits.fields)
            return reader.head(into: &builder)
        }
        guard let (contentLength, close) = read else { return .unusual }
        return .head(
            HTTP1DirectHead(
                fields: builder.finish(in: head), contentLength: contentLength, close: close, length: length))
    }

    /// The length up to and including the first CRLF CRLF, found from LF to LF with `memchr`; 0 at a bare LF
    /// (only NIO's decoder reads such heads), nil when there is no end yet.
    private static func endOfHead(_ base: UnsafeRawPointer, _ count: Int) -> Int? {
        var offset = 0
        while offset < count, let found = memchr(base + offset, Int32(lf), count - offset) {
            let at = base.distance(to: UnsafeRawPointer(found))
            guard at > 0, base.load(fromByteOffset: at - 1, as: UInt8.self) == cr else { return 0 }
            guard at + 2 < count else { return nil }
            if base.load(fromByteOffset: at + 1, as: UInt8.self) == cr {
                return base.load(fromByteOffset: at + 2, as: UInt8.self) == lf ? at + 3 : 0
            }
            offset = at + 1
        }
        return nil
    }
}

/// Walks the lines of one complete head (it ends in CRLF CRLF).
private struct LineReader {
    let bytes: UnsafeRawBufferPointer
    let maxFields: Int
    var index = 0

    init(bytes: UnsafeRawBufferPointer, maxFields: Int) {
        self.bytes = bytes
        self.maxFields = maxFields
    }

    /// Adds the head's fields to `fields`; its content length and whether it asks to close, or nil for a head
    /// not read here.
    mutating func head(into fields: inout FieldBlockBuilder) -> (contentLength: Int, close: Bool)? {
        guard requestLine(into: &fields) else { return nil }
        var contentLength: Int?
        var close = false
        var count = 0
        while true {
            if bytes[index] == cr {
                // The empty line that ends the head (CRLF CRLF), or a bare CR.
                guard index + 2 == bytes.count else { return nil }
                break
            }
            guard count < maxFields, let (name, value) = fieldLine() else { return nil }
            count += 1
            let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[name])
            let valueBytes = UnsafeRawBufferPointer(rebasing: bytes[value])
            // By length first: most names are none of these, and a length costs less than a comparison.
            switch name.count {
            case 14 where FieldBytes.equalsFolded(nameBytes, "content-length"):
                guard contentLength == nil, let length = FieldBytes.decimal(valueBytes, maxDigits: 15) else {
                    return nil
                }
                contentLength = length
            case 10 where FieldBytes.equalsFolded(nameBytes, "connection"):
                guard let closes = Self.connectionCloses(valueBytes) else { return nil }
                close = close || closes
            case 17 where FieldBytes.equalsFolded(nameBytes, "transfer-encoding"),
                6 where FieldBytes.equalsFolded(nameBytes, "expect"),
                7 where FieldBytes.equalsFolded(nameBytes, "upgrade"),
                16 where FieldBytes.equalsFolded(nameBytes, "content-encoding"),
                2 where FieldBytes.equalsFolded(nameBytes, "te"),
                14 where FieldBytes.equalsFolded(nameBytes, "http2-settings"):
                return nil
            default:
                break
            }
            fields.addField(name: name, value: value)
        }
        return (contentLength ?? 0, close)
    }

    /// `POST /v1/… HTTP/1.1` or `GET /v1/… HTTP/1.1`: the method and target added as `:method` and `:path`.
    private mutating func requestLine(into fields: inout FieldBlockBuilder) -> Bool {
        if matches("POST ") {
            fields.addField(.method, value: 0..<4)
        } else if matches("GET ") {
            fields.addField(.method, value: 0..<3)
        } else {
            return false
        }
        let start = index
        while index < bytes.count, (0x21...0x7E).contains(bytes[index]) { index += 1 }
        let target = start..<index
        guard UnsafeRawBufferPointer(rebasing: bytes[target]).starts(with: "/v1/".utf8), matches(" HTTP/1.1\r\n")
        else { return false }
        fields.addField(.path, value: target)
        return true
    }

    /// `name: value` and its CRLF, as where the name and the value (without surrounding spaces) lie, or nil for
    /// anything else (a folded line, a bare CR or LF, a control byte).
    private mutating func fieldLine() -> (name: Range<Int>, value: Range<Int>)? {
        let nameStart = index
        while Self.isTokenByte(bytes[index]) { index += 1 }
        guard index > nameStart, bytes[index] == colon else { return nil }
        let name = nameStart..<index
        index += 1
        while bytes[index] == space || bytes[index] == tab { index += 1 }
        let valueStart = index
        // Eight bytes at a time while none is a control byte or DEL (the CR that ends the line is one): most values
        // are visible ASCII through and through. The rest byte by byte, which also judges a word that stopped this.
        while bytes.count - index >= 8,
            !Self.hasControlByte(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
        {
            index += 8
        }
        while true {
            let byte = bytes[index]
            if byte == cr { break }
            guard byte == tab || (byte >= space && byte != 0x7F) else { return nil }
            index += 1
        }
        var valueEnd = index
        while valueEnd > valueStart, bytes[valueEnd - 1] == space || bytes[valueEnd - 1] == tab { valueEnd -= 1 }
        guard bytes[index + 1] == lf else { return nil }
        index += 2
        return (name, valueStart..<valueEnd)
    }

    private mutating func matches(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count,
            memcmp(bytes.baseAddress! + index, literal.utf8Start, count) == 0
        else { return false }
        index += count
        return true
    }

    /// Whether any of eight bytes is below 0x20 (a control byte: CR, LF, a tab, …) or DEL. Exact as a yes or no: a
    /// borrow can only run on from a byte that already answers yes.
    static func hasControlByte(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        let below20 = (word &- 0x20 &* ones) & ~word & high
        let delta = word ^ (0x7F &* ones)
        let del = (delta &- ones) & ~delta & high
        return below20 | del != 0
    }

    /// RFC 9110 §5.6.2 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Whether the `Connection` field asks to close; nil when it names anything but `close` and `keep-alive`.
    private static func connectionCloses(_ value: UnsafeRawBufferPointer) -> Bool? {
        var closes = false
        for option in value.split(separator: UInt8(ascii: ",")) {
            var option = UnsafeRawBufferPointer(rebasing: option)[...]
            while let first = option.first, first == space || first == tab { option = option.dropFirst() }
            while let last = option.last, last == space || last == tab { option = option.dropLast() }
            let trimmed = UnsafeRawBufferPointer(rebasing: option)
            if FieldBytes.equalsFolded(trimmed, "close") {
                closes = true
            } else if !FieldBytes.equalsFolded(trimmed, "keep-alive") {
                return nil
            }
        }
        return closes
    }
}

private let cr = UInt8(ascii: "\r")
private let lf = UInt8(ascii: "\n")
private let space = UInt8(ascii: " ")
private let tab = UInt8(ascii: "\t")
private let colon = UInt8(ascii: ":")
