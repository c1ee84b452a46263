import Synchronization

/// Reactors in turn: a listener's acceptors hand connections out with one, a `ReactorGroup` its loops.
final class Rotation: Sendable {
    let reactors: [Reactor]
    private let counter = Atomic<UInt>(0)

    init(_ reactors: [Reactor]) {
        self.reactors = reactors
    }

    func next() -> Reactor {
        reactors[Int(counter.add(1, ordering: .relaxed).oldValue % UInt(reactors.count))]
    }
}
