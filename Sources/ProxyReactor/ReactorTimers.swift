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

    var isEmpty: Bool { heap.isEmpty }

    mutating func schedule(at deadline: NIODeadline, _ task: @escaping ReactorTimer.Task) -> ReactorTimer {
        nextSequence &+= 1
        let timer = ReactorTimer(deadline: deadline, sequence: nextSequence, task: task)
        heap.append(timer)
        siftUp(heap.count - 1)
        return timer
    }

    /// The deadline of the earliest timer not cancelled, if any.
    mutating func nextDeadline() -> NIODeadline? {
        while let first = heap.first, first.isCancelled { removeFirst() }
        return heap.first?.deadline
    }

    /// Removes and returns the tasks of every timer due at `now`, earliest first.
    mutating func takeDue(at now: NIODeadline) -> [ReactorTimer.Task] {
        var due: [ReactorTimer.Task] = []
        while let first = heap.first, first.deadline <= now || first.isCancelled {
            removeFirst()
            if let task = first.task { due.append(task) }
            first.cancel()
        }
        return due
    }

    /// Every pending task not cancelled, for a loop that stops: they are told so (`false`), not run.
    mutating func abandonAll() {
        let pending = heap
        heap.removeAll()
        for timer in pending {
            let task = timer.task
            timer.cancel()
            task?(false)
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
