import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ProxyTLS

/// One HTTP/1.1 request on a fresh connection (TLS through OpenSSL for https), response collected whole up to
/// a size limit, connection closed after. For small control-plane calls such as the OAuth token endpoint; the
/// proxied traffic goes through the pooled HTTP/2 connections.
public struct HTTP1Exchange: Sendable {
    public let group: any EventLoopGroup
    public let tls: TLSContext
    public var connectTimeout: TimeAmount = .seconds(10)
    public var responseTimeout: TimeAmount = .seconds(60)
    public var maxResponseBytes = 1 << 20

    public init(group: any EventLoopGroup, tls: TLSContext) {
        self.group = group
        self.tls = tls
    }

    public func send(
        method: String, url: String, headers: [(name: String, value: String)], body: ByteBuffer?
    ) async throws -> UpstreamResponse {
        guard let origin = UpstreamOrigin(url: url) else { throw UpstreamError.invalidURL(url) }
        let response = group.next().makePromise(of: UpstreamResponse.self)
        let tls = origin.isTLS ? tls : nil
        let limit = maxResponseBytes
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let operations = channel.pipeline.syncOperations
                        if let tls {
                            let session = try tls.makeClientSession(serverName: origin.host)
                            try operations.addHandler(TLSHandler(session: session))
                        }
                        try operations.addHTTPClientHandlers()
                        try operations.addHandler(ResponseCollector(origin: origin, limit: limit, response: response))
                    }
                }
                .connect(host: origin.host, port: origin.port).get()
        } catch {
            response.fail(error)
            throw UpstreamError.connectFailed(origin: origin.description, reason: "\(error)")
        }
        let timeout = channel.eventLoop.scheduleTask(in: responseTimeout) {
            response.fail(UpstreamError.timeout(origin: origin.description, phase: "the response"))
            channel.close(promise: nil)
        }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: requestTarget(of: url))
        head.headers.add(name: "host", value: origin.authority)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        head.headers.replaceOrAdd(name: "content-length", value: "\(body?.readableBytes ?? 0)")
        head.headers.replaceOrAdd(name: "connection", value: "close")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body, body.readableBytes > 0 {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer {
            timeout.cancel()
            channel.close(promise: nil)
        }
        return try await response.futureResult.get()
    }
}

/// Collects one response; fails the promise with a typed error if the connection ends first.
final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let origin: UpstreamOrigin
    private let limit: Int
    private let response: EventLoopPromise<UpstreamResponse>
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    init(origin: UpstreamOrigin, limit: Int, response: EventLoopPromise<UpstreamResponse>) {
        self.origin = origin
        self.limit = limit
        self.response = response
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body(var bytes):
            guard body.readableBytes + bytes.readableBytes <= limit else {
                response.fail(UpstreamError.responseTooLarge(origin: origin.description, limit: limit))
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&bytes)
        case .end:
            guard let head else { return }
            response.succeed(
                UpstreamResponse(
                    status: Int(head.status.code),
                    headers: head.headers.map { ($0.name, $0.value) },
                    body: body
                ))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        response.fail(UpstreamError.closed(origin: origin.description))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tlsError = error as? OpenSSLError {
            response.fail(UpstreamError.tlsFailed(origin: origin.description, reason: "\(tlsError)"))
        } else {
            response.fail(UpstreamError.protocolError(origin: origin.description, reason: "\(error)"))
        }
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ResponseCollector: Sendable {}
