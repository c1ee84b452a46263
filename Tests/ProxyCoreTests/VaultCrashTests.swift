import Foundation
import ProxyCore
import ProxyTesting
import Testing

/// kill -9 at random moments: every account file must still parse and decrypt, and a rotation interrupted
/// anywhere must finish on a rerun.
@Suite(.serialized) struct VaultCrashTests {
    @Test func killedWriterLeavesEveryFileReadable() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let data = folder.file("data")
        _ = try VaultFixture.openStore(data)  // creates vault.json with the cheap KDF
        let environment = ["VAULT_SECRET": VaultFixture.secret.reveal()]
        var killedMidway = 0
        var accountsSeen = 0
        for round in 0..<6 {
            let logFile = folder.file("writer-\(round).log")
            // On a thread of its own: the test's waits must not hold one of the few threads every test shares.
            let reason = try await blocking {
                let writer = try VaultFixture.startCrashWriter(
                    ["write", data, "1000"], environment: environment, logFile: logFile)
                // The kill moment is the random variable here, not a wait for something to happen.
                usleep(UInt32.random(in: 1_000...80_000))
                kill(writer.processIdentifier, SIGKILL)
                writer.waitUntilExit()
                return writer.terminationReason
            }
            if reason == .uncaughtSignal { killedMidway += 1 }

            let result = try await VaultFixture.openStore(data).loadAll()
            #expect(result.problems.isEmpty, "round \(round): \(result.problems)")
            accountsSeen = result.accounts.count
            for account in result.accounts {
                #expect(account.credentials.accessToken.reveal().hasPrefix("access-"))
                #expect(account.credentials.refreshToken.reveal().hasPrefix("refresh-"))
            }
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: data).filter { $0.hasPrefix(".tmp-") }
            #expect(leftovers.isEmpty, "opening the store removes a dead writer's temporary files")
        }
        #expect(killedMidway >= 3, "most rounds must be killed before the 1000 writes end")
        #expect(accountsSeen > 0, "the writers got to write before being killed")
    }

    @Test func rotationStoppedAfterSomeFilesFinishesOnRerun() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let data = folder.file("data")
        let accounts = (0..<6).map { VaultFixture.account("acc_\($0)", index: $0) }
        let store = try VaultFixture.openStore(data)
        for account in accounts { try await store.save(account) }

        struct Interrupted: Error {}
        for stopAfter in [0, 3] {
            var seen = 0
            #expect(throws: Interrupted.self) {
                try SecretRotation.run(
                    folderPath: data, currentSecret: VaultFixture.secret, newSecret: VaultFixture.otherSecret,
                    kdf: VaultFixture.cheapKDF
                ) { _ in
                    if seen == stopAfter { throw Interrupted() }
                    seen += 1
                }
            }
            #expect(throws: VaultError.rotationInProgress(path: data + "/vault.next.json")) {
                try VaultFixture.openStore(data)
            }
            try await expectEachFileOpensWithOneOfTheSecrets(data, accounts: accounts)
        }
        #expect(throws: VaultError.rotationSecretMismatch(path: data + "/vault.next.json")) {
            try SecretRotation.run(
                folderPath: data, currentSecret: VaultFixture.secret, newSecret: Secret("a-third-secret-000000"))
        }

        let outcome = try await rotateToOtherSecret(data)
        // The first stop came after 1 file, the second after 4 more.
        #expect(outcome.reencrypted == 1 && outcome.alreadyDone == 5 && outcome.skipped.isEmpty)
        #expect(outcome.generation == 2)
        let result = try await VaultFixture.openStore(data, secret: VaultFixture.otherSecret).loadAll()
        #expect(result.problems.isEmpty)
        #expect(result.accounts.sorted { $0.id < $1.id } == accounts)
        #expect(throws: VaultError.wrongSecret(vaultFile: data + "/vault.json")) { try VaultFixture.openStore(data) }

        let again = try await rotateToOtherSecret(data)
        #expect(again.wasAlreadyComplete)
    }

    @Test func rotationKilledAtRandomMomentsFinishesOnRerun() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let data = folder.file("data")
        let accounts = (0..<150).map { VaultFixture.account("acc_\($0)", index: $0) }
        let store = try VaultFixture.openStore(data)
        for account in accounts { try await store.save(account) }
        let environment = [
            "VAULT_SECRET": VaultFixture.secret.reveal(), "VAULT_NEW_SECRET": VaultFixture.otherSecret.reveal(),
        ]
        var finished = false
        var interruptedMidway = 0
        for round in 0..<4 where !finished {
            let logFile = folder.file("rotate-\(round).log")
            let reason = try await blocking {
                let rotator = try VaultFixture.startCrashWriter(
                    ["rotate", data], environment: environment, logFile: logFile)
                // Kill once the rotation is under way (vault.next.json written), at a random moment after that:
                // a fixed delay from the start lands before it on a busy machine (the KDF alone takes ~0.3 s).
                for _ in 0..<500
                where rotator.isRunning && !FileManager.default.fileExists(atPath: data + "/vault.next.json") {
                    usleep(10_000)
                }
                usleep(UInt32.random(in: 0...20_000))
                kill(rotator.processIdentifier, SIGKILL)
                rotator.waitUntilExit()
                return rotator.terminationReason
            }
            finished = reason == .exit
            if FileManager.default.fileExists(atPath: data + "/vault.next.json") {
                interruptedMidway += 1
                try await expectEachFileOpensWithOneOfTheSecrets(data, accounts: accounts)
            }
        }
        #expect(interruptedMidway >= 1, "at least one kill must land between vault.next.json and the swap")
        _ = try await rotateToOtherSecret(data)
        let result = try await VaultFixture.openStore(data, secret: VaultFixture.otherSecret).loadAll()
        #expect(result.problems.isEmpty, "\(result.problems)")
        #expect(result.accounts.sorted { $0.id < $1.id } == accounts.sorted { $0.id < $1.id })
    }

    /// A full rotation from `VaultFixture.secret` to `otherSecret`, with the real key derivation: on a thread of its
    /// own, so that its second of CPU does not hold one of the few threads every test shares.
    func rotateToOtherSecret(_ data: String) async throws -> SecretRotation.Outcome {
        try await blocking {
            try SecretRotation.run(
                folderPath: data, currentSecret: VaultFixture.secret, newSecret: VaultFixture.otherSecret)
        }
    }

    /// Mid-rotation, each account file opens with the secret of the vault file its generation belongs to: copied
    /// with `vault.json` or with `vault.next.json` (as vault.json) into a fresh folder, it loads without problems.
    func expectEachFileOpensWithOneOfTheSecrets(_ data: String, accounts: [Account]) async throws {
        for account in accounts {
            let name = "account_\(account.id).json"
            let withOld = try await loadAlone(name, from: data, vaultFile: "vault.json", secret: VaultFixture.secret)
            let withNew = try await loadAlone(
                name, from: data, vaultFile: "vault.next.json", secret: VaultFixture.otherSecret)
            #expect(withOld == account || withNew == account, "\(name) opens with neither secret")
        }
    }

    func loadAlone(_ name: String, from data: String, vaultFile: String, secret: Secret) async throws -> Account? {
        let copy = try TemporaryDirectory()
        defer { copy.remove() }
        let target = copy.file("data")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        chmod(target, 0o700)
        try FileManager.default.copyItem(atPath: data + "/" + vaultFile, toPath: target + "/vault.json")
        try FileManager.default.copyItem(atPath: data + "/" + name, toPath: target + "/" + name)
        return try await FileAccountStore.open(path: target, secret: secret).loadAll().accounts.first
    }
}
