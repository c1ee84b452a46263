import COpenSSL

/// One TLS connection as a sans-I/O engine: ciphertext from the peer goes in through `receiveCiphertext`,
/// plaintext comes out of `readPlaintext`; plaintext to send goes in through `writePlaintext` and the
/// ciphertext to put on the wire comes out of `takeCiphertext`; nothing here touches a socket or an event loop.
///
/// Between OpenSSL and the caller sits one BIO of our own (`cp_tls_io`, C shim) rather than two memory BIOs: the
/// peer's ciphertext can be lent for OpenSSL to read in place (`lendCiphertext`), and our records can be written
/// straight into the caller's buffer (`encrypt(into:_:)`), each a copy fewer than a memory BIO in between.
///
/// Not Sendable: a session belongs to one connection and is used from that connection's thread only.
public final class TLSSession {
    let ssl: OpaquePointer
    /// The ciphertext BIO's state: the peer's bytes lent or held for OpenSSL, ours offered a target or spilled.
    /// Owned by the BIO, which the SSL owns.
    private let io: UnsafeMutablePointer<cp_tls_io>
    /// Keeps the SSL_CTX's Swift-side state (ALPN list) alive for as long as this session can call back into it.
    public let context: TLSContext
    public let role: TLSContext.Role

    public enum HandshakeResult: Equatable {
        case complete
        /// OpenSSL needs more bytes from the peer; send what `takeCiphertext` gives first.
        case incomplete
        case failed(OpenSSLError)
    }

    public enum ReadResult: Equatable {
        /// This many plaintext bytes were written into the buffer.
        case bytes(Int)
        /// No whole record is buffered: feed more ciphertext.
        case wantRead
        /// The peer sent close_notify: no more data will come.
        case closed
        case failed(OpenSSLError)
    }

    public enum ShutdownResult: Equatable {
        /// Our close_notify is queued in the outbound ciphertext.
        case sent
        case failed(OpenSSLError)
    }

    init(context: TLSContext, role: TLSContext.Role, serverName: String?) throws(OpenSSLError) {
        ERR_clear_error()
        guard let ssl = SSL_new(context.handle) else { throw OpenSSLError.drain("SSL_new") }
        guard let method = Self.bioMethod, let bio = BIO_new(method), let io = cp_tls_io_of(bio) else {
            SSL_free(ssl)
            throw OpenSSLError.drain("BIO_new")
        }
        SSL_set_bio(ssl, bio, bio)  // the SSL owns the BIO from here on (one reference for both directions)
        self.ssl = ssl
        self.io = io
        self.context = context
        self.role = role
        if role == .server {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let serverName { try configurePeerName(serverName) }
        }
    }

    deinit {
        SSL_free(ssl)
    }

    /// The ciphertext BIO's method table, made once for the process.
    nonisolated(unsafe) private static let bioMethod = cp_tls_io_method_new()

    private func configurePeerName(_ name: String) throws(OpenSSLError) {
        if Self.isIPAddress(name) {
            // RFC 6066 §3: SNI carries host names only; an address is checked against the certificate's IP SANs.
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 else {
                throw OpenSSLError.drain("set expected peer address")
            }
        } else {
            guard cp_SSL_set_tlsext_host_name(ssl, name) == 1 else { throw OpenSSLError.drain("set SNI") }
            guard SSL_set1_host(ssl, name) == 1 else { throw OpenSSLError.drain("set expected peer host name") }
        }
    }

    static func isIPAddress(_ name: String) -> Bool {
        name.contains(":") || (!name.isEmpty && name.allSatisfy { $0.isNumber || $0 == "." })
    }

    // MARK: - Bytes in and out

    /// Hands ciphertext that arrived from the peer to OpenSSL (copied: it is read later).
    public func receiveCiphertext(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        precondition(cp_tls_io_hold(io, base, bytes.count) == 1, "out of memory for TLS input")
    }

