import HTTPTypes
import Hummingbird
import ProxyCore
import ProxyHTTP2

/// Who a request comes from: the operator (the admin key, `auth.api_key`) or a client holding one of
/// `auth.client_keys`. Keys arrive as `x-api-key` or `Authorization: Bearer` (today's SDK sends Bearer even for
/// `api_key=`).
enum ClientIdentity: Sendable, Equatable {
    case admin
    /// A client key, by its label (never the key).
    case client(label: String)

    /// The name usage is counted under.
    var label: String {
        switch self {
        case .admin: "admin"
        case .client(let label): label
        }
    }
}

struct ClientAuthentication: Sendable {
    let admin: ClientKey?
    let clients: [ClientKey]

    init(adminKey: String, clientKeys: [ClientKey]) {
        admin = ClientKey(adminKey)
        clients = clientKeys
    }

    /// Every key is compared (no early exit), so timing does not tell which entry matched or how far.
    func identify(_ headers: HTTPFields) -> ClientIdentity? {
        identify(presented: Self.presentedKey(headers))
    }

    func identify(presented: String?) -> ClientIdentity? {
        guard var presented else { return nil }
        return presented.withUTF8 { identify(presented: $0) }
    }

    /// The same for a key's bytes where they lie (a request head's).
    func identify(presented: UnsafeBufferPointer<UInt8>) -> ClientIdentity? {
        var identity: ClientIdentity?
        for key in clients where key.matches(presented) { identity = .client(label: key.label) }
        if let admin, admin.matches(presented) { identity = .admin }
        return identity
    }

    static func presentedKey(_ headers: HTTPFields) -> String? {
        if let key = headers[HTTPField.Name("x-api-key")!] { return key }
        return headers[.authorization].flatMap(bearerToken)
    }

    /// The token of an `Authorization: Bearer <token>` value, in place.
    static func bearerToken(_ authorization: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard authorization.count > 7,
            FieldBytes.equalsFolded(UnsafeRawBufferPointer(rebasing: authorization[0..<7]), "bearer ")
        else { return nil }
        return UnsafeRawBufferPointer(rebasing: authorization[7...])
    }

    /// The token of an `Authorization: Bearer <token>` value.
    static func bearerToken(_ authorization: String) -> String? {
        guard authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return nil }
        return String(authorization.dropFirst(7))
    }
}
