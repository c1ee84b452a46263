/// `account_<id>.json`: the id is restricted so that it can never leave the folder or hide a file.
public enum AccountFileName {
    static let prefix = "account_"
    static let suffix = ".json"

    public static func isValid(_ id: AccountID) -> Bool {
        let raw = id.rawValue.utf8
        return (1...64).contains(raw.count)
            && raw.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x5F || $0 == 0x2D
            }
    }

    static func name(for id: AccountID) throws(VaultError) -> String {
        guard isValid(id) else { throw .invalidAccountID(id.rawValue) }
        return prefix + id.rawValue + suffix
    }

    /// The id a file name claims, or `nil` for a name that is not an account file.
    static func id(from name: String) -> AccountID? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix), name.count > prefix.count + suffix.count else {
            return nil
        }
        return AccountID(String(name.dropFirst(prefix.count).dropLast(suffix.count)))
    }

    static func isAccountFile(_ name: String) -> Bool { id(from: name) != nil }
}
