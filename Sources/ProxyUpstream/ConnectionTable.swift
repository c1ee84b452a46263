/// A pool's per-connection entries: a handful (at most `max_connections`, usually one or two), looked up on every
/// request. A linear scan of a small array costs less than hashing the id, and the entries stay in the order they
/// were added. A value type, like the dictionary it replaces: a loop that changes the table iterates it as it was.
struct ConnectionTable<Value>: Sequence {
    typealias Key = PoolStateMachine.ConnectionID

    private var entries: [(key: Key, value: Value)] = []

    init() {}

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    var keys: [Key] { entries.map(\.key) }
    var values: [Value] { entries.map(\.value) }

    subscript(key: Key) -> Value? {
        get { index(of: key).map { entries[$0].value } }
        set {
            guard let index = index(of: key) else {
                if let newValue { entries.append((key, newValue)) }
                return
            }
            if let newValue { entries[index].value = newValue } else { entries.remove(at: index) }
        }
    }

    /// `body`'s reading of the entry for `key`: only what it returns leaves the table, where the subscript returns a
    /// copy of the whole value (a retain of every reference in it).
    func read<Result>(_ key: Key, _ body: (Value) -> Result) -> Result? {
        guard let index = index(of: key) else { return nil }
        return body(entries[index].value)
    }

    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        guard let index = index(of: key) else { return nil }
        return entries.remove(at: index).value
    }

    func makeIterator() -> IndexingIterator<[(key: Key, value: Value)]> { entries.makeIterator() }

    private func index(of key: Key) -> Int? {
        for index in entries.indices where entries[index].key == key { return index }
        return nil
    }
}

extension ConnectionTable: Sendable where Value: Sendable {}
