/// Open streams by id, for lookups on every frame: open addressing with linear probing, the slot taken from the id
/// itself. Stream ids of one side rise by two (RFC 9113 §5.1.1), so the streams open at once sit in neighbouring
/// slots and a lookup costs a shift and a compare instead of hashing the id. Deleting shifts the following run back,
/// so no tombstones pile up on a long-lived connection. Value semantics (copy on write), like the dictionary it
/// replaces: iterating while the body removes entries iterates the table as it was.
struct H2StreamTable<Value>: Sequence {
    /// 0 marks a free slot: stream 0 is the connection, never a stream.
    private var ids: [Int32]
    private var values: [Value?]
    private(set) var count = 0
    /// Entries not in their home slot. Stream ids rise one by one, so usually none are, and a removal then only
    /// clears its slot: the backward shift would otherwise walk the whole run of streams after it for nothing.
    private var displaced = 0

    init() {
        ids = Array(repeating: 0, count: Self.initialCapacity)
        values = Array(repeating: nil, count: Self.initialCapacity)
    }

    static var initialCapacity: Int { 16 }

    var isEmpty: Bool { count == 0 }

    /// Free slots kept: at most half the slots are in use, so runs stay short.
    var capacity: Int { ids.count }

    subscript(id: Int32) -> Value? {
        get { find(id).flatMap { values[$0] } }
        set {
            switch consume newValue {
            case .some(let value): insert(value, for: id)
            case .none: removeValue(forKey: id)
            }
        }
    }

    /// Changes the stream's value in place (no copy out and back); nil when there is no such stream.
    mutating func withValue<Result>(forKey id: Int32, _ body: (inout Value) -> Result) -> Result? {
        guard let index = find(id) else { return nil }
        return body(&values[index]!)
    }

    @discardableResult
    mutating func removeValue(forKey id: Int32) -> Value? {
        guard var hole = find(id) else { return nil }
        // Moved out, not copied and then cleared (a retain and a release of each reference in it).
        let removed = values[hole].take()
        let mask = ids.count - 1
        if slot(id, mask: mask) != hole { displaced -= 1 }
        ids[hole] = 0
        count -= 1
        guard displaced > 0 else { return removed }
        // Backward shift: an entry after the hole moves into it unless its home slot lies cyclically in
        // (hole, index], where a lookup would still reach it without passing the hole.
        var index = (hole + 1) & mask
        while ids[index] != 0 {
            let home = slot(ids[index], mask: mask)
            let reachable = hole <= index ? (hole < home && home <= index) : (hole < home || home <= index)
            if !reachable {
                // It was displaced (its home is not `index`); in the hole it may be home.
                if home == hole { displaced -= 1 }
                ids[hole] = ids[index]
                values.swapAt(hole, index)  // the hole's value is nil
                ids[index] = 0
                hole = index
            }
            index = (index + 1) & mask
        }
        return removed
    }

    mutating func removeAll() {
        guard count > 0 else { return }
        ids = Array(repeating: 0, count: Self.initialCapacity)
        values = Array(repeating: nil, count: Self.initialCapacity)
        count = 0
        displaced = 0
    }

    struct Iterator: IteratorProtocol {
        fileprivate let ids: [Int32]
        fileprivate let values: [Value?]
        fileprivate var index = 0

        mutating func next() -> (key: Int32, value: Value)? {
            while index < ids.count {
                defer { index += 1 }
                if ids[index] != 0, let value = values[index] { return (ids[index], value) }
            }
            return nil
        }
    }

    func makeIterator() -> Iterator {
        Iterator(ids: ids, values: values)
    }

    // MARK: - Slots

    private func slot(_ id: Int32, mask: Int) -> Int {
        // Ids of one side share their low bit: dropping it puts consecutive streams in consecutive slots.
        Int(UInt32(bitPattern: id) >> 1) & mask
    }

    private func find(_ id: Int32) -> Int? {
        guard id != 0 else { return nil }
        let mask = ids.count - 1
        var index = slot(id, mask: mask)
        while true {
            let stored = ids[index]
            if stored == id { return index }
            if stored == 0 { return nil }
            index = (index + 1) & mask
        }
    }

    /// `consuming`: the value is moved into its slot, not copied (a retain and release of each reference in it).
    private mutating func insert(_ value: consuming Value, for id: Int32) {
        precondition(id != 0, "stream 0 is the connection")
        if let index = find(id) {
            values[index] = value
            return
        }
        if (count + 1) * 2 > ids.count { grow() }
        let mask = ids.count - 1
        var index = slot(id, mask: mask)
        while ids[index] != 0 { index = (index + 1) & mask }
        if index != slot(id, mask: mask) { displaced += 1 }
        ids[index] = id
        values[index] = value
        count += 1
    }

    private mutating func grow() {
        let oldIDs = ids
        let oldValues = values
        ids = Array(repeating: 0, count: oldIDs.count * 2)
        values = Array(repeating: nil, count: oldIDs.count * 2)
        count = 0
        displaced = 0
        for index in oldIDs.indices where oldIDs[index] != 0 {
            insert(oldValues[index]!, for: oldIDs[index])
        }
    }
}
