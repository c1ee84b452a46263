import Foundation
import ProxyCore
import ProxyTesting
import Synchronization
import Testing

/// Records what the refresher announces.
final class RecordingObserver: AccountObserver {
    private let changes = Mutex<[Account]>([])
    var accounts: [Account] { changes.withLock { $0 } }
    func accountDidChange(_ account: Account) { changes.withLock { $0.append(account) } }
}

struct RefresherHarness {
    let clock = MockClock()
    let endpoint: FakeTokenEndpoint
    let repository: InMemoryAccountRepository
    let observer = RecordingObserver()
    let refresher: TokenRefresher
    let id = AccountID("acc_1")

    init(
        expiresIn: TimeInterval, endpoint: FakeTokenEndpoint, retry: OAuthRetryPolicy = OAuthRetryPolicy(maxAttempts: 1)
    ) {
        self.endpoint = endpoint
        repository = InMemoryAccountRepository([
            Fixtures.account("acc_1", expiresAt: clock.now.addingTimeInterval(expiresIn))
        ])
        let client = OAuthClient(settings: OAuthSettings(), transport: endpoint, clock: clock, retry: retry)
        refresher = TokenRefresher(
            repository: repository, client: client, clock: clock, observer: observer, logger: Fixtures.quietLogger)
    }

    func stored() async throws -> Account { try #require(await repository.account(id)) }
}

@Suite struct TokenRefresherTests {
    @Test func aValidTokenComesWithoutCallingTheEndpoint() async throws {
        let harness = RefresherHarness(expiresIn: 3600, endpoint: FakeTokenEndpoint(.init(status: 500)))
        #expect(harness.refresher.cachedToken(for: harness.id) == nil, "cold cache")
        #expect(try await harness.refresher.validToken(for: harness.id) == Secret("access-old"))
        #expect(harness.refresher.cachedToken(for: harness.id) == Secret("access-old"), "warm after the first call")
        #expect(harness.endpoint.callCount == 0)
    }

