import Foundation
import Synchronization

/// Logins started and not yet finished: state → code verifier, kept server-side so the browser never carries the
/// verifier. Each entry is usable once and for `lifetime` (10 minutes by default) measured on the injected clock.
public final class PendingAuthorizations: Sendable {
    private struct Entry {
        var verifier: Secret
        var expiresAt: Date
    }

    private let clock: any ProxyClock
    private let lifetime: TimeInterval
    private let capacity: Int
    /// Shared by admin handlers on any thread; a dictionary behind a lock is all it needs.
    private let entries = Mutex<[String: Entry]>([:])

    public init(clock: any ProxyClock, lifetime: TimeInterval = 600, capacity: Int = 1000) {
        self.clock = clock
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// Remembers `verifier` under `state`; drops expired entries, and the oldest when `capacity` is reached.
    public func insert(state: String, verifier: Secret) {
        let now = clock.now
        let expiresAt = now.addingTimeInterval(lifetime)
        entries.withLock { entries in
            entries = entries.filter { $0.value.expiresAt > now }
            while entries.count >= capacity, let oldest = entries.min(by: { $0.value.expiresAt < $1.value.expiresAt }) {
                entries[oldest.key] = nil
            }
            entries[state] = Entry(verifier: verifier, expiresAt: expiresAt)
        }
    }

    /// Removes and returns the verifier for `state`: a second call with the same state fails with `unknownState`.
    public func take(state: String) throws(OAuthError) -> Secret {
        let now = clock.now
        let entry = entries.withLock { $0.removeValue(forKey: state) }
        guard let entry else { throw .unknownState }
        guard entry.expiresAt > now else { throw .expiredState }
        return entry.verifier
    }

    public var count: Int { entries.withLock { $0.count } }
}
