import Foundation

/// Turns an upstream response into the account's next `RateLimitState` (passive health, like Envoy's outlier
/// detection: we learn from the responses we already relay).
///
/// On 429 (rate limited) the account cools down until the first hint present, in this order:
/// `retry-after` (delta seconds, RFC 9110 §10.2.3), `anthropic-ratelimit-unified-reset` (epoch seconds, subscription
/// accounts), `anthropic-ratelimit-requests-reset` (RFC 3339). `retry-after` comes first because it speaks about this
/// very rejection, while the reset headers may describe a longer window than the one that tripped. With no usable
/// hint the cooldown is `fallback`, doubled for each such response in a row (5 s, 10 s, 20 s … capped at
/// `maxFallback`): a bare 429 must not bench an account for long. A 2xx resets the streak and ends the cooldown.
/// A 529 (overloaded) says nothing about the account — the service is busy for everyone — so it cools nothing
/// down; the relay retries it after a backoff, on whichever account comes next (the only one, if there is one).
public struct CooldownPolicy: Sendable, Equatable {
    public var fallback: TimeInterval
    public var maxFallback: TimeInterval

    public init(fallback: TimeInterval = 5, maxFallback: TimeInterval = 300) {
        self.fallback = fallback
        self.maxFallback = maxFallback
    }

    public func next(
        after state: RateLimitState, status: Int, headers: [(name: String, value: String)], now: Date
    ) -> RateLimitState {
        next(after: state, status: status, now: now) { Self.header($0, in: headers) }
    }

    /// The same, with the response's headers looked up by lower-case name (the value trimmed; nil when absent).
    public func next(
        after state: RateLimitState, status: Int, now: Date, header: (String) -> String?
    ) -> RateLimitState {
        var next = state
        if let unified = header("anthropic-ratelimit-unified-status") {
            next.unifiedStatus = unified
        }
        switch status {
        case 200..<300:
            next.consecutiveRateLimits = 0
            next.coolingDownUntil = nil
        case 429:
            if let until = resetHint(now: now, header: header) {
                next.consecutiveRateLimits = 0
                next.coolingDownUntil = max(until, state.coolingDownUntil ?? until)
            } else {
                next.consecutiveRateLimits = state.consecutiveRateLimits + 1
                next.coolingDownUntil = now.addingTimeInterval(fallbackDuration(streak: next.consecutiveRateLimits))
            }
        default:
            break
        }
        return next
    }

    /// The fallback cooldown for the `streak`-th hint-less 429 in a row (1-based).
    public func fallbackDuration(streak: Int) -> TimeInterval {
        min(maxFallback, fallback * pow(2, Double(max(0, min(streak - 1, 30)))))
    }

    /// The earliest instant after `now` named by a reset header, in the documented order of preference.
    public func resetHint(_ headers: [(name: String, value: String)], now: Date) -> Date? {
        resetHint(now: now) { Self.header($0, in: headers) }
    }

    func resetHint(now: Date, header: (String) -> String?) -> Date? {
        if let value = header("retry-after"), let seconds = Double(value), seconds > 0 {
            return now.addingTimeInterval(seconds)
        }
        if let value = header("anthropic-ratelimit-unified-reset"), let epoch = Double(value) {
            let date = Date(timeIntervalSince1970: epoch)
            if date > now { return date }
        }
        if let value = header("anthropic-ratelimit-requests-reset"),
            let date = Self.parseRFC3339(value), date > now
        {
            return date
        }
        return nil
    }

    static func header(_ name: String, in headers: [(name: String, value: String)]) -> String? {
        for header in headers where header.name.utf8.count == name.utf8.count && header.name.lowercased() == name {
            return header.value.trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// `2026-01-01T12:00:00Z`, with or without fractional seconds, `Z` or a numeric offset (RFC 3339 §5.6).
    static func parseRFC3339(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: false).parse(text) { return date }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }
}
