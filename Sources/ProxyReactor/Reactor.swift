import CEpoll
import Dispatch
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// What a `Reactor` tells about a file descriptor it watches: the `epoll` event bits that were ready.
public protocol ReactorSource: AnyObject {
    /// Runs on the reactor's thread.
    func ready(_ events: UInt32)
    /// The loop is stopping: close (it runs on the loop, whose tasks and timers still run afterwards).
    func reactorStopping()
}
extension ReactorSource { public func reactorStopping() {} }

/// One thread that waits on `epoll` for the file descriptors registered with it, runs their `ReactorSource`s, and
/// runs tasks and timers: an `EventLoop` of our own, so NIO's futures, promises and pipelines (and the handlers
/// built on them) work on it, while the sockets it serves are driven without NIO's channel machinery.
///
/// Everything but `execute`, `scheduleTask` and cancelling a `Scheduled` from another thread must be called on the
/// loop's own thread. A loop that has shut down drops tasks given to it afterwards.
public final class Reactor: EventLoop, @unchecked Sendable {
    public let name: String
    private let epoll: CInt
    private let wake: CInt
    private var thread = pthread_t()

    // The loop thread's own state.
    private var tasks: [Task] = []
    /// The batch `runTasks` is running (empty between batches).
    private var running: [Task] = []
    private var timers = ReactorTimers()
    private var sources: [Slot] = []
    private var freeSlots: [UInt32] = []
    private var events: UnsafeMutableBufferPointer<epoll_event>

    // Shared with other threads, under `lock`.
    private let lock = NIOLock()
    private var remoteTasks: [Task] = []
    private var wakePending = false
    private var state = RunState.running
    private var stopped: [(DispatchQueue, @Sendable ((any Error)?) -> Void)] = []

    private enum RunState { case running, stopping, stopped }

    /// A queued task. In a struct: a closure kept in an array as it is has to be re-abstracted for the array's
    /// generic storage, a thunk allocated on every `execute` and called through on every run.
    private struct Task {
        let run: () -> Void
    }

    private struct Slot {
        var source: (any ReactorSource)?
        var generation: UInt32 = 0
    }

    /// A registered file descriptor's place in the loop; events for a deregistered one are never delivered, even
    /// when its slot is reused.
    public struct Registration: Sendable, Equatable {
        fileprivate let slot: UInt32
        fileprivate let generation: UInt32
        fileprivate var token: UInt64 { UInt64(generation) << 32 | UInt64(slot) }
    }

    /// Event bits for `register` and `modify`, and as `ReactorSource.ready` reports them.
    public static let readable = EPOLLIN.rawValue
    public static let writable = EPOLLOUT.rawValue
    public static let hangUp = EPOLLHUP.rawValue
    public static let peerHalfClosed = EPOLLRDHUP.rawValue
    public static let failed = EPOLLERR.rawValue

    /// The event-fd's token: slot numbers start at 0, generations at 1, so no registration has token 0.
    private static let wakeToken: UInt64 = 0
    private static let maxEvents = 256

    /// `modify` calls so far (each an `epoll_ctl`): tests check a request costs none. Read on the loop.
    var modifications = 0

    /// Starts the loop's thread.
    public init(name: String = "claude-proxy-reactor") throws(IOError) {
        // A write to a socket whose peer has gone then fails with EPIPE instead of raising SIGPIPE, which would end
        // the process. Process-wide, as NIO sets it (which the server on reactors may never ask to).
        _ = signal(SIGPIPE, SIG_IGN)
        self.name = name
        epoll = epoll_create1(CInt(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw IOError(errnoCode: errno, reason: "epoll_create1") }
        wake = eventfd(0, CInt(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wake >= 0 else {
            let code = errno
            Glibc.close(epoll)
            throw IOError(errnoCode: code, reason: "eventfd")
        }
        events = .allocate(capacity: Self.maxEvents)
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: Self.wakeToken))
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &event) == 0 else {
            // Every stored property is set: `deinit` runs and closes both descriptors.
            throw IOError(errnoCode: errno, reason: "epoll_ctl(eventfd)")
        }
        try startThread()
    }

