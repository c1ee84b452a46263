import Foundation

/// Reads an account to import: the seed's plaintext account JSON
/// (`{id?, name, access_token, refresh_token, expires_at}`, `expires_at` in epoch seconds, milliseconds or
/// RFC 3339) or Claude Code's `~/.claude/.credentials.json`
/// (`{"claudeAiOauth":{"accessToken","refreshToken","expiresAt"(epoch ms),"scopes","subscriptionType"}}`).
public enum AccountImport {
    public static func parse(_ data: Data, name: String?, now: Date) throws(VaultError) -> Account {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .importInvalid(reason: "the file is not a JSON object")
        }
        if let oauth = object["claudeAiOauth"] as? [String: Any] {
            return try account(
                id: nil, name: name ?? "claude-code",
                accessToken: oauth["accessToken"], refreshToken: oauth["refreshToken"], expiresAt: oauth["expiresAt"],
                scopes: oauth["scopes"] as? [String] ?? [], subscriptionType: oauth["subscriptionType"] as? String,
                email: nil, keyPrefix: "claudeAiOauth.", now: now)
        }
        return try account(
            id: object["id"], name: name ?? object["name"] as? String ?? "imported",
            accessToken: object["access_token"], refreshToken: object["refresh_token"], expiresAt: object["expires_at"],
            scopes: object["scopes"] as? [String] ?? [], subscriptionType: object["subscription_type"] as? String,
            email: object["email"] as? String, keyPrefix: "", now: now)
    }

    /// `acc_` + 16 random hex digits.
    public static func newAccountID() -> AccountID {
        let bytes = (try? SecureRandom.bytes(8)) ?? (0..<8).map { _ in UInt8.random(in: 0...255) }
        return AccountID("acc_" + bytes.map { String(format: "%02x", $0) }.joined())
    }

    private static func account(
        id: Any?, name: String, accessToken: Any?, refreshToken: Any?, expiresAt: Any?, scopes: [String],
        subscriptionType: String?, email: String?, keyPrefix: String, now: Date
    ) throws(VaultError) -> Account {
        let camel = !keyPrefix.isEmpty
        guard let access = accessToken as? String, !access.isEmpty else {
            throw .importInvalid(reason: "\(keyPrefix)\(camel ? "accessToken" : "access_token") is missing")
        }
        guard let refresh = refreshToken as? String, !refresh.isEmpty else {
            throw .importInvalid(reason: "\(keyPrefix)\(camel ? "refreshToken" : "refresh_token") is missing")
        }
        let expiresKey = keyPrefix + (camel ? "expiresAt" : "expires_at")
        let expiry: Date
        if let number = expiresAt as? NSNumber, !(expiresAt is Bool) {
            expiry = TimestampFormat.date(epoch: number.doubleValue)
        } else if let text = expiresAt as? String,
            let date = TimestampFormat.date(rfc3339: text) ?? Double(text).map(TimestampFormat.date(epoch:))
        {
            expiry = date
        } else {
            throw .importInvalid(reason: "\(expiresKey) is missing or not epoch seconds, milliseconds or RFC 3339")
        }
        let accountID: AccountID
        if let given = id as? String {
            accountID = AccountID(given)
            guard AccountFileName.isValid(accountID) else { throw .invalidAccountID(given) }
        } else {
            accountID = newAccountID()
        }
        return Account(
            id: accountID, name: name,
            credentials: Credentials(
                accessToken: Secret(access), refreshToken: Secret(refresh), expiresAt: expiry),
            email: email, scopes: scopes, subscriptionType: subscriptionType, createdAt: now)
    }
}
