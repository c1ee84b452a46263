import CJemalloc

/// The process's allocator, named in the start-up log line. The binary links jemalloc so that it replaces malloc
/// for the whole process; `description` checks that it does (an allocation shows up in jemalloc's per-thread
/// counter) instead of trusting the link line.
enum Allocator {
    static var description: String {
        guard let version = jemallocVersion else { return "libc" }
        return servesMalloc ? "jemalloc \(version)" : "libc (jemalloc \(version) linked but not serving malloc)"
    }

    private static var jemallocVersion: String? {
        var version: UnsafePointer<CChar>?
        var length = MemoryLayout<UnsafePointer<CChar>?>.size
        guard mallctl("version", &version, &length, nil, 0) == 0, let version else { return nil }
        return String(cString: version)
    }

    /// Whether the Swift runtime's allocations reach jemalloc: a 4 KiB array must show up in jemalloc's count of
    /// bytes this thread allocated.
    private static var servesMalloc: Bool {
        let size = 4096
        guard let before = allocatedByThisThread() else { return false }
        let block = [UInt8](repeating: 1, count: size)
        let after = withExtendedLifetime(block) { allocatedByThisThread() }
        guard let after else { return false }
        return after >= before + UInt64(size)
    }

    private static func allocatedByThisThread() -> UInt64? {
        var value: UInt64 = 0
        var length = MemoryLayout<UInt64>.size
        return mallctl("thread.allocated", &value, &length, nil, 0) == 0 ? value : nil
    }
}