    deinit {
        Glibc.close(epoll)
        Glibc.close(wake)
        events.deallocate()
    }

    // MARK: - Thread

    private func startThread() throws(IOError) {
        let started = ConditionLock(value: false)
        let context = Unmanaged.passRetained(ThreadStart(reactor: self, started: started)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { argument in
                let start = Unmanaged<ThreadStart>.fromOpaque(argument!).takeRetainedValue()
                start.reactor.thread = pthread_self()
                start.started.lock()
                start.started.unlock(withValue: true)
                start.reactor.run()
                return nil
            }, context)
        guard result == 0 else {
            Unmanaged<ThreadStart>.fromOpaque(context).release()
            throw IOError(errnoCode: result, reason: "pthread_create")
        }
        // `inEventLoop` reads `thread`: the new thread has set it before anyone can ask.
        started.lock(whenValue: true)
        started.unlock()
    }

    private final class ThreadStart {
        let reactor: Reactor
        let started: ConditionLock<Bool>
        init(reactor: Reactor, started: ConditionLock<Bool>) {
            self.reactor = reactor
            self.started = started
        }
    }

    // MARK: - The loop

    private func run() {
        _ = cp_set_thread_name(String(name.prefix(15)))
        while true {
            runTasks()
            let count = epoll_wait(epoll, events.baseAddress, CInt(Self.maxEvents), waitTimeout())
            if count < 0 && errno != EINTR { fatalError("epoll_wait failed: errno \(errno)") }
            for index in 0..<Int(max(count, 0)) {
                let event = events[index]
                if event.data.u64 == Self.wakeToken {
                    if takeRemoteTasks() { return finish() }
                } else {
                    dispatch(event.data.u64, event.events)
                }
            }
            if !timers.isEmpty {
                for task in timers.takeDue(at: .now()) { task(true) }
            }
        }
    }

    /// Tasks queued so far, and those they queue, up to `maxTasksPerTurn`: the rest wait for the next turn (the
    /// wait then does not block), so a task that keeps queueing itself cannot starve I/O and timers.
    private func runTasks() {
        var ran = 0
        while !tasks.isEmpty && ran < Self.maxTasksPerTurn {
            // Two arrays in turn, each keeping its storage: a copy of `tasks` emptied in place allocated every turn.
            swap(&tasks, &running)
            for task in running { task.run() }
            ran += running.count
            running.removeAll(keepingCapacity: true)
        }
    }

    private static let maxTasksPerTurn = 4096

    /// Every task, until none is left (stopping).
    private func runAllTasks() {
        while !tasks.isEmpty { runTasks() }
    }

    /// Milliseconds until the next timer (rounded up, so it is due when the wait ends), or -1 to wait for I/O only.
    private func waitTimeout() -> CInt {
        guard tasks.isEmpty else { return 0 }
        guard let deadline = timers.nextDeadline() else { return -1 }
        let nanoseconds = (deadline - .now()).nanoseconds
        guard nanoseconds > 0 else { return 0 }
        return CInt(min((nanoseconds + 999_999) / 1_000_000, Int64(Int32.max)))
    }

    /// Moves tasks queued from other threads onto the loop; true when the loop should stop.
    private func takeRemoteTasks() -> Bool {
        var counter: UInt64 = 0
        _ = Glibc.read(wake, &counter, 8)
        let stopping = lock.withLock {
            tasks.append(contentsOf: remoteTasks)  // not a copy of `remoteTasks` emptied after: that allocated
            remoteTasks.removeAll(keepingCapacity: true)
            wakePending = false
            return state == .stopping
        }
        guard stopping else { return false }
        runAllTasks()
        return true
    }

