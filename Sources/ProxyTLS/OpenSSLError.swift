import COpenSSL

/// An OpenSSL failure as a value: which operation failed and the text of OpenSSL's error queue at that moment.
///
/// The queue text names library, function and reason (e.g. `error:0A000086:SSL routines::certificate verify
/// failed`); it never contains key material, so the description is safe to log.
public struct OpenSSLError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A call into libssl/libcrypto failed.
        case library
        /// A file could not be read (missing, unreadable, or not PEM).
        case file(path: String)
        /// The peer sent something that is not TLS (for instance plain HTTP to the TLS port).
        case notTLS
        /// The handshake did not finish in time.
        case handshakeTimeout
        /// The connection closed before the handshake finished.
        case closedDuringHandshake
        /// Bytes arrived after the peer's close_notify, or the peer closed without close_notify.
        case unexpectedEOF
    }

    public var kind: Kind
    /// What we were doing, e.g. `SSL_do_handshake` or `load certificate chain`.
    public var operation: String
    /// Lines of OpenSSL's error queue, oldest first.
    public var queue: [String]

    public init(kind: Kind = .library, operation: String, queue: [String] = []) {
        self.kind = kind
        self.operation = operation
        self.queue = queue
    }

    /// Drains the calling thread's OpenSSL error queue into an error for `operation`.
    public static func drain(_ operation: String, kind: Kind = .library) -> OpenSSLError {
        OpenSSLError(kind: kind, operation: operation, queue: drainQueue())
    }

    static func drainQueue() -> [String] {
        var lines: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            lines.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return lines
    }

    public var description: String {
        var text: String
        switch kind {
        case .library: text = "\(operation) failed"
        case .file(let path): text = "\(operation) failed for \(path)"
        case .notTLS: text = "\(operation): peer did not speak TLS"
        case .handshakeTimeout: text = "TLS handshake timed out"
        case .closedDuringHandshake: text = "connection closed during the TLS handshake"
        case .unexpectedEOF: text = "\(operation): unexpected end of TLS stream"
        }
        if !queue.isEmpty {
            text += ": " + queue.joined(separator: "; ")
        }
        return text
    }
}
