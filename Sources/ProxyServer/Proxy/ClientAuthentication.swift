import HTTPTypes
import Hummingbird

/// Who may use `/v1/*`: a request carrying the admin key as `x-api-key` or `Authorization: Bearer` (today's
/// SDK sends Bearer even for `api_key=`). Compared in constant time.
struct ClientAuthentication: Sendable {
    let adminKey: [UInt8]

    init(adminKey: String) { self.adminKey = Array(adminKey.utf8) }

    func isAuthorized(_ headers: HTTPFields) -> Bool {
        if let key = headers[HTTPField.Name("x-api-key")!], Self.constantTimeEquals(Array(key.utf8), adminKey) {
            return true
        }
        if let authorization = headers[.authorization], authorization.count > 7,
            authorization.prefix(7).lowercased() == "bearer ",
            Self.constantTimeEquals(Array(authorization.dropFirst(7).utf8), adminKey)
        {
            return true
        }
        return false
    }

    /// Equal length and contents, in time that depends only on the lengths (no early exit on a mismatch).
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
