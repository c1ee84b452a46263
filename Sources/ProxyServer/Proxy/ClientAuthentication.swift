import HTTPTypes
import Hummingbird
import ProxyCore

/// Who may use `/v1/*`: a request carrying the admin key (`auth.api_key`) or one of `auth.client_keys`, as
/// `x-api-key` or `Authorization: Bearer` (today's SDK sends Bearer even for `api_key=`).
struct ClientAuthentication: Sendable {
    let keys: [ClientKey]

    init(adminKey: String, clientKeys: [ClientKey]) {
        keys = (ClientKey(adminKey).map { [$0] } ?? []) + clientKeys
    }

    func isAuthorized(_ headers: HTTPFields) -> Bool {
        guard let presented = Self.presentedKey(headers) else { return false }
        // Every key is compared (no early exit), so timing does not tell which entry matched.
        var matched = false
        for key in keys where key.matches(presented) { matched = true }
        return matched
    }

    static func presentedKey(_ headers: HTTPFields) -> String? {
        if let key = headers[HTTPField.Name("x-api-key")!] { return key }
        if let authorization = headers[.authorization], authorization.count > 7,
            authorization.prefix(7).lowercased() == "bearer "
        {
            return String(authorization.dropFirst(7))
        }
        return nil
    }
}
