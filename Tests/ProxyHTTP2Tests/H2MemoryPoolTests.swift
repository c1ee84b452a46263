import Testing

@testable import ProxyHTTP2

@Suite struct H2MemoryPoolTests {
    @Test(arguments: [(1, 0), (32, 0), (33, 1), (64, 1), (65, 2), (4096, 7), (4097, nil)] as [(Int, Int?)])
    func sizeClassesAreTheSmallestBlockThatHolds(_ needed: Int, _ expected: Int?) {
        #expect(H2MemoryPool.sizeClass(needed) == expected)
        if let expected { #expect(H2MemoryPool.blockSize(expected) >= needed) }
    }

    @Test func aReleasedBlockIsReusedForTheSameClass() throws {
        let pool = H2MemoryPool()
        let first = try #require(pool.allocate(10))
        pool.release(first)
        let second = try #require(pool.allocate(12))
        #expect(second == first)
        let other = try #require(pool.allocate(500))
        #expect(other != first)
        pool.release(second)
        pool.release(other)
    }

    @Test(arguments: [5, 100, 3000, 10_000])
    func reallocationKeepsTheBytes(_ start: Int) throws {
        let pool = H2MemoryPool()
        var pointer = try #require(pool.allocate(start))
        for index in 0..<start {
            pointer.storeBytes(of: UInt8(truncatingIfNeeded: index), toByteOffset: index, as: UInt8.self)
        }
        pointer = try #require(pool.reallocate(pointer, start * 3))
        let kept = (0..<start).allSatisfy {
            pointer.load(fromByteOffset: $0, as: UInt8.self) == UInt8(truncatingIfNeeded: $0)
        }
        #expect(kept)
        // Shrinking (or growing within the block) keeps the block.
        #expect(pool.reallocate(pointer, 1) == pointer)
        pool.release(pointer)
    }

    @Test func zeroedAllocationsAreZeroAndOverflowIsRefused() throws {
        let pool = H2MemoryPool()
        let dirty = try #require(pool.allocate(200))
        dirty.initializeMemory(as: UInt8.self, repeating: 0xAB, count: 200)
        pool.release(dirty)
        let zeroed = try #require(pool.allocateZeroed(10, 20))  // the same block again
        #expect((0..<200).allSatisfy { zeroed.load(fromByteOffset: $0, as: UInt8.self) == 0 })
        pool.release(zeroed)
        #expect(pool.allocateZeroed(Int.max, 2) == nil)
    }
}
