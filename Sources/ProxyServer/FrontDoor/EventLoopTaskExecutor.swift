import NIOCore

/// Runs Swift tasks on a NIO event loop. A connection's handler task that prefers its channel's event loop
/// never hops threads between the socket and the handler: without it every request went event loop →
/// cooperative pool → event loop, and the wake-ups and context switches cost more CPU than TLS itself
/// (see docs/benchmarks.md). Handlers here are short and never block, so sharing the loop is safe.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
