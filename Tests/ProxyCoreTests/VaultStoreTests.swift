import Foundation
import ProxyCore
import ProxyTesting
import Testing

@Suite struct VaultStoreTests {
    @Test func accountsRoundTripThroughTheFiles() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let data = folder.file("data")
        let accounts = (0..<3).map { VaultFixture.account("acc_\($0)", index: $0) }
        let store = try VaultFixture.openStore(data)
        for account in accounts { try await store.save(account) }

        let reopened = try VaultFixture.openStore(data)
        let result = try await reopened.loadAll()
        #expect(result.problems.isEmpty)
        #expect(result.accounts.sorted { $0.id < $1.id } == accounts)
        #expect(try await reopened.get(AccountID("acc_1")) == accounts[1])

        var changed = accounts[0]
        changed.credentials.accessToken = Secret(VaultFixture.token("oat"))
        try await reopened.save(changed)
        #expect(try await reopened.delete(AccountID("acc_2")))
        #expect(try await !reopened.delete(AccountID("acc_2")))
        let third = try await VaultFixture.openStore(data).list()
        #expect(third == [changed, accounts[1]])
    }

    @Test func wrongSecretIsRefusedAndChangesNoByte() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let data = folder.file("data")
        let store = try VaultFixture.openStore(data)
        try await store.save(VaultFixture.account("acc_a"))
        try await store.save(VaultFixture.account("acc_b", index: 1))
        let before = try VaultFixture.snapshot(data)

        #expect(throws: VaultError.wrongSecret(vaultFile: data + "/vault.json")) {
            try VaultFixture.openStore(data, secret: VaultFixture.otherSecret)
        }
        let error = VaultError.wrongSecret(vaultFile: data + "/vault.json")
        #expect(
            error.description.contains("does not open")
                && !error.description.contains(VaultFixture.otherSecret.reveal()))
        #expect(try VaultFixture.snapshot(data) == before)
    }

    enum Damage: String, CaseIterable, Sendable {
        case flipCiphertextBit, swapAccessTokensBetweenFiles, swapFieldsInOneFile, truncate, notJSON, renamedFile
        case unknownFormatVersion, otherGeneration
    }

    /// Each kind of damage is reported by file name, the file is skipped and left exactly as it was, and the
    /// undamaged accounts still load.
    @Test(arguments: Damage.allCases)
    func damagedFileIsReportedAndSkipped(damage: Damage) async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let data = folder.file("data")
        let store = try VaultFixture.openStore(data)
        for index in 0..<3 { try await store.save(VaultFixture.account("acc_\(index)", index: index)) }
        let file0 = data + "/account_acc_0.json"
        let file1 = data + "/account_acc_1.json"
        var expected = ["account_acc_0.json"]

        func json(_ path: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        }
        func write(_ object: [String: Any], _ path: String) throws {
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        }
        switch damage {
        case .flipCiphertextBit:
            var object = try json(file0)
            var bytes = Data(base64Encoded: object["refresh_token"] as! String)!
            bytes[14] ^= 0x01
            object["refresh_token"] = bytes.base64EncodedString()
            try write(object, file0)
        case .swapAccessTokensBetweenFiles:
            var first = try json(file0)
            var second = try json(file1)
            (first["access_token"], second["access_token"]) = (second["access_token"], first["access_token"])
            try write(first, file0)
            try write(second, file1)
            expected.append("account_acc_1.json")
        case .swapFieldsInOneFile:
            var object = try json(file0)
            (object["access_token"], object["refresh_token"]) = (object["refresh_token"], object["access_token"])
            try write(object, file0)
        case .truncate:
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file0))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: file0))
        case .notJSON:
            try Data("\u{0}\u{1}garbage".utf8).write(to: URL(fileURLWithPath: file0))
        case .renamedFile:
            try FileManager.default.moveItem(atPath: file0, toPath: data + "/account_acc_9.json")
            expected = ["account_acc_9.json"]
        case .unknownFormatVersion:
            var object = try json(file0)
            object["format_version"] = 99
            try write(object, file0)
        case .otherGeneration:
            var object = try json(file0)
            object["vault_generation"] = 7
            try write(object, file0)
        }
        let before = try VaultFixture.snapshot(data)

        let result = try await VaultFixture.openStore(data).loadAll()
        #expect(result.problems.map(\.fileName).sorted() == expected, "\(result.problems)")
        let loaded = Set(result.accounts.map(\.id.rawValue))
        #expect(loaded.contains("acc_2"))
        #expect(loaded.count == 3 - expected.count)
        #expect(try VaultFixture.snapshot(data) == before, "a damaged file is never rewritten or removed")
        for problem in result.problems {
            #expect(!problem.description.contains("sk-ant-"))
        }
    }

    @Test func noTokenBytesAnywhereInTheFolder() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let data = folder.file("data")
        let store = try VaultFixture.openStore(data)
        let accounts = (0..<4).map { VaultFixture.account("acc_\($0)", index: $0) }
        for account in accounts { try await store.save(account) }

        var needles: [Data] = []
        for account in accounts {
            for token in [account.credentials.accessToken.reveal(), account.credentials.refreshToken.reveal()] {
                needles.append(Data(token.utf8))
                needles.append(Data(Data(token.utf8).base64EncodedString().utf8))
                // A distinctive middle piece, in case only part of a token leaked.
                needles.append(Data(token.utf8.dropFirst(20).prefix(12)))
            }
        }
        let files = try VaultFixture.snapshot(data)
        #expect(files.count == 5)
        for (name, bytes) in files {
            for needle in needles {
                #expect(bytes.range(of: needle) == nil, "\(name) contains token bytes")
            }
        }
    }

    @Test func folderIs0700AndFilesAre0600() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let data = folder.file("nested/deeper/data")
        let store = try VaultFixture.openStore(data)
        try await store.save(VaultFixture.account("acc_p"))
        #expect(try VaultFixture.mode(data) == 0o700)
        #expect(try VaultFixture.mode(data + "/vault.json") == 0o600)
        #expect(try VaultFixture.mode(data + "/account_acc_p.json") == 0o600)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: data).sorted() == ["account_acc_p.json", "vault.json"])
    }

    @Test(arguments: [0o755, 0o750, 0o705, 0o770, 0o707, 0o701])
    func folderOpenToOthersIsRefused(mode: Int) throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let data = folder.file("data")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: false)
        chmod(data, mode_t(mode))
        #expect(throws: VaultError.insecureFolder(path: data, mode: UInt16(mode))) {
            try VaultFixture.openStore(data)
        }
        #expect(VaultError.insecureFolder(path: data, mode: UInt16(mode)).description.contains("chmod 700 '\(data)'"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: data).isEmpty, "nothing written")
    }

    @Test func missingVaultWithAccountFilesIsRefused() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let data = folder.file("data")
        try await VaultFixture.openStore(data).save(VaultFixture.account("acc_m"))
        try FileManager.default.removeItem(atPath: data + "/vault.json")
        #expect(throws: VaultError.vaultMissing(path: data + "/vault.json", accountFiles: 1)) {
            try VaultFixture.openStore(data)
        }
        #expect(!FileManager.default.fileExists(atPath: data + "/vault.json"))
    }

    @Test func invalidAccountIDsCannotNameAFile() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let store = try VaultFixture.openStore(folder.file("data"))
        for id in ["../escape", "a/b", "", ".hidden", String(repeating: "x", count: 65)] {
            await #expect(throws: VaultError.invalidAccountID(id)) { try await store.save(VaultFixture.account(id)) }
        }
    }

    /// The default KDF's cost, measured (it runs once per start): printed for the report, bounded for sanity.
    @Test func defaultKeyDerivationCost() throws {
        for (label, kdf) in [
            ("scrypt N=2^16 r=8 p=1", KeyDerivation.default), ("pbkdf2 600k", .pbkdf2SHA256(iterations: 600_000)),
        ] {
            let folder = try TemporaryDirectory()
            defer { folder.remove() }
            let data = folder.file("data")
            _ = try FileAccountStore.open(path: data, secret: VaultFixture.secret, kdf: kdf)
            let clock = ContinuousClock()
            let elapsed = try clock.measure { _ = try FileAccountStore.open(path: data, secret: VaultFixture.secret) }
            print("KDF \(label): \(elapsed) per open")
            #expect(elapsed < .seconds(5))
        }
    }
}
