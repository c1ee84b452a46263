import Glibc
import NIOConcurrencyHelpers
import NIOCore
import ProxyTesting
import Testing

@testable import ProxyReactor

/// Accepting on several reactors from one listening socket.
@Suite(.timeLimit(.minutes(1))) struct ReactorListenerTests {
    @Test func connectionsAreAcceptedOnTheLoopThatTakesThem() async throws {
        let reactors = try (0..<2).map { try Reactor(name: "accept-\($0)") }
        defer { reactors.forEach { $0.shutdownGracefully { _ in } } }
        let accepted = NIOLockedValueBox<[(socket: CInt, onItsLoop: Bool)]>([])
        let listener = try await ReactorListener.listen(
            on: try SocketAddress(ipAddress: "127.0.0.1", port: 0), reactors: reactors
        ) { socket, reactor in
            accepted.withLockedValue { $0.append((socket, reactor.inEventLoop)) }
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
        // Accepted sockets are non-blocking.
        #expect(taken.allSatisfy { fcntl($0.socket, F_GETFL) & O_NONBLOCK != 0 })
        taken.forEach { close($0.socket) }

        // Closed, the port is free again: listening on it succeeds (while it listened, that failed: see below). A
        // connect to it would not do as a check: it may land in another test's listener on a reused port, or connect
        // to itself when its own ephemeral port is that one.
        await listener.close()
        let again = try await ReactorListener.listen(
            on: try SocketAddress(ipAddress: "127.0.0.1", port: port), reactors: [reactors[0]]
        ) { socket, _ in close(socket) }
        await again.close()
        for reactor in reactors {
            try await reactor.submit { #expect(reactor.registeredCount == 0) }.get()
        }
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
