import Foundation
import ProxyCore

/// What the stateful mock remembers: the tokens it issued and which are still good, authorization codes waiting
/// for their verifier, armed faults, counters per account, and every secret it saw or issued. Pure value logic;
/// `MockClaudeService` keeps it behind a lock.
struct MockClaudeState: Sendable {
    struct Grant: Sendable, Equatable {
        var account: String
        var accessToken: String
        var refreshToken: String
    }

    enum TokenOutcome: Sendable, Equatable {
        case granted(Grant)
        /// An OAuth error (RFC 6749 §5.2): `invalid_grant`, `invalid_request`.
        case refused(error: String, description: String)
    }

    enum StreamEnd: Sendable {
        case completed
        /// A body write failed or the wait between events was cancelled: the peer went away.
        case cancelledByClient
        /// The mock broke it on purpose (`rst-mid-body`).
        case brokenByFault
    }

    private struct IssuedCode: Sendable {
        var account: String
        var challenge: String
    }

    private struct ArmedFault: Sendable {
        var fault: MockFault
        /// Requests still to get it; `nil`: until disarmed.
        var remaining: Int?
    }

    private var validAccessTokens: [String: String] = [:]
    /// Every access token ever issued → its account (revoked ones too, to count their 401s).
    private var accessTokenOwners: [String: String] = [:]
    /// Refresh tokens not used yet → account. They rotate: each is good once.
    private var validRefreshTokens: [String: String] = [:]
    private var issuedCodes: [String: IssuedCode] = [:]
    /// Issued codes already presented (right verifier or not): refused from then on.
    private var spentCodes: Set<String> = []
    private var faults: [String: ArmedFault] = [:]
    private(set) var accounts: [String: MockAccountStats] = [:]
    private(set) var secrets = MockSecrets()
    private(set) var tokenRequests = 0

    /// Account names are what codes are made of (`NAME` or `NAME-anything`): letters, digits, `_` and `.`.
    static func isAccountName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "." }
    }

    /// A code the mock's pretend login page hands out for `account`; the exchange must bring the verifier whose
    /// S256 challenge is `challenge` (RFC 7636 §4.6).
    mutating func authorize(account: String, challenge: String) -> String {
        let code = "\(account)-\(PKCE.makeState())"
        issuedCodes[code] = IssuedCode(account: account, challenge: challenge)
        return code
    }

    /// The `authorization_code` grant. A code from `authorize` is checked against its challenge and is good once;
    /// any other `NAME` or `NAME-anything` code is accepted for account NAME with any verifier; `bad-code` never.
    mutating func exchange(code: String, verifier: String?) -> TokenOutcome {
        tokenRequests += 1
        guard let verifier, !verifier.isEmpty else {
            return .refused(error: "invalid_request", description: "code_verifier is required")
        }
        secrets.codeVerifiers.insert(verifier)
        let account: String
        if let issued = issuedCodes.removeValue(forKey: code) {
            spentCodes.insert(code)
            guard PKCE.challenge(for: Secret(verifier)) == issued.challenge else {
                return .refused(error: "invalid_grant", description: "code_verifier does not match the challenge")
            }
            account = issued.account
        } else {
            let name = String(code.prefix { $0 != "-" })
            guard code != "bad-code", !spentCodes.contains(code), code.count <= 200, Self.isAccountName(name) else {
                return .refused(error: "invalid_grant", description: "invalid authorization code")
            }
            account = name
        }
        accounts[account, default: MockAccountStats()].exchanges += 1
        return .granted(issueTokens(for: account))
    }

    /// The `refresh_token` grant: the token is spent, a new pair is issued; a reuse gets `invalid_grant`.
    mutating func refresh(token: String?) -> TokenOutcome {
        tokenRequests += 1
        guard let token, !token.isEmpty else {
            return .refused(error: "invalid_request", description: "refresh_token is required")
        }
        secrets.refreshTokens.insert(token)
        guard let account = validRefreshTokens.removeValue(forKey: token) else {
            return .refused(error: "invalid_grant", description: "refresh token is invalid or was already used")
        }
        accounts[account, default: MockAccountStats()].refreshes += 1
        return .granted(issueTokens(for: account))
    }

    private mutating func issueTokens(for account: String) -> Grant {
        let grant = Grant(
            account: account, accessToken: "sk-ant-oat01-" + PKCE.makeState(),
            refreshToken: "sk-ant-ort01-" + PKCE.makeState())
        validAccessTokens[grant.accessToken] = account
        accessTokenOwners[grant.accessToken] = account
        validRefreshTokens[grant.refreshToken] = account
        secrets.accessTokens.insert(grant.accessToken)
        secrets.refreshTokens.insert(grant.refreshToken)
        return grant
    }

    /// The account of a currently valid access token (counting the request), or nil (counting a 401 for the
    /// account of a revoked token).
    mutating func authenticate(authorization: String?) -> String? {
        guard let authorization, authorization.hasPrefix("Bearer ") else { return nil }
        let token = String(authorization.dropFirst(7))
        if token.hasPrefix("sk-ant-") { secrets.accessTokens.insert(token) }
        guard let account = validAccessTokens[token] else {
            if let owner = accessTokenOwners[token] { accounts[owner, default: MockAccountStats()].unauthorized += 1 }
            return nil
        }
        accounts[account, default: MockAccountStats()].requests += 1
        return account
    }

    /// Its access tokens stop working (401) until the client refreshes; the refresh token stays good.
    mutating func revoke(account: String) -> Int {
        let revoked = validAccessTokens.filter { $0.value == account }.map(\.key)
        for token in revoked { validAccessTokens[token] = nil }
        return revoked.count
    }

    /// Arms `fault` for the account's next `count` requests (`nil`: until disarmed); `nil` disarms.
    mutating func arm(_ fault: MockFault?, for account: String, count: Int?) {
        faults[account] = fault.map { ArmedFault(fault: $0, remaining: count) }
    }

    /// The fault this request of `account` gets, if any; uses one of its count.
    mutating func takeFault(for account: String) -> MockFault? {
        guard var armed = faults[account] else { return nil }
        if let remaining = armed.remaining {
            guard remaining > 0 else {
                faults[account] = nil
                return nil
            }
            armed.remaining = remaining - 1
            faults[account] = armed.remaining == 0 ? nil : armed
        }
        return armed.fault
    }

    mutating func streamOpened(account: String) {
        accounts[account, default: MockAccountStats()].streamsOpen += 1
    }

    mutating func streamClosed(account: String, end: StreamEnd) {
        accounts[account, default: MockAccountStats()].streamsOpen -= 1
        switch end {
        case .completed: accounts[account, default: MockAccountStats()].streamsCompleted += 1
        case .cancelledByClient: accounts[account, default: MockAccountStats()].streamsCancelled += 1
        case .brokenByFault: accounts[account, default: MockAccountStats()].streamsBroken += 1
        }
    }

    var statistics: MockStatistics {
        MockStatistics(
            accounts: accounts, tokenRequests: tokenRequests,
            streamsOpen: accounts.values.reduce(0) { $0 + $1.streamsOpen },
            streamsCancelled: accounts.values.reduce(0) { $0 + $1.streamsCancelled })
    }
}
