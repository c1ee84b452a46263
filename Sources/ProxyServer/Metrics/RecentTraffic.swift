import Foundation
import ProxyCore

/// Requests, errors and tokens per minute over the last hour, for the dashboard's chart and rates. A ring of 60
/// minute slots; a slot is cleared when its minute comes round again.
struct RecentTraffic: Sendable {
    struct Minute: Sendable, Equatable, Encodable {
        /// Start of the minute, epoch seconds.
        var minute: Int = 0
        var requests = 0
        var errors = 0
        var input_tokens = 0
        var output_tokens = 0
    }

    private var slots = [Minute](repeating: Minute(), count: 60)

    mutating func add(errors: Int, tokens: Usage, at now: Date = Date()) {
        let minute = Int(now.timeIntervalSince1970) / 60 * 60
        let index = (minute / 60) % 60
        if slots[index].minute != minute { slots[index] = Minute(minute: minute) }
        slots[index].requests += 1
        slots[index].errors += errors
        slots[index].input_tokens += tokens.inputTokens
        slots[index].output_tokens += tokens.outputTokens
    }

    /// The last 60 minutes, oldest first, the current minute last; minutes without traffic as zeros.
    func lastHour(now: Date = Date()) -> [Minute] {
        let current = Int(now.timeIntervalSince1970) / 60 * 60
        return (0..<60).reversed().map { back in
            let minute = current - back * 60
            let slot = slots[(minute / 60) % 60]
            return slot.minute == minute ? slot : Minute(minute: minute)
        }
    }
}
