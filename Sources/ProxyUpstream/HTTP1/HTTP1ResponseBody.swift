import NIOCore

extension HTTP1UpstreamPool.Exchange {
    /// The response body, failing with `UpstreamError.timeout` (and closing the connection) when no bytes arrive
    /// for `idleTimeout` between chunks. Reading it to its end returns the connection to the pool; dropping it
    /// early closes the connection.
    public func body(idleTimeout: TimeAmount) -> HTTP1ResponseBody {
        HTTP1ResponseBody(exchange: self, idleTimeout: idleTimeout)
    }
}

public struct HTTP1ResponseBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    let exchange: HTTP1UpstreamPool.Exchange
    let idleTimeout: TimeAmount

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: HTTP1ConnectionHandler.Body.AsyncIterator
        let exchange: HTTP1UpstreamPool.Exchange
        let idleTimeout: TimeAmount

        public mutating func next() async throws -> ByteBuffer? {
            let exchange = exchange
            let expired = TimeoutFlag()
            let received = TimeoutFlag()
            let connection = exchange.lease.connection
            let token = exchange.lease.token
            let timer = connection.eventLoop.scheduleTask(in: idleTimeout) {
                guard !received.isSet else { return }
                expired.set()
                connection.value.cancel(token)
            }
            defer { timer.cancel() }
            do {
                let chunk = try await base.next()
                received.set()
                return chunk
            } catch  where expired.isSet {
                throw UpstreamError.timeout(origin: exchange.origin, phase: "the next body bytes")
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(
            base: exchange.response.body.makeAsyncIterator(), exchange: exchange, idleTimeout: idleTimeout)
    }
}
