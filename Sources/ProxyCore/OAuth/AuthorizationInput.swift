import Foundation

/// What a user pastes after logging in, read into a code and (when present) a state. Accepted forms:
/// - `CODE#STATE`, as shown by the `platform.claude.com/oauth/code/callback` page;
/// - a full callback URL, `https://…/callback?code=CODE&state=STATE`;
/// - a bare query string, `code=CODE&state=STATE`;
/// - a bare code, with the state given separately.
public struct AuthorizationInput: Sendable, Equatable {
    public var code: String
    public var state: String?

    public init(code: String, state: String?) {
        self.code = code
        self.state = state
    }

    /// Reads `text`; a separately supplied `state` fills in when the text carries none, and must agree when it does.
    public static func parse(_ text: String, state separateState: String? = nil) throws(OAuthError)
        -> AuthorizationInput
    {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw .malformedAuthorizationInput(reason: "empty input") }
        var parsed: AuthorizationInput
        if trimmed.contains("://") || trimmed.contains("code=") {
            parsed = try parseQuery(trimmed)
        } else {
            parsed = splitAtHash(trimmed)
        }
        let separate = separateState?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let separate, !separate.isEmpty {
            if let state = parsed.state, state != separate {
                throw .malformedAuthorizationInput(reason: "the pasted state differs from the given state")
            }
            parsed.state = separate
        }
        guard !parsed.code.isEmpty else { throw .malformedAuthorizationInput(reason: "no authorization code") }
        guard !parsed.code.contains(where: { $0.isWhitespace }) else {
            throw .malformedAuthorizationInput(reason: "the code contains spaces")
        }
        return parsed
    }

    private static func splitAtHash(_ text: String) -> AuthorizationInput {
        guard let hash = text.firstIndex(of: "#") else { return AuthorizationInput(code: text, state: nil) }
        let state = String(text[text.index(after: hash)...])
        return AuthorizationInput(code: String(text[..<hash]), state: state.isEmpty ? nil : state)
    }

    private static func parseQuery(_ text: String) throws(OAuthError) -> AuthorizationInput {
        let components: URLComponents?
        if text.contains("://") {
            components = URLComponents(string: text)
        } else {
            var bare = URLComponents()
            bare.percentEncodedQuery = text.hasPrefix("?") ? String(text.dropFirst()) : text
            components = bare
        }
        guard let components, let items = components.queryItems else {
            throw .malformedAuthorizationInput(reason: "not a callback URL")
        }
        if let error = items.first(where: { $0.name == "error" })?.value {
            let scrubbed = SecretScrubber.scrub(error, removing: [], limit: 80)
            throw .malformedAuthorizationInput(reason: "the authorization server answered \(scrubbed)")
        }
        guard let code = items.first(where: { $0.name == "code" })?.value, !code.isEmpty else {
            throw .malformedAuthorizationInput(reason: "the URL has no code parameter")
        }
        // Some callback pages put the state after a `#` in the code itself.
        var parsed = splitAtHash(code)
        if let state = items.first(where: { $0.name == "state" })?.value, !state.isEmpty {
            parsed.state = state
        } else if parsed.state == nil, let fragment = components.fragment, !fragment.isEmpty {
            parsed.state = fragment
        }
        return parsed
    }
}
