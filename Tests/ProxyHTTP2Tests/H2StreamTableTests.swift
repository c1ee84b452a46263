import Testing

@testable import ProxyHTTP2

@Suite struct H2StreamTableTests {
    @Test func storesFindsReplacesAndRemovesStreams() {
        var table = H2StreamTable<String>()
        #expect(table.isEmpty)
        table[1] = "one"
        table[3] = "three"
        table[3] = "three again"
        #expect(table.count == 2)
        #expect(table[1] == "one")
        #expect(table[3] == "three again")
        #expect(table[5] == nil)
        #expect(table[0] == nil)
        #expect(table.removeValue(forKey: 1) == "one")
        #expect(table.removeValue(forKey: 1) == nil)
        table[3] = nil
        #expect(table.isEmpty)
        #expect(table[3] == nil)
    }

    @Test func changesAValueInPlace() {
        var table = H2StreamTable<[Int]>()
        table[7] = [1]
        #expect(table.withValue(forKey: 7) { $0.append(2) } != nil)
        #expect(table.withValue(forKey: 9) { $0.append(3) } == nil)
        #expect(table[7] == [1, 2])
    }

    /// Ids that land in the same slot (a multiple of the capacity apart) form one run; removing from the middle of
    /// the run, and a run that wraps past the last slot, must keep every other id reachable.
    @Test func removalKeepsCollidingAndWrappingRunsReachable() {
        let slots = Int32(H2StreamTable<Int>.initialCapacity)
        var table = H2StreamTable<Int32>()
        // Slot of id: (id >> 1) & (capacity - 1). These share the last slot, so their run wraps to slot 0 and on.
        let colliding: [Int32] = [2 * slots - 1, 4 * slots - 1, 6 * slots - 1]
        let neighbour: Int32 = 1  // home slot 0, where the wrapped run passes
        for id in colliding + [neighbour] { table[id] = id }
        #expect(table.capacity == Int(slots))
        table[colliding[0]] = nil
        for id in colliding.dropFirst() + [neighbour] { #expect(table[id] == id, "id \(id)") }
        table[colliding[1]] = nil
        #expect(table[colliding[2]] == colliding[2])
        #expect(table[neighbour] == neighbour)
        #expect(table.count == 2)
    }

    /// Against `Dictionary` as the model, over many streams (growth included) opened and closed in random order.
    @Test func behavesLikeADictionaryUnderRandomOpensAndCloses() {
        var generator = SplitMix(seed: 0x5eed)
        var table = H2StreamTable<Int>()
        var model: [Int32: Int] = [:]
        var nextID: Int32 = 1
        var mismatches = 0
        for step in 0..<20_000 {
            let open = model.isEmpty || generator.next() % 3 != 0
            if open {
                // Mostly consecutive ids as HTTP/2 gives them, sometimes a jump that collides.
                nextID += generator.next() % 5 == 0 ? Int32(2 * (1 + generator.next() % 64)) : 2
                table[nextID] = step
                model[nextID] = step
            } else {
                let victim = Array(model.keys)[Int(generator.next() % UInt64(model.count))]
                if table.removeValue(forKey: victim) != model.removeValue(forKey: victim) { mismatches += 1 }
            }
            if step % 97 == 0 { mismatches += Self.differences(table, model) }
        }
        #expect(mismatches == 0)
        #expect(table.capacity >= 2 * table.count)
    }

    /// Hostile ids, as a client may choose them: many sharing a few home slots near the end (runs that wrap past
    /// the last slot), negative ids, checked against `Dictionary` after every single operation.
    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func collidingAndNegativeIDsAgainstADictionaryAfterEveryStep(seed: UInt64) {
        var generator = SplitMix(seed: seed)
        var table = H2StreamTable<Int>()
        var model: [Int32: Int] = [:]
        var mismatches = 0
        for step in 0..<4_000 {
            let home = Int32([0, 13, 14, 15, 31, 63][Int(generator.next() % 6)])
            var id = home * 2 + 1 + Int32(generator.next() % 40) * 512
            if generator.next() % 7 == 0 { id = -id }
            switch generator.next() % 5 {
            case 0, 1, 2:
                table[id] = step
                model[id] = step
            case 3:
                if table.removeValue(forKey: id) != model.removeValue(forKey: id) { mismatches += 1 }
            default:
                guard !model.isEmpty else { break }
                let victim = model.keys.sorted()[Int(generator.next() % UInt64(model.count))]
                table[victim] = nil
                model[victim] = nil
            }
            mismatches += Self.differences(table, model)
        }
        #expect(mismatches == 0)
    }

    @Test func insertingWhileIteratingGrowsWithoutDisturbingTheLoop() {
        var table = H2StreamTable<Int32>()
        for id in stride(from: Int32(1), through: 13, by: 2) { table[id] = id }
        var seen = 0
        for (id, _) in table {
            seen += 1
            table[id + 1000] = id
        }
        #expect(seen == 7)
        #expect(table.count == 14)
    }

    /// How far the table is from the model: lookups that differ, ids listed twice, a listing or count that differs.
    static func differences(_ table: H2StreamTable<Int>, _ model: [Int32: Int]) -> Int {
        var differences = 0
        for (id, value) in model where table[id] != value { differences += 1 }
        let listed = Dictionary(table.map { ($0.key, $0.value) }) { first, _ in
            differences += 1
            return first
        }
        if listed != model || table.count != model.count { differences += 1 }
        return differences
    }

    /// Like a dictionary, iterating sees the table as it was when the loop began, whatever the body removes.
    @Test func iteratingWhileRemovingSeesTheOldTable() {
        var table = H2StreamTable<Int32>()
        for id in stride(from: Int32(1), through: 21, by: 2) { table[id] = id }
        var seen: [Int32] = []
        for (id, _) in table {
            seen.append(id)
            table.removeValue(forKey: id)
            table.removeValue(forKey: id + 2)
        }
        #expect(seen.sorted() == Array(stride(from: Int32(1), through: 21, by: 2)))
        #expect(table.isEmpty)
    }

    @Test func removeAllEmptiesTheTable() {
        var table = H2StreamTable<Int>()
        for id in stride(from: Int32(1), through: 99, by: 2) { table[id] = Int(id) }
        table.removeAll()
        #expect(table.isEmpty)
        #expect(table[1] == nil)
        #expect(Array(table).isEmpty)
    }
}

/// A small deterministic generator (the test must not depend on the system's random source).
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
