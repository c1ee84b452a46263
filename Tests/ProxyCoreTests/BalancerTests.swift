import Foundation
import ProxyCore
import ProxyTesting
import Testing

@Suite struct BalancerTests {
    static func accounts(_ count: Int, clock: MockClock) -> [Account] {
        (0..<count).map { Fixtures.account("acc_\($0)", expiresAt: clock.now.addingTimeInterval(3600)) }
    }

    static func picks(_ balancer: Balancer, _ count: Int, session: String? = nil) -> [AccountID: Int] {
        var tally: [AccountID: Int] = [:]
        for _ in 0..<count {
            if case .account(let id) = balancer.pick(session: session) { tally[id, default: 0] += 1 }
        }
        return tally
    }

    @Test(arguments: [1, 2, 3, 7]) func rotationIsExactlyFair(_ count: Int) {
        let clock = MockClock()
        let balancer = Balancer(clock: clock, accounts: Self.accounts(count, clock: clock))
        let tally = Self.picks(balancer, count * 50)
        #expect(tally.count == count)
        #expect(tally.values.allSatisfy { $0 == 50 }, "\(tally)")
    }

    @Test func rotationIsFairUnderConcurrency() async {
        let clock = MockClock()
        let balancer = Balancer(clock: clock, accounts: Self.accounts(4, clock: clock))
        let all = await withTaskGroup(of: [AccountID: Int].self) { group in
            for _ in 0..<8 { group.addTask { Self.picks(balancer, 1000) } }
            return await group.reduce(into: [AccountID: Int]()) { $0.merge($1, uniquingKeysWith: +) }
        }
        #expect(all.values.allSatisfy { $0 == 2000 }, "\(all)")
    }

    @Test func skipsDisabledNeedsReauthInactiveAndCoolingDown() {
        let clock = MockClock()
        var accounts = Self.accounts(5, clock: clock)
        accounts[0].disabled = true
        accounts[1].status = .needsReauth
        accounts[2].status = .inactive
        accounts[3].rateLimit.coolingDownUntil = clock.now.addingTimeInterval(10)
        let balancer = Balancer(clock: clock, accounts: accounts)
        #expect(Self.picks(balancer, 20) == [AccountID("acc_4"): 20])
        clock.advance(by: 10)
        #expect(Self.picks(balancer, 20) == [AccountID("acc_3"): 10, AccountID("acc_4"): 10], "cooldown over")
    }

    @Test func prefersAccountsWhoseTokenIsValidNow() {
        let clock = MockClock()
        var accounts = Self.accounts(3, clock: clock)
        accounts[0].credentials.expiresAt = clock.now.addingTimeInterval(-5)
        accounts[1].credentials.expiresAt = clock.now.addingTimeInterval(30)  // inside the refresh buffer
        let balancer = Balancer(clock: clock, accounts: accounts)
        #expect(Self.picks(balancer, 9) == [AccountID("acc_2"): 9])
        balancer.record(status: 429, headers: [("retry-after", "60")], for: AccountID("acc_2"))
        #expect(Self.picks(balancer, 10) == [AccountID("acc_0"): 5, AccountID("acc_1"): 5], "refreshable ones next")
    }

    @Test func anExpiredTokenWithoutRefreshTokenIsUnavailable() {
        let clock = MockClock()
        let account = Fixtures.account("acc_0", refresh: "", expiresAt: clock.now.addingTimeInterval(-1))
        let balancer = Balancer(clock: clock, accounts: [account])
        #expect(balancer.pick() == .unavailable(retryAt: nil))
    }

    @Test func saysWhenTheFirstAccountFreesUp() {
        let clock = MockClock()
        var accounts = Self.accounts(3, clock: clock)
        accounts[0].rateLimit.coolingDownUntil = clock.now.addingTimeInterval(30)
        accounts[1].rateLimit.coolingDownUntil = clock.now.addingTimeInterval(12)
        accounts[2].rateLimit.coolingDownUntil = clock.now.addingTimeInterval(5)
        accounts[2].disabled = true
        let balancer = Balancer(clock: clock, accounts: accounts)
        #expect(balancer.pick() == .unavailable(retryAt: clock.now.addingTimeInterval(12)))
        clock.advance(by: 12)
        #expect(balancer.pick() == .account(AccountID("acc_1")))
    }

    @Test func responsesDriveTheCooldown() {
        let clock = MockClock()
        let balancer = Balancer(clock: clock, accounts: Self.accounts(2, clock: clock))
        let state = balancer.record(status: 429, headers: [], for: AccountID("acc_0"))
        #expect(state?.coolingDownUntil == clock.now.addingTimeInterval(5))
        #expect(Self.picks(balancer, 4) == [AccountID("acc_1"): 4])
        clock.advance(by: 5)
        balancer.record(status: 200, headers: [], for: AccountID("acc_0"))
        #expect(balancer.snapshot[0].rateLimit.consecutiveRateLimits == 0)
        #expect(Self.picks(balancer, 4) == [AccountID("acc_0"): 2, AccountID("acc_1"): 2])
        #expect(balancer.record(status: 429, headers: [], for: AccountID("nope")) == nil)
    }

    @Test func refresherChangesReachTheBalancer() {
        let clock = MockClock()
        let balancer = Balancer(clock: clock, accounts: Self.accounts(2, clock: clock))
        var changed = Self.accounts(2, clock: clock)[1]
        changed.status = .needsReauth
        balancer.accountDidChange(changed)
        #expect(Self.picks(balancer, 3) == [AccountID("acc_0"): 3])
        balancer.accountDidChange(Fixtures.account("acc_9", expiresAt: clock.now.addingTimeInterval(3600)))
        #expect(Self.picks(balancer, 4) == [AccountID("acc_0"): 2, AccountID("acc_9"): 2])
        balancer.removeAccount(AccountID("acc_0"))
        #expect(Self.picks(balancer, 2) == [AccountID("acc_9"): 2])
    }

