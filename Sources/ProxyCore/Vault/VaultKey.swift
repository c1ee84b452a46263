import COpenSSL

/// A 256-bit AES key, held in memory we allocate ourselves so it can be wiped (`OPENSSL_cleanse`) when the
/// last reference goes. Never printed, never written anywhere.
public final class VaultKey: Sendable, CustomStringConvertible {
    public static let byteCount = 32

    // nonisolated(unsafe): written once in init, read-only afterwards, wiped in deinit.
    private nonisolated(unsafe) let storage: UnsafeMutableRawBufferPointer

    /// Takes 32 bytes; the caller should wipe its own copy.
    init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == Self.byteCount, "an AES-256 key has 32 bytes")
        storage = .allocate(byteCount: Self.byteCount, alignment: 16)
        storage.copyMemory(from: bytes)
    }

    deinit {
        OPENSSL_cleanse(storage.baseAddress, storage.count)
        storage.deallocate()
    }

    func withBytes<T>(_ body: (UnsafePointer<UInt8>) throws -> T) rethrows -> T {
        try body(UnsafePointer(storage.baseAddress!.assumingMemoryBound(to: UInt8.self)))
    }

    public var description: String { "<vault key>" }
}

enum SecureRandom {
    static func bytes(_ count: Int) throws(VaultError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let ok = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        guard ok == 1 else { throw OpenSSLFailure.error("RAND_bytes") }
        return bytes
    }
}

/// Turns OpenSSL's thread-local error queue into a `VaultError` (and empties it).
enum OpenSSLFailure {
    static func error(_ function: String) -> VaultError {
        var detail = ""
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            detail += detail.isEmpty ? text : "; " + text
        }
        return .openssl(function: function, detail: detail.isEmpty ? "no detail" : detail)
    }
}
