import Foundation
import ProxyCore
import Synchronization

/// The `Date` header (RFC 9110 §6.6.1, IMF-fixdate) for HTTP/2 responses, and for HTTP/1.1 ones on reactors
/// (Hummingbird's application adds it for HTTP/1.1 on NIO).
/// Formatted once per second and shared.
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func now() -> String {
        let second = Int(CoarseClock.now.timeIntervalSince1970)
        return cache.withLock { cache in
            if cache.second != second { cache = (second, format(epochSecond: second)) }
            return cache.text
        }
    }

    static func format(epochSecond: Int) -> String {
        var time = time_t(epochSecond)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
