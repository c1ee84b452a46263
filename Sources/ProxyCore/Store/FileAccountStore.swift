import Foundation

/// Accounts as `account_<id>.json` files in the data folder, tokens sealed by an ``AccountVault``. Every save
/// is an atomic replace (see ``DataFolder/writeAtomically(_:to:)``); a file that does not load is reported and
/// left exactly as it is.
///
/// One process at a time owns a data folder; run `rotate-secret` and `accounts import` while the proxy is
/// stopped (a running proxy would not see the change and could write under the old key).
public actor FileAccountStore: AccountStore {
    public nonisolated let folder: DataFolder
    public nonisolated let vault: AccountVault
    private var accounts: [AccountID: Account] = [:]
    private var loaded = false

    public init(folder: DataFolder, vault: AccountVault) {
        self.folder = folder
        self.vault = vault
    }

    /// Prepares the folder (0700, created if missing, refused if others can access it), opens or creates the
    /// vault with the admin secret, and removes temporary files of writers that died.
    public static func open(
        path: String, secret: Secret, kdf: KeyDerivation = .default
    ) throws(VaultError) -> FileAccountStore {
        let folder = try DataFolder(path: path)
        let vault = try AccountVault.open(folder: folder, secret: secret, kdf: kdf)
        try folder.removeAbandonedTemporaryFiles()
        return FileAccountStore(folder: folder, vault: vault)
    }

    public func loadAll() throws -> AccountLoadResult {
        var result = AccountLoadResult(accounts: [], problems: [])
        for name in try folder.fileNames() {
            guard let claimedID = AccountFileName.id(from: name) else { continue }
            switch Self.load(name, claimedID: claimedID, folder: folder, vault: vault) {
            case .success(let account): result.accounts.append(account)
            case .failure(let reason): result.problems.append(AccountFileProblem(fileName: name, reason: reason))
            }
        }
        accounts = Dictionary(uniqueKeysWithValues: result.accounts.map { ($0.id, $0) })
        loaded = true
        return result
    }

    /// Reads, parses and decrypts one account file.
    static func load(
        _ name: String, claimedID: AccountID, folder: DataFolder, vault: AccountVault
    ) -> Result<Account, AccountFileProblem.Reason> {
        guard let bytes = try? folder.read(name) else { return .failure(.unreadable) }
        let record: AccountRecord
        switch AccountRecord.decode(bytes) {
        case .success(let decoded): record = decoded
        case .failure(let reason): return .failure(reason)
        }
        guard record.id == claimedID.rawValue else { return .failure(.idMismatch(AccountID(record.id))) }
        guard record.vaultGeneration == vault.generation else {
            return .failure(.otherGeneration(record.vaultGeneration))
        }
        do throws(VaultError) {
            return .success(try record.account(vault: vault))
        } catch {
            return .failure(.undecryptable(error))
        }
    }

    public func list() throws -> [Account] {
        try loadIfNeeded()
        return accounts.values.sorted { $0.id < $1.id }
    }

    public func get(_ id: AccountID) throws -> Account? {
        try loadIfNeeded()
        return accounts[id]
    }

    public func save(_ account: Account) throws {
        try loadIfNeeded()
        let name = try AccountFileName.name(for: account.id)
        try folder.writeAtomically(AccountRecord(account, vault: vault).encoded(), to: name)
        accounts[account.id] = account
    }

    @discardableResult
    public func delete(_ id: AccountID) throws -> Bool {
        try loadIfNeeded()
        let path = folder.file(try AccountFileName.name(for: id))
        if unlink(path) != 0 {
            guard errno == ENOENT else { throw VaultError.io(operation: "unlink", path: path, errno: errno) }
            return accounts.removeValue(forKey: id) != nil
        }
        try folder.syncFolder()
        accounts[id] = nil
        return true
    }

    private func loadIfNeeded() throws {
        if !loaded { _ = try loadAll() }
    }
}
