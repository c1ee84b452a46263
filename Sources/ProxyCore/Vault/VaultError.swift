import Foundation

/// Everything that can go wrong with the encrypted account files. Descriptions name files, folders and
/// fields, never a token or the admin secret.
public enum VaultError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The admin secret does not open `vault.json` (its key-check value did not decrypt).
    case wrongSecret(vaultFile: String)
    /// The data folder can be read or written by group or others.
    case insecureFolder(path: String, mode: UInt16)
    /// The data folder path exists but is not a folder, or cannot be created or read.
    case folderUnusable(path: String, reason: String)
    /// `vault.json` is missing while account files exist: a new vault would not open them.
    case vaultMissing(path: String, accountFiles: Int)
    /// `vault.json` (or `vault.next.json`) cannot be parsed or uses something this build does not know.
    case vaultFileInvalid(path: String, reason: String)
    /// `vault.next.json` exists: a `rotate-secret` was interrupted and must be rerun before anything else.
    case rotationInProgress(path: String)
    /// A rerun of `rotate-secret` with a new secret other than the one the interrupted run started with.
    case rotationSecretMismatch(path: String)
    /// A ciphertext did not authenticate (tampered, truncated, swapped, or another key).
    case decryptionFailed(field: String)
    /// A ciphertext is not valid base64 or is too short to hold nonce and tag.
    case malformedCiphertext(field: String)
    /// An account id that cannot name a file (allowed: letters, digits, `_`, `-`; 1–64 characters).
    case invalidAccountID(String)
    /// A file given to `accounts import` is neither the seed's account JSON nor Claude Code's credentials.
    case importInvalid(reason: String)
    /// An OpenSSL call failed; `function` names it, `detail` is OpenSSL's error string.
    case openssl(function: String, detail: String)
    /// A file system call failed.
    case io(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .wrongSecret(let vaultFile):
            return "vault: the admin secret (auth.api_key) does not open \(vaultFile): it is not the secret the "
                + "accounts were encrypted with; nothing was changed"
        case .insecureFolder(let path, let mode):
            return "vault: data folder \(path) is accessible by group or others (mode \(String(mode, radix: 8))); "
                + "fix it with: chmod 700 '\(path)'"
        case .folderUnusable(let path, let reason):
            return "vault: data folder \(path) cannot be used: \(reason)"
        case .vaultMissing(let path, let accountFiles):
            return "vault: \(path) is missing but \(accountFiles) account file(s) exist; restore vault.json "
                + "from a backup (a new vault would not open them)"
        case .vaultFileInvalid(let path, let reason):
            return "vault: \(path) is invalid: \(reason)"
        case .rotationInProgress(let path):
            return "vault: \(path) exists, a rotate-secret run was interrupted; rerun `claude-proxy rotate-secret` "
                + "with the same new secret to finish it"
        case .rotationSecretMismatch(let path):
            return "vault: \(path) was started with another new secret; rerun rotate-secret with that one"
        case .decryptionFailed(let field):
            return "vault: \(field) does not decrypt (tampered, swapped between fields or accounts, or another key)"
        case .malformedCiphertext(let field):
            return "vault: \(field) is not a well-formed ciphertext"
        case .invalidAccountID(let id):
            return "vault: account id \"\(id.prefix(80))\" is not 1-64 letters, digits, '_' or '-'"
        case .importInvalid(let reason):
            return "import: \(reason)"
        case .openssl(let function, let detail):
            return "vault: \(function) failed: \(detail)"
        case .io(let operation, let path, let code):
            return "vault: \(operation) \(path): \(String(cString: strerror(code)))"
        }
    }
}
