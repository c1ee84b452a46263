import Logging
import Synchronization

/// Which protocol to speak to an origin (`upstream.protocol`).
public enum UpstreamProtocol: String, Sendable, CaseIterable {
    /// `https://`: offer `h2,http/1.1` by ALPN and let the first connection's answer decide for the origin;
    /// `http://`: HTTP/2 with prior knowledge (h2c).
    case auto
    /// HTTP/2 only; an origin that does not select `h2` fails clearly.
    case h2
    /// HTTP/1.1 only, with or without TLS.
    case http1

    /// What the HTTP/2 pool's connections offer by ALPN.
    var http2ALPN: [String] { self == .auto ? ["h2", "http/1.1"] : ["h2"] }
}

/// The protocol an origin was found to speak: fixed by configuration, or learned from the first TLS handshake
/// under `auto`. Learning HTTP/1.1 shuts the HTTP/2 pools down, which fails their waiting requests; the caller
/// then sees the switch and sends them again through the HTTP/1.1 pools.
final class OriginProtocol: Sendable {
    enum Mode: UInt8 {
        case undecided, http2, http1
    }

    private let value: Atomic<UInt8>
    private let onHTTP1: Mutex<(@Sendable () -> Void)?> = Mutex(nil)
    private let origin: UpstreamOrigin
    private let logger: Logger

    init(_ configured: UpstreamProtocol, origin: UpstreamOrigin, logger: Logger) {
        let mode: Mode =
            switch configured {
            case .h2: .http2
            case .http1: .http1
            case .auto: origin.isTLS ? .undecided : .http2
            }
        value = Atomic(mode.rawValue)
        self.origin = origin
        self.logger = logger
    }

    var mode: Mode { Mode(rawValue: value.load(ordering: .acquiring)) ?? .undecided }

    /// What to do once the origin turns out to speak HTTP/1.1 only (set once, after the pools exist).
    func whenHTTP1(_ action: @escaping @Sendable () -> Void) {
        onHTTP1.withLock { $0 = action }
    }

    /// A TLS handshake of the HTTP/2 pool finished with `negotiated` (nil: the server does no ALPN, which means
    /// HTTP/1.1, RFC 7301 §3.2).
    func learned(_ negotiated: String?) {
        let learned: Mode = negotiated == "h2" ? .http2 : .http1
        guard
            value.compareExchange(
                expected: Mode.undecided.rawValue, desired: learned.rawValue, ordering: .acquiringAndReleasing
            ).exchanged
        else { return }
        logger.info(
            "upstream protocol chosen by ALPN",
            metadata: ["origin": "\(origin)", "protocol": "\(learned == .http2 ? "h2" : "http/1.1")"])
        if learned == .http1 { onHTTP1.withLock { $0 }?() }
    }
}
