import ProxyHTTP2

/// A small set of lower-case field names for the relay's per-field checks: names are bucketed by length and
/// compared within their bucket, which costs less than hashing every name of every request.
struct FieldNameSet: Sendable {
    private let byLength: [[String]]
    /// The same names as bytes, one after another, and where each lies: read by `contains(_:)` for bytes, with no
    /// string (and no reference counting) per comparison.
    private let bytes: [UInt8]
    private let entries: [(offset: Int, count: Int)]

    init(_ names: [String]) {
        var byLength = Array(repeating: [String](), count: (names.map(\.utf8.count).max() ?? 0) + 1)
        for name in names { byLength[name.utf8.count].append(name) }
        self.byLength = byLength
        var bytes: [UInt8] = []
        var entries: [(offset: Int, count: Int)] = []
        for name in names {
            entries.append((bytes.count, name.utf8.count))
            bytes += name.utf8
        }
        self.bytes = bytes
        self.entries = entries
    }

    func contains(_ name: String) -> Bool {
        let length = name.utf8.count
        guard length < byLength.count else { return false }
        // By index, in place: iterating would copy the row and each name (a retain and a release apiece).
        for index in byLength[length].indices where byLength[length][index] == name { return true }
        return false
    }

    /// Whether a name read in place is in the set, compared case-blind.
    func contains(_ name: UnsafeRawBufferPointer) -> Bool {
        bytes.withUnsafeBufferPointer { bytes in
            entries.withUnsafeBufferPointer { entries in
                for entry in entries where entry.count == name.count {
                    let candidate = UnsafeBufferPointer(rebasing: bytes[entry.offset..<entry.offset + entry.count])
                    if FieldBytes.equalsFolded(name, candidate) { return true }
                }
                return false
            }
        }
    }
}
