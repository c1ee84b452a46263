import NIOCore

/// A timer of a `Reactor`: its task runs on the loop at or after `deadline` unless it was cancelled first. The
/// task is called with `true` when it is due, or with `false` when the loop stops first (it fails its promise).
final class ReactorTimer {
    typealias Task = (_ due: Bool) -> Void
    let deadline: NIODeadline
    /// Breaks ties between equal deadlines: timers run in the order they were scheduled.
    let sequence: UInt64
    private(set) var task: Task?

    init(deadline: NIODeadline, sequence: UInt64, task: @escaping Task) {
        self.deadline = deadline
        self.sequence = sequence
        self.task = task
    }

    var isCancelled: Bool { task == nil }

    /// Lets go of the task (and what it holds); the timer stays in the heap until its turn, then is skipped.
    func cancel() { task = nil }

    func fires(before other: ReactorTimer) -> Bool {
        deadline < other.deadline || (deadline == other.deadline && sequence < other.sequence)
    }
}

/// The pending timers of one loop, earliest first (a binary min-heap). Cancelled timers are dropped when they come
/// to the top instead of being searched for.
struct ReactorTimers {
    private var heap: [ReactorTimer] = []
    private var nextSequence: UInt64 = 0
    /// Cancelled timers still in the heap. When they are most of it, it is rebuilt without them: a connection's
    /// handshake timeout is scheduled and cancelled for every connection, and would otherwise stay until its
    /// deadline, at a high connection rate a heap mostly of dead timers.
    private var cancelledCount = 0

    var isEmpty: Bool { heap.isEmpty }
    /// Timers in the heap, cancelled ones not shed yet included.
    var count: Int { heap.count }

    mutating func schedule(at deadline: NIODeadline, _ task: @escaping ReactorTimer.Task) -> ReactorTimer {
        nextSequence &+= 1
        let timer = ReactorTimer(deadline: deadline, sequence: nextSequence, task: task)
        heap.append(timer)
        siftUp(heap.count - 1)
        return timer
    }

    /// Cancels `timer` (it must be one of these, not yet run).
    mutating func cancel(_ timer: ReactorTimer) {
        guard !timer.isCancelled else { return }
        timer.cancel()
        cancelledCount += 1
        guard cancelledCount > 64 && cancelledCount * 2 > heap.count else { return }
        heap.removeAll { $0.isCancelled }
        cancelledCount = 0
        for index in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
    }

    /// The deadline of the earliest timer not cancelled, if any.
    mutating func nextDeadline() -> NIODeadline? {
        while let first = heap.first, first.isCancelled {
            removeFirst()
            cancelledCount -= 1
        }
        return heap.first?.deadline
    }

    /// Removes and returns the tasks of every timer due at `now`, earliest first.
    mutating func takeDue(at now: NIODeadline) -> [ReactorTimer.Task] {
        var due: [ReactorTimer.Task] = []
        while let first = heap.first, first.deadline <= now || first.isCancelled {
            removeFirst()
            if let task = first.task { due.append(task) } else { cancelledCount -= 1 }
            first.cancel()
        }
        return due
    }

    /// Every pending task not cancelled, for a loop that stops: they are told so (`false`), not run.
    mutating func abandonAll() -> [ReactorTimer.Task] {
        let pending = heap
        heap.removeAll()
        cancelledCount = 0
        return pending.compactMap { timer in
            defer { timer.cancel() }
            return timer.task
        }
    }

    private mutating func removeFirst() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(0)
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].fires(before: heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var first = left
            if left + 1 < heap.count, heap[left + 1].fires(before: heap[left]) { first = left + 1 }
            guard heap[first].fires(before: heap[parent]) else { return }
            heap.swapAt(first, parent)
            parent = first
        }
    }
}
