import Foundation

/// Runs blocking work (sockets, subprocesses) on a thread of its own. Not on Swift's cooperative pool, where an
/// in-process server answers; and not on GCD's global queues either: on Linux they share a small thread pool
/// with the concurrency runtime, and a few blocked GCD threads stall the server for seconds until libdispatch
/// notices and adds threads.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    StallWatchdog.ensureRunning()
    return try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// `blocking` for the proxy's own one-shot commands (`accounts import`, `check-config`, …), at most two at a time
/// in the test process. Each loads a core for a while (start-up, key derivation); dozens of test rigs set up at
/// once would otherwise swamp a small machine, and the timing-sensitive tests running beside them fail.
public func throttledCommand<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    await CommandGate.shared.enter()
    do {
        let result = try await blocking(body)
        await CommandGate.shared.leave()
        return result
    } catch {
        await CommandGate.shared.leave()
        throw error
    }
}

actor CommandGate {
    static let shared = CommandGate(limit: 2)

    private var available: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) {
        available = limit
    }

    func enter() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func leave() {
        if waiting.isEmpty {
            available += 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
