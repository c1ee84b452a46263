import Foundation
import ProxyCore

// Test-only child process for the vault crash tests (never shipped; not a product). The parent kills it with
// SIGKILL at random moments and then checks that every account file still loads.
//
//   vault-crash-writer write FOLDER COUNT   saves COUNT times, cycling over 4 accounts (secret: VAULT_SECRET)
//   vault-crash-writer rotate FOLDER        rotate-secret from VAULT_SECRET to VAULT_NEW_SECRET
// Prints "ready" once the vault is open, then "done". The vault must exist (the parent creates it with a cheap
// KDF so that the child starts fast).

/// Unbuffered, so the parent sees "ready" before it kills.
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

let arguments = CommandLine.arguments
let environment = ProcessInfo.processInfo.environment
guard arguments.count >= 3, let secret = environment["VAULT_SECRET"] else {
    FileHandle.standardError.write(Data("usage: vault-crash-writer write|rotate FOLDER [COUNT]\n".utf8))
    exit(64)
}
let folder = arguments[2]

switch arguments[1] {
case "write":
    let count = arguments.count > 3 ? Int(arguments[3]) ?? 1000 : 1000
    let store = try FileAccountStore.open(path: folder, secret: Secret(secret))
    say("ready")
    for index in 0..<count {
        let id = AccountID("crash-\(index % 4)")
        var account = Account(
            id: id, name: "crash account \(index % 4)",
            credentials: Credentials(
                accessToken: Secret("access-\(index)-" + String(repeating: "a", count: index % 50)),
                refreshToken: Secret("refresh-\(index)"),
                expiresAt: Date(timeIntervalSince1970: 1_800_000_000 + Double(index))),
            createdAt: Date(timeIntervalSince1970: 1_700_000_000))
        account.usage.requests = index
        try await store.save(account)
    }
    say("done")
case "rotate":
    guard let newSecret = environment["VAULT_NEW_SECRET"] else { exit(64) }
    say("ready")
    let outcome = try SecretRotation.run(
        folderPath: folder, currentSecret: Secret(secret), newSecret: Secret(newSecret),
        kdf: .scrypt(n: 1 << 10, r: 8, p: 1))
    say("done \(outcome.reencrypted) \(outcome.alreadyDone)")
default:
    exit(64)
}
