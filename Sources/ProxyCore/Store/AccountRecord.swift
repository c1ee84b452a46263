import Foundation

/// The JSON of `account_<id>.json`. Field names are the seed's (`id`, `name`, `access_token`,
/// `refresh_token`, `expires_at`, `refresh_at`, `status`, `last_refresh_error`) plus the rest of ``Account`` in
/// snake_case. The two token fields hold vault ciphertexts, never plaintext.
struct AccountRecord: Codable {
    static let currentFormat = 1
    static let accessTokenField = "access_token"
    static let refreshTokenField = "refresh_token"

    struct RateLimit: Codable {
        var coolingDownUntil: Date?
        var consecutiveRateLimits: Int?
        var unifiedStatus: String?

        enum CodingKeys: String, CodingKey {
            case coolingDownUntil = "cooling_down_until"
            case consecutiveRateLimits = "consecutive_rate_limits"
            case unifiedStatus = "unified_status"
        }
    }

    struct Counters: Codable {
        var requests: Int?
        var inputTokens: Int?
        var outputTokens: Int?
        var cacheCreationInputTokens: Int?
        var cacheReadInputTokens: Int?

        enum CodingKeys: String, CodingKey {
            case requests
            case inputTokens = "input_tokens"
            case outputTokens = "output_tokens"
            case cacheCreationInputTokens = "cache_creation_input_tokens"
            case cacheReadInputTokens = "cache_read_input_tokens"
        }
    }

    var formatVersion: Int
    /// The ``AccountVault/generation`` whose key sealed the tokens (see ``SecretRotation``).
    var vaultGeneration: Int
    var id: String
    var name: String
    var accessToken: String
    var refreshToken: String
    var expiresAt: Date
    var refreshAt: Date?
    var status: AccountStatus
    var lastRefreshError: String?
    var lastRefreshAt: Date?
    var email: String?
    var organization: String?
    var organizationID: String?
    var scopes: [String]?
    var subscriptionType: String?
    var createdAt: Date
    var lastUsedAt: Date?
    var disabled: Bool?
    var rateLimit: RateLimit?
    var usage: Counters?

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case vaultGeneration = "vault_generation"
        case id, name, status, email, organization, scopes, disabled, usage
        case accessToken = "access_token"
        case refreshToken = "refresh_token"
        case expiresAt = "expires_at"
        case refreshAt = "refresh_at"
        case lastRefreshError = "last_refresh_error"
        case lastRefreshAt = "last_refresh_at"
        case organizationID = "organization_id"
        case subscriptionType = "subscription_type"
        case createdAt = "created_at"
        case lastUsedAt = "last_used_at"
        case rateLimit = "rate_limit"
    }

    /// Seals the tokens of `account` under `vault`.
    init(_ account: Account, vault: AccountVault) throws(VaultError) {
        formatVersion = Self.currentFormat
        vaultGeneration = vault.generation
        id = account.id.rawValue
        name = account.name
        accessToken = try vault.seal(account.credentials.accessToken, account: account.id, field: Self.accessTokenField)
        refreshToken = try vault.seal(
            account.credentials.refreshToken, account: account.id, field: Self.refreshTokenField)
        expiresAt = account.credentials.expiresAt
        refreshAt = account.refreshAt
        status = account.status
        lastRefreshError = account.lastRefreshError
        lastRefreshAt = account.lastRefreshAt
        email = account.email
        organization = account.organization
        organizationID = account.organizationID
        scopes = account.scopes
        subscriptionType = account.subscriptionType
        createdAt = account.createdAt
        lastUsedAt = account.lastUsedAt
        disabled = account.disabled
        rateLimit = RateLimit(
            coolingDownUntil: account.rateLimit.coolingDownUntil,
            consecutiveRateLimits: account.rateLimit.consecutiveRateLimits,
            unifiedStatus: account.rateLimit.unifiedStatus)
        usage = Counters(
            requests: account.usage.requests, inputTokens: account.usage.inputTokens,
            outputTokens: account.usage.outputTokens,
            cacheCreationInputTokens: account.usage.cacheCreationInputTokens,
            cacheReadInputTokens: account.usage.cacheReadInputTokens)
    }

    /// Opens the tokens with `vault`; throws ``VaultError/decryptionFailed(field:)`` naming the field at fault.
    func account(vault: AccountVault) throws(VaultError) -> Account {
        let accountID = AccountID(id)
        let credentials = Credentials(
            accessToken: try vault.open(accessToken, account: accountID, field: Self.accessTokenField),
            refreshToken: try vault.open(refreshToken, account: accountID, field: Self.refreshTokenField),
            expiresAt: expiresAt)
        var account = Account(
            id: accountID, name: name, credentials: credentials, status: status, email: email,
            organization: organization, organizationID: organizationID, scopes: scopes ?? [],
            subscriptionType: subscriptionType, createdAt: createdAt)
        account.refreshAt = refreshAt
        account.lastRefreshAt = lastRefreshAt
        account.lastRefreshError = lastRefreshError
        account.lastUsedAt = lastUsedAt
        account.disabled = disabled ?? false
        if let rateLimit {
            account.rateLimit.coolingDownUntil = rateLimit.coolingDownUntil
            account.rateLimit.consecutiveRateLimits = rateLimit.consecutiveRateLimits ?? 0
            account.rateLimit.unifiedStatus = rateLimit.unifiedStatus
        }
        if let usage {
            account.usage.requests = usage.requests ?? 0
            account.usage.inputTokens = usage.inputTokens ?? 0
            account.usage.outputTokens = usage.outputTokens ?? 0
            account.usage.cacheCreationInputTokens = usage.cacheCreationInputTokens ?? 0
            account.usage.cacheReadInputTokens = usage.cacheReadInputTokens ?? 0
        }
        return account
    }

    func encoded() -> [UInt8] { Array(try! TimestampFormat.encoder.encode(self)) + [0x0A] }

    static func decode(_ bytes: [UInt8]) -> Result<AccountRecord, AccountFileProblem.Reason> {
        do {
            let record = try TimestampFormat.decoder.decode(AccountRecord.self, from: Data(bytes))
            guard record.formatVersion == currentFormat else {
                return .failure(.unsupportedFormat(record.formatVersion))
            }
            return .success(record)
        } catch {
            return .failure(.malformed)
        }
    }
}
