import Logging
import NIOCore
import ProxyTLS

/// Closes an upstream connection whose TLS handshake did not select `h2`: sending the HTTP/2 preface to an
/// HTTP/1.1-only server would only produce a confusing error later. With `upstream.protocol: auto` the result is
/// reported first (`onNegotiated`), so that the origin's requests move to the HTTP/1.1 pool.
final class RequireH2: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let origin: UpstreamOrigin
    let logger: Logger
    let onNegotiated: (@Sendable (String?) -> Void)?

    init(origin: UpstreamOrigin, logger: Logger, onNegotiated: (@Sendable (String?) -> Void)? = nil) {
        self.origin = origin
        self.logger = logger
        self.onNegotiated = onNegotiated
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let negotiated) = event as? TLSUserEvent {
            onNegotiated?(negotiated)
            if negotiated == "h2" {
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            } else {
                // Expected under `auto` (the HTTP/1.1 pool takes over); a misconfiguration under `h2`.
                logger.log(
                    level: onNegotiated == nil ? .error : .debug, "upstream does not speak HTTP/2 over TLS",
                    metadata: ["origin": "\(origin)", "alpn": "\(negotiated ?? "none")"])
                let reason = "upstream did not select h2 (ALPN: \(negotiated ?? "none"))"
                context.fireErrorCaught(UpstreamError.protocolError(origin: origin.description, reason: reason))
                context.close(promise: nil)
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}

@available(*, unavailable)
extension RequireH2: Sendable {}
