import Foundation
import Logging
import ProxyCore
import ProxyTesting
import ServiceLifecycle
import Synchronization
import Testing

@Suite struct RefreshScheduleTests {
    @Test func hourlyRunsAtMinuteZero() {
        let date = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15 08:00:00 UTC
        #expect(RefreshSchedule.hourly.nextRun(after: date) == date.addingTimeInterval(3600))
        #expect(RefreshSchedule.hourly.nextRun(after: date.addingTimeInterval(1)) == date.addingTimeInterval(3600))
        #expect(RefreshSchedule.hourly.nextRun(after: date.addingTimeInterval(-1)) == date)
    }

    @Test func everyNMinutesAtMinuteM() {
        let hour = Date(timeIntervalSince1970: 1_800_000_000)
        let schedule = RefreshSchedule.every(30, atMinute: 5)
        #expect(schedule.nextRun(after: hour) == hour.addingTimeInterval(5 * 60))
        #expect(schedule.nextRun(after: hour.addingTimeInterval(5 * 60)) == hour.addingTimeInterval(35 * 60))
        #expect(RefreshSchedule.every(60, atMinute: 0) == .hourly)
        #expect(RefreshSchedule(interval: 3600, offset: -600).offset == 3000)
    }
}

@Suite struct RefreshSchedulerTests {
    /// Clock at 08:10; runs due at 09:00 (next at 10:00, so the deadline is 10:01).
    struct Setup {
        let clock = MockClock(now: Date(timeIntervalSince1970: 1_800_000_000 + 600))
        let hour = Date(timeIntervalSince1970: 1_800_000_000)
        let endpoint: FakeTokenEndpoint
        let repository: InMemoryAccountRepository
        let refresher: TokenRefresher
        let reports: AsyncStream<RefreshRunReport>
        let scheduler: RefreshScheduler

        init(endpoint: FakeTokenEndpoint) {
            self.endpoint = endpoint
            let hour = self.hour
            repository = InMemoryAccountRepository([
                Fixtures.account("acc_a", refresh: "refresh-a", expiresAt: hour.addingTimeInterval(40 * 60)),
                Fixtures.account("acc_b", refresh: "refresh-b", expiresAt: hour.addingTimeInterval(5 * 3600)),
                Fixtures.account("acc_c", refresh: "refresh-c", expiresAt: hour.addingTimeInterval(-60)),
                Fixtures.account(
                    "acc_d", refresh: "refresh-d", expiresAt: hour.addingTimeInterval(-60), status: .needsReauth),
                Fixtures.account("acc_e", refresh: "refresh-e", expiresAt: hour.addingTimeInterval(2 * 3600 + 90)),
            ])
            let client = OAuthClient(
                settings: OAuthSettings(), transport: endpoint, clock: clock, retry: OAuthRetryPolicy(maxAttempts: 1))
            refresher = TokenRefresher(
                repository: repository, client: client, clock: clock, logger: Fixtures.quietLogger)
            let (stream, continuation) = AsyncStream.makeStream(of: RefreshRunReport.self)
            reports = stream
            scheduler = RefreshScheduler(
                refresher: refresher, repository: repository, clock: clock, maxJitter: 30, logger: Fixtures.quietLogger,
                onRun: { continuation.yield($0) })
        }
    }

    @Test func firesAtMinuteZeroAndRefreshesOnlyWhatExpires() async throws {
        let setup = Setup(
            endpoint: FakeTokenEndpoint(TokenEndpointResponses.tokens(access: "access-new", refresh: "r2")))
        let run = Task { try await setup.scheduler.run() }
        await setup.clock.waitForSleepers(1)
        #expect(setup.clock.sleeperDeadlines == [setup.hour.addingTimeInterval(3600)], "sleeps until 09:00 exactly")
        #expect(setup.endpoint.callCount == 0)

        setup.clock.advance(to: setup.hour.addingTimeInterval(3600 + 30))  // 09:00 plus the whole jitter window
        var iterator = setup.reports.makeAsyncIterator()
        let report = try #require(await iterator.next())
        #expect(Set(report.refreshed) == [AccountID("acc_a"), AccountID("acc_c")])
        #expect(report.failed.isEmpty)
        #expect(report.deadline == setup.hour.addingTimeInterval(2 * 3600 + 60))
        #expect(Set(setup.endpoint.bodies.compactMap { $0["refresh_token"] }) == ["refresh-a", "refresh-c"])

        await setup.clock.waitForSleepers(1)
        #expect(setup.clock.sleeperDeadlines == [setup.hour.addingTimeInterval(2 * 3600)], "then 10:00")
        run.cancel()
        try await run.value
    }

