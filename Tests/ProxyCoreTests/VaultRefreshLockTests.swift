import Foundation
import ProxyCore
import Testing

@Suite struct VaultRefreshLockTests {
    /// Counts holders inside the critical section; more than one at a time is a failure.
    actor Section {
        var inside = 0
        var maximum = 0
        var entries = 0
        func enter() {
            inside += 1
            entries += 1
            maximum = max(maximum, inside)
        }
        func leave() { inside -= 1 }
    }

    @Test func oneHolderPerAccountAtATime() async throws {
        let lock = InProcessRefreshLock()
        let section = Section()
        let account = AccountID("acc_lock")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await lock.withLock(account) {
                        await section.enter()
                        await Task.yield()
                        await section.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(await section.maximum == 1)
        #expect(await section.entries == 200)
        #expect(await !lock.isHeld(account))
    }

    @Test func differentAccountsDoNotWaitForEachOther() async throws {
        let lock = InProcessRefreshLock()
        let first = try await lock.acquire(AccountID("acc_1"))
        let second = try await lock.acquire(AccountID("acc_2"))
        #expect(await lock.isHeld(AccountID("acc_1")))
        #expect(await lock.isHeld(AccountID("acc_2")))
        await first.release()
        await first.release()  // a second release does nothing
        #expect(await !lock.isHeld(AccountID("acc_1")))
        await second.release()
    }

    @Test func cancelledWaiterGivesUpAndTheLockStillWorks() async throws {
        let lock = InProcessRefreshLock()
        let account = AccountID("acc_c")
        let holder = try await lock.acquire(account)
        let waiter = Task { try await lock.acquire(account) }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { _ = try await waiter.value }
        await holder.release()
        #expect(await !lock.isHeld(account))
        let again = try await lock.acquire(account)
        await again.release()
    }
}
