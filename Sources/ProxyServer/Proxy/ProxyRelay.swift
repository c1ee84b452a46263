import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ProxyCore
import ProxyHTTP2
import ProxyUpstream

/// `/v1/*`: authenticate the client, pick an account, make sure its token is fresh, rewrite the headers and
/// relay the request over the pooled upstream connections (HTTP/2, or HTTP/1.1 for an origin that speaks only
/// that); the response comes back as it arrives (an SSE event is written to the client as soon as its bytes are
/// read, never waiting for the next).
///
/// Before the first response byte a request may move on: 429 and 403 go to the next available account at once
/// (the 429's cooldown recorded), a 401 forces one refresh of that account's token and retries it, and connect
/// failures, 5xx and 529 are retried up to `retry.max_retries` times after `retry.retry_delay` (doubling, with
/// jitter). Once response bytes flow, nothing is retried.
public struct ProxyRelay: Sendable {
    let authentication: ClientAuthentication
    let pools: UpstreamPools
    let balancer: Balancer
    let refresher: TokenRefresher
    let responseHeaderTimeout: TimeAmount
    let bodyIdleTimeout: TimeAmount
    let maxRequestBody: Int
    let maxRetries: Int
    let retryDelay: Duration
    let usage: UsageRecorder?
    let metrics: ProxyMetrics?
    let extraHeaders: [(name: String, value: String)]
    /// Requests the HTTP/1.1 fast path handed over, with where it left off.
    let handovers = RelayHandovers()

    public init(
        config: ProxyConfig, pools: UpstreamPools, balancer: Balancer, refresher: TokenRefresher,
        usage: UsageRecorder? = nil, metrics: ProxyMetrics? = nil
    ) {
        self.usage = usage
        self.metrics = metrics
        self.extraHeaders = config.claude.extraHeaders
        self.authentication = ClientAuthentication(adminKey: config.auth.apiKey, clientKeys: config.auth.clientKeys)
        self.pools = pools
        self.balancer = balancer
        self.refresher = refresher
        self.responseHeaderTimeout = TimeAmount(config.upstream.responseHeaderTimeout)
        self.bodyIdleTimeout = TimeAmount(config.upstream.responseHeaderTimeout)
        self.maxRequestBody = config.limits.maxRequestBody
        self.maxRetries = config.retry.maxRetries
        self.retryDelay = config.retry.retryDelay
    }

    /// Response headers that describe the upstream connection, not the message (RFC 9110 §7.6.1).
    static let hopByHop = FieldNameSet([
        "connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer",
    ])

    static let accountHeader = HTTPField.Name("x-claude-proxy-account")!

