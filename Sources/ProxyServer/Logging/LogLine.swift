import Foundation

/// One log event rendered as a single line: newlines and quotes in any field are escaped.
struct LogLine {
    var timestamp: Date
    var level: String
    var label: String
    var message: String
    var metadata: [String: String]

    static let jsonFields: Set<String> = ["ts", "level", "label", "msg"]

    /// `2026-11-26T15:00:00.123Z info label: message key=value key2="value with spaces"`
    var text: String {
        var line =
            "\(Self.iso8601(timestamp)) \(level) \(Self.escapeNewlines(label)): \(Self.escapeNewlines(message))"
        for key in metadata.keys.sorted() {
            line += " \(Self.textToken(key))=\(Self.textToken(metadata[key] ?? ""))"
        }
        return line
    }

    /// `{"ts":"…","level":"info","label":"…","msg":"…","key":"value"}`. A metadata key that collides with
    /// one of the fixed fields is written as `meta_<key>` so neither is lost.
    var json: String {
        var fields = [
            ("ts", Self.iso8601(timestamp)), ("level", level), ("label", label), ("msg", message),
        ]
        for key in metadata.keys.sorted() {
            fields.append((Self.jsonFields.contains(key) ? "meta_\(key)" : key, metadata[key] ?? ""))
        }
        return "{"
            + fields.map { "\(Self.jsonString($0)):\(Self.jsonString($1))" }.joined(separator: ",") + "}"
    }

    /// UTC with milliseconds, e.g. `2026-11-26T15:00:00.123Z`.
    static func iso8601(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        // Floor division, so that instants before 1970 still get a millisecond part in 0..<1000.
        var (wholeSeconds, millis) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        if millis < 0 {
            wholeSeconds -= 1
            millis += 1000
        }
        var seconds = time_t(wholeSeconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // Digits written straight into a fixed 24-byte buffer: this runs for every request log line.
        return String(unsafeUninitializedCapacity: 24) { buffer in
            func put(_ value: Int, _ width: Int, at offset: Int) {
                var value = value
                for index in stride(from: offset + width - 1, through: offset, by: -1) {
                    buffer[index] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
            }
            put(Int(parts.tm_year) + 1900, 4, at: 0)
            put(Int(parts.tm_mon) + 1, 2, at: 5)
            put(Int(parts.tm_mday), 2, at: 8)
            put(Int(parts.tm_hour), 2, at: 11)
            put(Int(parts.tm_min), 2, at: 14)
            put(Int(parts.tm_sec), 2, at: 17)
            put(Int(millis), 3, at: 20)
            for (offset, character) in [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (23, "Z")] {
                buffer[offset] = UInt8(ascii: Unicode.Scalar(character)!)
            }
            return 24
        }
    }

    static func escapeNewlines(_ text: String) -> String {
        guard text.contains(where: \.isNewline) else { return text }
        var escaped = ""
        for character in text {
            switch character {
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\r\n": escaped += "\\r\\n"
            case _ where character.isNewline: escaped += " "
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// logfmt style: bare when unambiguous, otherwise quoted with `\"` and `\\`.
    static func textToken(_ text: String) -> String {
        let needsQuotes =
            text.isEmpty
            || text.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || $0.isNewline }
        guard needsQuotes else { return text }
        let inner = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(
            of: "\"", with: "\\\"")
        return "\"\(escapeNewlines(inner))\""
    }

    /// RFC 8259 section 7: quote, backslash and control characters are escaped; the rest is UTF-8 as is.
    static func jsonString(_ text: String) -> String {
        var escaped = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                escaped += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }
}