    @Test func affinityHoldsAndMovesWhenItsAccountBecomesUnavailable() throws {
        let clock = MockClock()
        let affinity = SessionAffinitySelector()
        let balancer = Balancer(selector: affinity, clock: clock, accounts: Self.accounts(3, clock: clock))
        let first = Self.picks(balancer, 20, session: "user-1")
        #expect(first.count == 1 && first.values.first == 20, "one conversation, one account")
        let home = try #require(first.keys.first)
        let other = Self.picks(balancer, 20, session: "user-2")
        #expect(other.count == 1 && other.keys.first != home, "a new conversation takes the next account in rotation")

        balancer.record(status: 429, headers: [("retry-after", "30")], for: home)
        let moved = Self.picks(balancer, 20, session: "user-1")
        #expect(moved.count == 1 && moved.keys.first != home, "moves while its account cools down")
        let newHome = try #require(moved.keys.first)
        clock.advance(by: 30)
        #expect(Self.picks(balancer, 5, session: "user-1") == [newHome: 5], "and stays on its new account")
        #expect(affinity.boundAccount(for: "user-1") == newHome)
    }

    @Test func affinityWithoutASessionRotates() {
        let clock = MockClock()
        let balancer = Balancer(
            selector: SessionAffinitySelector(), clock: clock, accounts: Self.accounts(3, clock: clock))
        #expect(Self.picks(balancer, 9).values.allSatisfy { $0 == 3 })
    }

    @Test func affinityBindingsAreBounded() {
        let clock = MockClock()
        let affinity = SessionAffinitySelector(capacity: 4)
        let balancer = Balancer(selector: affinity, clock: clock, accounts: Self.accounts(2, clock: clock))
        for index in 0..<10 { _ = balancer.pick(session: "s\(index)") }
        #expect(affinity.boundAccount(for: "s0") == nil, "forgotten after two generations")
        #expect(affinity.boundAccount(for: "s9") != nil)
    }
}

@Suite struct CooldownPolicyTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let policy = CooldownPolicy()

    @Test func retryAfterSeconds() {
        let state = policy.next(after: RateLimitState(), status: 429, headers: [("Retry-After", "17")], now: now)
        #expect(state.coolingDownUntil == now.addingTimeInterval(17))
    }

    @Test func unifiedResetEpochSeconds() {
        let headers = [
            ("anthropic-ratelimit-unified-status", "rejected"),
            ("anthropic-ratelimit-unified-reset", "\(Int(now.timeIntervalSince1970) + 3600)"),
        ]
        let state = policy.next(after: RateLimitState(), status: 429, headers: headers, now: now)
        #expect(state.coolingDownUntil == now.addingTimeInterval(3600))
        #expect(state.unifiedStatus == "rejected")
    }

    @Test(arguments: [
        ("2027-01-15T08:00:42Z", 42.0), ("2027-01-15T08:00:42.500Z", 42.5), ("2027-01-15T09:01:00+01:00", 60.0),
    ])
    func requestsResetRFC3339(_ value: String, _ seconds: Double) {
        let state = policy.next(
            after: RateLimitState(), status: 429, headers: [("anthropic-ratelimit-requests-reset", value)], now: now)
        #expect(state.coolingDownUntil == now.addingTimeInterval(seconds))
    }

    @Test func retryAfterWinsOverResetHeaders() {
        let headers = [
            ("anthropic-ratelimit-unified-reset", "\(Int(now.timeIntervalSince1970) + 3600)"), ("retry-after", "9"),
        ]
        #expect(policy.resetHint(headers, now: now) == now.addingTimeInterval(9))
    }

    @Test func hintsInThePastAreIgnored() {
        let headers = [("anthropic-ratelimit-unified-reset", "\(Int(now.timeIntervalSince1970) - 10)")]
        let state = policy.next(after: RateLimitState(), status: 429, headers: headers, now: now)
        #expect(state.coolingDownUntil == now.addingTimeInterval(5), "falls back")
    }

    @Test func aBare429DoublesWhileItRepeatsAndResetsOnSuccess() {
        var state = RateLimitState()
        var cooldowns: [TimeInterval] = []
        for _ in 0..<9 {
            state = policy.next(after: state, status: 429, headers: [], now: now)
            cooldowns.append(state.coolingDownUntil!.timeIntervalSince(now))
        }
        #expect(cooldowns == [5, 10, 20, 40, 80, 160, 300, 300, 300])
        state = policy.next(after: state, status: 200, headers: [], now: now)
        #expect(state.consecutiveRateLimits == 0 && state.coolingDownUntil == nil)
        state = policy.next(after: state, status: 429, headers: [], now: now)
        #expect(state.coolingDownUntil == now.addingTimeInterval(5))
    }

    @Test func overloadedCoolsNothingDown() {
        #expect(policy.next(after: RateLimitState(), status: 529, headers: [], now: now) == RateLimitState())
    }

    @Test func otherErrorsLeaveTheStateAlone() {
        var before = RateLimitState()
        before.coolingDownUntil = now.addingTimeInterval(3)
        before.consecutiveRateLimits = 2
        #expect(policy.next(after: before, status: 500, headers: [], now: now) == before)
        #expect(policy.next(after: before, status: 400, headers: [], now: now) == before)
    }
}
