import Foundation

/// A successful token-endpoint answer (exchange or refresh).
public struct OAuthTokens: Sendable, Equatable {
    public var accessToken: Secret
    /// `nil` when the response carried none (or an empty one): the caller keeps its old refresh token.
    public var refreshToken: Secret?
    public var expiresIn: TimeInterval
    public var scopes: [String]
    public var organizationID: String?
    public var organizationName: String?
    public var accountID: String?
    public var email: String?

    public init(
        accessToken: Secret, refreshToken: Secret?, expiresIn: TimeInterval, scopes: [String] = [],
        organizationID: String? = nil, organizationName: String? = nil, accountID: String? = nil, email: String? = nil
    ) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.expiresIn = expiresIn
        self.scopes = scopes
        self.organizationID = organizationID
        self.organizationName = organizationName
        self.accountID = accountID
        self.email = email
    }

    /// New credentials for an account, keeping `previousRefreshToken` when the response rotated none.
    public func credentials(issuedAt now: Date, previousRefreshToken: Secret? = nil) -> Credentials {
        Credentials(
            accessToken: accessToken,
            refreshToken: refreshToken ?? previousRefreshToken ?? Secret(""),
            expiresAt: now.addingTimeInterval(expiresIn))
    }
}

/// The JSON shape of a 200 from the token endpoint (ANTHROPIC-WIRE.md).
struct TokenResponseBody: Decodable {
    struct Organization: Decodable {
        var uuid: String?
        var name: String?
    }
    struct AccountInfo: Decodable {
        var uuid: String?
        var email_address: String?
    }
    var token_type: String?
    var access_token: String?
    var refresh_token: String?
    var expires_in: Double?
    var scope: String?
    var organization: Organization?
    var account: AccountInfo?

    func tokens() throws(OAuthError) -> OAuthTokens {
        guard let access = access_token, !access.isEmpty else {
            throw .malformedResponse(reason: "no access_token")
        }
        guard let expiresIn = expires_in, expiresIn > 0 else {
            throw .malformedResponse(reason: "no positive expires_in")
        }
        if let type = token_type, type.lowercased() != "bearer" {
            throw .malformedResponse(reason: "token_type is not Bearer")
        }
        let refresh = refresh_token.flatMap { $0.isEmpty ? nil : Secret($0) }
        return OAuthTokens(
            accessToken: Secret(access), refreshToken: refresh, expiresIn: expiresIn,
            scopes: scope.map { $0.split(separator: " ").map(String.init) } ?? [],
            organizationID: organization?.uuid, organizationName: organization?.name,
            accountID: account?.uuid, email: account?.email_address)
    }
}

/// `{"error": "...", "error_description": "..."}` (RFC 6749 §5.2).
struct TokenErrorBody: Decodable {
    var error: String?
    var error_description: String?
}
