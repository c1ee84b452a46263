import Dispatch
import NIOConcurrencyHelpers
import NIOCore

/// Several reactors, one thread each, as one NIO `EventLoopGroup`: the front door accepts on all of them and each
/// keeps its own upstream pools, so a request's client and upstream connections share a thread.
public final class ReactorGroup: EventLoopGroup, Sendable {
    public var reactors: [Reactor] { rotation.reactors }
    private let rotation: Rotation

    public init(count: Int, name: String = "claude-proxy-io") throws(IOError) {
        precondition(count > 0, "a group needs a reactor")
        var reactors: [Reactor] = []
        for index in 0..<count {
            do {
                reactors.append(try Reactor(name: "\(name)-\(index)"))
            } catch {
                for reactor in reactors { reactor.shutdownGracefully { _ in } }
                throw error
            }
        }
        rotation = Rotation(reactors)
    }

    /// One reactor a core, made on first use and never stopped: the server's loops, as NIO's own singleton group.
    public static let singleton: ReactorGroup = {
        do {
            return try ReactorGroup(count: System.coreCount)
        } catch {
            fatalError("the reactors could not start: \(error)")
        }
    }()

    /// The reactor whose thread calls, if any.
    public var current: Reactor? { reactors.first { $0.inEventLoop } }

    public func next() -> any EventLoop { rotation.next() }

    public func any() -> any EventLoop { current ?? next() }

    public func makeIterator() -> EventLoopIterator { EventLoopIterator(reactors) }

    public func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable ((any Error)?) -> Void) {
        let group = DispatchGroup()
        let firstError = NIOLockedValueBox<(any Error)?>(nil)
        for reactor in reactors {
            group.enter()
            reactor.shutdownGracefully(queue: queue) { error in
                if let error { firstError.withLockedValue { $0 = $0 ?? error } }
                group.leave()
            }
        }
        group.notify(queue: queue) { callback(firstError.withLockedValue { $0 }) }
    }
}
