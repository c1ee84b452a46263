import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// A stateful mock of the Claude API and its OAuth token endpoint, for the end-to-end suite (see
/// `Sources/mock-claude`). Unlike `MockClaudeAPI` it issues tokens itself and follows their life: an
/// authorization-code exchange creates an account's first pair, refresh tokens rotate and are good once, a revoked
/// access token gets 401 until the client refreshes. `/v1/*` accepts only currently valid access tokens.
///
/// Routes: `POST /v1/oauth/token`, `POST /v1/messages` (JSON, or SSE for `"stream": true`),
/// `POST /v1/messages/count_tokens`, `GET /v1/models`, and the test-only control API of `MockControlRoutes`.
public final class MockClaudeService: Sendable {
    let state = Mutex(MockClaudeState())
    /// Delay between the `long-stream` fault's events, and how many deltas it sends.
    let longStreamInterval: Duration
    let longStreamDeltas: Int

    public init(longStreamInterval: Duration = .milliseconds(100), longStreamDeltas: Int = 300) {
        self.longStreamInterval = longStreamInterval
        self.longStreamDeltas = longStreamDeltas
    }

    public var routes: @Sendable (Router<BasicRequestContext>) -> Void {
        { router in self.register(on: router) }
    }

    public var statistics: MockStatistics { state.withLock { $0.statistics } }
    public var secrets: MockSecrets { state.withLock { $0.secrets } }

    static let faultHeader = HTTPField.Name("x-mock-fault")!

    func register(on router: Router<BasicRequestContext>) {
        router.post("/v1/messages") { request, _ in try await self.messages(request) }
        router.post("/v1/messages/count_tokens") { request, _ in
            guard self.authenticate(request) != nil else { return Self.unauthenticated }
            return MockClaudeBodies.json(200, MockClaudeBodies.countTokensJSON)
        }
        router.get("/v1/models") { request, _ in
            guard self.authenticate(request) != nil else { return Self.unauthenticated }
            return MockClaudeBodies.json(200, MockClaudeBodies.modelsJSON)
        }
        router.post("/v1/oauth/token") { request, _ in try await self.token(request) }
        MockControlRoutes(service: self).register(on: router)
    }

    static var unauthenticated: Response {
        MockClaudeBodies.error(401, "authentication_error", "invalid bearer token")
    }

    func authenticate(_ request: Request) -> String? {
        state.withLock { $0.authenticate(authorization: request.headers[.authorization]) }
    }

    private func messages(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 32 << 20)
        guard let account = authenticate(request) else { return Self.unauthenticated }
        let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
        let stream = json?["stream"] as? Bool ?? false
        let fault =
            request.headers[Self.faultHeader].flatMap(MockFault.init(rawValue:))
            ?? state.withLock { $0.takeFault(for: account) }
        if let response = fault?.errorResponse(now: Date()) { return response }
        switch fault {
        case .stall:
            try await Task.sleep(for: .seconds(60))
        case .resetAfterHeaders:
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream"],
                body: ResponseBody { _ in throw CancellationError() })
        default:
            break
        }
        guard stream else {
            return fault == .rstMidBody
                ? Self.brokenJSON : Self.withAllowedRateLimit(MockClaudeBodies.json(200, MockClaudeBodies.messageJSON))
        }
        return eventStream(for: account, fault: fault)
    }

    /// A subscription account under its limits, as the real API says on every answer.
    static func withAllowedRateLimit(_ response: Response) -> Response {
        var response = response
        response.headers[HTTPField.Name("anthropic-ratelimit-unified-status")!] = "allowed"
        return response
    }

    /// Half a JSON message, then the stream is reset.
    static var brokenJSON: Response {
        let text = MockClaudeBodies.messageJSON
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: String(text.prefix(text.count / 2))))
                throw CancellationError()
            })
    }

    private func eventStream(for account: String, fault: MockFault?) -> Response {
        let events =
            fault == .longStream
            ? MockClaudeBodies.longStreamEvents(deltas: longStreamDeltas) : MockClaudeBodies.sseEvents
        let pause: Duration? =
            switch fault {
            case .slowDrip: .milliseconds(200)
            case .longStream: longStreamInterval
            default: nil
            }
        let breakAt = fault == .rstMidBody ? events.count / 2 : nil
        let headers: HTTPFields = [
            .contentType: "text/event-stream", .cacheControl: "no-cache",
            HTTPField.Name("request-id")!: "req_mock", HTTPField.Name("anthropic-ratelimit-unified-status")!: "allowed",
        ]
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                self.state.withLock { $0.streamOpened(account: account) }
                var end = MockClaudeState.StreamEnd.cancelledByClient
                defer { self.state.withLock { [end] in $0.streamClosed(account: account, end: end) } }
                for (index, event) in events.enumerated() {
                    if index == breakAt {
                        end = .brokenByFault
                        throw CancellationError()
                    }
                    // A write that throws, or a wait that is cancelled, means the peer reset the stream or went away.
                    try await writer.write(ByteBuffer(string: event))
                    if let pause { try await Task.sleep(for: pause) }
                }
                try await writer.finish(nil)
                end = .completed
            })
    }
}
