import Foundation

/// `vault.json`: how to derive the key from the admin secret, and a value that proves the key right. Never the
/// key. `generation` counts secret rotations; every account file names the generation it is encrypted under.
struct VaultFile: Codable, Equatable {
    static let currentFormat = 1

    struct KDF: Codable, Equatable {
        var name: String
        var n: UInt64?
        var r: UInt64?
        var p: UInt64?
        var iterations: UInt32?
    }

    var formatVersion: Int
    var generation: Int
    var kdf: KDF
    /// base64 of 16 random bytes.
    var salt: String
    /// base64 of the AES-GCM sealing of `keyCheckLabel` under the derived key.
    var keyCheck: String
    var createdAt: String

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case generation, kdf, salt
        case keyCheck = "key_check"
        case createdAt = "created_at"
    }

    var keyDerivation: KeyDerivation? {
        switch kdf.name {
        case "scrypt":
            guard let n = kdf.n, let r = kdf.r, let p = kdf.p else { return nil }
            return .scrypt(n: n, r: r, p: p)
        case "pbkdf2-hmac-sha256":
            guard let iterations = kdf.iterations else { return nil }
            return .pbkdf2SHA256(iterations: iterations)
        default:
            return nil
        }
    }

    static func kdfRecord(_ derivation: KeyDerivation) -> KDF {
        switch derivation {
        case .scrypt(let n, let r, let p): return KDF(name: derivation.name, n: n, r: r, p: p)
        case .pbkdf2SHA256(let iterations): return KDF(name: derivation.name, iterations: iterations)
        }
    }

    static func decode(_ bytes: [UInt8], path: String) throws(VaultError) -> VaultFile {
        let file: VaultFile
        do {
            file = try JSONDecoder().decode(VaultFile.self, from: Data(bytes))
        } catch {
            throw .vaultFileInvalid(path: path, reason: "not the expected JSON")
        }
        guard file.formatVersion == currentFormat else {
            throw .vaultFileInvalid(path: path, reason: "format_version \(file.formatVersion) is not supported")
        }
        guard let derivation = file.keyDerivation else {
            throw .vaultFileInvalid(path: path, reason: "unknown or incomplete kdf \(file.kdf.name)")
        }
        if let problem = derivation.validate() { throw .vaultFileInvalid(path: path, reason: problem) }
        guard let salt = Data(base64Encoded: file.salt), salt.count >= 16 else {
            throw .vaultFileInvalid(path: path, reason: "salt is not 16 bytes of base64")
        }
        return file
    }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try! encoder.encode(self)) + [0x0A]
    }
}
