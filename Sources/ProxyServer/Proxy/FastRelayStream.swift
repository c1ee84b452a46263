import Foundation
import Hummingbird
import Logging
import NIOCore
import ProxyCore
import ProxyHTTP2
import ProxyUpstream

/// One `/v1` request on the fast path (see `FastRelay`): the client's side (an HTTP/2 stream or an HTTP/1.1
/// request) and the upstream stream, both driven by their connections' event loop — the same one. Response bytes pass from upstream to client as
/// they come; the upstream window is given back only as the client's stream drains (backpressure both ways).
final class FastRelayStream: H2InterceptedStreamDelegate, H2ClientStreamDelegate, RelayDeadlineOwner {
    private enum Phase {
        case receiving, waitingForHead
        /// A retryable answer (429, 5xx, …) read whole for the async relay, which relays it if nothing better comes.
        case collectingAnswer(ProxyRelay.BufferedAnswer, next: ProxyRelay.RelayContinuation)
        case streaming, done
    }

    /// The most of a retryable answer's body kept for the async relay (error bodies are small).
    static let answerLimit = 64 << 10

    private let client: any FastRelayClient
    /// The client's request head, where its bytes lie.
    private let fields: FieldBlock
    private let method: String
    private let path: String
    /// Shared, not copied: the relay's many references would be retained once per request.
    private let shared: FastRelay.Shared
    private let requestID: FastRequestID
    private var record: RelayRecord
    private var phase = Phase.receiving
    private var body = ByteBuffer()
    private var upstream: (handler: H2ClientHandler, id: Int32)?
    private var account: AccountID?
    private var token: Secret?
    private var status = 0
    /// The response head as passed on: its `request-id` is read from it only if an error event needs it.
    private var upstreamHead: FieldBlock?
    private var observer = UsageObserver(kind: .other)
    /// A JSON response's body while it is one chunk (usually all of it): read for its usage at the end in place,
    /// instead of copied into the observer.
    private var jsonChunk: ByteBuffer?
    private var isEventStream = false
    private var sentAt: NIODeadline
    private var firstByte: NIODeadline?
    /// Response bytes passed to the client but not yet given back upstream: the client's queue is full.
    private var heldBack = 0
    private var clientBlocked = false
    /// A response head went to the client.
    private var streamed = false
    /// The one timeout running (`arm`), watched by the loop's `RelayDeadlines`.
    private(set) var deadline = NIODeadline.distantFuture
    var deadlineSlot: Int?
    private var deadlines: RelayDeadlines?
    /// Set when the response head arrives (before that the head's own deadline applies), then by body bytes.
    private var lastActivity = NIODeadline.uptimeNanoseconds(0)

    init(
        client: any FastRelayClient, fields: FieldBlock, method: String, path: String, client clientKey: String,
        shared: FastRelay.Shared, logger: Logger
    ) {
        self.client = client
        self.fields = fields
        self.method = method
        self.path = path
        self.shared = shared
        let requestID = FastRequestID.next()
        self.requestID = requestID
        let started = NIODeadline.now()
        sentAt = started
        // Logged without the query (it may carry something private), as the async relay does.
        let logged = path.utf8.firstIndex(of: UInt8(ascii: "?")).map { String(path[..<$0]) } ?? path
        record = RelayRecord(
            requestID: requestID, method: method, path: logged, started: started, logger: logger,
            metrics: shared.relay.metrics)
        record.client = clientKey
        record.fastFront = client.front
    }

    // MARK: - The client's stream

    func received(_ bytes: ByteBuffer) {
        client.consumed(bytes.readableBytes)
        guard case .receiving = phase else { return }
        guard body.readableBytes + bytes.readableBytes <= shared.relay.maxRequestBody else {
            answer(413, "request_too_large", "request body larger than \(shared.relay.maxRequestBody) bytes")
            return
        }
        // A body that comes in one piece (the usual) is kept as it came, not copied.
        if body.readableBytes == 0 { body = bytes } else { body.writeImmutableBuffer(bytes) }
    }

