import Foundation

/// Runs blocking work (sockets, subprocesses) on a thread of its own. Not on Swift's cooperative pool, where an
/// in-process server answers; and not on GCD's global queues either: on Linux they share a small thread pool
/// with the concurrency runtime, and a few blocked GCD threads stall the server for seconds until libdispatch
/// notices and adds threads.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
}
