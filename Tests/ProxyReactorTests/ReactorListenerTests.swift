import Glibc
import NIOConcurrencyHelpers
import NIOCore
import ProxyTesting
import Testing

@testable import ProxyReactor

/// Accepting on several reactors from one listening socket.
@Suite(.timeLimit(.minutes(1))) struct ReactorListenerTests {
    @Test func connectionsAreHandedToTheLoopsInTurn() async throws {
        let reactors = try (0..<2).map { try Reactor(name: "accept-\($0)") }
        defer { reactors.forEach { $0.shutdownGracefully { _ in } } }
        let accepted = NIOLockedValueBox<[(socket: CInt, onItsLoop: Bool, reactor: ObjectIdentifier)]>([])
        let listener = try await ReactorListener.listen(
            on: try SocketAddress(ipAddress: "127.0.0.1", port: 0), reactors: reactors
        ) { socket, reactor in
            accepted.withLockedValue { $0.append((socket, reactor.inEventLoop, ObjectIdentifier(reactor))) }
        }
        let port = try #require(listener.localAddress.port)
        #expect(port > 0)
        let clients = try await blocking { try (0..<20).map { _ in try connectBlocking(port: port) } }
        defer { clients.forEach { close($0) } }
        // Each client's connection is accepted once; a round trip on every loop lets the last accepts finish.
        for _ in 0..<100 where accepted.withLockedValue({ $0.count }) < clients.count {
            for reactor in reactors { try await reactor.submit {}.get() }
        }
        let taken = accepted.withLockedValue { $0 }
        #expect(taken.count == clients.count)
        #expect(taken.allSatisfy { $0.onItsLoop })
        // In turn over the reactors, whichever of them woke to accept.
        for reactor in reactors {
            #expect(taken.filter { $0.reactor == ObjectIdentifier(reactor) }.count == clients.count / reactors.count)
        }
        // Accepted sockets are non-blocking.
        #expect(taken.allSatisfy { fcntl($0.socket, F_GETFL) & O_NONBLOCK != 0 })
        taken.forEach { close($0.socket) }

        // Closed, the listening socket is gone from the process. Its kernel object is what is checked, not its
        // number (another test may be given that number at once) nor its port (connecting may reach another test's
        // listener on a reused port, or connect to itself; binding fails while another socket holds the port).
        let socket = try #require(socketObject(listener.fd))
        #expect(openSocketObjects().contains(socket))
        await listener.close()
        #expect(!openSocketObjects().contains(socket))
        for reactor in reactors {
            try await reactor.submit { #expect(reactor.registeredCount == 0) }.get()
        }
    }

    /// At the limit the loop stops accepting; a connection released lets the next one in.
    @Test func aConnectionLimitHoldsTheRestInTheBacklog() async throws {
        let reactor = try Reactor(name: "limit")
        defer { reactor.shutdownGracefully { _ in } }
        let limit = ConnectionLimit(maximum: 2)
        let accepted = NIOLockedValueBox<[CInt]>([])
        let listener = try await ReactorListener.listen(
            on: try SocketAddress(ipAddress: "127.0.0.1", port: 0), reactors: [reactor], limit: limit
        ) { socket, _ in
            accepted.withLockedValue { $0.append(socket) }
        }
        let port = try #require(listener.localAddress.port)
        // All three wait in the backlog before the loop looks: unlimited, it would take them in one go.
        let release = try await hold(reactor)
        let clients = try await blocking { try (0..<3).map { _ in try connectBlocking(port: port) } }
        defer { clients.forEach { close($0) } }
        try await release()
        try await reactor.submit {}.get()
        #expect(accepted.withLockedValue { $0.count } == 2)
        #expect(limit.current == 2)

        close(accepted.withLockedValue { $0[0] })
        limit.release()
        for _ in 0..<500 where accepted.withLockedValue({ $0.count }) < 3 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(accepted.withLockedValue { $0.count } == 3)
        #expect(limit.current == 2)
        accepted.withLockedValue { $0.dropFirst().forEach { close($0) } }
        await listener.close()
    }

    @Test func aPortInUseIsAnError() async throws {
        let reactor = try Reactor(name: "in-use")
        defer { reactor.shutdownGracefully { _ in } }
        let first = try await ReactorListener.listen(
            on: try SocketAddress(ipAddress: "127.0.0.1", port: 0), reactors: [reactor]
        ) { socket, _ in close(socket) }
        let port = try #require(first.localAddress.port)
        await #expect(throws: IOError.self) {
            _ = try await ReactorListener.listen(
                on: try SocketAddress(ipAddress: "127.0.0.1", port: port), reactors: [reactor]
            ) { socket, _ in close(socket) }
        }
        await first.close()
    }
}

/// What `/proc/self/fd/<fd>` links to, e.g. `socket:[123456]`: the same for as long as that socket is open.
private func socketObject(_ fd: CInt) -> String? {
    var target = [CChar](repeating: 0, count: 256)
    let count = readlink("/proc/self/fd/\(fd)", &target, target.count - 1)
    guard count > 0 else { return nil }
    return String(decoding: target[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The sockets this process has open now.
private func openSocketObjects() -> Set<String> {
    guard let folder = opendir("/proc/self/fd") else { return [] }
    defer { closedir(folder) }
    var found: Set<String> = []
    while let entry = readdir(folder) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if let fd = CInt(name), let object = socketObject(fd), object.hasPrefix("socket:") { found.insert(object) }
    }
    return found
}
