import Dispatch
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import ProxyTesting
import Testing

@testable import ProxyReactor

/// The reactor as an event loop: tasks, timers, file descriptors and shutdown.
@Suite(.timeLimit(.minutes(1))) struct ReactorTests {
    @Test func tasksFromAnotherThreadRunOnTheLoopInOrder() async throws {
        let reactor = try Reactor(name: "tasks")
        defer { reactor.shutdownGracefully { _ in } }
        #expect(!reactor.inEventLoop)
        let seen = NIOLockedValueBox<[Int]>([])
        let onLoop = NIOLockedValueBox(true)
        let futures = (0..<500).map { index in
            reactor.submit {
                if !reactor.inEventLoop { onLoop.withLockedValue { $0 = false } }
                seen.withLockedValue { $0.append(index) }
                return index
            }
        }
        let results = try await EventLoopFuture.whenAllSucceed(futures, on: reactor).get()
        #expect(results == Array(0..<500))
        #expect(seen.withLockedValue { $0 } == Array(0..<500))
        #expect(onLoop.withLockedValue { $0 })
    }

    @Test func tasksQueuedOnTheLoopRunInTheSameTurnOrder() async throws {
        let reactor = try Reactor(name: "nested")
        defer { reactor.shutdownGracefully { _ in } }
        let order = try await reactor.submit { () -> EventLoopFuture<[String]> in
            let promise = reactor.makePromise(of: [String].self)
            var order: [String] = []
            reactor.assumeIsolated().execute {
                order.append("first")
                reactor.assumeIsolated().execute {
                    order.append("third")
                    promise.succeed(order)
                }
            }
            reactor.assumeIsolated().execute { order.append("second") }
            return promise.futureResult
        }.flatMap { $0 }.get()
        #expect(order == ["first", "second", "third"])
    }

    @Test func timersFireByDeadlineAndCancelledOnesNever() async throws {
        let reactor = try Reactor(name: "timers")
        defer { reactor.shutdownGracefully { _ in } }
        let fired = NIOLockedValueBox<[Int]>([])
        // Scheduled from outside the loop, out of order, two sharing a deadline (they keep their order). The loop is
        // held meanwhile, so none can fire before the one cancelled is cancelled, however slow this thread is.
        let release = try await hold(reactor)
        let start = NIODeadline.now()
        let delays = [40, 10, 30, 20, 20]
        let scheduled = delays.enumerated().map { index, milliseconds in
            reactor.scheduleTask(deadline: start + .milliseconds(Int64(milliseconds))) {
                fired.withLockedValue { $0.append(index) }
                return index
            }
        }
        let cancelled = reactor.scheduleTask(in: .milliseconds(25)) { fired.withLockedValue { $0.append(-1) } }
        cancelled.cancel()
        try await release()
        for (index, task) in scheduled.enumerated() {
            #expect(try await task.futureResult.get() == index)
        }
        await #expect(throws: EventLoopError.cancelled) { try await cancelled.futureResult.get() }
        #expect(fired.withLockedValue { $0 } == [1, 3, 4, 2, 0])
        #expect(NIODeadline.now() >= start + .milliseconds(40))
    }

    @Test func timersScheduledOnTheLoopCanBeCancelledThere() async throws {
        let reactor = try Reactor(name: "timers-on-loop")
        defer { reactor.shutdownGracefully { _ in } }
        let result = try await reactor.submit { () -> EventLoopFuture<[String]> in
            var log: [String] = []
            let loop = reactor.assumeIsolated()
            let kept = loop.scheduleTask(in: .milliseconds(5)) { log.append("kept") }
            let dropped = loop.scheduleTask(in: .milliseconds(1)) { log.append("dropped") }
            dropped.cancel()
            // Cancelling a timer that already ran keeps its result.
            return kept.futureResult.assumeIsolated().map {
                kept.cancel()
                return log
            }.nonisolated()
        }.flatMap { $0 }.get()
        #expect(result == ["kept"])
    }

    @Test func aThrowingTimerFailsItsFuture() async throws {
        struct Refused: Error {}
        let reactor = try Reactor(name: "timer-throws")
        defer { reactor.shutdownGracefully { _ in } }
        let task = reactor.scheduleTask(in: .milliseconds(1)) { () throws -> Int in throw Refused() }
        await #expect(throws: Refused.self) { try await task.futureResult.get() }
    }

    /// A pipe's read end, registered: a write wakes the loop, and after `deregister` the source hears nothing more,
    /// even when a new registration takes its slot.
    @Test func registeredDescriptorsAreReportedUntilDeregistered() async throws {
        let reactor = try Reactor(name: "fds")
        defer { reactor.shutdownGracefully { _ in } }
        let first = try Pipe()
        let second = try Pipe()
        defer {
            first.close()
            second.close()
        }
        let firstSource = DrainingSource(fd: first.read)
        let registration = try await reactor.submit {
            try firstSource.register(on: reactor)
        }.get()
        first.write("one")
        #expect(await firstSource.next() == "one")

        let secondSource = DrainingSource(fd: second.read)
        let secondRegistration = try await reactor.submit { () throws -> Reactor.Registration in
            reactor.deregister(fd: first.read, registration)
            #expect(reactor.registeredCount == 0)
            return try secondSource.register(on: reactor)
        }.get()
        #expect(secondRegistration != registration)
        // Both become readable; only the registered one is read.
        first.write("two")
        second.write("three")
        #expect(await secondSource.next() == "three")
        #expect(firstSource.received == ["one"])
        try await reactor.submit { #expect(reactor.registeredCount == 1) }.get()
    }

    /// Failing a timer at shutdown runs its callbacks, which may schedule more: those fail too, and the loop neither
    /// crashes nor leaks their promises.
    @Test func timersScheduledWhileStoppingFailToo() async throws {
        let reactor = try Reactor(name: "stop-timers")
        let second = NIOLockedValueBox<(any Error)?>(nil)
        try await reactor.submit {
            reactor.scheduleTask(in: .hours(1)) {}.futureResult.whenFailure { _ in
                reactor.scheduleTask(in: .hours(1)) {}.futureResult.whenFailure { error in
                    second.withLockedValue { $0 = error }
                }
            }
        }.get()
        try await reactor.shutdownGracefully()
        #expect(second.withLockedValue { $0 } as? EventLoopError == .shutdown)
    }

    /// A reactor ignores SIGPIPE (a write to a peer that has gone is then an EPIPE, not the end of the process). The
    /// test puts a do-nothing handler in place first (never the default: another test's write could end the run),
    /// and leaves SIGPIPE ignored.
    @Test func aReactorIgnoresSIGPIPE() async throws {
        var handler = sigaction()
        handler.__sigaction_handler.sa_handler = { _ in }
        sigaction(SIGPIPE, &handler, nil)
        defer { _ = signal(SIGPIPE, SIG_IGN) }
        let reactor = try Reactor(name: "sigpipe")
        defer { reactor.shutdownGracefully { _ in } }
        var now = sigaction()
        sigaction(SIGPIPE, nil, &now)
        #expect(unsafeBitCast(now.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self))
    }

    /// A thread made after the loop's ended may get the same thread id: it is not the loop.
    @Test func noThreadIsOnTheLoopAfterItStopped() async throws {
        let reactor = try Reactor(name: "ended")
        try await reactor.shutdownGracefully()
        try await Task.sleep(for: .milliseconds(20))  // the loop's thread has been joined by now, its id free
        final class Result: @unchecked Sendable { var onLoop = true }
        let result = Result()
        let context = Unmanaged.passRetained((reactor, result) as AnyObject).toOpaque()
        var thread = pthread_t()
        pthread_create(
            &thread, nil,
            { argument in
                let (reactor, result) =
                    Unmanaged<AnyObject>.fromOpaque(argument!).takeRetainedValue() as! (Reactor, Result)
                result.onLoop = reactor.inEventLoop
                return nil
            }, context)
        pthread_join(thread, nil)
        #expect(!result.onLoop)
    }

    /// A timer scheduled from another thread and cancelled on the loop in the turn its deadline passes does not run.
    /// No clock is raced: the loop is held in a task while the timer (already due) and a task that makes the pipe
    /// readable are queued behind it, so one turn takes the timer into the heap, then reports the pipe (whose source
    /// cancels the timer) and then looks for due timers.
    @Test func aTimerCancelledOnTheLoopDoesNotRunInThatTurn() async throws {
        let reactor = try Reactor(name: "cancel-on-loop")
        defer { reactor.shutdownGracefully { _ in } }
        let pipe = try Pipe()
        defer { pipe.close() }
        let ran = NIOLockedValueBox(false)
        let scheduled = NIOLockedValueBox<Scheduled<Void>?>(nil)
        let canceller = CountingSource()
        canceller.onReady = { scheduled.withLockedValue { $0 }?.cancel() }
        try await reactor.submit {
            _ = try reactor.register(fd: pipe.read, events: Reactor.readable, source: canceller)
        }.get()
        let release = try await hold(reactor)
        let timer = reactor.scheduleTask(deadline: .now()) { ran.withLockedValue { $0 = true } }
        scheduled.withLockedValue { $0 = timer }
        reactor.execute { pipe.write("x") }
        try await release()
        await #expect(throws: EventLoopError.cancelled) { try await timer.futureResult.get() }
        #expect(!ran.withLockedValue { $0 })
    }

    /// A task that keeps queueing itself does not keep timers (or I/O) from their turn.
    @Test func aTaskThatRequeuesItselfDoesNotStarveTimers() async throws {
        let reactor = try Reactor(name: "busy-tasks")
        defer { reactor.shutdownGracefully { _ in } }
        let stop = NIOLockedValueBox(false)
        let spins = NIOLockedValueBox(0)
        @Sendable func spin() {
            spins.withLockedValue { $0 += 1 }
            if !stop.withLockedValue({ $0 }) { reactor.execute(spin) }
        }
        let timer = reactor.scheduleTask(in: .milliseconds(5)) { stop.withLockedValue { $0 = true } }
        reactor.execute(spin)
        try await timer.futureResult.get()
        #expect(spins.withLockedValue { $0 } > 0)
    }

    /// Cancelled timers do not pile up until their deadlines: the heap sheds them once they are most of it.
    @Test func cancelledTimersAreShed() {
        var timers = ReactorTimers()
        let far = NIODeadline.now() + .hours(1)
        let made = (0..<1000).map { _ in timers.schedule(at: far) { _ in } }
        for timer in made.prefix(900) { timers.cancel(timer) }
        #expect(timers.count < 200)
        #expect(timers.count >= 100)
        #expect(timers.nextDeadline() == far)
    }

    /// Events of one `epoll_wait` are delivered in turn: one whose source was deregistered by an earlier one in the
    /// same turn is dropped, also when a new registration has taken the freed slot by then.
    @Test func aSourceDeregisteredEarlierInTheSameTurnHearsNothing() async throws {
        let reactor = try Reactor(name: "same-turn")
        defer { reactor.shutdownGracefully { _ in } }
        let pipes = try (0..<4).map { _ in try Pipe() }
        defer { pipes.forEach { $0.close() } }
        let (first, dropped, reused, late) = (pipes[0], pipes[1], pipes[2], pipes[3])
        let droppedSource = CountingSource()
        let reusedSource = CountingSource()
        let lateSource = CountingSource()
        let firstSource = CountingSource()
        try await reactor.submit {
            let droppedRegistration = try reactor.register(
                fd: dropped.read, events: Reactor.readable, source: droppedSource)
            let lateRegistration = try reactor.register(fd: late.read, events: Reactor.readable, source: lateSource)
            firstSource.onReady = {
                reactor.deregister(fd: dropped.read, droppedRegistration)
                reactor.deregister(fd: late.read, lateRegistration)
                // Takes the slot `late` had; `reused` has nothing to read, so any call it gets is `late`'s event.
                _ = try? reactor.register(fd: reused.read, events: Reactor.readable, source: reusedSource)
            }
            _ = try reactor.register(fd: first.read, events: Reactor.readable, source: firstSource)
            // Readable in this order before the loop waits again: one turn reports all three, `first` first.
            first.write("a")
            dropped.write("b")
            late.write("c")
        }.get()
        // A task runs after the turn that delivered the events.
        try await reactor.submit {}.get()
        #expect(firstSource.calls >= 1)  // level-triggered, never read: reported every turn
        #expect(droppedSource.calls == 0)
        #expect(lateSource.calls == 0)
        #expect(reusedSource.calls == 0)
    }

    @Test func shutdownRunsQueuedTasksFailsTimersThenCallsBack() async throws {
        let reactor = try Reactor(name: "shutdown")
        let ran = NIOLockedValueBox(0)
        for _ in 0..<10 { reactor.execute { ran.withLockedValue { $0 += 1 } } }
        let pendingTimer = reactor.scheduleTask(in: .hours(1)) {}
        // Asked before the end: a stopped loop runs nothing, so a future's callbacks cannot be added afterwards.
        let timerOutcome = NIOLockedValueBox<(any Error)?>(nil)
        pendingTimer.futureResult.whenFailure { error in timerOutcome.withLockedValue { $0 = error } }
        try await reactor.shutdownGracefully()
        #expect(ran.withLockedValue { $0 } == 10)
        // Tasks after the end are dropped, and a second shutdown still answers.
        reactor.execute { ran.withLockedValue { $0 += 1 } }
        try await reactor.shutdownGracefully()
        #expect(ran.withLockedValue { $0 } == 10)
        #expect(timerOutcome.withLockedValue { $0 } as? EventLoopError == .shutdown)
    }
}

/// Reads everything its descriptor has whenever the reactor says it is readable.
private final class DrainingSource: ReactorSource, @unchecked Sendable {
    let fd: CInt
    private let lock = NIOLock()
    private var chunks: [String] = []
    private var taken = 0
    private var waiter: CheckedContinuation<String, Never>?

    init(fd: CInt) { self.fd = fd }

    func register(on reactor: Reactor) throws -> Reactor.Registration {
        try reactor.register(fd: fd, events: Reactor.readable, source: self)
    }

    var received: [String] { lock.withLock { chunks } }

    func ready(_ events: UInt32) {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return }
        let text = String(decoding: buffer[..<count], as: UTF8.self)
        let waiting = lock.withLock { () -> CheckedContinuation<String, Never>? in
            chunks.append(text)
            guard let waiting = waiter else { return nil }
            waiter = nil
            taken += 1
            return waiting
        }
        waiting?.resume(returning: text)
    }

    /// The first chunk not returned yet, once it has been read.
    func next() async -> String {
        await withCheckedContinuation { continuation in
            let ready = lock.withLock { () -> String? in
                guard taken < chunks.count else {
                    waiter = continuation
                    return nil
                }
                taken += 1
                return chunks[taken - 1]
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// Counts its calls and runs `onReady` on each; reads nothing.
private final class CountingSource: ReactorSource, @unchecked Sendable {
    private let lock = NIOLock()
    private var count = 0
    var onReady: (() -> Void)?

    var calls: Int { lock.withLock { count } }

    func ready(_ events: UInt32) {
        lock.withLock { count += 1 }
        onReady?()
        onReady = nil
    }
}

private struct Pipe {
    let read: CInt
    let write: CInt

    init() throws {
        var fds: [CInt] = [0, 0]
        guard pipe(&fds) == 0 else { throw IOError(errnoCode: errno, reason: "pipe") }
        read = fds[0]
        write = fds[1]
        _ = fcntl(read, F_SETFL, O_NONBLOCK)
    }

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = Glibc.write(write, &bytes, bytes.count)
    }

    func close() {
        Glibc.close(read)
        Glibc.close(write)
    }
}
