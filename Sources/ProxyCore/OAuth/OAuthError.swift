import Foundation

/// Failures of the OAuth flow and of token refresh. Descriptions never contain a token, a refresh token or a code
/// verifier: server-provided text is scrubbed of the secrets sent in the request before it is kept.
public enum OAuthError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The token endpoint rejected the code or refresh token (`invalid_grant`): only a new login helps; never retried.
    case invalidGrant(description: String)
    /// Another non-retryable rejection (`invalid_request`, `invalid_client`, other 4xx).
    case rejected(status: Int, error: String, description: String)
    /// 429, 5xx or a network failure, still failing after the retry policy's attempts.
    case transient(status: Int?, reason: String, attempts: Int)
    /// A 200 whose body is not a usable token response.
    case malformedResponse(reason: String)
    /// Pasted text holds no authorization code (or no state where one is needed).
    case malformedAuthorizationInput(reason: String)
    /// No pending authorization has this state (never issued, or already used).
    case unknownState
    /// The pending authorization for this state expired.
    case expiredState
    case unknownAccount(AccountID)
    /// The account's refresh token was rejected earlier; it waits for a new login.
    case needsReauth(AccountID)
    /// The account has no refresh token and its access token is no longer valid.
    case noRefreshToken(AccountID)

    /// Whether retrying later may succeed.
    public var isTransient: Bool {
        if case .transient = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .invalidGrant(let description):
            return "invalid_grant: the grant was rejected, a new login is needed (\(description))"
        case .rejected(let status, let error, let description):
            return "token endpoint rejected the request: HTTP \(status) \(error) (\(description))"
        case .transient(let status, let reason, let attempts):
            let statusText = status.map { "HTTP \($0)" } ?? "network"
            return "token endpoint unavailable after \(attempts) attempt(s): \(statusText): \(reason)"
        case .malformedResponse(let reason):
            return "token endpoint returned a malformed response: \(reason)"
        case .malformedAuthorizationInput(let reason):
            return "cannot read the authorization code: \(reason)"
        case .unknownState:
            return "unknown or already used OAuth state: start the login again"
        case .expiredState:
            return "the OAuth login expired: start it again"
        case .unknownAccount(let id):
            return "unknown account \(id)"
        case .needsReauth(let id):
            return "account \(id) needs a new login (refresh token rejected)"
        case .noRefreshToken(let id):
            return "account \(id) has no refresh token and its access token expired"
        }
    }
}

/// Keeps server-provided text short and free of the secrets we sent (and of anything shaped like a Claude token).
enum SecretScrubber {
    static func scrub(_ text: String, removing secrets: [Secret], limit: Int = 200) -> String {
        var result = text
        for secret in secrets where !secret.isEmpty {
            result = result.replacingOccurrences(of: secret.reveal(), with: "<redacted>")
        }
        result = redactTokenShapedWords(result)
        if result.count > limit { result = String(result.prefix(limit)) + "…" }
        return result
    }

    /// Any word starting with `sk-ant-` is replaced, so a token we did not send (say, a new one echoed in an error)
    /// does not leak either.
    private static func redactTokenShapedWords(_ text: String) -> String {
        guard text.contains("sk-ant-") else { return text }
        var output = ""
        var rest = Substring(text)
        while let range = rest.range(of: "sk-ant-") {
            output += rest[..<range.lowerBound]
            output += "<redacted>"
            let tail = rest[range.upperBound...]
            let end = tail.firstIndex { !($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") } ?? tail.endIndex
            rest = tail[end...]
        }
        output += rest
        return output
    }
}
