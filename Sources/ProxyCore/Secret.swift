/// A credential (access token, refresh token, code verifier) that must never be printed, logged or encoded by
/// accident: its descriptions are redacted, and the value is read only through `reveal()`.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let value: String

    public init(_ value: String) { self.value = value }

    /// The plain value, for the one place that needs it (an Authorization header, the vault's cipher).
    public func reveal() -> String { value }

    public var isEmpty: Bool { value.isEmpty }

    /// This token as an `Authorization` value: `Bearer <token>`, itself a secret.
    public var bearer: Secret { Secret("Bearer " + value) }

    /// The last 4 characters, the most an operator may see (`token_hint`).
    public var hint: String { value.count > 12 ? String(value.suffix(4)) : "" }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    /// `dump()` and reflection-based printers see no children.
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}
