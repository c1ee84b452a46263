import CMimalloc

/// The process's allocator, named in the start-up log line. The binary links mimalloc so that it replaces malloc
/// for the whole process; `description` checks that it does (memory the Swift runtime allocates lies in mimalloc's
/// heap) instead of trusting the link line.
enum Allocator {
    static var description: String {
        let number = mi_version()  // 209 for 2.0.9
        let version = "\(number / 100).\(number / 10 % 10).\(number % 10)"
        return servesSwiftAllocations
            ? "mimalloc \(version)" : "libc (mimalloc \(version) linked but not serving malloc)"
    }

    private static var servesSwiftAllocations: Bool {
        let block = [UInt8](repeating: 1, count: 4096)
        return block.withUnsafeBufferPointer { buffer in
            buffer.baseAddress.map { mi_is_in_heap_region($0) } ?? false
        }
    }
}
