import Foundation
import HTTPTypes
import Hummingbird

/// What the stateful mock does to a request instead of answering it normally; chosen per account through the
/// control API or per request with the `x-mock-fault` header (the header wins).
public enum MockFault: String, Sendable, CaseIterable, Codable {
    /// 429 `rate_limit_error` with `retry-after: 7`.
    case status429 = "status-429"
    /// 429 with `anthropic-ratelimit-unified-status: rejected` and a unified reset an hour ahead, no `retry-after`
    /// (a subscription account over its window).
    case status429Unified = "status-429-unified"
    case status529 = "status-529"
    case status500 = "status-500"
    /// 401 `authentication_error` whatever the token.
    case status401 = "status-401"
    /// The head, then the stream is reset.
    case resetAfterHeaders = "reset-after-headers"
    /// Half of the body, then the stream is reset.
    case rstMidBody = "rst-mid-body"
    /// SSE events 200 ms apart.
    case slowDrip = "slow-drip"
    /// 300 text deltas 100 ms apart (about 30 s).
    case longStream = "long-stream"
    /// No response head for 60 s.
    case stall

    /// Seconds between the unified reset the `status-429-unified` fault announces and now.
    public static let unifiedResetDelay: TimeInterval = 3600

    /// The error response of a status fault (`nil` for the others).
    func errorResponse(now: Date) -> Response? {
        switch self {
        case .status429:
            return MockClaudeBodies.error(
                429, "rate_limit_error", "rate limited", headers: [HTTPField.Name("retry-after")!: "7"])
        case .status429Unified:
            let reset = Int((now.timeIntervalSince1970 + Self.unifiedResetDelay).rounded(.up))
            return MockClaudeBodies.error(
                429, "rate_limit_error", "subscription usage limit reached",
                headers: [
                    HTTPField.Name("anthropic-ratelimit-unified-status")!: "rejected",
                    HTTPField.Name("anthropic-ratelimit-unified-reset")!: "\(reset)",
                ])
        case .status529:
            return MockClaudeBodies.error(529, "overloaded_error", "overloaded")
        case .status500:
            return MockClaudeBodies.error(500, "api_error", "internal")
        case .status401:
            return MockClaudeBodies.error(401, "authentication_error", "invalid bearer token")
        case .resetAfterHeaders, .rstMidBody, .slowDrip, .longStream, .stall:
            return nil
        }
    }
}
