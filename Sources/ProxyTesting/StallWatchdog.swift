import Foundation
import Synchronization

/// Says on standard error when the test process stalls, so that timing-dependent tests failing together can be
/// told apart by cause:
/// - the process did not run at all (the machine was busy or paused): a plain thread's 1 s sleep took far longer;
/// - Swift's cooperative pool was held: a task queued on it at the tests' own priority did not run for seconds
///   while the plain thread did. Its threads were blocked by a test, or busy with a backlog (at the start of a
///   run, hundreds of tests are queued at once on a pool as wide as the machine has cores).
/// Started by the test rigs (`blocking`, `TestServer`); one thread for the whole test process.
public enum StallWatchdog {
    /// How long either kind of stall must last to be reported.
    static let threshold: UInt64 = 5_000_000_000

    private static let started: Bool = {
        let thread = Thread { watch() }
        thread.name = "stall-watchdog"
        thread.start()
        return true
    }()

    public static func ensureRunning() { _ = started }

    private static let lastTaskRun = Atomic<UInt64>(0)

    private static func watch() {
        lastTaskRun.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
        var poolStalledSince: UInt64?
        while true {
            let before = DispatchTime.now().uptimeNanoseconds
            Task.detached {
                lastTaskRun.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
            }
            Thread.sleep(forTimeInterval: 1)
            let now = DispatchTime.now().uptimeNanoseconds
            if now - before > threshold {
                report("the test process did not run for \(seconds(now - before)) s (machine busy or paused)")
                continue  // the pool did not run either; it is judged from the next round on
            }
            let lastRun = lastTaskRun.load(ordering: .relaxed)
            let quiet = now > lastRun ? now - lastRun : 0
            if quiet > threshold, poolStalledSince == nil {
                poolStalledSince = lastRun
                report(
                    "Swift's cooperative thread pool has run no task for \(seconds(quiet)) s (blocked or backlogged)")
            } else if quiet <= threshold, let since = poolStalledSince {
                poolStalledSince = nil
                report("Swift's cooperative thread pool ran again after \(seconds(lastRun - since)) s")
            }
        }
    }

    private static func seconds(_ nanoseconds: UInt64) -> String {
        String(format: "%.1f", Double(nanoseconds) / 1e9)
    }

    private static func report(_ message: String) {
        FileHandle.standardError.write(Data("[stall watchdog] \(message)\n".utf8))
    }
}
