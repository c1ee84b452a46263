import ProxyHTTP2

/// A small set of lower-case field names for the relay's per-field checks: the names lie one after another in one
/// array of bytes, and a name is compared with those of its length only, which costs less than hashing every name of
/// every request (and needs no string, nor any reference counting, per comparison).
struct FieldNameSet: Sendable {
    private let bytes: [UInt8]
    private let entries: [(offset: Int, count: Int)]
    /// Bit n is set when a name has n bytes (bit 63: 63 or more): most names looked up have a length none has.
    private let lengths: UInt64

    init(_ names: [String]) {
        var bytes: [UInt8] = []
        var entries: [(offset: Int, count: Int)] = []
        var lengths: UInt64 = 0
        for name in names {
            entries.append((bytes.count, name.utf8.count))
            lengths |= Self.bit(name.utf8.count)
            bytes += name.utf8
        }
        self.bytes = bytes
        self.entries = entries
        self.lengths = lengths
    }

    private static func bit(_ count: Int) -> UInt64 {
        1 << UInt64(min(count, 63))
    }

    /// Whether the string is in the set, exactly (the relay's lists have lower-case names).
    func contains(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { find(UnsafeRawBufferPointer($0), caseBlind: false) }
    }

    /// Whether a name read in place is in the set, compared case-blind (an HTTP/1.1 head's names keep their case).
    func contains(_ name: UnsafeRawBufferPointer) -> Bool {
        find(name, caseBlind: true)
    }

    private func find(_ name: UnsafeRawBufferPointer, caseBlind: Bool) -> Bool {
        guard lengths & Self.bit(name.count) != 0 else { return false }
        return bytes.withUnsafeBufferPointer { bytes in
            entries.withUnsafeBufferPointer { entries in
                for entry in entries where entry.count == name.count {
                    let candidate = UnsafeBufferPointer(rebasing: bytes[entry.offset..<entry.offset + entry.count])
                    if caseBlind ? FieldBytes.equalsFolded(name, candidate) : name.elementsEqual(candidate) {
                        return true
                    }
                }
                return false
            }
        }
    }
}
