import Foundation

/// Wall-clock time for the core, injected so that tests drive time (a mock clock) instead of sleeping.
public protocol ProxyClock: Sendable {
    var now: Date { get }
    /// Suspends until `deadline` (or throws `CancellationError`).
    func sleep(until deadline: Date) async throws
}

/// The system's wall clock, read coarsely (`CoarseClock`): what the core compares with it (token expiry, cooldowns,
/// pending logins) is in seconds, and the balancer and the token cache read it for every request.
public struct SystemClock: ProxyClock {
    public init() {}

    public var now: Date { CoarseClock.now }

    public func sleep(until deadline: Date) async throws {
        let seconds = deadline.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .seconds(seconds)) }
    }
}
