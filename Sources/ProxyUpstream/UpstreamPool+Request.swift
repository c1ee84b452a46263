import NIOCore
import ProxyHTTP2
import Synchronization

extension UpstreamPool {
    /// A response whose head has arrived; its body is read from `stream.body`.
    public struct Exchange: Sendable {
        public let head: [H2Field]
        public let stream: H2ClientStream
        /// For error messages.
        public let origin: String

        public var status: Int { head[field: ":status"].flatMap { Int($0) } ?? 0 }
    }

    /// Sends a request with a body held in memory (replayable) and waits for the response head.
    ///
    /// A stream the server refused without processing it — REFUSED_STREAM, or above the last-stream-id of a
    /// GOAWAY (RFC 9113 §8.7) — is sent again on another stream, up to `attempts` times. No response head within
    /// `responseHeadTimeout` cancels the stream (RST_STREAM CANCEL) and fails with `UpstreamError.timeout`.
    public func send(
        _ fields: [H2Field], body: ByteBuffer?, responseHeadTimeout: TimeAmount, attempts: Int = 3
    ) async throws -> Exchange {
        var lastError: (any Error)?
        for _ in 0..<max(1, attempts) {
            let stream = try await stream(fields, endStream: body == nil)
            // Armed before the body is written: an upstream that stops granting window times out too. The
            // flags are set on the stream's event loop, where the timer runs, so a head that arrived in time
            // can never be cancelled by a late timer.
            let arrived = TimeoutFlag()
            let expired = TimeoutFlag()
            stream.head.whenSuccess { _ in arrived.set() }
            let timer = stream.head.eventLoop.scheduleTask(in: responseHeadTimeout) {
                guard !arrived.isSet else { return }
                expired.set()
                stream.cancel()
            }
            defer { timer.cancel() }
            do {
                let head = try await withTaskCancellationHandler {
                    if let body {
                        try await stream.writeBody(body)
                        try await stream.finish()
                    }
                    return try await stream.head.get()
                } onCancel: {
                    stream.cancel()
                }
                return Exchange(head: head, stream: stream, origin: origin.description)
            } catch let error as H2StreamClosedError where error.errorCode == H2ErrorCode.refusedStream {
                lastError = error
                continue
            } catch  where expired.isSet {
                throw UpstreamError.timeout(origin: origin.description, phase: "the response head")
            }
        }
        throw lastError ?? UpstreamError.closed(origin: origin.description)
    }
}

extension UpstreamPool.Exchange {
    /// The response body, failing with `UpstreamError.timeout` (and resetting the stream) when no bytes arrive
    /// for `idleTimeout` between chunks: a stalled upstream must not hold a client forever.
    public func body(idleTimeout: TimeAmount) -> IdleTimeoutBody {
        IdleTimeoutBody(stream: stream, idleTimeout: idleTimeout, origin: origin)
    }
}

public struct IdleTimeoutBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    let stream: H2ClientStream
    let idleTimeout: TimeAmount
    let origin: String

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: H2InboundBody.AsyncIterator
        let stream: H2ClientStream
        let idleTimeout: TimeAmount
        let origin: String

        public mutating func next() async throws -> ByteBuffer? {
            let stream = stream
            let expired = TimeoutFlag()
            let received = TimeoutFlag()
            let timer = stream.head.eventLoop.scheduleTask(in: idleTimeout) {
                guard !received.isSet else { return }
                expired.set()
                stream.cancel()
            }
            defer { timer.cancel() }
            do {
                let chunk = try await base.next()
                received.set()
                return chunk
            } catch  where expired.isSet {
                throw UpstreamError.timeout(origin: origin, phase: "the next body bytes")
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.body.makeAsyncIterator(), stream: stream, idleTimeout: idleTimeout, origin: origin)
    }
}

/// Set once by a timer, read by the waiting task.
final class TimeoutFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .releasing) }
    var isSet: Bool { flag.load(ordering: .acquiring) }
}
