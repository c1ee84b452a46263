/// The file store is what the refresher and the admin API read and change accounts through.
extension FileAccountStore: AccountRepository {
    public func account(_ id: AccountID) throws -> Account? {
        try get(id)
    }

    /// Read, change and durable save happen inside the actor, so two updates of one account never interleave.
    @discardableResult
    public func update(_ id: AccountID, _ change: @Sendable (inout Account) -> Void) throws -> Account? {
        guard var account = try get(id) else { return nil }
        change(&account)
        try save(account)
        return account
    }

    public func all() throws -> [Account] {
        try list()
    }
}
