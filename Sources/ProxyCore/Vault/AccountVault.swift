import Foundation

/// The key that encrypts account tokens, derived from the admin secret (`auth.api_key`) with the KDF named
/// in `vault.json`. Token fields are AES-256-GCM sealed with AAD = account id + "\0" + field name, so a
/// ciphertext moved to another account or another field no longer opens.
public struct AccountVault: Sendable {
    public static let fileName = "vault.json"
    /// Written first by `rotate-secret` (see ``SecretRotation``); its presence means a rotation is unfinished.
    public static let nextFileName = "vault.next.json"

    static let keyCheckLabel = Array("claude-proxy vault key check".utf8)

    /// Counts secret rotations; account files record the generation that encrypted them.
    public let generation: Int
    let key: VaultKey

    init(generation: Int, key: VaultKey) {
        self.generation = generation
        self.key = key
    }

    /// Opens the folder's `vault.json` with `secret`, or creates one (fresh salt, `kdf`) in a folder that has
    /// neither a vault nor account files. A wrong secret throws ``VaultError/wrongSecret(vaultFile:)`` before any
    /// file is written.
    public static func open(
        folder: DataFolder, secret: Secret, kdf: KeyDerivation = .default
    ) throws(VaultError) -> AccountVault {
        if folder.exists(nextFileName) { throw .rotationInProgress(path: folder.file(nextFileName)) }
        guard folder.exists(fileName) else {
            let accountFiles = try folder.fileNames().filter(AccountFileName.isAccountFile).count
            guard accountFiles == 0 else {
                throw .vaultMissing(path: folder.file(fileName), accountFiles: accountFiles)
            }
            let (vault, file) = try create(secret: secret, kdf: kdf, generation: 1)
            try folder.writeAtomically(file.encoded(), to: fileName)
            return vault
        }
        return try unlock(folder: folder, name: fileName, secret: secret)
    }

    /// Reads `name` (vault.json or vault.next.json) and derives its key, checked against the key-check value.
    static func unlock(folder: DataFolder, name: String, secret: Secret) throws(VaultError) -> AccountVault {
        let path = folder.file(name)
        let file = try VaultFile.decode(try folder.read(name), path: path)
        let key = try file.keyDerivation!.deriveKey(secret: secret, salt: Array(Data(base64Encoded: file.salt)!))
        guard let check = Data(base64Encoded: file.keyCheck),
            let label = try SealedBox.open(Array(check), key: key, aad: keyCheckAAD(generation: file.generation)),
            label == keyCheckLabel
        else { throw .wrongSecret(vaultFile: path) }
        return AccountVault(generation: file.generation, key: key)
    }

    /// A new vault (not yet written): random salt, key from `secret`, key check sealed under it.
    static func create(
        secret: Secret, kdf: KeyDerivation, generation: Int
    ) throws(VaultError) -> (AccountVault, VaultFile) {
        if let problem = kdf.validate() { throw .vaultFileInvalid(path: fileName, reason: problem) }
        let salt = try SecureRandom.bytes(16)
        let key = try kdf.deriveKey(secret: secret, salt: salt)
        let check = try SealedBox.seal(keyCheckLabel, key: key, aad: keyCheckAAD(generation: generation))
        let file = VaultFile(
            formatVersion: VaultFile.currentFormat, generation: generation, kdf: VaultFile.kdfRecord(kdf),
            salt: Data(salt).base64EncodedString(), keyCheck: Data(check).base64EncodedString(),
            createdAt: Date().formatted(.iso8601))
        return (AccountVault(generation: generation, key: key), file)
    }

    /// The generation is bound into the key check, so editing it in `vault.json` makes the check fail.
    private static func keyCheckAAD(generation: Int) -> [UInt8] { Array("vault\0key_check\0\(generation)".utf8) }

    /// base64(nonce || ciphertext || tag) of `secret`, bound to the account and field.
    public func seal(_ secret: Secret, account: AccountID, field: String) throws(VaultError) -> String {
        var plaintext = Array(secret.reveal().utf8)
        defer { _ = plaintext.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        let sealed = try SealedBox.seal(plaintext, key: key, aad: Self.aad(account: account, field: field))
        return Data(sealed).base64EncodedString()
    }

    /// The secret sealed by ``seal(_:account:field:)`` for this account and field, or an error naming the field.
    public func open(_ sealed: String, account: AccountID, field: String) throws(VaultError) -> Secret {
        guard let bytes = Data(base64Encoded: sealed), bytes.count >= SealedBox.nonceCount + SealedBox.tagCount else {
            throw .malformedCiphertext(field: field)
        }
        guard let plaintext = try SealedBox.open(Array(bytes), key: key, aad: Self.aad(account: account, field: field)),
            let text = String(validating: plaintext, as: UTF8.self)
        else { throw .decryptionFailed(field: field) }
        return Secret(text)
    }

    static func aad(account: AccountID, field: String) -> [UInt8] { Array((account.rawValue + "\0" + field).utf8) }
}
