import NIOConcurrencyHelpers
import Synchronization

/// At most `maximum` connections open at once over a listener's reactors. At the limit the reactors stop accepting
/// (connections wait in the kernel's backlog, as with NIO's server channels under Hummingbird's limit); each
/// `release()` below it lets them accept again.
public final class ConnectionLimit: Sendable {
    public let maximum: Int
    private let count = Atomic<Int>(0)
    /// Acceptors that stopped at the limit: each is resumed (on its own reactor) once a connection has closed.
    private let waiting = NIOLockedValueBox<[@Sendable () -> Void]>([])

    public init(maximum: Int) {
        precondition(maximum > 0, "a limit of no connections accepts nothing")
        self.maximum = maximum
    }

    /// Connections open now.
    public var current: Int { count.load(ordering: .relaxed) }

    /// Counts one more connection, unless that would exceed the limit.
    func take() -> Bool {
        var seen = count.load(ordering: .relaxed)
        while seen < maximum {
            let (exchanged, original) = count.compareExchange(
                expected: seen, desired: seen + 1, ordering: .relaxed)
            if exchanged { return true }
            seen = original
        }
        return false
    }

    /// A connection counted by `take()` has closed.
    public func release() {
        let before = count.subtract(1, ordering: .relaxed).oldValue
        precondition(before > 0, "a connection released that was never taken")
        if before == maximum { resumeWaiting() }
    }

    /// Called by an acceptor that stopped at the limit: `resume` runs once there is room again (at once when a
    /// release came in between).
    func wait(_ resume: @escaping @Sendable () -> Void) {
        waiting.withLockedValue { $0.append(resume) }
        if count.load(ordering: .relaxed) < maximum { resumeWaiting() }
    }

    private func resumeWaiting() {
        let resumed = waiting.withLockedValue { waiting in
            defer { waiting = [] }
            return waiting
        }
        for resume in resumed { resume() }
    }
}
