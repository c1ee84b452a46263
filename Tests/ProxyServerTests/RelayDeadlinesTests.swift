import NIOCore
import NIOEmbedded
import ProxyUpstream
import Testing

@testable import ProxyServer

/// The fast path's per-loop deadline list: owners are told once their deadline has passed, owners let go of are
/// not, the list stays consistent as owners come and go in any order, and its check runs only while it watches.
@Suite struct RelayDeadlinesTests {
    final class Owner: RelayDeadlineOwner {
        var deadlineSlot: Int?
        var deadline: NIODeadline
        var reached = 0
        var rearm: NIODeadline?

        init(_ deadline: NIODeadline) {
            self.deadline = deadline
        }

        func deadlineReached() {
            reached += 1
            if let next = rearm {
                rearm = nil
                deadline = next
                onReached?(self)
            }
        }

        var onReached: ((Owner) -> Void)?
    }

    // Deadlines are compared with the real clock; the embedded loop's virtual time only runs the check.
    static let passed = NIODeadline.now() - .seconds(1)
    static let future = NIODeadline.now() + .seconds(3600)

    /// The relay's deadlines and idle timers read the coarse clock: the same monotonic clock as `NIODeadline.now()`,
    /// at most a tick behind it.
    @Test func coarseNowIsNIOsClockAtMostATickBehind() {
        let before = NIODeadline.now()
        let coarse = NIODeadline.coarseNow
        let after = NIODeadline.now()
        #expect(coarse <= after)
        #expect(coarse >= before - .milliseconds(50))
    }

    @Test func passedDeadlinesAreReachedOnceAndOthersWait() {
        let loop = EmbeddedEventLoop()
        let deadlines = RelayDeadlines.current(on: loop)
        let owners = [
            Owner(Self.future), Owner(Self.passed), Owner(Self.future), Owner(Self.passed), Owner(Self.future),
        ]
        for owner in owners { deadlines.watch(owner) }
        deadlines.watch(owners[1])  // watching twice changes nothing
        #expect(deadlines.watchedCount == 5)
        deadlines.release(owners[3])  // let go of before its check: never told
        deadlines.release(owners[3])
        #expect(deadlines.watchedCount == 4)
        loop.advanceTime(by: RelayDeadlines.resolution)
        #expect(owners.map(\.reached) == [0, 1, 0, 0, 0])
        #expect(deadlines.watchedCount == 3)
        #expect(owners[1].deadlineSlot == nil)
        // The rest pass their deadlines later; each is told once.
        for owner in owners { owner.deadline = Self.passed }
        loop.advanceTime(by: RelayDeadlines.resolution)
        loop.advanceTime(by: RelayDeadlines.resolution)
        #expect(owners.map(\.reached) == [1, 1, 1, 0, 1])
        #expect(deadlines.watchedCount == 0)
        #expect(owners.allSatisfy { $0.deadlineSlot == nil })
    }

    @Test func reachedOwnerMayAskToBeWatchedAgain() {
        let loop = EmbeddedEventLoop()
        let deadlines = RelayDeadlines.current(on: loop)
        let owner = Owner(Self.passed)
        owner.rearm = Self.future
        owner.onReached = { deadlines.watch($0) }
        deadlines.watch(owner)
        loop.advanceTime(by: RelayDeadlines.resolution)
        #expect(owner.reached == 1)
        #expect(deadlines.watchedCount == 1, "watched again, with its next deadline")
        loop.advanceTime(by: RelayDeadlines.resolution * 4)
        #expect(owner.reached == 1)
        owner.deadline = Self.passed
        loop.advanceTime(by: RelayDeadlines.resolution)
        #expect(owner.reached == 2)
    }

    /// Emptying the list leaves the check scheduled (no cancel per request on a busy loop); the check that finds
    /// nothing watched is the last one, until something is watched again.
    @Test func checkRunsOnUntilItFindsNothingWatched() {
        let loop = EmbeddedEventLoop()
        let deadlines = RelayDeadlines.current(on: loop)
        #expect(!deadlines.isChecking)
        let first = Owner(Self.future)
        deadlines.watch(first)
        deadlines.release(first)
        #expect(deadlines.isChecking)
        let second = Owner(Self.future)
        deadlines.watch(second)  // the same check serves it
        second.deadline = Self.passed
        loop.advanceTime(by: RelayDeadlines.resolution)
        #expect(second.reached == 1)
        #expect(!deadlines.isChecking, "nothing was left to watch")
        loop.advanceTime(by: RelayDeadlines.resolution * 4)
        #expect(first.reached == 0)
        deadlines.watch(first)
        #expect(deadlines.isChecking)
    }

    /// Slots stay right through swap-removals in any order.
    @Test func slotsStayConsistentAsOwnersComeAndGo() {
        let loop = EmbeddedEventLoop()
        let deadlines = RelayDeadlines.current(on: loop)
        var watched: [Owner] = []
        var generator = SystemRandomNumberGenerator()
        for round in 0..<200 {
            if watched.isEmpty || round % 3 != 0 {
                let owner = Owner(Self.future)
                deadlines.watch(owner)
                watched.append(owner)
            } else {
                let owner = watched.remove(at: Int.random(in: 0..<watched.count, using: &generator))
                deadlines.release(owner)
                #expect(owner.deadlineSlot == nil)
            }
            #expect(deadlines.watchedCount == watched.count)
            #expect(Set(watched.compactMap(\.deadlineSlot)) == Set(0..<watched.count))
        }
        for owner in watched { owner.deadline = Self.passed }
        loop.advanceTime(by: RelayDeadlines.resolution)
        #expect(watched.allSatisfy { $0.reached == 1 })
        #expect(deadlines.watchedCount == 0)
    }
}
