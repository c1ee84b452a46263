import HTTPTypes
import Hummingbird

/// Lets only the admin key through (`x-api-key` or `Authorization: Bearer`); a client key gets 403, anything else
/// 401, both in Anthropic's error shape. Never logs the presented key.
struct AdminGuard<Context: RequestContext>: RouterMiddleware {
    let authentication: ClientAuthentication
    let metrics: ProxyMetrics?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        switch authentication.identify(request.headers) {
        case .admin:
            return try await next(request, context)
        case .client:
            metrics?.authenticationFailed(area: "admin")
            throw AdminError(403, "permission_error", "client keys cannot use the admin API")
        case nil:
            metrics?.authenticationFailed(area: "admin")
            throw AdminError(
                401, "authentication_error", "missing or wrong admin key (send x-api-key or Authorization: Bearer)")
        }
    }
}

/// Headers on every admin and dashboard response: no sniffing, no referrer, no framing, a strict CSP, no caching
/// of API answers, and HSTS when the port speaks TLS.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    let tls: Bool

    static var contentSecurityPolicy: String { "default-src 'self'; frame-ancestors 'none'" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            var response = try await next(request, context)
            apply(to: &response.headers)
            return response
        } catch let error as any HTTPResponseError {
            var response = try error.response(from: request, context: context)
            apply(to: &response.headers)
            return response
        }
    }

    func apply(to headers: inout HTTPFields) {
        headers[HTTPField.Name("x-content-type-options")!] = "nosniff"
        headers[HTTPField.Name("referrer-policy")!] = "no-referrer"
        headers[HTTPField.Name("x-frame-options")!] = "DENY"
        headers[HTTPField.Name("content-security-policy")!] = Self.contentSecurityPolicy
        if tls { headers[HTTPField.Name("strict-transport-security")!] = "max-age=31536000" }
        if headers[.cacheControl] == nil { headers[.cacheControl] = "no-store" }
    }
}
