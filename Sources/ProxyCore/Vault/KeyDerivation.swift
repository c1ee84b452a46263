import COpenSSL
import Foundation

/// How the vault key is derived from the admin secret. Stored in `vault.json` so that a later build can raise
/// the default cost without losing existing vaults.
public enum KeyDerivation: Sendable, Equatable {
    /// scrypt (RFC 7914) through `EVP_PBE_scrypt`: memory-hard, so guessing the admin secret on GPUs is costly.
    case scrypt(n: UInt64, r: UInt64, p: UInt64)
    /// PBKDF2-HMAC-SHA256 (RFC 8018 §5.2); OWASP 2023 asks for at least 600 000 iterations.
    case pbkdf2SHA256(iterations: UInt32)

    /// N = 2^16, r = 8, p = 1: 64 MiB and 0.2–0.35 s (measured, 2 shared cores) once at start-up
    /// (RFC 7914 §2 and OWASP recommend N ≥ 2^15 with r = 8 for interactive use).
    public static let `default` = KeyDerivation.scrypt(n: 1 << 16, r: 8, p: 1)

    public var name: String {
        switch self {
        case .scrypt: return "scrypt"
        case .pbkdf2SHA256: return "pbkdf2-hmac-sha256"
        }
    }

    /// Refuses parameters OpenSSL would reject or that would exhaust memory. Weak but valid parameters pass:
    /// tests use them, and a `vault.json` edited to a weaker KDF fails its key check anyway.
    func validate() -> String? {
        switch self {
        case .scrypt(let n, let r, let p):
            guard n > 1, n & (n - 1) == 0, r >= 1, p >= 1, r < (1 << 20), p < (1 << 20) else {
                return "scrypt parameters out of range"
            }
            let (blocks, overflow) = n.multipliedReportingOverflow(by: r * p)
            if overflow || blocks > (1 << 24) { return "scrypt needs more than 2 GiB" }
        case .pbkdf2SHA256(let iterations):
            if iterations < 1 { return "PBKDF2 iterations out of range" }
        }
        return nil
    }

    /// Derives the 32-byte vault key. Runs once per process start; costs what the parameters say.
    func deriveKey(secret: Secret, salt: [UInt8]) throws(VaultError) -> VaultKey {
        var output = [UInt8](repeating: 0, count: VaultKey.byteCount)
        defer { OPENSSL_cleanse(&output, output.count) }
        var password = Array(secret.reveal().utf8)
        defer { OPENSSL_cleanse(&password, password.count) }
        let ok: Int32
        switch self {
        case .scrypt(let n, let r, let p):
            // maxmem: scrypt uses 128·N·r·p bytes for V plus 256·r·p for B; leave room above the exact figure.
            let maxMemory = 128 * n * r * p + 256 * r * p + (1 << 20)
            ok = EVP_PBE_scrypt(
                password, password.count, salt, salt.count, n, r, p, maxMemory, &output, output.count)
        case .pbkdf2SHA256(let iterations):
            ok = PKCS5_PBKDF2_HMAC(
                password, Int32(password.count), salt, Int32(salt.count), Int32(iterations), EVP_sha256(),
                Int32(output.count), &output)
        }
        guard ok == 1 else { throw OpenSSLFailure.error(name) }
        return output.withUnsafeBytes { VaultKey(bytes: $0) }
    }
}
