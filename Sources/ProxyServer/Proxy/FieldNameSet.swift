/// A small set of lower-case field names for the relay's per-field checks: names are bucketed by length and
/// compared within their bucket, which costs less than hashing every name of every request.
struct FieldNameSet: Sendable {
    private let byLength: [[String]]

    init(_ names: [String]) {
        var byLength = Array(repeating: [String](), count: (names.map(\.utf8.count).max() ?? 0) + 1)
        for name in names { byLength[name.utf8.count].append(name) }
        self.byLength = byLength
    }

    func contains(_ name: String) -> Bool {
        let length = name.utf8.count
        guard length < byLength.count else { return false }
        // By index, in place: iterating would copy the row and each name (a retain and a release apiece).
        for index in byLength[length].indices where byLength[length][index] == name { return true }
        return false
    }
}
