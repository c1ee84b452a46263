/// Where accounts live between restarts. Files today (``FileAccountStore``); a PostgreSQL store can take its
/// place for several proxy instances, together with a cross-instance ``RefreshLock``.
public protocol AccountStore: Sendable {
    /// Reads every account from storage, replacing what the store held. Entries that cannot be read are
    /// reported in ``AccountLoadResult/problems`` and skipped, never repaired or removed.
    func loadAll() async throws -> AccountLoadResult
    /// The accounts loaded or saved so far, sorted by id.
    func list() async throws -> [Account]
    func get(_ id: AccountID) async throws -> Account?
    /// Inserts or replaces the account, durably, before returning.
    func save(_ account: Account) async throws
    /// Removes the account; returns whether it existed.
    @discardableResult func delete(_ id: AccountID) async throws -> Bool
}

public struct AccountLoadResult: Sendable {
    public var accounts: [Account]
    public var problems: [AccountFileProblem]

    public init(accounts: [Account], problems: [AccountFileProblem]) {
        self.accounts = accounts
        self.problems = problems
    }
}

/// An account file that was skipped, by name, with a secret-free reason.
public struct AccountFileProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Error, Sendable, Equatable, CustomStringConvertible {
        case unreadable
        /// Not JSON, truncated, or missing a required field.
        case malformed
        case unsupportedFormat(Int)
        /// The `id` inside does not match the file name (a renamed or copied file).
        case idMismatch(AccountID)
        /// Encrypted under another vault generation than the current one.
        case otherGeneration(Int)
        /// A token field does not decrypt (tampered, swapped, or another key).
        case undecryptable(VaultError)

        public var description: String {
            switch self {
            case .unreadable: return "cannot be read"
            case .malformed: return "is not a complete account JSON (truncated or corrupt)"
            case .unsupportedFormat(let version): return "has unsupported format_version \(version)"
            case .idMismatch(let id): return "holds account \(id), not the one its name says"
            case .otherGeneration(let generation): return "is encrypted under vault generation \(generation)"
            case .undecryptable(let error): return "\(error)"
            }
        }
    }

    public var fileName: String
    public var reason: Reason

    public init(fileName: String, reason: Reason) {
        self.fileName = fileName
        self.reason = reason
    }

    public var description: String { "\(fileName): \(reason)" }
}
