import Foundation
import HTTPTypes
import Hummingbird
import ProxyCore

/// An admin API failure, answered in Anthropic's error shape (docs/admin-api.md) with the request id.
struct AdminError: HTTPResponseError {
    let status: HTTPResponse.Status
    let type: String
    let message: String

    init(_ status: Int, _ type: String, _ message: String) {
        self.status = .init(code: status)
        self.type = type
        self.message = message
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = AnthropicError.response(status.code, type, message, requestID: context.id)
        response.headers[.cacheControl] = "no-store"
        return response
    }

    static func badRequest(_ message: String) -> AdminError { AdminError(400, "invalid_request_error", message) }

    static func notFound(_ id: AccountID) -> AdminError { AdminError(404, "not_found_error", "no account \(id)") }

    /// An OAuth failure as the admin API reports it: the user's input at fault → 400, the token endpoint → 502.
    /// Descriptions of `OAuthError` never hold a secret.
    static func oauth(_ error: OAuthError) -> AdminError {
        switch error {
        case .malformedAuthorizationInput, .unknownState, .expiredState, .invalidGrant, .rejected, .needsReauth,
            .noRefreshToken:
            return .badRequest(error.description)
        case .unknownAccount(let id):
            return .notFound(id)
        case .transient, .malformedResponse:
            return AdminError(502, "api_error", error.description)
        }
    }

    /// Any failure of an admin operation, mapped to its documented status; unknown errors become a 500 whose
    /// message is the error's (secret-free) description.
    static func from(_ error: any Error) -> AdminError {
        switch error {
        case let error as AdminError: return error
        case let error as OAuthError: return .oauth(error)
        case let error as AccountAdministrationError: return AdminError(409, "invalid_request_error", "\(error)")
        case let error as VaultError:
            if case .importInvalid = error { return .badRequest("\(error)") }
            if case .invalidAccountID = error { return .badRequest("\(error)") }
            return AdminError(500, "api_error", "storage failed: \(error)")
        default: return AdminError(500, "api_error", "\(error)")
        }
    }
}

/// Reading admin request bodies: JSON objects up to 1 MiB, with errors that say what is wrong.
enum AdminBody {
    static let limit = 1 << 20

    static func bytes(_ request: Request) async throws -> Data {
        do {
            return Data(try await request.body.collect(upTo: limit).readableBytesView)
        } catch {
            throw AdminError(413, "request_too_large", "request body larger than \(limit) bytes")
        }
    }

    static func object(_ request: Request) async throws -> [String: Any] {
        try object(try await bytes(request))
    }

    static func object(_ data: Data) throws -> [String: Any] {
        guard !data.isEmpty else { throw AdminError.badRequest("expected a JSON object body") }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw AdminError.badRequest("the body is not a JSON object")
        }
        return object
    }

    static func string(_ object: [String: Any], _ key: String, required: Bool = false) throws -> String? {
        switch object[key] {
        case nil, is NSNull:
            if required { throw AdminError.badRequest("\(key) is required") }
            return nil
        case let value as String: return value
        default: throw AdminError.badRequest("\(key) must be a string")
        }
    }
}
