import CEpoll
import Glibc
import NIOCore

/// The socket calls the listener and the channels share.
enum StreamSocket {
    /// A new non-blocking, close-on-exec stream socket of `address`'s family.
    static func open(for address: SocketAddress) throws(IOError) -> CInt {
        let fd = socket(
            family(of: address), CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        return fd
    }

    static func family(of address: SocketAddress) -> CInt {
        switch address {
        case .v4: AF_INET
        case .v6: AF_INET6
        case .unixDomainSocket: AF_UNIX
        }
    }

    /// The socket's own address (`getsockname`) or its peer's (`getpeername`); nil if the call fails or the family
    /// is not IP.
    static func address(
        of fd: CInt, _ query: (CInt, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> CInt
    ) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { query(fd, $0, &length) }
        }
        guard result == 0 else { return nil }
        switch CInt(storage.ss_family) {
        case AF_INET: return SocketAddress(withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in.self) }, host: "")
        case AF_INET6: return SocketAddress(withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in6.self) }, host: "")
        default: return nil
        }
    }
}
