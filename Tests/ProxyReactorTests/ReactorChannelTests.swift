import Glibc
import NIOConcurrencyHelpers
import NIOCore
import ProxyTesting
import Testing

@testable import ProxyReactor

/// A `ReactorChannel` over a real loopback TCP connection, with a NIO pipeline on it.
@Suite(.timeLimit(.minutes(1))) struct ReactorChannelTests {
    /// Starts a channel for the pair's server end with `handler` (and options set first), on `reactor`.
    private func start(
        _ pair: LoopbackPair, on reactor: Reactor, handler: RecordingHandler,
        configure: @escaping @Sendable (ReactorChannel) throws -> Void = { _ in }
    ) async throws -> ReactorChannel {
        try await reactor.submit {
            let channel = ReactorChannel(connectedSocket: pair.server, on: reactor)
            try configure(channel)
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.activate()
            return channel
        }.get()
    }

    @Test func bytesGoThroughThePipelineBothWays() async throws {
        let reactor = try Reactor(name: "echo")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        handler.echo = true
        let channel = try await start(pair, on: reactor, handler: handler)
        #expect(channel.isActive)
        #expect(channel.remoteAddress?.ipAddress == "127.0.0.1")
        pair.send("hello, reactor")
        #expect(await pair.receive(14) == Array("hello, reactor".utf8))
        try await reactor.submit {
            #expect(handler.received == Array("hello, reactor".utf8))
            #expect(handler.events == ["active"])
        }.get()
    }

    /// A request answered from `channelRead` (written and flushed there, as our HTTP/1.1 paths do) changes nothing
    /// the reactor watches: no `epoll_ctl` a round trip. (Input interest used to be dropped for the write and added
    /// back by the next read: two system calls a request.)
    @Test func roundTripsAnsweredWhileReadingChangeNoInterest() async throws {
        let reactor = try Reactor(name: "interest")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        handler.echo = true
        _ = try await start(pair, on: reactor, handler: handler)
        pair.send("warm")
        #expect(await pair.receive(4) == Array("warm".utf8))
        let before = try await reactor.submit { reactor.modifications }.get()
        for round in 0..<20 {
            pair.send("round \(round % 10)")
            #expect(await pair.receive(7) == Array("round \(round % 10)".utf8))
        }
        let after = try await reactor.submit { reactor.modifications }.get()
        #expect(after == before)
    }

    /// With `autoRead`, the next read is asked through the whole pipeline only when no handler asked for one while
    /// reading, as on NIO: a handler in front that asks itself spares the handlers behind it a `read` a request.
    @Test(arguments: [true, false]) func aReadAskedWhileReadingSparesTheHandlersBehind(frontAsks: Bool) async throws {
        let reactor = try Reactor(name: "read-once")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let front = RecordingHandler()
        front.echo = true
        front.readOnReadComplete = frontAsks
        let behind = ReadCounter()
        _ = try await reactor.submit {
            let channel = ReactorChannel(connectedSocket: pair.server, on: reactor)
            try channel.pipeline.syncOperations.addHandlers(front, behind)
            try channel.activate()
        }.get()
        for round in 0..<3 {
            pair.send("round \(round)")
            #expect(await pair.receive(7) == Array("round \(round)".utf8))
        }
        // One read from the tail at activation; then one after each of the three reads unless the front asked.
        try await reactor.submit { #expect(behind.reads == (frontAsks ? 1 : 4)) }.get()
    }

    /// What waits in the socket is read in buffers that grow while they come back full: a TLS record of 16 KB and
    /// its overhead is not split over two reads every time.
    @Test func fullReadsGrowTheNextRead() async throws {
        let reactor = try Reactor(name: "read-size")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        let channel = try await start(pair, on: reactor, handler: handler) {
            try $0.syncOptions!.setOption(ChannelOptions.autoRead, value: false)
        }
        let size = 100 * 1024
        pair.send(String(repeating: "x", count: size))
        // One read asked for at a time (up to four reads of the socket each), until everything has come.
        for _ in 0..<1000 {
            channel.read()
            try await reactor.scheduleTask(in: .milliseconds(5)) {}.futureResult.get()
            if try await reactor.submit({ handler.received.count }).get() == size { break }
        }
        try await reactor.submit {
            #expect(handler.received.count == size)
            #expect(handler.readSizes.first == 2 * 1024)
            #expect(handler.readSizes.max()! > 16 * 1024)
            #expect(handler.readSizes.max()! <= 64 * 1024)
        }.get()
    }

    /// A write larger than the socket takes at once: the channel turns unwritable past the high water mark, waits
    /// for room, and everything arrives in order; its promise completes once all bytes are in the socket.
    @Test func aLargeWriteWaitsForRoomAndArrivesWhole() async throws {
        let reactor = try Reactor(name: "large")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        let channel = try await start(pair, on: reactor, handler: handler)
        let size = 4 * 1024 * 1024
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 13) }
        let written = try await reactor.submit { () -> EventLoopFuture<Void> in
            let first = channel.write(ByteBuffer(bytes: payload[..<(size / 2)]))
            let second = channel.writeAndFlush(ByteBuffer(bytes: payload[(size / 2)...]))
            #expect(!channel.isWritable)
            return first.and(second).map { _ in }
        }.get()
        let received = await pair.receive(size)
        // Closing now fails the writes if bytes were still to come (a wrong count), instead of leaving them waiting.
        pair.closeClient()
        try await written.get()
        #expect(received.count == size)
        let firstDifference = received.indices.first { received[$0] != payload[$0] }
        #expect(firstDifference == nil, "bytes differ from there on")
        try await reactor.submit {
            #expect(handler.writability == [false, true])
            #expect(channel.isWritable)
        }.get()
    }

    @Test func thePeerClosingEndsTheChannel() async throws {
        let reactor = try Reactor(name: "peer-close")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        let channel = try await start(pair, on: reactor, handler: handler)
        pair.send("bye")
        pair.closeClient()
        try await channel.closeFuture.get()
        #expect(!channel.isActive)
        try await reactor.submit {
            #expect(handler.received == Array("bye".utf8))
            #expect(handler.events == ["active", "inactive"])
            #expect(reactor.registeredCount == 0)
        }.get()
        // Writing to a closed channel fails; closing it again too.
        await #expect(throws: ChannelError.ioOnClosedChannel) {
            try await channel.writeAndFlush(ByteBuffer(string: "late")).get()
        }
        await #expect(throws: ChannelError.alreadyClosed) { try await channel.close().get() }
    }

    /// Writing to a peer that has gone fails the write and closes the channel; it does not raise SIGPIPE (which
    /// would end the process: nothing here ignores the signal). Half-closure keeps the channel open after the
    /// peer's FIN, so the writes meet the peer's reset.
    @Test func writingToAPeerThatIsGoneFailsTheWrite() async throws {
        let reactor = try Reactor(name: "gone")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        let channel = try await start(pair, on: reactor, handler: handler) {
            try $0.syncOptions!.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        }
        let inputClosed = handler.whenEvent("inputClosed", on: reactor)
        pair.closeClient()
        try await inputClosed.get()
        let writes = try await reactor.submit { () -> EventLoopFuture<Void> in
            let chunk = ByteBuffer(repeating: 1, count: 1024 * 1024)
            let writes = (0..<64).map { _ in channel.writeAndFlush(chunk) }
            return EventLoopFuture.andAllSucceed(writes, on: reactor)
        }.get()
        await #expect(throws: IOError.self) { try await writes.get() }
        try await channel.closeFuture.get()
        // As on NIO: the writes fail with the error, and no errorCaught.
        try await reactor.submit { #expect(handler.events == ["active", "inputClosed", "inactive"]) }.get()
    }

    /// With half-closure allowed, the peer's FIN is an event, and the answer still goes out after it. (Closing the
    /// output of a channel whose input is closed closes it, as on NIO.)
    @Test func aHalfClosedPeerStillGetsTheAnswer() async throws {
        let reactor = try Reactor(name: "half-close")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        handler.onInputClosed = { context in
            context.writeAndFlush(NIOAny(ByteBuffer(string: "answer")), promise: nil)
            context.close(mode: .output, promise: nil)
            context.close(promise: nil)
        }
        let channel = try await start(pair, on: reactor, handler: handler) {
            try $0.syncOptions!.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        }
        pair.send("question")
        shutdown(pair.client, CInt(SHUT_WR))
        #expect(await pair.receive(6) == Array("answer".utf8))
        #expect(await pair.receivedEnd())
        try await reactor.submit {
            #expect(handler.received == Array("question".utf8))
            #expect(handler.events == ["active", "inputClosed", "inactive"])
        }.get()
        try await channel.closeFuture.get()
    }

    /// `close(mode: .output)` sends what was flushed before the FIN; a write after it fails.
    @Test func closingOutputSendsFlushedBytesFirst() async throws {
        let reactor = try Reactor(name: "close-output")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        let channel = try await start(pair, on: reactor, handler: handler)
        let size = 4 * 1024 * 1024
        let (sent, unflushed, late) = try await reactor.submit {
            let flushed = channel.writeAndFlush(ByteBuffer(repeating: 7, count: size))
            let unflushed = channel.write(ByteBuffer(string: "never"))
            let closed = channel.close(mode: .output)
            return (flushed.and(closed), unflushed, channel.writeAndFlush(ByteBuffer(string: "late")))
        }.get()
        await #expect(throws: ChannelError.outputClosed) { try await late.get() }
        let received = await pair.receive(size + 5)
        #expect(received.count == size)
        #expect(received.allSatisfy { $0 == 7 })
        let ended = await pair.receivedEnd()
        #expect(ended)
        // Bytes left to send (a wrong count) would wait for the client forever: closing it fails them instead.
        if received.count != size || !ended { pair.closeClient() }
        _ = try await sent.get()
        await #expect(throws: ChannelError.outputClosed) { try await unflushed.get() }
        #expect(channel.isActive)  // the input is still open
        try await channel.close().get()
    }

    /// Without autoRead nothing is read until a handler asks, and each ask reads once.
    @Test func withoutAutoReadBytesWaitForARead() async throws {
        let reactor = try Reactor(name: "no-auto-read")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        let channel = try await start(pair, on: reactor, handler: handler) {
            try $0.syncOptions!.setOption(ChannelOptions.autoRead, value: false)
        }
        let first = handler.whenReceived(7, on: reactor)
        pair.send("waiting")
        // The bytes are in the socket; loop turns pass without reading them.
        try await reactor.scheduleTask(in: .milliseconds(50)) {}.futureResult.get()
        try await reactor.submit { #expect(handler.received.isEmpty) }.get()
        channel.read()
        try await first.get()
        try await reactor.submit {
            #expect(handler.received == Array("waiting".utf8))
            try #expect(channel.syncOptions!.getOption(ChannelOptions.autoRead) == false)
        }.get()
        // One read asked for, one read done: the next bytes wait for the next ask.
        let second = handler.whenReceived(14, on: reactor)
        pair.send(", still")
        try await reactor.scheduleTask(in: .milliseconds(50)) {}.futureResult.get()
        try await reactor.submit { #expect(handler.received == Array("waiting".utf8)) }.get()
        channel.read()
        try await second.get()
        try await reactor.submit { #expect(handler.received == Array("waiting, still".utf8)) }.get()
        try await channel.close().get()
    }

    /// A peer that sends its last bytes and goes while nobody asked to read: they are delivered before the channel
    /// closes, as NIO does on a hang-up.
    @Test func aHangUpWhileReadsArePausedDeliversTheRest() async throws {
        let reactor = try Reactor(name: "hang-up")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        let channel = try await start(pair, on: reactor, handler: handler) {
            try $0.syncOptions!.setOption(ChannelOptions.autoRead, value: false)
        }
        try await channel.close(mode: .output).get()
        pair.send("last words")
        shutdown(pair.client, CInt(SHUT_WR))  // both directions closed now: epoll reports a hang-up
        try await channel.closeFuture.get()
        try await reactor.submit {
            #expect(handler.received == Array("last words".utf8))
            #expect(handler.events == ["active", "outputClosed", "inactive"])
        }.get()
    }

    /// A read asked for before the channel is active (here by a handler as it is added) is served once it is.
    @Test func aReadAskedBeforeActivationIsServed() async throws {
        let reactor = try Reactor(name: "early-read")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        handler.readWhenAdded = true
        let arrived = handler.whenReceived(5, on: reactor)
        _ = try await start(pair, on: reactor, handler: handler) {
            try $0.syncOptions!.setOption(ChannelOptions.autoRead, value: false)
        }
        pair.send("hello")
        try await arrived.get()
    }

    /// Addresses are there from `channelActive` until the close has completed, `channelInactive` included.
    @Test func addressesLastUntilTheCloseCompletes() async throws {
        let reactor = try Reactor(name: "addresses")
        defer { reactor.shutdownGracefully { _ in } }
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        let channel = try await start(pair, on: reactor, handler: handler)
        let remote = try #require(channel.remoteAddress)
        #expect(remote.ipAddress == "127.0.0.1")
        #expect(channel.localAddress?.port != nil)
        try await channel.close().get()
        try await reactor.submit { #expect(handler.remoteAtInactive == remote) }.get()
        try await channel.closeFuture.get()
        #expect(channel.remoteAddress == nil)
    }

    /// A loop that stops closes the channels on it: their close futures complete, handlers see them go inactive.
    @Test func stoppingTheReactorClosesItsChannels() async throws {
        let reactor = try Reactor(name: "stop")
        let pair = try await LoopbackPair.make()
        let handler = RecordingHandler()
        let channel = try await start(pair, on: reactor, handler: handler)
        let closed = NIOLockedValueBox(false)
        channel.closeFuture.whenComplete { _ in closed.withLockedValue { $0 = true } }
        try await reactor.shutdownGracefully()
        #expect(closed.withLockedValue { $0 })
        #expect(!channel.isActive)
        #expect(handler.events == ["active", "inactive"])
        #expect(await pair.receivedEnd())
    }
}

/// The read size follows what the socket has, as NIO's adaptive allocator: up after a full read, down after two
/// small ones in a row, within 2-64 KB.
@Suite struct ReadSizingTests {
    @Test func fullReadsDoubleTheSizeUpToTheMaximum() {
        var sizing = ReadSizing()
        #expect(sizing.size == 2 * 1024)
        for size in [2, 4, 8, 16] { sizing.record(size * 1024) }
        #expect(sizing.size == 32 * 1024)
        sizing.record(32 * 1024)
        sizing.record(64 * 1024)
        #expect(sizing.size == 64 * 1024)
    }

    @Test func twoSmallReadsInARowHalveTheSizeDownToTheMinimum() {
        var sizing = ReadSizing()
        for size in [2, 4, 8, 16, 32] { sizing.record(size * 1024) }
        sizing.record(100)
        #expect(sizing.size == 64 * 1024)  // one small read is not yet a trend
        sizing.record(40 * 1024)
        sizing.record(100)
        #expect(sizing.size == 64 * 1024)  // nor two apart
        sizing.record(100)
        #expect(sizing.size == 32 * 1024)
        for _ in 0..<20 { sizing.record(100) }
        #expect(sizing.size == 2 * 1024)
    }
}