    func requestEnded() {
        guard case .receiving = phase else { return }
        if let model = body.withUnsafeReadableBytes(RequestModel.scan) { record.model = model }
        start()
    }

    func writable() {
        clientBlocked = false
        lastActivity = .coarseNow
        if heldBack > 0, let upstream {
            upstream.handler.consume(streamID: upstream.id, heldBack)
            heldBack = 0
        }
    }

    func closed(_ error: (any Error)?) {
        if case .done = phase { return }
        // The client went away (reset, connection closed): the upstream stream must not run on unread.
        cancelUpstream()
        complete(failure: error.map { "client left: \($0)" } ?? "client left", status: status == 0 ? 499 : status)
    }

    // MARK: - The upstream stream

    private func start() {
        guard case .account(let id) = shared.relay.balancer.pick() else { return handOver(nil) }
        // A token to refresh first, or no free upstream stream on this loop: the async relay waits for them.
        guard let (token, authorization) = shared.relay.refresher.cachedAuthorization(for: id) else {
            return handOver(.init(account: id))
        }
        let length = body.readableBytes
        // The upstream head is written straight into the connection's HTTP/2 session, with no field list between.
        let opened = shared.relay.pools.current.openStreamNow(endStream: length == 0, delegate: self) { head in
            UpstreamRequestHeaders.add(
                method: method, authority: shared.relay.pools.origin.authority, path: path, client: fields,
                authorization: authorization.reveal(), bodyLength: length > 0 ? length : nil,
                extra: shared.relay.extraHeaders, to: &head)
        }
        guard let opened else { return handOver(.init(account: id)) }
        upstream = (opened.handler, opened.streamID)
        account = id
        self.token = token
        record.account = id
        phase = .waitingForHead
        sentAt = .now()
        if length > 0 { opened.handler.send(streamID: opened.streamID, body, endStream: true) }
        arm(shared.relay.responseHeaderTimeout)
    }

    func responseHead(_ head: consuming FieldBlock) {
        guard case .waitingForHead = phase, let account else { return }
        var response = consume head  // replaced by a copy without them only where fields are dropped
        var contentKind = UsageObserver.Kind.other
        var hasDate = false
        var dropsFields = false
        let hopByHop = ProxyRelay.hopByHop  // once: each use of the static is a retain and a release of its table
        // Pseudo-fields other than `:status` and hop-by-hop fields (a superset of HTTP/2's connection-specific ones)
        // go; an HTTP/2 upstream's answer never has any, so they are only looked for in the scan below.
        func dropped(_ name: UnsafeRawBufferPointer) -> Bool {
            name.first == UInt8(ascii: ":") ? !FieldBytes.equalsFolded(name, ":status") : hopByHop.contains(name)
        }
        response.withFields { head in
            for index in 0..<head.count {
                // By length first: most fields are none of these, and a length costs less than a comparison.
                switch head.name(index).count {
                case 7 where head.nameIs(index, ":status"):
                    status = FieldBytes.decimal(head.value(index), maxDigits: 9) ?? 0
                case 12 where head.nameIs(index, "content-type"):
                    contentKind = UsageObserver.kind(ofContentType: head.value(index))
                case 4 where head.nameIs(index, "date"): hasDate = true
                default: break
                }
                if dropped(head.name(index)) { dropsFields = true }
            }
        }
        shared.relay.metrics?.upstreamAnswered(after: RelayRecord.duration(.now() - sentAt))
        // Looked up through a reader lent for the call: the closure reading `response` itself copied the block.
        let rateLimit = response.withFields { head in
            shared.relay.balancer.record(status: status, for: account) { name in
                head.value(named: name)?.trimmingCharacters(in: .whitespaces)
            }
        }
        if let rateLimit { shared.relay.usage?.record(rateLimit: rateLimit, for: account) }
        if ProxyRelay.isRetryable(status), shared.relay.maxRetries > 0 {
            // Retries, refreshes and backoff are the async relay's: it goes on from this first attempt, with this
            // answer to relay as it is if no other attempt does better (read whole first: it is short).
            var next = ProxyRelay.RelayContinuation(attempt: 1)
            if status == 401, let token {
                next.refreshedFor = [account]
                next.rejected = (account, token)
            } else if status >= 500 {
                next.backoff = true
            }
            let headers = response.fields.filter { $0.name.utf8.first != UInt8(ascii: ":") }.map { ($0.name, $0.value) }
            let answer = ProxyRelay.BufferedAnswer(
                status: status, headers: headers, body: ByteBuffer(), account: account)
            phase = .collectingAnswer(answer, next: next)
            lastActivity = .coarseNow
            return
        }
        // No attempt after this one: the request body, kept to replay it, goes (a large one is not held while the
        // response streams).
        body = ByteBuffer()
        // The upstream's `:status` stays first.
        if dropsFields { response = response.removing(where: dropped) }
        observer = UsageObserver(kind: contentKind)
        isEventStream = observer.kind == .eventStream
        phase = .streaming
        streamed = true
        lastActivity = .coarseNow
        do {
            let added = AddedResponseFields(
                account: account.rawValue, requestID: requestID, date: hasDate ? nil : HTTPDate.now())
            try client.respond(response, adding: added, endStream: false)
            upstreamHead = response
        } catch {
            cancelUpstream()
            complete(failure: "\(error)", status: status)
            client.abort()
        }
    }