    @Test func theCachedTokenComesWithItsAuthorizationValue() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.tokens(access: "access-new", refresh: "refresh-new"))
        let harness = RefresherHarness(expiresIn: 30, endpoint: endpoint)
        #expect(harness.refresher.cachedAuthorization(for: harness.id) == nil, "cold cache")
        _ = try await harness.refresher.validToken(for: harness.id)
        let cached = try #require(harness.refresher.cachedAuthorization(for: harness.id))
        #expect(cached.token == Secret("access-new"))
        #expect(cached.authorization == Secret("Bearer access-new"), "made with the refreshed token")
    }

    @Test func thousandConcurrentCallersShareOneRefresh() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.tokens(access: "access-new", refresh: "refresh-new"))
        let harness = RefresherHarness(expiresIn: 30, endpoint: endpoint)
        endpoint.hold()
        let tokens = try await withThrowingTaskGroup(of: Secret.self) { group in
            for _ in 0..<1000 { group.addTask { try await harness.refresher.validToken(for: harness.id) } }
            await endpoint.waitForCalls(1)
            for _ in 0..<100 { await Task.yield() }
            endpoint.release()
            return try await group.reduce(into: [Secret]()) { $0.append($1) }
        }
        #expect(tokens.count == 1000)
        #expect(tokens.allSatisfy { $0 == Secret("access-new") })
        #expect(endpoint.callCount == 1)
        let stored = try await harness.stored()
        #expect(stored.credentials.accessToken == Secret("access-new"))
        #expect(stored.credentials.refreshToken == Secret("refresh-new"), "the rotated refresh token is kept")
        #expect(stored.credentials.expiresAt == harness.clock.now.addingTimeInterval(28800))
        #expect(stored.lastRefreshAt == harness.clock.now)
        #expect(harness.observer.accounts.last?.credentials.accessToken == Secret("access-new"))
    }

    @Test func aFailedRefreshFailsEveryWaiterAndMarksTheAccount() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.error(503, "unavailable"))
        let harness = RefresherHarness(expiresIn: -10, endpoint: endpoint)
        endpoint.hold()
        let results = await withTaskGroup(of: Result<Secret, any Error>.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    do { return .success(try await harness.refresher.validToken(for: harness.id)) } catch {
                        return .failure(error)
                    }
                }
            }
            await endpoint.waitForCalls(1)
            for _ in 0..<50 { await Task.yield() }
            endpoint.release()
            return await group.reduce(into: [Result<Secret, any Error>]()) { $0.append($1) }
        }
        #expect(endpoint.callCount == 1)
        for result in results {
            #expect(throws: OAuthError.transient(status: 503, reason: "unavailable", attempts: 1)) { try result.get() }
        }
        let stored = try await harness.stored()
        #expect(stored.status == .inactive, "expired token + transient failure")
        #expect(stored.lastRefreshError?.contains("503") == true)
        #expect(stored.credentials.refreshToken == Secret("refresh-old"), "tokens kept")
    }

    @Test func aTransientFailureBeforeExpiryKeepsTheAccountActiveAndServesTheOldToken() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.error(500, "oops"))
        let harness = RefresherHarness(expiresIn: 30, endpoint: endpoint)
        #expect(try await harness.refresher.validToken(for: harness.id) == Secret("access-old"))
        #expect(try await harness.refresher.validToken(for: harness.id) == Secret("access-old"))
        #expect(endpoint.callCount == 1, "the hold-off spares the endpoint")
        let stored = try await harness.stored()
        #expect(stored.status == .active)
        #expect(stored.lastRefreshError != nil)
    }

    @Test func invalidGrantMarksNeedsReauthWithoutRetrying() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.error(400, "invalid_grant", "revoked"))
        let harness = RefresherHarness(expiresIn: 10, endpoint: endpoint, retry: OAuthRetryPolicy(maxAttempts: 5))
        await #expect(throws: OAuthError.invalidGrant(description: "revoked")) {
            try await harness.refresher.validToken(for: harness.id)
        }
        #expect(endpoint.callCount == 1)
        let stored = try await harness.stored()
        #expect(stored.status == .needsReauth)
        #expect(stored.lastRefreshError?.contains("invalid_grant") == true)
        #expect(harness.observer.accounts.last?.status == .needsReauth)
        harness.clock.advance(by: 3600)
        await #expect(throws: OAuthError.needsReauth(harness.id)) {
            try await harness.refresher.validToken(for: harness.id)
        }
        #expect(endpoint.callCount == 1, "a rejected refresh token is never tried again")
    }

    @Test func aMissingRefreshTokenInTheResponseKeepsTheOldOne() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.tokens(access: "access-new", refresh: nil))
        let harness = RefresherHarness(expiresIn: 10, endpoint: endpoint)
        #expect(try await harness.refresher.validToken(for: harness.id) == Secret("access-new"))
        let stored = try await harness.stored()
        #expect(stored.credentials.refreshToken == Secret("refresh-old"))
    }

    @Test func rotatedRefreshTokensAreUsedForTheNextRefresh() async throws {
        let endpoint = FakeTokenEndpoint(
            TokenEndpointResponses.tokens(access: "access-2", refresh: "refresh-2", expiresIn: 600),
            TokenEndpointResponses.tokens(access: "access-3", refresh: "refresh-3", expiresIn: 600))
        let harness = RefresherHarness(expiresIn: 10, endpoint: endpoint)
        #expect(try await harness.refresher.validToken(for: harness.id) == Secret("access-2"))
        harness.clock.advance(by: 550)
        #expect(try await harness.refresher.validToken(for: harness.id) == Secret("access-3"))
        #expect(endpoint.bodies.map { $0["refresh_token"] } == ["refresh-old", "refresh-2"])
        #expect(try await harness.stored().credentials.refreshToken == Secret("refresh-3"))
    }

    @Test func forceRefreshRunsOncePerRejectedToken() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.tokens(access: "access-new", refresh: "refresh-new"))
        let harness = RefresherHarness(expiresIn: 3600, endpoint: endpoint)
        let old = try await harness.refresher.validToken(for: harness.id)
        endpoint.hold()
        let tokens = try await withThrowingTaskGroup(of: Secret.self) { group in
            for _ in 0..<100 {
                group.addTask { try await harness.refresher.forceRefresh(for: harness.id, rejectedToken: old) }
            }
            await endpoint.waitForCalls(1)
            for _ in 0..<50 { await Task.yield() }
            endpoint.release()
            return try await group.reduce(into: [Secret]()) { $0.append($1) }
        }
        #expect(tokens.allSatisfy { $0 == Secret("access-new") })
        #expect(endpoint.callCount == 1)
        // A late 401 for the token already replaced changes nothing.
        #expect(try await harness.refresher.forceRefresh(for: harness.id, rejectedToken: old) == Secret("access-new"))
        #expect(try await harness.refresher.validToken(for: harness.id) == Secret("access-new"))
        #expect(endpoint.callCount == 1)
    }

    @Test func forceRefreshDropsTheRejectedTokenFromTheFastPath() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.error(503, "down"))
        let harness = RefresherHarness(expiresIn: 3600, endpoint: endpoint)
        let old = try await harness.refresher.validToken(for: harness.id)
        await #expect(throws: OAuthError.self) {
            try await harness.refresher.forceRefresh(for: harness.id, rejectedToken: old)
        }
        #expect(harness.refresher.cachedToken(for: harness.id) == nil)
    }

    @Test func unknownAccountsAreReported() async {
        let harness = RefresherHarness(expiresIn: 3600, endpoint: FakeTokenEndpoint(.init(status: 500)))
        await #expect(throws: OAuthError.unknownAccount(AccountID("nope"))) {
            try await harness.refresher.validToken(for: AccountID("nope"))
        }
    }
}

@Suite struct RefreshLockTests {
    @Test func refreshersSharingALockAndARepositoryRefreshOnce() async throws {
        let clock = MockClock()
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.tokens(access: "access-new", refresh: "refresh-new"))
        let repository = InMemoryAccountRepository([
            Fixtures.account("acc_1", expiresAt: clock.now.addingTimeInterval(5))
        ])
        let client = OAuthClient(settings: OAuthSettings(), transport: endpoint, clock: clock)
        let lock = InProcessRefreshLock()
        let refreshers = (0..<2).map { _ in
            TokenRefresher(
                repository: repository, client: client, clock: clock, lock: lock, logger: Fixtures.quietLogger)
        }
        endpoint.hold()
        let tokens = try await withThrowingTaskGroup(of: Secret.self) { group in
            for index in 0..<200 {
                group.addTask { try await refreshers[index % 2].validToken(for: AccountID("acc_1")) }
            }
            await endpoint.waitForCalls(1)
            for _ in 0..<50 { await Task.yield() }
            endpoint.release()
            return try await group.reduce(into: [Secret]()) { $0.append($1) }
        }
        #expect(tokens.allSatisfy { $0 == Secret("access-new") })
        #expect(endpoint.callCount == 1, "the second refresher found the new token under the lock")
    }
}
