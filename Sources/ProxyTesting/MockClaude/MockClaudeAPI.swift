import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A stateless mock Claude Messages API on our own server stack (TLS + HTTP/2 + HTTP/1.1 front door), for upstream and
/// relay tests. It answers `POST /v1/messages` with a JSON message or, for `"stream": true`, the SSE events of
/// ANTHROPIC-WIRE.md, and `GET /v1/models`. Requests need `authorization: Bearer <token>`.
///
/// Faults, chosen per request with the `x-mock-fault` header:
/// - `stall`: no response head for 60 s
/// - `reset-after-headers`: the head, then the stream is reset
/// - `rst-mid-body`: part of the body, then the stream is reset
/// - `stall-mid-body`: part of the body, then nothing for 60 s
/// - `slow-drip`: SSE events 200 ms apart
/// - `one-write`: a stream of 40 text deltas (`longStreamEvents(deltas: 40)`, about 5 KB) in one write, so one DATA
///   frame (as the benchmark's HAProxy mock sends its event stream)
/// - `status-429`, `status-529`, `status-500`: that error in Anthropic's shape (429 with `retry-after: 7`)
/// A refused connection needs no route: use a port nothing listens on. `MockClaudeService` is the stateful one
/// (OAuth logins, rotating refresh tokens, per-account faults, counters) that the end-to-end suite runs.
public enum MockClaudeAPI {
    public static let messageID = MockClaudeBodies.messageID

    public static func routes(token: String) -> @Sendable (Router<BasicRequestContext>) -> Void {
        routes(tokens: [token: ""])
    }

    /// `tokens`: each accepted access token with the fault it always gets ("" for none) — one account that is
    /// rate limited and one that works, say. `refresh`: what the token endpoint (`POST /v1/oauth/token`) hands
    /// out for a refresh grant, if anything.
    public static func routes(tokens: [String: String], refresh: (accessToken: String, refreshToken: String)? = nil)
        -> @Sendable (Router<BasicRequestContext>) -> Void
    {
        let refreshed = refresh.map { [$0.accessToken, $0.refreshToken] }
        return { router in
            router.post("/v1/messages") { request, _ -> Response in
                guard let accountFault = authenticate(request, tokens: tokens) else {
                    return error(401, "authentication_error", "invalid bearer token")
                }
                let body = try await request.body.collect(upTo: 32 << 20)
                let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
                let stream = json?["stream"] as? Bool ?? false
                let fault =
                    request.headers[HTTPField.Name("x-mock-fault")!] ?? (accountFault.isEmpty ? nil : accountFault)
                return try await respond(fault: fault, stream: stream)
            }
            router.get("/v1/models") { request, _ -> Response in
                guard authenticate(request, tokens: tokens) != nil else {
                    return error(401, "authentication_error", "invalid bearer token")
                }
                return json(200, MockClaudeBodies.modelsJSON)
            }
            router.post("/v1/oauth/token") { _, _ -> Response in
                guard let refreshed else { return json(400, #"{"error":"invalid_grant","error_description":"no"}"#) }
                return json(
                    200,
                    #"{"token_type":"Bearer","access_token":"\#(refreshed[0])","refresh_token":"\#(refreshed[1])","expires_in":28800}"#
                )
            }
        }
    }

    /// The fault configured for the request's bearer token ("" for none), or nil when the token is not accepted.
    static func authenticate(_ request: Request, tokens: [String: String]) -> String? {
        guard let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer ") else {
            return nil
        }
        return tokens[String(authorization.dropFirst(7))]
    }

    static func respond(fault: String?, stream: Bool) async throws -> Response {
        switch fault {
        case "stall":
            try await Task.sleep(for: .seconds(60))
        case "status-429":
            var response = error(429, "rate_limit_error", "rate limited")
            response.headers[HTTPField.Name("retry-after")!] = "7"
            return response
        case "status-529":
            return error(529, "overloaded_error", "overloaded")
        case "status-500":
            return error(500, "api_error", "internal")
        case "reset-after-headers":
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream"],
                body: ResponseBody { _ in throw CancellationError() })
        default:
            break
        }
        guard stream else { return json(200, messageJSON) }
        if fault == "one-write" {
            let whole = ByteBuffer(string: MockClaudeBodies.longStreamEvents(deltas: oneWriteDeltas).joined())
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in  // no content-length: a streamed body, as Anthropic sends it
                    try await writer.write(whole)
                    try await writer.finish(nil)
                })
        }
        let events = sseEvents
        let drip = fault == "slow-drip"
        let breakMidBody = fault == "rst-mid-body"
        let stallMidBody = fault == "stall-mid-body"
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                for (index, event) in events.enumerated() {
                    if breakMidBody && index == events.count / 2 { throw CancellationError() }
                    if stallMidBody && index == events.count / 2 { try await Task.sleep(for: .seconds(60)) }
                    try await writer.write(ByteBuffer(string: event))
                    if drip { try await Task.sleep(for: .milliseconds(200)) }
                }
                try await writer.finish(nil)
            })
    }

    /// The text deltas of the `one-write` fault's stream.
    public static let oneWriteDeltas = 40

    static func json(_ status: Int, _ text: String) -> Response { MockClaudeBodies.json(status, text) }

    static func error(_ status: Int, _ type: String, _ message: String) -> Response {
        MockClaudeBodies.error(status, type, message)
    }

    public static let messageJSON = MockClaudeBodies.messageJSON

    /// message_start, content_block_start, ping, 5 text deltas, content_block_stop, message_delta, message_stop.
    public static let sseEvents = MockClaudeBodies.sseEvents
}
