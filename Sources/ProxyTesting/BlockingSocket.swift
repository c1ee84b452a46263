import Foundation

/// A plain blocking TCP socket to a loopback port, for tests that need to send exact bytes (garbage, partial
/// handshakes, plain HTTP to the TLS port). Every receive has a timeout so a test can never hang.
// @unchecked Sendable: a test owns its socket and uses it from one `blocking` call at a time.
public final class BlockingSocket: @unchecked Sendable {
    public let fd: Int32

    /// `receiveBuffer`: SO_RCVBUF in bytes, set before connecting (a small one makes a peer's writes back up fast).
    public init(
        port: Int, host: String = "127.0.0.1", receiveTimeout: Duration = .seconds(15), receiveBuffer: Int? = nil
    ) throws {
        // The descriptor is stored only once connected: a class whose stored properties are all set runs its deinit
        // even when init then throws, and a second close of a number another thread has reused since closes that
        // thread's file (seen as "close (Bad file descriptor) failed" in a parallel test).
        fd = try Self.connect(port: port, host: host, receiveTimeout: receiveTimeout, receiveBuffer: receiveBuffer)
    }

    private static func connect(port: Int, host: String, receiveTimeout: Duration, receiveBuffer: Int?) throws -> Int32
    {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError.failed("socket", errno) }
        if var size = receiveBuffer.map(Int32.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw SocketError.failed("connect", code)
        }
        var timeout = timeval(tv_sec: Int(receiveTimeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    deinit { close(fd) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { throw SocketError.failed("send", errno) }
            offset += sent
        }
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Up to `maximum` bytes; empty means the peer closed. Throws on timeout or reset.
    public func receive(maximum: Int = 65536) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: maximum)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, maximum, 0) }
        if count < 0 {
            let code = errno
            if code == ECONNRESET { return [] }
            throw SocketError.failed("recv", code)
        }
        return Array(buffer.prefix(count))
    }

    /// Reads until the peer closes (or resets); returns everything read.
    public func receiveUntilClosed(limit: Int = 4 << 20) throws -> [UInt8] {
        var all: [UInt8] = []
        while all.count < limit {
            let chunk = try receive()
            if chunk.isEmpty { return all }
            all += chunk
        }
        return all
    }

    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
}

public enum SocketError: Error, CustomStringConvertible {
    case failed(String, Int32)
    case protocolError(String)

    public var description: String {
        switch self {
        case .failed(let call, let code): "\(call) failed: \(String(cString: strerror(code)))"
        case .protocolError(let text): text
        }
    }
}
