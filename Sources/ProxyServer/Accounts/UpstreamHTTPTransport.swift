import NIOCore
import ProxyCore
import ProxyUpstream

/// The core's `HTTPTransport` (OAuth token endpoint) over an upstream HTTP/1.1 exchange with OpenSSL TLS.
struct UpstreamHTTPTransport: HTTPTransport {
    let exchange: HTTP1Exchange

    func send(_ request: HTTPTransportRequest) async throws -> HTTPTransportResponse {
        let response = try await exchange.send(
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body.isEmpty ? nil : ByteBuffer(bytes: request.body)
        )
        return HTTPTransportResponse(
            status: response.status,
            headers: response.headers,
            body: Array(response.body.readableBytesView)
        )
    }
}
