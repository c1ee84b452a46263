/// A key a client may present on `/v1/*` (`auth.client_keys`): stored as given, or as `sha256:<hex>` so the
/// configuration need not hold the key itself. Comparisons take time that depends only on lengths.
public struct ClientKey: Sendable, Equatable {
    enum Form: Sendable, Equatable {
        case plain([UInt8])
        case sha256([UInt8])
    }

    let form: Form
    /// Names the key in usage counters and metrics without revealing it: `key_` and the first 8 hex digits of
    /// the key's SHA-256 (the same digits the `sha256:` form of the entry starts with).
    public let label: String

    /// `sha256:` followed by 64 hex digits, or any other non-empty text taken as the key itself.
    public init?(_ entry: String) {
        if entry.hasPrefix("sha256:") {
            let hex = Array(entry.dropFirst(7).utf8)
            guard hex.count == 64, let digest = Self.bytes(fromHex: hex) else { return nil }
            form = .sha256(digest)
            label = Self.label(digest)
        } else {
            guard !entry.isEmpty else { return nil }
            form = .plain(Array(entry.utf8))
            label = Self.label(PKCE.sha256(Array(entry.utf8)))
        }
    }

    static func label(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return "key_" + String(digest.prefix(4).flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    public func matches(_ presented: String) -> Bool {
        var presented = presented
        return presented.withUTF8 { matches($0) }
    }

    /// The same for a key's bytes where they lie (a request head's).
    public func matches(_ presented: UnsafeBufferPointer<UInt8>) -> Bool {
        switch form {
        case .plain(let key):
            return key.withUnsafeBufferPointer { Self.constantTimeEquals(presented, $0) }
        case .sha256(let digest):
            return Self.constantTimeEquals(PKCE.sha256(Array(presented)), digest)
        }
    }

    /// Equal length and contents, without an early exit on the first difference.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in constantTimeEquals(a, b) } }
    }

    static func constantTimeEquals(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        // The whole length difference counts (a truncated one would take lengths 256 apart as equal).
        var difference = UInt(bitPattern: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            difference |= UInt((index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0))
        }
        return difference == 0
    }

    static func bytes(fromHex hex: [UInt8]) -> [UInt8]? {
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: hex.count, by: 2) {
            guard let high = nibble(hex[index]), let low = nibble(hex[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }
}
