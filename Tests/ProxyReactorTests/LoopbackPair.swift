import Glibc
import NIOCore

@testable import ProxyReactor

/// A TCP connection over loopback: `server` is the accepted end (for a `ReactorChannel`, which closes it), `client` a
/// blocking socket the test reads and writes directly, closed once by `closeClient` or at deinit.
final class LoopbackPair: @unchecked Sendable {
    let server: CInt
    let client: CInt
    private var clientOpen = true

    init() throws {
        let listener = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                guard bind(listener, pointer, length) == 0, listen(listener, 1) == 0,
                    getsockname(listener, pointer, &length) == 0
                else { throw IOError(errnoCode: errno, reason: "bind") }
            }
        }
        let client = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        try withUnsafePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                guard connect(client, pointer, length) == 0 else { throw IOError(errnoCode: errno, reason: "connect") }
            }
        }
        let server = accept(listener, nil, nil)
        guard server >= 0 else { throw IOError(errnoCode: errno, reason: "accept") }
        self.client = client
        self.server = server
        var timeout = timeval(tv_sec: 5, tv_usec: 0)  // a hung test fails instead of waiting forever
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) {
        var bytes = Array(text.utf8)
        _ = Glibc.send(client, &bytes, bytes.count, 0)
    }

    /// Reads until `count` bytes arrived or the server's end closed (or 5 s passed without a byte).
    func receive(_ count: Int) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while received.count < count {
            let n = buffer.withUnsafeMutableBytes {
                recv(client, $0.baseAddress, min($0.count, count - received.count), 0)
            }
            guard n > 0 else { break }
            received += buffer[..<n]
        }
        return received
    }

    /// True when the server's end sent its FIN (a read returns 0 bytes).
    func receivedEnd() -> Bool {
        var byte: UInt8 = 0
        return recv(client, &byte, 1, 0) == 0
    }

    func closeClient() {
        guard clientOpen else { return }
        clientOpen = false
        close(client)
    }

    deinit { closeClient() }
}

/// Records what a channel's pipeline saw, from the loop; read it through `reactor.submit`.
final class RecordingHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    var received: [UInt8] = []
    var events: [String] = []
    var writability: [Bool] = []
    var echo = false
    var onInputClosed: ((ChannelHandlerContext) -> Void)?

    private var waiting: [(count: Int, promise: EventLoopPromise<Void>)] = []
    private var waitingEvents: [(name: String, promise: EventLoopPromise<Void>)] = []

    /// Completes once the event named `name` (as in `events`) has happened.
    func whenEvent(_ name: String, on reactor: Reactor) -> EventLoopFuture<Void> {
        reactor.submit {
            let promise = reactor.makePromise(of: Void.self)
            if self.events.contains(name) { promise.succeed(()) } else { self.waitingEvents.append((name, promise)) }
            return promise.futureResult
        }.flatMap { $0 }
    }

    private func record(_ event: String) {
        events.append(event)
        let due = waitingEvents.filter { $0.name == event }
        waitingEvents.removeAll { $0.name == event }
        due.forEach { $0.promise.succeed(()) }
    }

    /// Completes once `count` bytes have been received in all.
    func whenReceived(_ count: Int, on reactor: Reactor) -> EventLoopFuture<Void> {
        reactor.submit {
            let promise = reactor.makePromise(of: Void.self)
            self.waiting.append((count, promise))
            self.completeWaiting()
            return promise.futureResult
        }.flatMap { $0 }
    }

    private func completeWaiting() {
        let due = waiting.filter { $0.count <= received.count }
        waiting.removeAll { $0.count <= received.count }
        due.forEach { $0.promise.succeed(()) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received += buffer.readableBytesView
        completeWaiting()
        if echo { context.writeAndFlush(wrapOutboundOut(buffer), promise: nil) }
    }

    func channelActive(context: ChannelHandlerContext) { record("active") }
    func channelInactive(context: ChannelHandlerContext) { record("inactive") }
    func channelWritabilityChanged(context: ChannelHandlerContext) { writability.append(context.channel.isWritable) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent {
            record("inputClosed")
            onInputClosed?(context)
        }
        if case .outputClosed? = event as? ChannelEvent { record("outputClosed") }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { record("error") }
}

/// A blocking listening socket on 127.0.0.1 with a port of the kernel's choice.
final class BlockingListener: @unchecked Sendable {
    let fd: CInt
    let port: Int
    private var open = true

    init() throws {
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 4) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw IOError(errnoCode: errno, reason: "listen") }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        guard open else { return }
        open = false
        Glibc.close(fd)
    }
}
