import NIOCore
import NIOPosix
import Synchronization

/// A plain loopback HTTP/1.1 server that answers by script, for behaviour no real server shows on demand: a
/// kept-alive connection closed just as the next request arrives, `connection: close`, a hang-up before any
/// response byte. Requests are heads without a body (GET).
final class ScriptedHTTP1Server: Sendable {
    enum Reply: Sendable {
        /// `200 OK` with `body`; with `close`, says `connection: close` and closes after writing.
        case answer(String, close: Bool = false)
        /// Closes the connection without a response byte.
        case hangUp
    }

    /// The reply to the `request`-th request (from 0) on the `connection`-th connection (from 0).
    typealias Script = @Sendable (_ connection: Int, _ request: Int) -> Reply

    let port: Int
    private let channel: any Channel
    private let counters: Counters

    final class Counters: Sendable {
        let connections = Atomic<Int>(0)
        let requests = Atomic<Int>(0)
    }

    var connections: Int { counters.connections.load(ordering: .relaxed) }
    var requests: Int { counters.requests.load(ordering: .relaxed) }

    static func start(_ script: @escaping Script) async throws -> ScriptedHTTP1Server {
        let counters = Counters()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let index = counters.connections.wrappingAdd(1, ordering: .relaxed).oldValue
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ScriptedConnection(index: index, script: script, counters: counters))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedHTTP1Server(channel: channel, counters: counters)
    }

    private init(channel: any Channel, counters: Counters) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
        self.counters = counters
    }

    func stop() async throws {
        try await channel.close()
    }
}

private final class ScriptedConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let index: Int
    let script: ScriptedHTTP1Server.Script
    let counters: ScriptedHTTP1Server.Counters
    var buffered = ByteBuffer()
    var served = 0

    init(index: Int, script: @escaping ScriptedHTTP1Server.Script, counters: ScriptedHTTP1Server.Counters) {
        self.index = index
        self.script = script
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffered.writeBuffer(&bytes)
        while let end = buffered.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) {
            buffered.moveReaderIndex(to: end.upperBound)
            counters.requests.wrappingAdd(1, ordering: .relaxed)
            let reply = script(index, served)
            served += 1
            switch reply {
            case .answer(let body, let close):
                let head =
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: \(body.utf8.count)\r\n"
                    + (close ? "connection: close\r\n" : "") + "\r\n"
                let written = context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: head + body)))
                if close { written.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
            case .hangUp:
                context.close(promise: nil)
                return
            }
        }
    }
}

@available(*, unavailable)
extension ScriptedConnection: Sendable {}
