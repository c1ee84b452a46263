#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// Header names and values as `String`s, with the long ones (over 15 bytes: shorter strings are stored inline
/// and cost nothing) that most requests and responses carry taken from a table of constants instead of
/// allocated for every header block: the Anthropic API's and its SDKs' own fields and the usual content types.
/// A constant string also needs no reference counting as it is copied from field list to field list.
public enum FieldText {
    /// The bytes as a string; with `lowercasing`, ASCII letters lower-cased (HTTP/1.1 field names).
    public static func string(_ bytes: UnsafeRawBufferPointer, lowercasing: Bool = false) -> String {
        guard bytes.count > 15 else { return make(bytes, lowercasing: lowercasing) }
        guard lowercasing, bytes.contains(where: { (65...90).contains($0) }) else {
            return known(bytes) ?? String(decoding: bytes, as: UTF8.self)
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes.count) { lowered in
            FieldBytes.copyLowercased(
                bytes.baseAddress!, to: UnsafeMutableRawPointer(lowered.baseAddress!), count: bytes.count)
            let text = UnsafeRawBufferPointer(lowered)
            return known(text) ?? String(decoding: text, as: UTF8.self)
        }
    }

    private static func make(_ bytes: UnsafeRawBufferPointer, lowercasing: Bool) -> String {
        guard lowercasing, bytes.count > 0, let source = bytes.baseAddress else {
            return String(decoding: bytes, as: UTF8.self)
        }
        return String(unsafeUninitializedCapacity: bytes.count) { out in
            FieldBytes.copyLowercased(source, to: UnsafeMutableRawPointer(out.baseAddress!), count: bytes.count)
            return bytes.count
        }
    }

    /// Copies a string's UTF-8 bytes to `destination`, read in place where the string has them contiguous (native
    /// strings do); returns how many.
    @inlinable @inline(__always)
    public static func copy(_ text: String, to destination: UnsafeMutableRawPointer) -> Int {
        let copied = text.utf8.withContiguousStorageIfAvailable { bytes in
            if let source = bytes.baseAddress, bytes.count > 0 {
                destination.copyMemory(from: source, byteCount: bytes.count)
            }
            return bytes.count
        }
        if let copied { return copied }
        var count = 0
        for byte in text.utf8 {
            destination.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
            count += 1
        }
        return count
    }

    /// The table's string with exactly these bytes.
    static func known(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard bytes.count < byLength.count else { return nil }
        for text in byLength[bytes.count] {
            if equals(text, bytes) { return text }
        }
        return nil
    }

    /// Whether `text` has exactly these bytes.
    public static func equals(_ text: String, _ bytes: UnsafeRawBufferPointer) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { memcmpEqual($0, bytes) } ?? text.utf8.elementsEqual(bytes)
    }

    private static func memcmpEqual(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard let left = a.baseAddress, let right = b.baseAddress else { return a.count == 0 }
        return memcmp(left, right, a.count) == 0
    }

    static let table: [String] = [
        // Request fields (ANTHROPIC-WIRE.md; the SDKs' x-stainless-* set).
        "anthropic-version", "anthropic-dangerous-direct-browser-access", "x-stainless-arch", "x-stainless-lang",
        "x-stainless-package-version", "x-stainless-runtime", "x-stainless-runtime-version",
        "x-stainless-retry-count", "x-stainless-timeout", "x-stainless-read-timeout", "x-stainless-helper-method",
        "x-stainless-async", "x-claude-proxy-handover",
        // Response fields.
        "anthropic-organization-id", "anthropic-ratelimit-unified-status", "anthropic-ratelimit-unified-reset",
        "anthropic-ratelimit-unified-5h-status", "anthropic-ratelimit-unified-5h-reset",
        "anthropic-ratelimit-unified-5h-utilization", "anthropic-ratelimit-unified-7d-status",
        "anthropic-ratelimit-unified-7d-reset", "anthropic-ratelimit-unified-7d-utilization",
        "anthropic-ratelimit-unified-representative-claim", "anthropic-ratelimit-unified-fallback-percentage",
        "anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-limit", "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset",
        "x-envoy-upstream-service-time", "strict-transport-security", "x-claude-proxy-account",
        // Values.
        "application/json", "application/json; charset=utf-8", "text/event-stream",
        "text/event-stream; charset=utf-8", "text/event-stream;charset=UTF-8", "application/x-ndjson",
    ]

    /// `table` by byte count (only strings over 15 bytes: shorter ones are inline anyway).
    private static let byLength: [[String]] = {
        var buckets = [[String]](repeating: [], count: (table.map(\.utf8.count).max() ?? 0) + 1)
        for text in table where text.utf8.count > 15 { buckets[text.utf8.count].append(text) }
        return buckets
    }()
}
