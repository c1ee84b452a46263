import Foundation
import Glibc
import NIOCore
import ProxyTLS
import ProxyTesting
import Testing

@testable import ProxyReactor

/// Our TLS handler on a `ReactorChannel`, with curl (OpenSSL) as the client: a pipeline built for NIO's channels
/// serves a real client unchanged on the reactor.
@Suite(.timeLimit(.minutes(1))) struct ReactorTLSTests {
    @Test func curlFetchesOverTLSOnAReactorChannel() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let context = try certificates.serverContext()
        let reactor = try Reactor(name: "tls")
        defer { reactor.shutdownGracefully { _ in } }
        // Two requests on one connection, each answered with 3 MB: many records, and curl reading at a limited rate,
        // so the socket fills and the channel waits for room again and again.
        let body = (0..<(3 * 1024 * 1024 / 16)).map { String(format: "%015x\n", $0) }.joined()
        let accepted = reactor.makePromise(of: ReactorChannel.self)
        let listener = try await ReactorListener.listen(
            on: try SocketAddress(ipAddress: "127.0.0.1", port: 0), reactors: [reactor]
        ) { fd, reactor in
            let channel = ReactorChannel(connectedSocket: fd, on: reactor)
            do {
                // A small send buffer: each response takes many writes, most of them partial.
                try channel.syncOptions!.setOption(ChannelOptions.socketOption(.so_sndbuf), value: 64 * 1024)
                try channel.pipeline.syncOperations.addHandlers([
                    TLSHandler(session: try context.makeServerSession()), FixedResponder(body: body),
                ])
                try channel.activate()
                accepted.succeed(channel)
            } catch {
                accepted.fail(error)
            }
        }
        let url = "https://localhost:\(try #require(listener.localAddress.port))/"
        let output = try TemporaryDirectory(prefix: "reactor-tls")
        defer { output.remove() }
        let result = try await blocking {
            try ProcessRunner.run([
                "curl", "--silent", "--show-error", "--http1.1", "--limit-rate", "12M", "--cacert", certificates.caFile,
                url + "a", "--output", output.file("a"), url + "b", "--output", output.file("b"),
            ])
        }
        #expect(result.exitCode == 0, "\(result.stderr)")
        for name in ["a", "b"] {
            let received = try String(contentsOfFile: output.file(name), encoding: .utf8)
            #expect(received.count == body.count)
            let same = received == body  // not compared inside #expect, which would print megabytes
            #expect(same, "response \(name) differs")
        }
        try await accepted.futureResult.get().closeFuture.get()  // curl closed the connection when done
        await listener.close()
    }
}

/// Answers every request head with `body`; keeps the connection open.
private final class FixedResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let response: ByteBuffer
    private var tail: UInt32 = 0

    init(body: String) {
        response = ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: \(body.utf8.count)\r\n\r\n" + body)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var heads = 0
        for byte in unwrapInboundIn(data).readableBytesView {
            tail = tail << 8 | UInt32(byte)
            if tail == 0x0D0A_0D0A { heads += 1 }
        }
        for _ in 0..<heads { context.write(wrapOutboundOut(response), promise: nil) }
        if heads > 0 { context.flush() }
    }
}
