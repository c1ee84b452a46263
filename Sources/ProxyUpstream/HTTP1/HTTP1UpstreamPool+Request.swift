import Logging
import NIOCore
import NIOHTTP1
import ProxyHTTP2

extension HTTP1UpstreamPool {
    /// A response whose head has arrived; read its body with `body(idleTimeout:)` (once), or `cancel()` it.
    public struct Exchange: Sendable {
        /// `:status` and the response fields, names in lower case (as the HTTP/2 pool gives them).
        public let head: [H2Field]
        let response: HTTP1ConnectionHandler.Response
        let lease: Lease
        /// For error messages.
        public let origin: String

        public var status: Int { Int(response.head.status.code) }

        /// Abandons the response: the connection closes (HTTP/1.1 has no other way to stop a response).
        public func cancel() {
            let (connection, token) = (lease.connection, lease.token)
            connection.eventLoop.execute { connection.value.cancel(token) }
        }
    }

    /// Sends a request with a body held in memory (replayable) and waits for the response head.
    ///
    /// A request on a kept-alive connection that the server closed before any response byte arrived — the race
    /// between its idle close and our request (RFC 9112 §9.3.1) — is sent once more on a connection that did not
    /// sit idle. No response head within `responseHeadTimeout` closes the connection and fails with
    /// `UpstreamError.timeout`; so does a cancelled task (failing with `CancellationError`).
    public func send(_ fields: [H2Field], body: ByteBuffer?, responseHeadTimeout: TimeAmount) async throws -> Exchange {
        let head = HTTP1Message.requestHead(fields, bodyLength: body?.readableBytes, origin: origin)
        var fresh = false
        while true {
            let lease = try await acquire(fresh: fresh)
            do {
                let response = try await exchange(head, body: body, on: lease, responseHeadTimeout: responseHeadTimeout)
                return Exchange(
                    head: HTTP1Message.fields(of: response.head), response: response, lease: lease,
                    origin: origin.description)
            } catch let stale as HTTP1StaleConnection {
                guard !fresh else { throw UpstreamError.closed(origin: origin.description) }
                logger.debug(
                    "kept-alive upstream connection closed before the response; retrying on a new one",
                    metadata: ["origin": "\(origin)", "reason": "\(stale.reason)"])
                fresh = true
            }
        }
    }

    private func exchange(
        _ head: HTTPRequestHead, body: ByteBuffer?, on lease: Lease, responseHeadTimeout: TimeAmount
    ) async throws -> HTTP1ConnectionHandler.Response {
        let connection = lease.connection
        let token = lease.token
        let eventLoop = connection.eventLoop
        let response = eventLoop.makePromise(of: HTTP1ConnectionHandler.Response.self)
        let execute: @Sendable () -> Void = {
            connection.value.execute(
                head, body: body, token: token, reused: lease.reused, headTimeout: responseHeadTimeout,
                response: response)
        }
        if eventLoop.inEventLoop { execute() } else { eventLoop.execute(execute) }
        do {
            return try await withTaskCancellationHandler {
                try await response.futureResult.get()
            } onCancel: {
                // Runs after `execute` on the same loop (tasks run in order), so the exchange exists by then.
                eventLoop.execute { connection.value.cancel(token) }
            }
        } catch is HTTP1HeadTimeout {
            throw UpstreamError.timeout(origin: origin.description, phase: "the response head")
        }
    }
}
