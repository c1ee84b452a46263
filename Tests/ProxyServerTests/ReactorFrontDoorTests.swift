import HummingbirdCore
import Logging
import NIOCore
import ProxyReactor
import ProxyTesting
import Testing

@testable import ProxyServer

/// The front door on reactors runs each connection's handler on the reactor that accepted it, from the handler's
/// first line on: a handler task started on the global pool and moved to the loop later woke a pool thread, and
/// switched threads twice, for every connection.
@Suite struct ReactorFrontDoorTests {
    /// A child channel that only notes where its handler starts, then closes the connection.
    struct Recording: ServerChildChannel {
        struct Value: ServerChildChannelValue {
            let channel: any Channel
        }

        let started: AsyncStream<Bool>.Continuation

        func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
            channel.eventLoop.makeSucceededFuture(Value(channel: channel))
        }

        func handle(value: Value, logger: Logger) async {
            started.yield(value.channel.eventLoop.inEventLoop)
            try? await value.channel.close()
        }
    }

    @Test(.timeLimit(.minutes(1))) func aConnectionsHandlerStartsOnItsOwnLoop() async throws {
        let group = try ReactorGroup(count: 2, name: "front-door-test")
        defer { for reactor in group.reactors { reactor.shutdownGracefully { _ in } } }
        let (started, recorded) = AsyncStream.makeStream(of: Bool.self)
        let (ports, listening) = AsyncStream.makeStream(of: Int.self)
        let frontDoor = ReactorFrontDoor(
            childChannel: Recording(started: recorded), host: "127.0.0.1", port: 0, group: group, maxConnections: 8,
            logger: Logger(label: "test"),
            onServerRunning: { address in
                listening.yield(address?.port ?? 0)
                listening.finish()
            })
        let serving = Task { try await frontDoor.run() }
        var portIterator = ports.makeAsyncIterator()
        let port = try #require(await portIterator.next())
        var onLoop: [Bool] = []
        var startedIterator = started.makeAsyncIterator()
        for _ in 0..<4 {
            let socket = try BlockingSocket(port: port)
            onLoop.append(await startedIterator.next() ?? false)
            withExtendedLifetime(socket) {}  // closed once its handler has started
        }
        #expect(onLoop == [true, true, true, true])
        // Stopped before its reactors are: cancelled, it closes its listener and what is left open.
        serving.cancel()
        _ = await serving.result
    }
}