    func responseData(_ bytes: ByteBuffer) {
        guard let upstream else { return }
        lastActivity = .coarseNow
        if case .collectingAnswer(var answer, let next) = phase {
            upstream.handler.consume(streamID: upstream.id, bytes.readableBytes)
            guard answer.body.readableBytes + bytes.readableBytes <= Self.answerLimit else {
                cancelUpstream()
                return handOver(next)
            }
            answer.body.writeImmutableBuffer(bytes)
            phase = .collectingAnswer(answer, next: next)
            return
        }
        guard case .streaming = phase else { return }
        observe(bytes)
        let count = bytes.readableBytes
        let open = client.write(bytes, endStream: false)
        noteFirstByte()
        if open && !clientBlocked {
            upstream.handler.consume(streamID: upstream.id, count)
        } else {
            clientBlocked = true
            heldBack += count
        }
    }

    private func noteFirstByte() {
        guard firstByte == nil else { return }
        let now = NIODeadline.now()
        firstByte = now
        shared.relay.metrics?.firstByte(after: RelayRecord.duration(now - record.started))
    }

    private func observe(_ bytes: ByteBuffer) {
        guard observer.kind == .json else { return bytes.withUnsafeReadableBytes { observer.observe($0) } }
        guard let held = jsonChunk else {
            jsonChunk = bytes
            return
        }
        jsonChunk = nil
        held.withUnsafeReadableBytes { observer.observe($0) }
        bytes.withUnsafeReadableBytes { observer.observe($0) }
    }

    func responseEnded() {
        if case .collectingAnswer(let answer, var next) = phase {
            upstream = nil
            next.lastAnswer = answer
            return handOver(next)
        }
        guard case .streaming = phase else { return }
        upstream = nil
        client.write(ByteBuffer(), endStream: true)
        complete(failure: nil, status: status)
    }

    /// A whole JSON answer usually comes as one DATA frame with END_STREAM: its bytes and the end are one write to
    /// the client (for HTTP/1.1 one flush, and for chunked framing one buffer with the last chunk).
    func responseEnded(lastData bytes: ByteBuffer) {
        guard case .streaming = phase, upstream != nil else {
            responseData(bytes)
            return responseEnded()
        }
        upstream = nil
        observe(bytes)
        client.write(bytes, endStream: true)
        noteFirstByte()
        complete(failure: nil, status: status)
    }

    func streamFailed(_ error: any Error) {
        upstream = nil
        switch phase {
        case .waitingForHead:
            // A stream the server refused unprocessed (REFUSED_STREAM, above a GOAWAY's last id) is simply sent
            // again; any other failure counts as an attempt, as in the async shared.relay.
            if let closed = error as? H2StreamClosedError, closed.errorCode == H2ErrorCode.refusedStream {
                handOver(.init(account: account))
            } else if shared.relay.maxRetries > 0 {
                handOver(.init(attempt: 1, backoff: true))
            } else {
                answer(502, "api_error", "upstream unavailable")
            }
        case .collectingAnswer(_, let next):
            handOver(next)
        case .streaming:
            breakOff(error)
        case .receiving, .done:
            break
        }
    }

