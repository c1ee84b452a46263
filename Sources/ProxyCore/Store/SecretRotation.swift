import Foundation

/// `claude-proxy rotate-secret`: re-encrypts every account under a key derived from a new admin secret.
///
/// Crash-safe protocol (every step is an atomic file replace or rename followed by an fsync of the folder):
/// 1. Unlock `vault.json` (generation G) with the current secret. Write `vault.next.json`: generation G+1, a
///    fresh salt, a key check under the new secret. While it exists the proxy refuses to start.
/// 2. For each `account_<id>.json` still at `vault_generation` G: decrypt with the old key, encrypt with the
///    new one, atomically replace the file, now marked G+1. Files already at G+1 are checked and skipped.
/// 3. Rename `vault.next.json` over `vault.json`.
///
/// A crash before 3 leaves `vault.json` (old secret), `vault.next.json` (new secret) and files each marked with
/// the generation whose key opens them; a rerun with the same two secrets picks up at step 2. A crash after 3
/// leaves everything under the new secret; a rerun (still configured with the old one) sees that the new secret
/// opens `vault.json` and reports the rotation as complete.
public enum SecretRotation {
    public struct Outcome: Sendable, Equatable {
        /// Files re-encrypted by this run.
        public var reencrypted: Int = 0
        /// Files an interrupted earlier run had already re-encrypted.
        public var alreadyDone: Int = 0
        /// Files that could not be re-encrypted (they did not load before either); left untouched.
        public var skipped: [AccountFileProblem] = []
        /// The new secret already opened `vault.json`: an earlier run finished.
        public var wasAlreadyComplete = false
        /// The vault generation now in `vault.json`.
        public var generation = 0
    }

    /// - Parameter afterEachFile: called after each re-encrypted file is durable (progress; tests stop here to
    ///   simulate a crash by throwing).
    public static func run(
        folderPath: String, currentSecret: Secret, newSecret: Secret, kdf: KeyDerivation = .default,
        afterEachFile: (String) throws -> Void = { _ in }
    ) throws -> Outcome {
        let folder = try DataFolder(path: folderPath)
        var outcome = Outcome()
        guard folder.exists(AccountVault.fileName) else {
            throw VaultError.vaultMissing(path: folder.file(AccountVault.fileName), accountFiles: 0)
        }
        let old: AccountVault
        do {
            old = try AccountVault.unlock(folder: folder, name: AccountVault.fileName, secret: currentSecret)
        } catch .wrongSecret(let path) {
            guard !folder.exists(AccountVault.nextFileName),
                let current = try? AccountVault.unlock(folder: folder, name: AccountVault.fileName, secret: newSecret)
            else { throw VaultError.wrongSecret(vaultFile: path) }
            outcome.wasAlreadyComplete = true
            outcome.generation = current.generation
            return outcome
        }
        let next = try prepareNextVault(folder: folder, old: old, newSecret: newSecret, kdf: kdf)

        for name in try folder.fileNames() {
            guard let claimedID = AccountFileName.id(from: name) else { continue }
            switch FileAccountStore.load(name, claimedID: claimedID, folder: folder, vault: old) {
            case .success(let account):
                try folder.writeAtomically(AccountRecord(account, vault: next).encoded(), to: name)
                outcome.reencrypted += 1
                try afterEachFile(name)
            case .failure(.otherGeneration(next.generation)):
                switch FileAccountStore.load(name, claimedID: claimedID, folder: folder, vault: next) {
                case .success: outcome.alreadyDone += 1
                case .failure(let reason): outcome.skipped.append(AccountFileProblem(fileName: name, reason: reason))
                }
            case .failure(let reason):
                outcome.skipped.append(AccountFileProblem(fileName: name, reason: reason))
            }
        }
        try folder.move(AccountVault.nextFileName, to: AccountVault.fileName)
        outcome.generation = next.generation
        return outcome
    }

    /// Creates `vault.next.json`, or unlocks the one an interrupted run left (it must open with `newSecret`).
    private static func prepareNextVault(
        folder: DataFolder, old: AccountVault, newSecret: Secret, kdf: KeyDerivation
    ) throws(VaultError) -> AccountVault {
        let path = folder.file(AccountVault.nextFileName)
        if folder.exists(AccountVault.nextFileName) {
            let next: AccountVault
            do {
                next = try AccountVault.unlock(folder: folder, name: AccountVault.nextFileName, secret: newSecret)
            } catch .wrongSecret {
                throw .rotationSecretMismatch(path: path)
            }
            guard next.generation == old.generation + 1 else {
                throw .vaultFileInvalid(
                    path: path, reason: "generation \(next.generation) does not follow \(old.generation)")
            }
            return next
        }
        let (next, file) = try AccountVault.create(secret: newSecret, kdf: kdf, generation: old.generation + 1)
        try folder.writeAtomically(file.encoded(), to: AccountVault.nextFileName)
        return next
    }
}
