import HTTPTypes
import NIOCore
import Synchronization

/// Requests the HTTP/1.1 fast path handed to the async relay, by the id it put in their head
/// (`x-claude-proxy-handover`): the relay route takes where the fast path left off from here. A client's own copy
/// of that field is removed before a request reaches the router (HTTP/1.1 and HTTP/2); one never taken (the client
/// left first) is dropped after `lifetime`.
final class RelayHandovers: Sendable {
    static let fieldName = "x-claude-proxy-handover"
    static let field = HTTPField.Name(fieldName)!
    static let lifetime = Duration.seconds(60)

    private let waiting = Mutex<[UInt64: (continuation: ProxyRelay.RelayContinuation, at: ContinuousClock.Instant)]>(
        [:])

    func deposit(_ continuation: ProxyRelay.RelayContinuation) -> String {
        let id = UInt64.random(in: 1...UInt64.max)
        let now = ContinuousClock.now
        waiting.withLock { waiting in
            waiting = waiting.filter { now - $0.value.at < Self.lifetime }
            waiting[id] = (continuation, now)
        }
        return String(id, radix: 16)
    }

    func take(_ value: String) -> ProxyRelay.RelayContinuation? {
        guard let id = UInt64(value, radix: 16) else { return nil }
        let now = ContinuousClock.now
        return waiting.withLock { waiting in
            let taken = waiting.removeValue(forKey: id)?.continuation
            waiting = waiting.filter { now - $0.value.at < Self.lifetime }
            return taken
        }
    }
}