    // MARK: - Endings

    /// After the first byte nothing is retried: an event stream ends with an `error` event, anything else is reset.
    private func breakOff(_ error: any Error) {
        complete(failure: "\(error)", status: status)
        if isEventStream {
            client.write(
                ByteBuffer(
                    string: ProxyRelay.errorEvent(for: error, requestID: upstreamHead?.value(named: "request-id") ?? "")
                ), endStream: true)
        } else {
            client.abort()
        }
    }

    private func handOver(_ continuation: ProxyRelay.RelayContinuation?) {
        phase = .done
        deadlines?.release(self)
        let taken = client.handOver(
            fields: fields, body: body, handover: continuation ?? ProxyRelay.RelayContinuation())
        if !taken { complete(failure: "client left", status: 499) }
    }

    private func cancelUpstream() {
        guard let upstream else { return }
        self.upstream = nil
        upstream.handler.cancelStream(upstream.id)
    }

    /// An answer made here, before any upstream response was passed on.
    private func answer(_ code: Int, _ type: String, _ message: String) {
        let requestID = requestID.description
        let text = AnthropicError.body(type, message, requestID: requestID)
        let head = FieldBlock([
            H2Field(":status", "\(code)"), H2Field("content-type", "application/json"),
            H2Field("content-length", "\(text.utf8.count)"), H2Field("request-id", requestID),
            H2Field("x-request-id", requestID), H2Field("date", HTTPDate.now()),
        ])
        if (try? client.respond(head, adding: nil, endStream: false)) != nil {
            client.write(ByteBuffer(string: text), endStream: true)
        }
        complete(failure: nil, status: code)
    }

    private func complete(failure: String?, status: Int) {
        phase = .done
        deadlines?.release(self)
        let counted: Usage
        if let held = jsonChunk {
            jsonChunk = nil
            counted = held.withUnsafeReadableBytes { observer.finish(last: $0) }
        } else {
            counted = observer.finish()
        }
        // Counted as the async relay counts: responses that were relayed. One coarse wall-clock read (minute
        // buckets, last-used times) for the usage counters and the metrics.
        let date = CoarseClock.now
        if let account, streamed {
            shared.relay.usage?.record(counted, for: account, clientKey: record.client, at: date)
        }
        record.finish(status: status, usage: counted, firstByte: firstByte, error: failure, at: date)
    }

    // MARK: - Timeouts

    /// The response head within `upstream.response_header_timeout`; then no gap between body chunks longer than
    /// the same. One deadline, moved forward only when it is reached.
    private func arm(_ delay: TimeAmount) {
        deadline = .coarseNow + delay
        let deadlines = self.deadlines ?? RelayDeadlines.current(on: client.eventLoop)
        self.deadlines = deadlines
        deadlines.watch(self)
    }

    func deadlineReached() {
        switch phase {
        case .waitingForHead:
            cancelUpstream()
            if shared.relay.maxRetries > 0 {
                handOver(.init(attempt: 1, backoff: true))
            } else {
                answer(504, "timeout_error", "upstream did not answer in time")
            }
        case .streaming, .collectingAnswer:
            // A client that reads slowly holds the upstream back: that is not the upstream going quiet.
            let idle = NIODeadline.coarseNow - lastActivity
            if idle < shared.relay.bodyIdleTimeout || clientBlocked {
                arm(clientBlocked ? shared.relay.bodyIdleTimeout : shared.relay.bodyIdleTimeout - idle)
            } else if case .collectingAnswer(_, let next) = phase {
                cancelUpstream()
                handOver(next)
            } else {
                cancelUpstream()
                breakOff(UpstreamError.timeout(origin: shared.relay.pools.origin.description, phase: "the body"))
            }
        case .receiving, .done:
            break
        }
    }
}
