import Foundation

/// The two request headers the dashboard's static files answer to.
enum ContentNegotiation {
    /// Whether `Accept-Encoding` admits gzip (RFC 9110 §12.5.3): `gzip`, `x-gzip` or `*` with a non-zero weight,
    /// unless gzip itself is listed with `q=0`.
    static func acceptsGzip(_ header: String?) -> Bool {
        guard let header else { return false }
        var wildcard = false
        for entry in header.split(separator: ",") {
            let parts = entry.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let coding = parts.first else { continue }
            let weight = parts.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            switch coding {
            case "gzip", "x-gzip": return weight > 0
            case "*": wildcard = weight > 0
            default: continue
            }
        }
        return wildcard
    }

    /// Whether `If-None-Match` names `tag` or is `*` (RFC 9110 §13.1.2, weak comparison: `W/` is ignored).
    static func matches(ifNoneMatch header: String?, tag: String) -> Bool {
        guard let header else { return false }
        for candidate in header.split(separator: ",") {
            var text = candidate.trimmingCharacters(in: .whitespaces)
            if text == "*" { return true }
            if text.hasPrefix("W/") { text.removeFirst(2) }
            if text == tag { return true }
        }
        return false
    }
}
