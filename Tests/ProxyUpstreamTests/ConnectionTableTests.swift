import Testing

@testable import ProxyUpstream

/// The pools' small connection table behaves as the dictionary it replaced: the same lookups, updates and removals
/// after every step of random operations, and a loop that changes the table sees it as it was.
@Suite struct ConnectionTableTests {
    typealias ID = PoolStateMachine.ConnectionID

    @Test(arguments: [1, 2, 3, 4])
    func matchesADictionaryStepByStep(seed: UInt64) {
        var state = seed  // a linear congruential generator: a failing seed replays
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        var table = ConnectionTable<Int>()
        var model: [ID: Int] = [:]
        for step in 0..<2000 {
            let id = ID(value: Int(next() % 6))
            switch next() % 4 {
            case 0, 1:
                table[id] = step
                model[id] = step
            case 2:
                #expect(table.removeValue(forKey: id) == model.removeValue(forKey: id))
            default:
                table[id] = nil
                model[id] = nil
            }
            #expect(table.count == model.count)
            #expect(table.isEmpty == model.isEmpty)
            for probe in 0..<6 { #expect(table[ID(value: probe)] == model[ID(value: probe)]) }
            #expect(Dictionary(uniqueKeysWithValues: table.map { ($0.key, $0.value) }) == model)
            #expect(Set(table.keys) == Set(model.keys))
            #expect(table.values.sorted() == model.values.sorted())
        }
    }

    @Test func aLoopThatRemovesEntriesSeesTheTableAsItWas() {
        var table = ConnectionTable<String>()
        for value in 0..<4 { table[ID(value: value)] = "c\(value)" }
        var seen: [String] = []
        for (id, name) in table {
            seen.append(name)
            table[id] = nil
        }
        #expect(seen == ["c0", "c1", "c2", "c3"])
        #expect(table.isEmpty)
    }
}