    /// Lends ciphertext that arrived from the peer to OpenSSL for the duration of `body`, which reads it
    /// (`handshake`, `readPlaintext`) without copying it first. What OpenSSL has not taken when `body` returns (part
    /// of a record) is copied and read first next time. A loan inside a loan copies both.
    public func lendCiphertext<Result>(_ bytes: UnsafeRawBufferPointer, while body: () -> Result) -> Result {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return body() }
        if io.pointee.lent != nil {
            holdLent()
            receiveCiphertext(bytes)
            return body()
        }
        io.pointee.lent = base.assumingMemoryBound(to: UInt8.self)
        io.pointee.lent_count = bytes.count
        defer { holdLent() }
        return body()
    }

    private func holdLent() {
        if let lent = io.pointee.lent {
            precondition(cp_tls_io_hold(io, lent, io.pointee.lent_count) == 1, "out of memory for TLS input")
        }
        io.pointee.lent = nil
        io.pointee.lent_count = 0
    }

    /// Input not read yet: ciphertext lent or held, or record bytes OpenSSL holds (decrypted or not).
    public var hasBufferedInput: Bool { cp_tls_io_inbound_count(io) > 0 || SSL_has_pending(ssl) == 1 }

    /// Ciphertext waiting to be taken with `takeCiphertext` (what OpenSSL wrote outside `encrypt(into:_:)`, or
    /// what did not fit).
    public var pendingCiphertext: Int { cp_tls_io_spilled_count(io) }

    /// Moves up to `buffer.count` bytes of pending ciphertext into `buffer`; returns how many.
    public func takeCiphertext(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        return cp_tls_io_take_spilled(io, base, buffer.count)
    }

    /// Runs `body` (which calls `writePlaintext`) with `target` offered for the records OpenSSL writes; returns how
    /// many bytes of `target` it filled. Records that do not fit, and all after them, wait in `pendingCiphertext`:
    /// send them after `target`'s bytes. Ciphertext already pending comes before all of it.
    public func encrypt(into target: UnsafeMutableRawBufferPointer, _ body: () -> Void) -> Int {
        guard let base = target.baseAddress, pendingCiphertext == 0 else {
            body()
            return 0
        }
        io.pointee.target = base.assumingMemoryBound(to: UInt8.self)
        io.pointee.target_capacity = target.count
        io.pointee.target_count = 0
        defer {
            io.pointee.target = nil
            io.pointee.target_capacity = 0
            io.pointee.target_count = 0
        }
        body()
        return io.pointee.target_count
    }

    /// All pending ciphertext as an array (tests and non-NIO callers).
    public func takeCiphertext() -> [UInt8] {
        let count = pendingCiphertext
        guard count > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = takeCiphertext(into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    // MARK: - Operations

    public var isHandshakeComplete: Bool { SSL_is_init_finished(ssl) == 1 }

    public func handshake() -> HandshakeResult {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .complete }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .incomplete
        default:
            return .failed(failure("TLS handshake"))
        }
    }

    /// Decrypts into `buffer`. Call until it returns `.wantRead`: one call yields at most one record.
    public func readPlaintext(into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return .bytes(0) }
        Self.clearErrorQueue()
        let result = SSL_read(ssl, base, Int32(min(buffer.count, Int(Int32.max))))
        if result > 0 { return .bytes(Int(result)) }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wantRead
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        default:
            return .failed(failure("SSL_read"))
        }
    }

    /// Encrypts all of `bytes` into the outbound ciphertext (a memory BIO never pushes back).
    public func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> OpenSSLError? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        Self.clearErrorQueue()
        let result = SSL_write(ssl, base, Int32(bytes.count))
        if result == Int32(bytes.count) { return nil }
        return failure("SSL_write")
    }

    /// Queues our close_notify (RFC 8446 §6.1). We do not wait for the peer's: after ours we only close.
    public func shutdown() -> ShutdownResult {
        ERR_clear_error()
        let result = SSL_shutdown(ssl)
        if result >= 0 { return .sent }
        return .failed(failure("SSL_shutdown"))
    }

    /// SSL_get_error needs an empty error queue before the call. Failures drain it, so it is nearly always empty
    /// already: peeking is cheaper than clearing its sixteen slots on every record.
    private static func clearErrorQueue() {
        if ERR_peek_error() != 0 { ERR_clear_error() }
    }

    private func failure(_ operation: String) -> OpenSSLError {
        let queue = OpenSSLError.drainQueue()
        // OpenSSL recognises a plain HTTP request sent to a TLS port (SSL_R_HTTP_REQUEST).
        let notTLS = queue.contains { $0.hasSuffix(":http request") }
        return OpenSSLError(kind: notTLS ? .notTLS : .library, operation: operation, queue: queue)
    }

    // MARK: - What was negotiated

    /// The ALPN protocol both sides agreed on, if any.
    public var negotiatedProtocol: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// "TLSv1.2" or "TLSv1.3".
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    public var cipherName: String? {
        guard let cipher = SSL_get_current_cipher(ssl) else { return nil }
        return String(cString: SSL_CIPHER_get_name(cipher))
    }

    /// Whether the handshake resumed an earlier session (ticket or cache).
    public var isResumed: Bool { cp_SSL_session_reused(ssl) == 1 }

    /// Serial number (upper-case hex) of the certificate the peer presented.
    public var peerCertificateSerial: String? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        return TLSContext.serialHex(of: certificate)
    }

    /// The session to offer for resumption on a later connection (client role). Owned by the caller.
    public func copySession() -> TLSSavedSession? {
        guard let session = SSL_get1_session(ssl) else { return nil }
        return TLSSavedSession(session)
    }

    /// Offers a saved session for resumption (client role, before the handshake starts).
    public func resume(_ saved: TLSSavedSession) {
        _ = SSL_set_session(ssl, saved.handle)
    }
}

/// A TLS session kept for resumption by a client.
public final class TLSSavedSession: @unchecked Sendable {
    // Invariant for @unchecked Sendable: an SSL_SESSION is reference counted and only read after creation.
    let handle: OpaquePointer

    init(_ handle: OpaquePointer) { self.handle = handle }

    deinit { SSL_SESSION_free(handle) }
}
