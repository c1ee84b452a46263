import Foundation
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

    let method: String
    let path: String
    /// `:method`, `:path`, then the header fields in order, names lower-cased, values without surrounding spaces.
    let fields: [H2Field]
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

    static func parse(_ bytes: UnsafeRawBufferPointer, limits: Limits = .standard) -> Parse {
        var recent: [String] = []
        return parse(bytes, limits: limits, recent: &recent)
    }

    /// `recent`: the connection's recent long field values, reused where a value repeats
    /// (`FieldText.value(_:at:recent:)`).
    static func parse(_ bytes: UnsafeRawBufferPointer, limits: Limits = .standard, recent: inout [String]) -> Parse {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .incomplete }
        let searched = min(bytes.count, limits.length)
        guard let length = endOfHead(base, searched) else {
            return searched == limits.length ? .unusual : .incomplete
        }
        guard length > 0 else { return .unusual }
        var reader = LineReader(bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<length]), maxFields: limits.fields)
        return reader.head(recent: &recent).map { .head($0) } ?? .unusual
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

    mutating func head(recent: inout [String]) -> HTTP1DirectHead? {
        guard let (method, path) = requestLine() else { return nil }
        var fields = [H2Field(":method", method), H2Field(":path", path)]
        fields.reserveCapacity(16)
        var contentLength: Int?
        var close = false
        while true {
            if bytes[index] == cr {
                // The empty line that ends the head (CRLF CRLF), or a bare CR.
                guard index + 2 == bytes.count else { return nil }
                break
            }
            guard fields.count - 2 < maxFields, let (name, value) = fieldLine(at: fields.count, recent: &recent) else {
                return nil
            }
            // By length first: most names are none of these, and a length costs less than a comparison.
            switch name.utf8.count {
            case 14 where name == "content-length":
                guard contentLength == nil, let length = Self.decimal(value) else { return nil }
                contentLength = length
            case 10 where name == "connection":
                guard let closes = Self.connectionCloses(value) else { return nil }
                close = close || closes
            case 17 where name == "transfer-encoding", 6 where name == "expect", 7 where name == "upgrade",
                16 where name == "content-encoding", 2 where name == "te", 14 where name == "http2-settings":
                return nil
            default:
                break
            }
            fields.append(H2Field(name, value))
        }
        return HTTP1DirectHead(
            method: method, path: path, fields: fields, contentLength: contentLength ?? 0, close: close,
            length: bytes.count)
    }

    /// `POST /v1/… HTTP/1.1` or `GET /v1/… HTTP/1.1`.
    private mutating func requestLine() -> (String, String)? {
        let method: String
        if matches("POST ") {
            method = "POST"
        } else if matches("GET ") {
            method = "GET"
        } else {
            return nil
        }
        let start = index
        while index < bytes.count, (0x21...0x7E).contains(bytes[index]) { index += 1 }
        let target = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
        guard target.starts(with: "/v1/".utf8), matches(" HTTP/1.1\r\n") else { return nil }
        return (method, String(decoding: target, as: UTF8.self))
    }

    /// `name: value` and its CRLF, or nil for anything else (a folded line, a bare CR or LF, a control byte).
    private mutating func fieldLine(at position: Int, recent: inout [String]) -> (String, String)? {
        let nameStart = index
        while Self.isTokenByte(bytes[index]) { index += 1 }
        guard index > nameStart, bytes[index] == colon else { return nil }
        let name = FieldText.string(UnsafeRawBufferPointer(rebasing: bytes[nameStart..<index]), lowercasing: true)
        index += 1
        while bytes[index] == space || bytes[index] == tab { index += 1 }
        let valueStart = index
        var valueEnd = index
        while true {
            let byte = bytes[index]
            if byte == cr { break }
            guard byte == tab || (byte >= space && byte != 0x7F) else { return nil }
            index += 1
            if byte != space, byte != tab { valueEnd = index }
        }
        guard bytes[index + 1] == lf else { return nil }
        index += 2
        return (
            name,
            FieldText.value(
                UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd]), at: position, recent: &recent)
        )
    }

    private mutating func matches(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count,
            memcmp(bytes.baseAddress! + index, literal.utf8Start, count) == 0
        else { return false }
        index += count
        return true
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

    /// Digits only, and not so many that they overflow.
    private static func decimal(_ value: String) -> Int? {
        let digits = value.utf8
        guard !digits.isEmpty, digits.count <= 15, digits.allSatisfy({ (48...57).contains($0) }) else { return nil }
        return Int(value)
    }

    /// Whether the `Connection` field asks to close; nil when it names anything but `close` and `keep-alive`.
    private static func connectionCloses(_ value: String) -> Bool? {
        var closes = false
        for option in value.split(separator: ",") {
            switch option.trimmingCharacters(in: .whitespaces).lowercased() {
            case "close": closes = true
            case "keep-alive": break
            default: return nil
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
