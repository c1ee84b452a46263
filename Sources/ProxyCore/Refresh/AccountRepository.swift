/// What the refresher, the scheduler and the balancer need from account storage. The vault-backed file store
/// conforms; so will a database store for multi-instance deployments.
public protocol AccountRepository: Sendable {
    func account(_ id: AccountID) async throws -> Account?
    /// Applies `change` to the stored account atomically and persists it; returns the result, `nil` if no such account.
    @discardableResult
    func update(_ id: AccountID, _ change: @Sendable (inout Account) -> Void) async throws -> Account?
    func all() async throws -> [Account]
}

/// Told when the refresher changes an account (new tokens, status), so in-memory views such as the balancer's stay
/// current without reading storage on the hot path.
public protocol AccountObserver: Sendable {
    func accountDidChange(_ account: Account)
}

/// Accounts in memory: for tests, benchmarks, and as the reference behaviour of `AccountRepository`.
public actor InMemoryAccountRepository: AccountRepository {
    private var accounts: [AccountID: Account]
    public private(set) var updateCount = 0

    public init(_ accounts: [Account] = []) {
        self.accounts = Dictionary(accounts.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
    }

    public func account(_ id: AccountID) -> Account? { accounts[id] }

    @discardableResult
    public func update(_ id: AccountID, _ change: @Sendable (inout Account) -> Void) -> Account? {
        guard var account = accounts[id] else { return nil }
        change(&account)
        accounts[id] = account
        updateCount += 1
        return account
    }

    public func all() -> [Account] { accounts.values.sorted { $0.id < $1.id } }

    public func insert(_ account: Account) { accounts[account.id] = account }
}
