import NIOCore
import ProxyHTTP2

/// A response whose head has arrived, over whichever protocol the origin speaks: what the relay works with.
public struct UpstreamExchange: Sendable {
    enum Transport: Sendable {
        case http2(UpstreamPool.Exchange)
        case http1(HTTP1UpstreamPool.Exchange)
    }

    let transport: Transport

    public init(_ exchange: UpstreamPool.Exchange) { transport = .http2(exchange) }
    public init(_ exchange: HTTP1UpstreamPool.Exchange) { transport = .http1(exchange) }

    /// `:status` and the response fields, names in lower case.
    public var head: [H2Field] {
        switch transport {
        case .http2(let exchange): exchange.head
        case .http1(let exchange): exchange.head
        }
    }

    public var status: Int {
        switch transport {
        case .http2(let exchange): exchange.status
        case .http1(let exchange): exchange.status
        }
    }

    /// The protocol the response came over (`h2` or `http/1.1`), for logs and tests.
    public var protocolName: String {
        switch transport {
        case .http2: "h2"
        case .http1: "http/1.1"
        }
    }

    /// The response body, read as fast as the caller takes it; fails with `UpstreamError.timeout` when no bytes
    /// arrive for `idleTimeout` between chunks.
    public func body(idleTimeout: TimeAmount) -> UpstreamBody {
        switch transport {
        case .http2(let exchange): UpstreamBody(.http2(exchange.body(idleTimeout: idleTimeout)))
        case .http1(let exchange): UpstreamBody(.http1(exchange.body(idleTimeout: idleTimeout)))
        }
    }

    /// The caller no longer wants the response (its client left, or a newer answer replaced it): an HTTP/2 stream
    /// is reset, an HTTP/1.1 connection closed.
    public func cancel() {
        switch transport {
        case .http2(let exchange): exchange.stream.cancel()
        case .http1(let exchange): exchange.cancel()
        }
    }
}

public struct UpstreamBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    enum Source: Sendable {
        case http2(IdleTimeoutBody)
        case http1(HTTP1ResponseBody)
    }

    let source: Source

    init(_ source: Source) { self.source = source }

    public struct AsyncIterator: AsyncIteratorProtocol {
        enum Base {
            case http2(IdleTimeoutBody.AsyncIterator)
            case http1(HTTP1ResponseBody.AsyncIterator)
        }

        var base: Base

        public mutating func next() async throws -> ByteBuffer? {
            switch base {
            case .http2(var iterator):
                defer { base = .http2(iterator) }
                return try await iterator.next()
            case .http1(var iterator):
                defer { base = .http1(iterator) }
                return try await iterator.next()
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        switch source {
        case .http2(let body): AsyncIterator(base: .http2(body.makeAsyncIterator()))
        case .http1(let body): AsyncIterator(base: .http1(body.makeAsyncIterator()))
        }
    }
}
