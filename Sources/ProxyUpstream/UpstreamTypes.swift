import NIOCore

/// Where an upstream request goes: scheme, host, port — the key of a connection pool.
public struct UpstreamOrigin: Hashable, Sendable, CustomStringConvertible {
    public let isTLS: Bool
    public let host: String
    public let port: Int
    /// The `Host`/`:authority` value: the port only when it is not the scheme's default (kept: every request
    /// sends it).
    public let authority: String

    public init(isTLS: Bool, host: String, port: Int) {
        self.isTLS = isTLS
        self.host = host
        self.port = port
        let name = host.contains(":") ? "[\(host)]" : host
        authority = port == (isTLS ? 443 : 80) ? name : "\(name):\(port)"
    }

    /// Parses `https://host[:port]` or `http://host[:port]` (a path is ignored); nil for anything else.
    public init?(url: String) {
        let isTLS: Bool
        var rest: Substring
        if url.hasPrefix("https://") {
            isTLS = true
            rest = url.dropFirst(8)
        } else if url.hasPrefix("http://") {
            isTLS = false
            rest = url.dropFirst(7)
        } else {
            return nil
        }
        if let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) { rest = rest[..<slash] }
        var host = rest
        var port = isTLS ? 443 : 80
        if rest.hasPrefix("[") {  // [IPv6]:port
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()) else { return nil }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let value = Int(rest[rest.index(after: colon)...]) else { return nil }
            port = value
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        self.init(isTLS: isTLS, host: String(host), port: port)
    }

    public var description: String { "\(isTLS ? "https" : "http")://\(authority)" }
}

/// The path-and-query part of a URL (`/v1/oauth/token`), `/` when there is none.
public func requestTarget(of url: String) -> String {
    guard let schemeEnd = url.firstRange(of: "://") else { return "/" }
    let rest = url[schemeEnd.upperBound...]
    guard let start = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
    let target = String(rest[start...].prefix { $0 != "#" })
    return target.hasPrefix("?") ? "/" + target : target
}

public struct UpstreamResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer

    public init(status: Int, headers: [(name: String, value: String)], body: ByteBuffer) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Why an upstream exchange failed; descriptions carry no request or response content.
public enum UpstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidURL(String)
    case connectFailed(origin: String, reason: String)
    case tlsFailed(origin: String, reason: String)
    case timeout(origin: String, phase: String)
    case responseTooLarge(origin: String, limit: Int)
    case protocolError(origin: String, reason: String)
    case closed(origin: String)

    public var description: String {
        switch self {
        case .invalidURL(let url): "not an http(s) URL: \(url)"
        case .connectFailed(let origin, let reason): "connect to \(origin) failed: \(reason)"
        case .tlsFailed(let origin, let reason): "TLS with \(origin) failed: \(reason)"
        case .timeout(let origin, let phase): "\(origin): timed out waiting for \(phase)"
        case .responseTooLarge(let origin, let limit): "\(origin): response larger than \(limit) bytes"
        case .protocolError(let origin, let reason): "\(origin): \(reason)"
        case .closed(let origin): "\(origin) closed the connection before the response was complete"
        }
    }
}
