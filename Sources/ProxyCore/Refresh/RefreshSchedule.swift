import Foundation

/// When the scheduler runs: at every instant `t` with `(t − offset) mod interval == 0`, counted in seconds since the
/// Unix epoch (so in UTC). `hourly` = every 3600 s at offset 0 = minute 0 of every hour; `everyMinutes(30,
/// atMinute: 5)` = :05 and :35. Offsets are reduced modulo the interval.
public struct RefreshSchedule: Sendable, Equatable, CustomStringConvertible {
    public let interval: TimeInterval
    public let offset: TimeInterval

    public static let hourly = RefreshSchedule(interval: 3600, offset: 0)

    /// `interval` must be positive (a non-positive one falls back to an hour).
    public init(interval: TimeInterval, offset: TimeInterval = 0) {
        let interval = interval > 0 ? interval : 3600
        self.interval = interval
        let reduced = offset.truncatingRemainder(dividingBy: interval)
        self.offset = reduced < 0 ? reduced + interval : reduced
    }

    /// "Every `minutes` minutes at minute `minute`", e.g. `every(60, atMinute: 0)` is `hourly`.
    public static func every(_ minutes: Int, atMinute minute: Int = 0) -> RefreshSchedule {
        RefreshSchedule(interval: TimeInterval(max(1, minutes)) * 60, offset: TimeInterval(minute) * 60)
    }

    /// The first run strictly after `date`.
    public func nextRun(after date: Date) -> Date {
        let periods = ((date.timeIntervalSince1970 - offset) / interval).rounded(.down) + 1
        return Date(timeIntervalSince1970: periods * interval + offset)
    }

    public var description: String { "every \(Int(interval)) s at offset \(Int(offset)) s" }
}
