import HummingbirdCore
import Logging
import NIOCore
import ProxyTLS

/// Runs TLS through OpenSSL (`TLSHandler`) in front of any Hummingbird child channel, like Hummingbird's own
/// `TLSChannel<Base>` does with NIOSSL. Each accepted connection takes the store's current context, so a
/// certificate reload applies to new connections only.
public struct OpenSSLChannel<Base: ServerChildChannel>: ServerChildChannel {
    public typealias Value = Base.Value

    let base: Base
    let contexts: TLSContextStore
    let handshakeTimeout: TimeAmount

    public init(_ base: Base, contexts: TLSContextStore, handshakeTimeout: TimeAmount = .seconds(10)) {
        self.base = base
        self.contexts = contexts
        self.handshakeTimeout = handshakeTimeout
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let session = try contexts.current.makeServerSession()
            let handler = TLSHandler(session: session, handshakeTimeout: handshakeTimeout, logger: logger)
            try channel.pipeline.syncOperations.addHandler(handler)
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    public func handle(value: Base.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension OpenSSLChannel: HTTPChannelHandler where Base: HTTPChannelHandler {
    public var responder: HTTPChannelHandler.Responder { base.responder }
}
