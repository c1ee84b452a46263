import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ProxyCore
import ProxyHTTP2
import ProxyUpstream

/// `/v1/*`: authenticate the client, pick an account, make sure its token is fresh, rewrite the headers and
/// relay the request over the pooled HTTP/2 connections; the response comes back as it arrives (an SSE event is
/// written to the client as soon as its DATA frame is read, never waiting for the next).
///
/// This first slice does no failover between accounts yet (#6): a failure before the response head is reported
/// to the client in Anthropic's error shape.
public struct ProxyRelay: Sendable {
    let authentication: ClientAuthentication
    let pools: UpstreamPools
    let balancer: Balancer
    let refresher: TokenRefresher
    let responseHeaderTimeout: TimeAmount
    let bodyIdleTimeout: TimeAmount
    let maxRequestBody: Int

    public init(config: ProxyConfig, pools: UpstreamPools, balancer: Balancer, refresher: TokenRefresher) {
        self.authentication = ClientAuthentication(adminKey: config.auth.apiKey, clientKeys: config.auth.clientKeys)
        self.pools = pools
        self.balancer = balancer
        self.refresher = refresher
        self.responseHeaderTimeout = TimeAmount(config.upstream.responseHeaderTimeout)
        self.bodyIdleTimeout = TimeAmount(config.upstream.responseHeaderTimeout)
        self.maxRequestBody = 32 << 20
    }

    /// Response headers that describe the upstream connection, not the message (RFC 9110 §7.6.1).
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer",
    ]
    static let accountHeader = HTTPField.Name("x-claude-proxy-account")!

    func register(on router: Router<BasicRequestContext>) {
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
            router.on("/v1/**", method: method) { request, context in try await relay(request, context: context) }
        }
    }

    func relay(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let requestID = context.id
        guard authentication.isAuthorized(request.headers) else {
            return AnthropicError.response(401, "authentication_error", "invalid x-api-key", requestID: requestID)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxRequestBody)
        } catch {
            return AnthropicError.response(
                413, "request_too_large", "request body larger than \(maxRequestBody) bytes", requestID: requestID)
        }
        let account: AccountID
        switch balancer.pick() {
        case .account(let id):
            account = id
        case .unavailable(let retryAt?):
            let seconds = max(1, Int(retryAt.timeIntervalSinceNow.rounded(.up)))
            return AnthropicError.response(
                429, "rate_limit_error", "all accounts are rate limited", requestID: requestID,
                headers: [HTTPField.Name("retry-after")!: "\(seconds)"])
        case .unavailable(nil):
            return AnthropicError.response(503, "overloaded_error", "no account is available", requestID: requestID)
        }
        let token: Secret
        do {
            token = try await refresher.validToken(for: account)
        } catch {
            context.logger.warning("no token for account", metadata: ["account": "\(account)", "error": "\(error)"])
            return AnthropicError.response(
                503, "overloaded_error", "the selected account has no usable token", requestID: requestID)
        }
        let fields = UpstreamRequestHeaders.fields(
            method: request.method.rawValue, authority: pools.origin.authority, path: request.uri.description,
            client: request.headers, token: token.reveal(),
            bodyLength: body.readableBytes > 0 ? body.readableBytes : nil)
        let exchange: UpstreamPool.Exchange
        do {
            exchange = try await pools.current.send(
                fields, body: body.readableBytes > 0 ? body : nil, responseHeadTimeout: responseHeaderTimeout)
        } catch let error as UpstreamError {
            context.logger.warning("upstream request failed", metadata: ["account": "\(account)", "error": "\(error)"])
            if case .timeout = error {
                return AnthropicError.response(
                    504, "timeout_error", "upstream did not answer in time", requestID: requestID)
            }
            return AnthropicError.response(502, "api_error", "upstream unavailable", requestID: requestID)
        } catch {
            context.logger.warning("upstream stream failed", metadata: ["account": "\(account)", "error": "\(error)"])
            return AnthropicError.response(502, "api_error", "upstream stream failed", requestID: requestID)
        }
        let upstreamHeaders = exchange.head.filter { !$0.name.hasPrefix(":") }.map { ($0.name, $0.value) }
        balancer.record(status: exchange.status, headers: upstreamHeaders, for: account)
        var headers = HTTPFields()
        for (name, value) in upstreamHeaders where !Self.hopByHop.contains(name) {
            if let fieldName = HTTPField.Name(name) { headers.append(HTTPField(name: fieldName, value: value)) }
        }
        headers[Self.accountHeader] = account.rawValue
        return Response(
            status: .init(code: exchange.status), headers: headers,
            body: ResponseBody(asyncSequence: exchange.body(idleTimeout: bodyIdleTimeout)))
    }
}