    @Test func failuresAreRecordedAndTheLoopGoesOn() async throws {
        let setup = Setup(endpoint: FakeTokenEndpoint(TokenEndpointResponses.error(502, "bad gateway")))
        let run = Task { try await setup.scheduler.run() }
        var iterator = setup.reports.makeAsyncIterator()
        await setup.clock.waitForSleepers(1)
        setup.clock.advance(to: setup.hour.addingTimeInterval(3600 + 30))
        let first = try #require(await iterator.next())
        #expect(Set(first.failed.keys) == [AccountID("acc_a"), AccountID("acc_c")])
        let stored = try #require(await setup.repository.account(AccountID("acc_c")))
        #expect(stored.status == .inactive)
        #expect(stored.lastRefreshError?.contains("502") == true)

        await setup.clock.waitForSleepers(1)
        setup.clock.advance(to: setup.hour.addingTimeInterval(2 * 3600 + 30))
        let second = try #require(await iterator.next())
        #expect(Set(second.failed.keys) == [AccountID("acc_a"), AccountID("acc_c"), AccountID("acc_e")])
        run.cancel()
        try await run.value
    }

    @Test func atMostFourRefreshesRunAtOnce() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.tokens(access: "access-new", refresh: "r2"))
        let clock = MockClock()
        let accounts = (0..<10).map { Fixtures.account("acc_\($0)", expiresAt: clock.now.addingTimeInterval(-1)) }
        let repository = InMemoryAccountRepository(accounts)
        let client = OAuthClient(settings: OAuthSettings(), transport: endpoint, clock: clock)
        let refresher = TokenRefresher(
            repository: repository, client: client, clock: clock, logger: Fixtures.quietLogger)
        let scheduler = RefreshScheduler(
            refresher: refresher, repository: repository, clock: clock, maxJitter: 0, logger: Fixtures.quietLogger)
        endpoint.hold()
        let run = Task { await scheduler.runOnce(scheduledAt: clock.now) }
        await endpoint.waitForCalls(4)
        for _ in 0..<100 { await Task.yield() }
        #expect(endpoint.callCount == 4)
        endpoint.release()
        let report = await run.value
        #expect(report.refreshed.count == 10)
        #expect(endpoint.callCount == 10)
    }

    @Test func stopsOnGracefulShutdown() async throws {
        let setup = Setup(endpoint: FakeTokenEndpoint(.init(status: 500)))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [setup.scheduler], logger: Fixtures.quietLogger))
        let running = Task { try await group.run() }
        await setup.clock.waitForSleepers(1)
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(setup.endpoint.callCount == 0)
    }

    /// `SystemClock` reads the kernel's coarse clock, which can be a few milliseconds behind the time a sleep ended
    /// at. Woken at 09:00 by a clock that reads 08:59:59.996, the scheduler must go on to 10:00, not run 09:00 again.
    @Test func aClockReadingBehindDoesNotRunTheSameSlotTwice() async throws {
        let base = MockClock(now: Date(timeIntervalSince1970: 1_800_000_000 + 600))
        let clock = LaggingClock(base: base, lag: 0.004)
        let hour = Date(timeIntervalSince1970: 1_800_000_000)
        let repository = InMemoryAccountRepository([Fixtures.account("acc_a", expiresAt: hour.addingTimeInterval(60))])
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.tokens(access: "access-new", refresh: "r2"))
        let client = OAuthClient(settings: OAuthSettings(), transport: endpoint, clock: clock)
        let refresher = TokenRefresher(
            repository: repository, client: client, clock: clock, logger: Fixtures.quietLogger)
        let runs = Mutex<[Date]>([])  // the first few runs' deadlines
        let scheduler = RefreshScheduler(
            refresher: refresher, repository: repository, clock: clock, maxJitter: 0, logger: Fixtures.quietLogger,
            onRun: { report in runs.withLock { if $0.count < 3 { $0.append(report.deadline) } } })
        let run = Task { try await scheduler.run() }
        await base.waitForSleepers(1)
        base.advance(to: hour.addingTimeInterval(3600))
        // Bounded wait (a scheduler that re-runs the slot never sleeps again): until it sleeps for the next slot.
        for _ in 0..<2000 where base.sleeperDeadlines.isEmpty || runs.withLock({ $0.isEmpty }) {
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(base.sleeperDeadlines == [hour.addingTimeInterval(2 * 3600)], "then 10:00")
        #expect(runs.withLock { $0 } == [hour.addingTimeInterval(2 * 3600 + 60)], "one run for 09:00")
        run.cancel()
        try await run.value
    }
}

/// A clock that reads `lag` seconds behind its base and sleeps on it.
private struct LaggingClock: ProxyClock {
    let base: MockClock
    let lag: TimeInterval

    var now: Date { base.now.addingTimeInterval(-lag) }

    func sleep(until deadline: Date) async throws { try await base.sleep(until: deadline) }
}
