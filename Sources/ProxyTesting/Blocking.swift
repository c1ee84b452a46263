import Dispatch

/// Runs blocking work (sockets, subprocesses) on a GCD thread, never on Swift's small cooperative pool: an
/// in-process server answers from that pool, and blocking it would deadlock the test.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try body() })
        }
    }
}
