import Foundation

/// Text-to-value parsers shared by YAML scalars and environment variables: both arrive as text and are
/// read by the key's type, so `SERVER__PORT=8443` and `port: 8443` mean the same thing.
enum ConfigValueParsing {
    static func int(in range: ClosedRange<Int>) -> (String) -> Int? {
        { text in
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
                return nil
            }
            return value
        }
    }

    static func bool(_ text: String) -> Bool? {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true", "1", "yes": true
        case "false", "0", "no": false
        default: nil
        }
    }

    static func nonEmpty(_ text: String) -> String? {
        text.allSatisfy(\.isWhitespace) ? nil : text
    }

    static func httpURL(_ text: String) -> String? {
        guard let url = URL(string: text),
            let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else { return nil }
        return text
    }

    static func enumeration<Value: RawRepresentable<String> & CaseIterable>(_: Value.Type) -> (String)
        -> Value?
    {
        { text in Value(rawValue: text.trimmingCharacters(in: .whitespaces).lowercased()) }
    }

    static func expectedEnumeration<Value: RawRepresentable<String> & CaseIterable>(_: Value.Type)
        -> String
    {
        "one of " + Value.allCases.map(\.rawValue).joined(separator: ", ")
    }

    /// `"500ms"`, `"1.5s"`, `"2m"`, `"1h"`; a bare number means seconds.
    static func duration(_ text: String) -> Duration? {
        let text = text.trimmingCharacters(in: .whitespaces)
        // "ms" before "s" and "m": a suffix test would otherwise read "5ms" as 5 m-something.
        let units: [(suffix: String, nanoseconds: Double)] = [
            ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
        ]
        let unit = units.first { text.hasSuffix($0.suffix) }
        let number = unit.map { String(text.dropLast($0.suffix.count)) } ?? text
        guard isPlainDecimal(number), let value = Double(number) else { return nil }
        let nanoseconds = (value * (unit?.nanoseconds ?? 1e9)).rounded()
        // About 31 years; keeps the Int64 conversion safe.
        guard nanoseconds <= 1e18 else { return nil }
        return .nanoseconds(Int64(nanoseconds))
    }

    /// Digits with at most one decimal point: no sign, exponent, `inf` or `nan`, which `Double(_:)` would take.
    private static func isPlainDecimal(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, parts.contains(where: { !$0.isEmpty }) else { return false }
        return parts.allSatisfy { $0.allSatisfy { $0.isASCII && $0.isNumber } }
    }
}

/// Expands `~` and makes relative paths absolute against the config file's folder.
struct ConfigPathResolver {
    var home: String
    var baseDirectory: String

    init(home: String, baseDirectory: String) {
        self.home = home
        self.baseDirectory = baseDirectory
    }

    init(environment: [String: String], baseDirectory: String) {
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
        self.init(
            home: home ?? FileManager.default.homeDirectoryForCurrentUser.path,
            baseDirectory: baseDirectory)
    }

    func resolve(_ path: String) -> String {
        var expanded = path
        if path == "~" {
            expanded = home
        } else if path.hasPrefix("~/") {
            expanded = home + path.dropFirst(1)
        }
        let url =
            expanded.hasPrefix("/")
            ? URL(fileURLWithPath: expanded)
            : URL(
                fileURLWithPath: expanded,
                relativeTo: URL(fileURLWithPath: baseDirectory, isDirectory: true))
        return url.standardizedFileURL.path
    }
}
