import Foundation
import Logging
import ProxyCore
import Synchronization

/// An `HTTPTransport` standing in for the token endpoint: records every request, answers from a script (the last
/// answer repeats), and can hold answers until the test releases them.
final class FakeTokenEndpoint: HTTPTransport {
    enum Answer: Sendable {
        case response(HTTPTransportResponse)
        case networkFailure
    }

    struct NetworkFailure: Error, CustomStringConvertible {
        var description: String { "connection reset" }
    }

    private struct State {
        var requests: [HTTPTransportRequest] = []
        var script: [Answer]
        var holding = false
        var held: [CheckedContinuation<Void, Never>] = []
        var callWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    /// Called concurrently by refresh tasks and read by the test.
    private let state: Mutex<State>

    init(_ script: [Answer]) { state = Mutex(State(script: script)) }

    convenience init(_ responses: HTTPTransportResponse...) { self.init(responses.map { .response($0) }) }

    var requests: [HTTPTransportRequest] { state.withLock { $0.requests } }
    var callCount: Int { state.withLock { $0.requests.count } }

    /// Decoded JSON bodies of the requests so far.
    var bodies: [[String: String]] {
        requests.map { (try? JSONSerialization.jsonObject(with: Data($0.body))) as? [String: String] ?? [:] }
    }

    func hold() { state.withLock { $0.holding = true } }

    func release() {
        let held = state.withLock { state in
            state.holding = false
            defer { state.held = [] }
            return state.held
        }
        held.forEach { $0.resume() }
    }

    func waitForCalls(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.requests.count >= count { return true }
                state.callWaiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func send(_ request: HTTPTransportRequest) async throws -> HTTPTransportResponse {
        let (answer, waiters, holding) = state.withLock { state in
            state.requests.append(request)
            let answer = state.script.count > 1 ? state.script.removeFirst() : state.script[0]
            let count = state.requests.count
            let waiters = state.callWaiters.filter { $0.count <= count }.map(\.continuation)
            state.callWaiters.removeAll { $0.count <= count }
            return (answer, waiters, state.holding)
        }
        waiters.forEach { $0.resume() }
        if holding {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let stillHolding = state.withLock { state in
                    if state.holding { state.held.append(continuation) }
                    return state.holding
                }
                if !stillHolding { continuation.resume() }
            }
        }
        switch answer {
        case .response(let response): return response
        case .networkFailure: throw NetworkFailure()
        }
    }
}

enum TokenEndpointResponses {
    static func tokens(access: String, refresh: String?, expiresIn: Int = 28800) -> HTTPTransportResponse {
        var object: [String: Any] = [
            "token_type": "Bearer", "access_token": access, "expires_in": expiresIn,
            "scope": "user:inference user:profile",
            "organization": ["uuid": "org-1", "name": "Test Org"],
            "account": ["uuid": "acct-1", "email_address": "someone@example.com"],
        ]
        if let refresh { object["refresh_token"] = refresh }
        return json(200, object)
    }

    static func error(_ status: Int, _ code: String, _ description: String = "") -> HTTPTransportResponse {
        json(status, ["error": code, "error_description": description])
    }

    static func json(_ status: Int, _ object: [String: Any]) -> HTTPTransportResponse {
        let body = try! JSONSerialization.data(withJSONObject: object)
        return HTTPTransportResponse(status: status, headers: [("content-type", "application/json")], body: Array(body))
    }
}

enum Fixtures {
    /// Refresh logs are asserted through account state, not read; keep the test output clean.
    static let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Token-shaped values assembled at run time, so no token-like literal sits in the source.
    static func tokenShaped(_ kind: String, _ tail: String) -> String {
        "sk-" + "ant-" + kind + "01-" + tail + String(repeating: "x", count: 24)
    }

    static func account(
        _ id: String, access: String = "access-old", refresh: String = "refresh-old", expiresAt: Date,
        status: AccountStatus = .active
    ) -> Account {
        Account(
            id: AccountID(id), name: id,
            credentials: Credentials(accessToken: Secret(access), refreshToken: Secret(refresh), expiresAt: expiresAt),
            status: status, createdAt: Date(timeIntervalSince1970: 0))
    }
}