    private func finish() {
        let (late, callbacks) = lock.withLock {
            state = .stopped
            defer {
                remoteTasks.removeAll()
                stopped.removeAll()
            }
            return (remoteTasks, stopped)
        }
        tasks.append(contentsOf: late)
        for source in sources.compactMap(\.source) { source.reactorStopping() }
        // Closing sources and failing timers runs callbacks, which may queue tasks and timers: until none is left.
        repeat {
            runAllTasks()
            for task in timers.abandonAll() { task(false) }
        } while !tasks.isEmpty || !timers.isEmpty
        for index in sources.indices { sources[index].source = nil }
        exited.store(true, ordering: .releasing)
        for (queue, callback) in callbacks { queue.async { callback(nil) } }
    }

    private func dispatch(_ token: UInt64, _ bits: UInt32) {
        let slot = Int(truncatingIfNeeded: token & 0xFFFF_FFFF)
        let generation = UInt32(truncatingIfNeeded: token >> 32)
        guard slot < sources.count, sources[slot].generation == generation, let source = sources[slot].source else {
            return  // deregistered earlier in this batch
        }
        source.ready(bits)
    }

    // MARK: - File descriptors

    /// Watches `fd` for `events` (`EPOLLIN`, `EPOLLOUT`, ...; level-triggered unless `EPOLLET` is given). The loop
    /// holds `source` until `deregister`.
    public func register(fd: CInt, events bits: UInt32, source: any ReactorSource) throws(IOError) -> Registration {
        assertInEventLoop()
        let slot: UInt32
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = UInt32(sources.count)
            sources.append(Slot())
        }
        sources[Int(slot)].generation &+= 1
        if sources[Int(slot)].generation == 0 { sources[Int(slot)].generation = 1 }
        let registration = Registration(slot: slot, generation: sources[Int(slot)].generation)
        var event = epoll_event(events: bits, data: epoll_data_t(u64: registration.token))
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0 else {
            let code = errno
            freeSlots.append(slot)
            throw IOError(errnoCode: code, reason: "epoll_ctl(ADD)")
        }
        sources[Int(slot)].source = source
        return registration
    }

    /// Changes the events `fd` is watched for.
    public func modify(fd: CInt, _ registration: Registration, events bits: UInt32) throws(IOError) {
        assertInEventLoop()
        modifications &+= 1
        var event = epoll_event(events: bits, data: epoll_data_t(u64: registration.token))
        guard epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event) == 0 else {
            throw IOError(errnoCode: errno, reason: "epoll_ctl(MOD)")
        }
    }

    /// Stops watching `fd` (call before closing it) and lets go of its source.
    public func deregister(fd: CInt, _ registration: Registration) {
        assertInEventLoop()
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil)
        let slot = Int(registration.slot)
        guard slot < sources.count, sources[slot].generation == registration.generation else { return }
        sources[slot].source = nil
        sources[slot].generation &+= 1
        freeSlots.append(registration.slot)
    }

    /// File descriptors registered now (tests).
    public var registeredCount: Int {
        assertInEventLoop()
        return sources.count - freeSlots.count
    }

    // MARK: - EventLoop

    /// A stopped loop's thread id may be reused by a new thread, which must not count as the loop's.
    public var inEventLoop: Bool { pthread_equal(thread, pthread_self()) != 0 && !exited.load(ordering: .acquiring) }
    private let exited = Atomic<Bool>(false)

    public func execute(_ task: @escaping @Sendable () -> Void) {
        if inEventLoop {
            tasks.append(Task(run: task))
        } else {
            enqueueRemote(task)
        }
    }

    public func _executeIsolatedUnsafeUnchecked(_ task: @escaping () -> Void) {
        assertInEventLoop()
        tasks.append(Task(run: task))
    }

    private func enqueueRemote(_ task: @escaping () -> Void) {
        let mustWake = lock.withLock { () -> Bool in
            guard state == .running || state == .stopping else { return false }
            remoteTasks.append(Task(run: task))
            defer { wakePending = true }
            return !wakePending
        }
        if mustWake { signalWake() }
    }

    private func signalWake() {
        var one: UInt64 = 1
        _ = Glibc.write(wake, &one, 8)
    }

    public func scheduleTask<T>(deadline: NIODeadline, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        if inEventLoop { return _scheduleTaskIsolatedUnsafeUnchecked(deadline: deadline, task) }
        let promise = makePromise(of: T.self)
        let pending = PendingTimer()
        enqueueRemote { [self] in
            guard !pending.cancelled else { return }
            pending.timer = timers.schedule(at: deadline) { Self.complete(promise, due: $0, with: task) }
        }
        return Scheduled(promise: promise) { [self] in
            let cancel = { [self] in
                pending.cancelled = true
                if let timer = pending.timer { timers.cancel(timer) }
            }
            if inEventLoop { cancel() } else { enqueueRemote(cancel) }
        }
    }

    public func scheduleTask<T>(in amount: TimeAmount, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        scheduleTask(deadline: .now() + amount, task)
    }

    public func _scheduleTaskIsolatedUnsafeUnchecked<T>(
        deadline: NIODeadline, _ task: @escaping () throws -> T
    ) -> Scheduled<T> {
        assertInEventLoop()
        let promise = makePromise(of: T.self)
        let timer = timers.schedule(at: deadline) { Self.complete(promise, due: $0, with: task) }
        let handle = UnsafeTransfer(timer)
        return Scheduled(promise: promise) { [self] in
            let cancel = { [self] in
                // A timer that already ran has let go of its task too: its promise is kept.
                guard !handle.value.isCancelled else { return }
                timers.cancel(handle.value)
                promise.fail(EventLoopError.cancelled)
            }
            if inEventLoop { cancel() } else { enqueueRemote(cancel) }
        }
    }

    public func _scheduleTaskIsolatedUnsafeUnchecked<T>(
        in amount: TimeAmount, _ task: @escaping () throws -> T
    ) -> Scheduled<T> {
        _scheduleTaskIsolatedUnsafeUnchecked(deadline: .now() + amount, task)
    }

    private static func complete<T>(_ promise: EventLoopPromise<T>, due: Bool, with task: () throws -> T) {
        guard due else { return promise.fail(EventLoopError.shutdown) }
        do { promise.assumeIsolatedUnsafeUnchecked().succeed(try task()) } catch { promise.fail(error) }
    }

    public func preconditionInEventLoop(file: StaticString, line: UInt) {
        precondition(inEventLoop, "not on \(name)", file: file, line: line)
    }

    public func preconditionNotInEventLoop(file: StaticString, line: UInt) {
        precondition(!inEventLoop, "on \(name)", file: file, line: line)
    }

    // MARK: - EventLoopGroup

    public func next() -> any EventLoop { self }
    public func any() -> any EventLoop { self }
    public func makeIterator() -> EventLoopIterator { EventLoopIterator([self]) }

    /// Runs the tasks queued so far, stops the loop (registered sources are told to close, pending timers fail with
    /// `EventLoopError.shutdown`) and then calls `callback` on `queue` once the loop has stopped (its thread ends right after).
    public func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable ((any Error)?) -> Void) {
        let first = lock.withLock { () -> Bool? in
            switch state {
            case .running:
                state = .stopping
                stopped.append((queue, callback))
                return true
            case .stopping:
                stopped.append((queue, callback))
                return false
            case .stopped:
                return nil
            }
        }
        switch first {
        case true?:
            let thread = self.thread
            signalWake()
            // Join off the caller's thread, which may be the loop itself.
            DispatchQueue.global().async { _ = pthread_join(thread, nil) }
        case false?:
            break
        case nil:
            queue.async { callback(nil) }
        }
    }

    public var description: String { "Reactor(\(name))" }
}

/// A timer scheduled from another thread: made on the loop later, cancelled there too.
private final class PendingTimer: @unchecked Sendable {
    var timer: ReactorTimer?
    var cancelled = false
}

/// Moves a loop-confined value into a `@Sendable` closure that only ever runs on that loop.
private struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
