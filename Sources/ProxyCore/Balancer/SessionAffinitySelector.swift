import Synchronization

/// `session_affinity`: requests of one conversation go to the same account while it is available, so Anthropic's
/// prompt cache keeps hitting; when it becomes unavailable the conversation moves (and stays) elsewhere. Requests
/// without a session key, and new conversations, are placed by `fallback` (round robin by default).
///
/// Bindings are bounded: two generations of at most `capacity / 2` keys each; a key not seen for a whole generation
/// is forgotten (an approximate LRU that costs no bookkeeping per hit).
public final class SessionAffinitySelector: AccountSelector {
    private struct Bindings {
        var current: [String: AccountID] = [:]
        var previous: [String: AccountID] = [:]
    }

    private let fallback: any AccountSelector
    private let generationSize: Int
    /// Read and written by every request with a session key.
    private let bindings = Mutex(Bindings())

    public init(fallback: any AccountSelector = RoundRobinSelector(), capacity: Int = 100_000) {
        self.fallback = fallback
        self.generationSize = max(1, capacity / 2)
    }

    public func select(from candidates: borrowing CandidateView, session: String?) -> AccountID? {
        guard let session, !session.isEmpty else { return fallback.select(from: candidates, session: nil) }
        if let bound = bindings.withLock({ $0.current[session] ?? $0.previous[session] }),
            let index = candidates.index(of: bound), candidates.availability(at: index) != .unavailable
        {
            bind(session, to: bound)
            return bound
        }
        guard let chosen = fallback.select(from: candidates, session: nil) else { return nil }
        bind(session, to: chosen)
        return chosen
    }

    /// The account `session` is bound to, if any (for the dashboard and tests).
    public func boundAccount(for session: String) -> AccountID? {
        bindings.withLock { $0.current[session] ?? $0.previous[session] }
    }

    private func bind(_ session: String, to id: AccountID) {
        bindings.withLock { bindings in
            if bindings.current[session] == id { return }
            if bindings.current.count >= generationSize {
                bindings.previous = bindings.current
                bindings.current = [:]
            }
            bindings.current[session] = id
        }
    }
}
