import Foundation

/// Wall-clock time for the core, injected so that tests drive time (a mock clock) instead of sleeping.
public protocol ProxyClock: Sendable {
    var now: Date { get }
    /// Suspends until `deadline` (or throws `CancellationError`).
    func sleep(until deadline: Date) async throws
}

public struct SystemClock: ProxyClock {
    public init() {}

    public var now: Date { Date() }

    public func sleep(until deadline: Date) async throws {
        let seconds = deadline.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .seconds(seconds)) }
    }
}