    func register(on router: Router<BasicRequestContext>) {
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
            router.on("/v1/**", method: method) { request, context in
                let continuation = request.headers[RelayHandovers.field].flatMap(handovers.take)
                return try await relay(request, context: context, continuing: continuation)
            }
        }
    }

    func relay(
        _ request: Request, context: BasicRequestContext, continuing continuation: RelayContinuation? = nil
    ) async throws -> Response {
        let requestID = context.id
        var record = RelayRecord(
            requestID: requestID, method: request.method.rawValue, path: request.uri.path, started: .now(),
            logger: context.logger, metrics: metrics)
        guard let identity = authentication.identify(request.headers) else {
            metrics?.authenticationFailed(area: "v1")
            return finished(
                AnthropicError.response(
                    401, "authentication_error", "invalid x-api-key or bearer token", requestID: requestID),
                record)
        }
        record.client = identity.label
        var headers = request.headers
        let body: ByteBuffer
        switch await readBody(request, headers: &headers, requestID: requestID) {
        case .success(let bytes): body = bytes
        case .failure(let response): return finished(response, record)
        }
        if let model = body.withUnsafeReadableBytes(RequestModel.scan) { record.model = model }
        var attempt = continuation?.attempt ?? 0
        var refreshedFor = continuation?.refreshedFor ?? []
        var lastFailure: Response?
        // The last upstream answer not passed on: relayed as it is when no account is left to try.
        var lastAnswer: (exchange: UpstreamExchange, account: AccountID)?
        // The same, read whole by the fast path before it handed the request over.
        var bufferedAnswer = continuation?.lastAnswer
        var chosen = continuation?.account
        if let rejected = continuation?.rejected {
            _ = try? await refresher.forceRefresh(for: rejected.account, rejectedToken: rejected.token)
        }
        if continuation?.backoff == true { try await Task.sleep(for: backoff(attempt)) }
        while true {
            let account: AccountID
            switch chosen.map(BalancerPick.account) ?? balancer.pick() {
            case .account(let id):
                chosen = nil
                account = id
            case .unavailable(let retryAt):
                if let lastAnswer { return response(lastAnswer.exchange, account: lastAnswer.account, record) }
                if let bufferedAnswer { return response(bufferedAnswer, record) }
                return finished(lastFailure ?? Self.noAccount(retryAt: retryAt, requestID: requestID), record)
            }
            record.account = account
            let token: Secret
            do {
                token = try await refresher.validToken(for: account)
            } catch {
                context.logger.warning(
                    "no token for account", metadata: ["account": "\(account)", "error": "\(error)"])
                return finished(
                    lastFailure
                        ?? AnthropicError.response(
                            503, "overloaded_error", "the selected account has no usable token", requestID: requestID),
                    record)
            }
            let sent = ContinuousClock.now
            let outcome = await send(
                request, headers: headers, body: body, account: account, token: token, context: context)
            switch outcome {
            case .response(let exchange):
                metrics?.upstreamAnswered(after: .now - sent)
                lastAnswer?.exchange.cancel()  // a newer answer replaces it; its body is not wanted
                lastAnswer = nil
                bufferedAnswer = nil
                let status = exchange.status
                let upstreamHeaders = Self.headerFields(of: exchange)
                if let changed = balancer.record(status: status, headers: upstreamHeaders, for: account) {
                    usage?.record(rateLimit: changed, for: account)
                }
                let retryable = Self.isRetryable(status)
                guard retryable, attempt < maxRetries else {
                    return response(exchange, account: account, record, upstreamHeaders: upstreamHeaders)
                }
                lastAnswer = (exchange, account)
                lastFailure = nil
                attempt += 1
                if status == 401 {
                    if refreshedFor.contains(account) {
                        return response(exchange, account: account, record, upstreamHeaders: upstreamHeaders)
                    }
                    refreshedFor.insert(account)
                    _ = try? await refresher.forceRefresh(for: account, rejectedToken: token)
                } else if status >= 500 {
                    try await Task.sleep(for: backoff(attempt))
                }
                context.logger.info(
                    "retrying on another attempt",
                    metadata: ["account": "\(account)", "status": "\(status)", "attempt": "\(attempt)"])
            case .failed(let failure):
                guard attempt < maxRetries else {
                    if let lastAnswer { return response(lastAnswer.exchange, account: lastAnswer.account, record) }
                    if let bufferedAnswer { return response(bufferedAnswer, record) }
                    return finished(failure, record)
                }
                lastFailure = failure
                attempt += 1
                try await Task.sleep(for: backoff(attempt))
            }
        }
    }

    /// A response made here (not relayed): reported at once.
    private func finished(_ response: Response, _ record: RelayRecord) -> Response {
        var record = record
        record.finish(status: response.status.code)
        return response
    }

    private enum BodyResult {
        case success(ByteBuffer)
        case failure(Response)
    }

    /// The whole request body (kept for replay on failover), gzip decoded when the client sent it encoded;
    /// either way no more than `limits.max_request_body` bytes.
    private func readBody(_ request: Request, headers: inout HTTPFields, requestID: String) async -> BodyResult {
        var tooLarge: Response {
            AnthropicError.response(
                413, "request_too_large", "request body larger than \(maxRequestBody) bytes", requestID: requestID)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxRequestBody)
        } catch {
            return .failure(tooLarge)
        }
        guard let encoding = headers[.contentEncoding]?.lowercased(), body.readableBytes > 0 else {
            return .success(body)
        }
        guard encoding == "gzip" || encoding == "x-gzip" else {
            return .failure(
                AnthropicError.response(
                    415, "invalid_request_error", "content-encoding \(encoding) is not supported (gzip is)",
                    requestID: requestID))
        }
        do {
            let decoded = try Gzip.decompress(body, limit: maxRequestBody)
            headers[.contentEncoding] = nil
            return .success(decoded)
        } catch .tooLarge {
            return .failure(tooLarge)
        } catch {
            return .failure(
                AnthropicError.response(
                    400, "invalid_request_error", "the gzip request body is corrupt", requestID: requestID))
        }
    }

    /// Where the fast path left a request it handed over: its attempts so far and what comes before the next.
    struct RelayContinuation: Sendable {
        var attempt = 0
        var refreshedFor: Set<AccountID> = []
        /// Use this account first (the fast path picked it, and the balancer's rotation moved on for it).
        var account: AccountID?
        /// A 401: refresh this account's rejected token before the next attempt.
        var rejected: (account: AccountID, token: Secret)?
        /// A 5xx or 529: wait the backoff before the next attempt.
        var backoff = false
        /// The upstream's own (retryable) answer: relayed as it is if no other attempt succeeds.
        var lastAnswer: BufferedAnswer?
    }

    /// An upstream answer read whole (a short error body).
    struct BufferedAnswer: Sendable {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: ByteBuffer
        var account: AccountID
    }

    /// `answer` as the client gets it, counted and logged like a relayed response.
    private func response(_ answer: BufferedAnswer, _ record: RelayRecord) -> Response {
        var record = record
        record.account = answer.account
        // Its length is the body's own (set by the response), not the upstream's field.
        let headers = Self.clientHeaders(answer.headers.filter { $0.name != "content-length" }, account: answer.account)
        var observer = UsageObserver(contentType: headers[.contentType])
        answer.body.withUnsafeReadableBytes { observer.observe($0) }
        let counted = observer.finish()
        usage?.record(counted, for: answer.account, clientKey: record.client)
        record.finish(status: answer.status, usage: counted, firstByte: .now())
        return Response(status: .init(code: answer.status), headers: headers, body: .init(byteBuffer: answer.body))
    }

    private enum Outcome {
        case response(UpstreamExchange)
        case failed(Response)
    }

    /// An upstream head's fields without the pseudo-headers.
    static func headerFields(of exchange: UpstreamExchange) -> [(name: String, value: String)] {
        exchange.head.filter { !$0.name.hasPrefix(":") }.map { ($0.name, $0.value) }
    }

    /// The response headers the client gets: the upstream's minus hop-by-hop ones, plus the serving account.
    static func clientHeaders(_ upstream: [(name: String, value: String)], account: AccountID) -> HTTPFields {
        var headers = HTTPFields()
        for (name, value) in upstream where !hopByHop.contains(name) {
            if let fieldName = HTTPField.Name(name) { headers.append(HTTPField(name: fieldName, value: value)) }
        }
        headers[accountHeader] = account.rawValue
        return headers
    }

    /// Answers that move the request to another attempt while no byte has gone to the client.
    static func isRetryable(_ status: Int) -> Bool {
        status == 429 || status == 403 || status == 401 || status == 529 || status >= 500
    }

    /// Exponential backoff with ±25 % jitter.
    private func backoff(_ attempt: Int) -> Duration {
        let base = retryDelay * (1 << min(attempt - 1, 10))
        return base * Double.random(in: 0.75...1.25)
    }

    static func noAccount(retryAt: Date?, requestID: String) -> Response {
        guard let retryAt else {
            return AnthropicError.response(503, "overloaded_error", "no account is available", requestID: requestID)
        }
        let seconds = max(1, Int(retryAt.timeIntervalSinceNow.rounded(.up)))
        return AnthropicError.response(
            429, "rate_limit_error", "all accounts are rate limited", requestID: requestID,
            headers: [HTTPField.Name("retry-after")!: "\(seconds)"])
    }

    private func send(
        _ request: Request, headers: HTTPFields, body: ByteBuffer, account: AccountID, token: Secret,
        context: BasicRequestContext
    ) async -> Outcome {
        let requestID = context.id
        let fields = UpstreamRequestHeaders.fields(
            method: request.method.rawValue, authority: pools.origin.authority, path: request.uri.description,
            client: headers, authorization: token.bearer.reveal(),
            bodyLength: body.readableBytes > 0 ? body.readableBytes : nil, extra: extraHeaders)
        do {
            return .response(
                try await pools.send(
                    fields, body: body.readableBytes > 0 ? body : nil, responseHeadTimeout: responseHeaderTimeout))
        } catch let error as UpstreamError {
            context.logger.warning("upstream request failed", metadata: ["account": "\(account)", "error": "\(error)"])
            if case .timeout = error {
                return .failed(
                    AnthropicError.response(
                        504, "timeout_error", "upstream did not answer in time", requestID: requestID))
            }
            return .failed(AnthropicError.response(502, "api_error", "upstream unavailable", requestID: requestID))
        } catch {
            context.logger.warning("upstream stream failed", metadata: ["account": "\(account)", "error": "\(error)"])
            return .failed(AnthropicError.response(502, "api_error", "upstream stream failed", requestID: requestID))
        }
    }

    /// Relays `exchange`; `upstreamHeaders` are its non-pseudo header fields when the caller has them already.
    private func response(
        _ exchange: UpstreamExchange, account: AccountID, _ record: RelayRecord,
        upstreamHeaders: [(name: String, value: String)]? = nil
    ) -> Response {
        var record = record
        record.account = account
        let headers = Self.clientHeaders(upstreamHeaders ?? Self.headerFields(of: exchange), account: account)
        let body = exchange.body(idleTimeout: bodyIdleTimeout)
        let isEventStream = UsageObserver.kind(ofContentType: headers[.contentType]) == .eventStream
        let requestID = headers[HTTPField.Name("request-id")!] ?? ""
        let recorder = usage
        let metrics = metrics
        let contentType = headers[.contentType]
        let status = exchange.status
        let finalRecord = record
        return Response(
            status: .init(code: status), headers: headers,
            body: ResponseBody { writer in
                // Usage is read from the bytes as they pass; they are written unchanged.
                var observer = UsageObserver(contentType: contentType)
                var firstByte: NIODeadline?
                var failure: String?
                var delivered = false
                defer {
                    // The client left (or the body broke): the upstream stream must not run on unread.
                    if !delivered { exchange.cancel() }
                    let counted = observer.finish()
                    recorder?.record(counted, for: account, clientKey: finalRecord.client)
                    var record = finalRecord
                    record.finish(status: status, usage: counted, firstByte: firstByte, error: failure)
                }
                do {
                    for try await chunk in body {
                        chunk.withUnsafeReadableBytes { observer.observe($0) }
                        try await writer.write(chunk)
                        if firstByte == nil {
                            firstByte = .now()
                            metrics?.firstByte(after: RelayRecord.duration(firstByte! - finalRecord.started))
                        }
                    }
                } catch {
                    failure = "\(error)"
                    // After the first byte nothing is retried. An event stream ends with an `error` event the
                    // SDKs understand; any other body ends short, and the connection says so.
                    guard isEventStream else { throw error }
                    try await writer.write(ByteBuffer(string: Self.errorEvent(for: error, requestID: requestID)))
                }
                try await writer.finish(nil)
                delivered = true
            })
    }

    /// An SSE `error` event in Anthropic's shape (as the API itself sends mid-stream, e.g. when overloaded).
    static func errorEvent(for error: any Error, requestID: String) -> String {
        let (type, message) =
            if case .timeout = error as? UpstreamError {
                ("timeout_error", "upstream stopped sending")
            } else {
                ("api_error", "upstream stream broke off")
            }
        return "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"\(type)\",\"message\":\"\(message)\"},"
            + "\"request_id\":\"\(AnthropicError.escape(requestID))\"}\n\n"
    }
}
