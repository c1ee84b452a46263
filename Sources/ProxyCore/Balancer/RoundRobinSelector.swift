import Synchronization

/// `round_robin`: a true rotation over the available accounts, preferring those whose token is valid now (the seed's
/// rule) and falling back to refreshable ones. The k-th pick takes the (k mod n)-th of the n best candidates, so n
/// accounts picked n×k times get exactly k picks each.
public final class RoundRobinSelector: AccountSelector {
    /// Shared by every request thread; an atomic add is the whole synchronisation a rotation needs.
    private let counter = Atomic<UInt>(0)

    public init() {}

    public func select(from candidates: borrowing CandidateView, session: String?) -> AccountID? {
        var ready = 0
        var refreshable = 0
        for index in candidates.entries.indices {
            switch candidates.availability(at: index) {
            case .ready: ready += 1
            case .refreshable: refreshable += 1
            case .unavailable: break
            }
        }
        let tier: Availability = ready > 0 ? .ready : .refreshable
        let count = ready > 0 ? ready : refreshable
        guard count > 0 else { return nil }
        var target = Int(counter.wrappingAdd(1, ordering: .relaxed).oldValue % UInt(count))
        for index in candidates.entries.indices where candidates.availability(at: index) == tier {
            if target == 0 { return candidates.entries[index].id }
            target -= 1
        }
        return nil
    }
}
