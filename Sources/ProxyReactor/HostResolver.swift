import Glibc
import NIOCore

/// Names to socket addresses with `getaddrinfo`, which blocks: call it off the reactors (IP literals need no call).
public enum HostResolver {
    /// Every stream address of `host` in the order the system prefers; an IP literal as it is.
    public static func resolve(host: String, port: Int) throws -> [SocketAddress] {
        if let literal = try? SocketAddress(ipAddress: host, port: port) { return [literal] }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            throw UnknownHost(host: host, port: port, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry?.pointee {
            if let address = current.ai_addr {
                switch current.ai_family {
                case AF_INET:
                    addresses.append(
                        SocketAddress(
                            address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }, host: host))
                case AF_INET6:
                    addresses.append(
                        SocketAddress(
                            address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee }, host: host))
                default:
                    break
                }
            }
            entry = current.ai_next
        }
        guard !addresses.isEmpty else { throw UnknownHost(host: host, port: port, reason: "no stream address") }
        return addresses
    }

    public struct UnknownHost: Error, CustomStringConvertible {
        public let host: String
        public let port: Int
        public let reason: String

        public var description: String { "\(host):\(port) did not resolve: \(reason)" }
    }

    /// Whether `host` is an IP literal (resolving it blocks nothing).
    public static func isLiteral(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
