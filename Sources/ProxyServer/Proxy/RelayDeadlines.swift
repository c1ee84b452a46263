import NIOCore
import NIOPosix
import ProxyUpstream

/// Something on an event loop with a deadline that `RelayDeadlines` watches.
protocol RelayDeadlineOwner: AnyObject {
    /// Where the owner sits in its loop's list (kept by `RelayDeadlines`), nil when not watched.
    var deadlineSlot: Int? { get set }
    var deadline: NIODeadline { get }
    /// The deadline has passed: the owner is no longer watched, and may ask to be again.
    func deadlineReached()
}

/// The fast path's deadlines on one event loop, checked together every `resolution`: one repeating task per busy
/// loop instead of a scheduled task made and cancelled for every request. A deadline is thus met up to
/// `resolution` late, well inside the timeouts it serves (seconds). Owners are kept in an array with their slot,
/// so watching and letting go are O(1). The task runs until a check finds nothing watched: it is not cancelled when
/// the list empties, which on a busy loop happens between turns, so as not to schedule and cancel one per request.
///
/// One per event-loop thread (`current`), used only on that thread: that is what makes it safe to share through the
/// thread-specific variable.
final class RelayDeadlines: @unchecked Sendable {
    static let resolution = TimeAmount.milliseconds(50)
    private static let perThread = ThreadSpecificVariable<RelayDeadlines>()

    private let eventLoop: any EventLoop
    private var owners: [any RelayDeadlineOwner] = []
    private var check: Scheduled<Void>?

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// This loop's list; only on the loop's own thread.
    static func current(on eventLoop: any EventLoop) -> RelayDeadlines {
        eventLoop.preconditionInEventLoop()
        if let deadlines = perThread.currentValue, deadlines.eventLoop === eventLoop { return deadlines }
        let deadlines = RelayDeadlines(eventLoop: eventLoop)
        perThread.currentValue = deadlines
        return deadlines
    }

    func watch(_ owner: any RelayDeadlineOwner) {
        guard owner.deadlineSlot == nil else { return }
        owner.deadlineSlot = owners.count
        owners.append(owner)
        if check == nil { scheduleCheck() }
    }

    func release(_ owner: any RelayDeadlineOwner) {
        guard let slot = owner.deadlineSlot else { return }
        owner.deadlineSlot = nil
        let last = owners.removeLast()
        if slot < owners.count {
            owners[slot] = last
            last.deadlineSlot = slot
        }
    }

    var watchedCount: Int { owners.count }
    /// A check is scheduled.
    var isChecking: Bool { check != nil }

    private func scheduleCheck() {
        check = eventLoop.assumeIsolated().scheduleTask(in: Self.resolution) { [self] in
            check = nil
            let now = NIODeadline.coarseNow
            // Owners reached are let go of first, then told: what they do may change the list.
            var reached: [any RelayDeadlineOwner] = []
            var slot = owners.count - 1
            while slot >= 0 {
                if owners[slot].deadline <= now {
                    reached.append(owners[slot])
                    release(owners[slot])
                }
                slot -= 1
            }
            for owner in reached { owner.deadlineReached() }
            if !owners.isEmpty, check == nil { scheduleCheck() }
        }
    }
}
