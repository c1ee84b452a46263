// One TLS HTTP/1.1 server, three ways, for measuring what a socket's event loop and channel cost per request:
//   reactor-bench nio|reactor|direct PORT CERT KEY
// Every request head (up to its blank line) is answered with the same 587-byte JSON response on a kept-alive
// connection, all on one thread:
//   nio      NIO's socket channels: our TLSHandler and a responder in a NIO pipeline (the front door today)
//   reactor  the same pipeline on a ReactorChannel (our epoll loop, our socket I/O)
//   direct   the same TLSSession driven straight from the reactor: no pipeline, no ByteBuffers (the floor)
// scripts/bench-reactor.sh runs h2load against each and reports CPU µs per request.
import CEpoll
import Glibc
import NIOCore
import NIOPosix
import ProxyReactor
import ProxyTLS

let arguments = CommandLine.arguments
guard arguments.count == 5, let port = Int(arguments[2]) else {
    print("usage: reactor-bench nio|reactor|direct PORT CERT KEY")
    exit(2)
}
let context = try TLSContext(
    server: .init(certificateChainFile: arguments[3], privateKeyFile: arguments[4], alpnProtocols: ["http/1.1"]))
let response = Array(
    ("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 587\r\n\r\n"
        + String(repeating: "x", count: 587)).utf8)

switch arguments[1] {
case "nio":
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let server = try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 1024)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([
                    TLSHandler(session: try context.makeServerSession()), Responder(response),
                ])
            }
        }
        .bind(host: "127.0.0.1", port: port).get()
    try await server.closeFuture.get()
case "reactor", "direct":
    let direct = arguments[1] == "direct"
    let reactor = try Reactor(name: "reactor-bench")
    let listener = try await ReactorListener.listen(
        on: try SocketAddress(ipAddress: "127.0.0.1", port: port), reactors: [reactor]
    ) { fd, reactor in
        var one: CInt = 1
        setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        if direct {
            do {
                try DirectConnection(fd: fd, session: try context.makeServerSession(), on: reactor).start()
            } catch {
                close(fd)
            }
            return
        }
        let channel = ReactorChannel(connectedSocket: fd, on: reactor)  // closes the socket when it closes
        do {
            try channel.pipeline.syncOperations.addHandlers([
                TLSHandler(session: try context.makeServerSession()), Responder(response),
            ])
            try channel.activate()
        } catch {
            channel.close(promise: nil)
        }
    }
    _ = listener
    while true { sleep(3600) }
default:
    print("unknown mode \(arguments[1])")
    exit(2)
}

/// Counts request heads by their blank line across reads.
struct HeadCounter {
    private var last: UInt32 = 0
    mutating func count(_ bytes: UnsafeRawBufferPointer) -> Int {
        var heads = 0
        for byte in bytes {
            last = last << 8 | UInt32(byte)
            if last == 0x0D0A_0D0A { heads += 1 }
        }
        return heads
    }
}

final class Responder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var counter = HeadCounter()
    private let response: ByteBuffer

    init(_ bytes: [UInt8]) { response = ByteBuffer(bytes: bytes) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let heads = unwrapInboundIn(data).withUnsafeReadableBytes { counter.count($0) }
        for _ in 0..<heads { context.write(wrapOutboundOut(response), promise: nil) }
        if heads > 0 { context.flush() }
    }
}

/// The floor: the reactor calls this connection, which reads, decrypts, counts heads, encrypts the responses into
/// one buffer and writes it, with nothing in between.
final class DirectConnection: ReactorSource {
    private let fd: CInt
    private let session: TLSSession
    private let reactor: Reactor
    private var registration: Reactor.Registration?
    private var counter = HeadCounter()
    // Shared by every connection: all of them run on the one reactor thread, one at a time.
    nonisolated(unsafe) private static let input = UnsafeMutableRawBufferPointer.allocate(
        byteCount: 64 * 1024, alignment: 16)
    nonisolated(unsafe) private static let plaintext = UnsafeMutableRawBufferPointer.allocate(
        byteCount: 64 * 1024, alignment: 16)
    nonisolated(unsafe) private static let output = UnsafeMutableRawBufferPointer.allocate(
        byteCount: 1024 * 1024, alignment: 16)

    init(fd: CInt, session: TLSSession, on reactor: Reactor) {
        self.fd = fd
        self.session = session
        self.reactor = reactor
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    func start() throws {
        registration = try reactor.register(fd: fd, events: Reactor.readable, source: self)
    }

    func ready(_ events: UInt32) {
        let count = read(fd, Self.input.baseAddress, Self.input.count)
        if count < 0 && (errno == EAGAIN || errno == EINTR) { return }
        guard count > 0 else { return finish() }
        var failed = false
        session.lendCiphertext(UnsafeRawBufferPointer(rebasing: Self.input[..<count])) {
            if !session.isHandshakeComplete {
                if case .failed = session.handshake() { failed = true }
                sendPending()
                if !session.isHandshakeComplete { return }
            }
            var heads = 0
            reading: while true {
                switch session.readPlaintext(into: Self.plaintext) {
                case .bytes(let read): heads += counter.count(UnsafeRawBufferPointer(rebasing: Self.plaintext[..<read]))
                case .wantRead: break reading
                case .closed, .failed:
                    failed = true
                    break reading
                }
            }
            guard heads > 0 else { return }
            let filled = session.encrypt(into: Self.output) {
                response.withUnsafeBytes { bytes in for _ in 0..<heads { _ = session.writePlaintext(bytes) } }
            }
            send(Self.output.baseAddress!, filled)
            sendPending()
        }
        if failed { finish() }
    }

    private func sendPending() {
        while session.pendingCiphertext > 0 {
            let taken = session.takeCiphertext(into: Self.output)
            send(Self.output.baseAddress!, taken)
        }
    }

    /// Waits for room when the socket is full (a benchmark's responses are small: it rarely is).
    private func send(_ bytes: UnsafeRawPointer, _ count: Int) {
        var sent = 0
        while sent < count {
            let result = Glibc.send(fd, bytes + sent, count - sent, CInt(MSG_NOSIGNAL))
            if result > 0 {
                sent += result
            } else if result < 0 && errno == EAGAIN {
                var poll = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = Glibc.poll(&poll, 1, 1000)
            } else {
                return
            }
        }
    }

    private func finish() {
        if let registration { reactor.deregister(fd: fd, registration) }
        registration = nil
        close(fd)
    }
}
