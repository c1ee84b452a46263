import CNGHTTP2

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// nghttp2's memory for one session (`nghttp2_mem`), from free lists by size class: a session allocates and frees
/// the same few sizes for every stream, header and frame (about 19 allocations per relayed request over the two
/// sessions), and the C allocator's shared paths are slower than taking a block from a list. One session, one
/// thread (its event loop), so no locks. Blocks of up to 4 KiB are kept (at most 32 of each class up to 512 bytes and
/// 8 of each larger one: under 90 KiB per session); larger ones go straight to `malloc`. Everything kept is freed
/// with the pool, after the session.
final class H2MemoryPool {
    /// Each block starts with a header: its class (or -1 for a large block) and, for a large block, its size.
    private static let headerSize = 16
    private static let smallestBlock = 32
    private static let classCount = 8  // 32 … 4096 bytes

    /// How many free blocks of a class are kept for reuse.
    static func keptLimit(_ sizeClass: Int) -> Int { sizeClass <= 4 ? 32 : 8 }

    /// The pool's whole state, in raw memory that nghttp2's callbacks reach through their user-data pointer without
    /// touching a Swift object (no reference counting per allocation): the free lists' heads, then their lengths.
    private let table: UnsafeMutableRawPointer

    init() {
        table = .allocate(byteCount: 2 * 8 * Self.classCount, alignment: 8)
        table.initializeMemory(as: UInt8.self, repeating: 0, count: 2 * 8 * Self.classCount)
    }

    deinit {
        let heads = Self.heads(table)
        for index in 0..<Self.classCount {
            var block = heads[index]
            while let current = block {
                block = current.load(fromByteOffset: Self.headerSize, as: UnsafeMutableRawPointer?.self)
                Glibc.free(current)
            }
        }
        table.deallocate()
    }

    private static func heads(_ table: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        table.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }

    private static func counts(_ table: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Int> {
        (table + 8 * classCount).assumingMemoryBound(to: Int.self)
    }

    /// The class whose blocks hold `needed` bytes (header included), if any.
    static func sizeClass(_ needed: Int) -> Int? {
        let steps = (needed - 1) / smallestBlock
        let index = steps == 0 ? 0 : Int.bitWidth - steps.leadingZeroBitCount
        return index < classCount ? index : nil
    }

    static func blockSize(_ sizeClass: Int) -> Int { smallestBlock << sizeClass }

    func allocate(_ size: Int) -> UnsafeMutableRawPointer? { Self.allocate(table, size) }
    func release(_ pointer: UnsafeMutableRawPointer?) { Self.release(table, pointer) }
    func reallocate(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
        Self.reallocate(table, pointer, size)
    }
    func allocateZeroed(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
        Self.allocateZeroed(table, count, size)
    }

    private static func allocate(_ table: UnsafeMutableRawPointer, _ size: Int) -> UnsafeMutableRawPointer? {
        let needed = size + headerSize
        guard let sizeClass = sizeClass(needed) else {
            guard let block = Glibc.malloc(needed) else { return nil }
            block.storeBytes(of: -1, as: Int.self)
            block.storeBytes(of: size, toByteOffset: 8, as: Int.self)
            return block + headerSize
        }
        let heads = heads(table)
        let block: UnsafeMutableRawPointer
        if let kept = heads[sizeClass] {
            heads[sizeClass] = kept.load(fromByteOffset: headerSize, as: UnsafeMutableRawPointer?.self)
            counts(table)[sizeClass] -= 1
            block = kept
        } else {
            guard let made = Glibc.malloc(blockSize(sizeClass)) else { return nil }
            block = made
        }
        block.storeBytes(of: sizeClass, as: Int.self)
        return block + headerSize
    }

    private static func release(_ table: UnsafeMutableRawPointer, _ pointer: UnsafeMutableRawPointer?) {
        guard let pointer else { return }
        let block = pointer - headerSize
        let sizeClass = block.load(as: Int.self)
        let counts = counts(table)
        guard sizeClass >= 0, counts[sizeClass] < keptLimit(sizeClass) else {
            Glibc.free(block)
            return
        }
        let heads = heads(table)
        block.storeBytes(of: heads[sizeClass], toByteOffset: headerSize, as: UnsafeMutableRawPointer?.self)
        heads[sizeClass] = block
        counts[sizeClass] += 1
    }

    /// How many bytes the block behind `pointer` can hold.
    private static func usableSize(_ pointer: UnsafeMutableRawPointer) -> Int {
        let block = pointer - headerSize
        let sizeClass = block.load(as: Int.self)
        if sizeClass < 0 { return block.load(fromByteOffset: 8, as: Int.self) }
        return blockSize(sizeClass) - headerSize
    }

    private static func reallocate(
        _ table: UnsafeMutableRawPointer, _ pointer: UnsafeMutableRawPointer?, _ size: Int
    ) -> UnsafeMutableRawPointer? {
        guard let pointer else { return allocate(table, size) }
        let usable = usableSize(pointer)
        if size <= usable { return pointer }
        guard let moved = allocate(table, size) else { return nil }
        moved.copyMemory(from: pointer, byteCount: min(usable, size))
        release(table, pointer)
        return moved
    }

    private static func allocateZeroed(
        _ table: UnsafeMutableRawPointer, _ count: Int, _ size: Int
    ) -> UnsafeMutableRawPointer? {
        let (total, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow, let pointer = allocate(table, total) else { return nil }
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: total)
        return pointer
    }

    /// The `nghttp2_mem` for a session (nghttp2 copies it when the session is made). Valid while the pool lives.
    func nghttp2Memory() -> nghttp2_mem {
        nghttp2_mem(
            mem_user_data: table,
            malloc: { size, table in H2MemoryPool.allocate(table!, size) },
            free: { pointer, table in H2MemoryPool.release(table!, pointer) },
            calloc: { count, size, table in H2MemoryPool.allocateZeroed(table!, count, size) },
            realloc: { pointer, size, table in H2MemoryPool.reallocate(table!, pointer, size) }
        )
    }
}

@available(*, unavailable)
extension H2MemoryPool: Sendable {}
