import COpenSSL

/// A configured OpenSSL `SSL_CTX` for one role: the server side of the front door, or the client side of an
/// upstream connection. Immutable once built; certificate reload builds a new one (see `TLSContextStore`).
///
/// Policy (both roles): TLS 1.2 and 1.3 only; for TLS 1.2 only ECDHE key exchange with AEAD ciphers; no
/// compression, no renegotiation.
public final class TLSContext: @unchecked Sendable {
    // Invariant for @unchecked Sendable: `handle` is fully configured in init and never changed afterwards;
    // OpenSSL allows SSL_new from any thread on a configured SSL_CTX (it is reference counted and locked
    // internally). `alpn` is immutable after init and read only from OpenSSL callbacks.
    let handle: OpaquePointer
    let alpn: ALPNProtocolList?
    public let role: Role
    /// The serial number of the server certificate (upper-case hex), for logs and tests; nil for clients.
    public let certificateSerial: String?

    public enum Role: Sendable, Equatable {
        case server
        case client
    }

    /// TLS 1.2 suites: ECDHE only, AEAD only (RFC 7525 §4.2), ECDSA before RSA, AES-GCM before ChaCha20.
    static let tls12Ciphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    static let tls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    static let groups = "X25519:P-256:P-384"

    public struct ServerConfiguration: Sendable {
        /// PEM file: the leaf certificate first, then intermediates.
        public var certificateChainFile: String
        /// PEM private key (RSA or ECDSA, PKCS#1, SEC1 or PKCS#8).
        public var privateKeyFile: String
        /// Protocols the server accepts, in preference order (`h2`, `http/1.1`).
        public var alpnProtocols: [String]

        public init(certificateChainFile: String, privateKeyFile: String, alpnProtocols: [String] = ["http/1.1"]) {
            self.certificateChainFile = certificateChainFile
            self.privateKeyFile = privateKeyFile
            self.alpnProtocols = alpnProtocols
        }
    }

    public struct ClientConfiguration: Sendable {
        /// Protocols offered to the server, in preference order.
        public var alpnProtocols: [String]
        /// Extra PEM CA bundle trusted besides the system store (`claude.ca_file`).
        public var extraCAFile: String?
        /// Whether the system trust store is loaded.
        public var useSystemTrustStore: Bool

        public init(
            alpnProtocols: [String] = ["h2", "http/1.1"], extraCAFile: String? = nil, useSystemTrustStore: Bool = true
        ) {
            self.alpnProtocols = alpnProtocols
            self.extraCAFile = extraCAFile
            self.useSystemTrustStore = useSystemTrustStore
        }
    }

    public convenience init(server configuration: ServerConfiguration) throws(OpenSSLError) {
        let handle = try Self.makeContext(role: .server)
        do throws(OpenSSLError) {
            try Self.loadIdentity(handle, chain: configuration.certificateChainFile, key: configuration.privateKeyFile)
            // A session id context is required for server-side session caching (SSL_CTX_set_session_id_context(3)).
            let idContext = Array("claude-proxy".utf8)
            _ = SSL_CTX_set_session_id_context(handle, idContext, UInt32(idContext.count))
            _ = cp_SSL_CTX_set_session_cache_mode(handle, cp_SSL_SESS_CACHE_SERVER())
            _ = cp_SSL_CTX_sess_set_cache_size(handle, 20_000)
        } catch {
            SSL_CTX_free(handle)
            throw error
        }
        let alpn = configuration.alpnProtocols.isEmpty ? nil : try ALPNProtocolList(configuration.alpnProtocols)
        if let alpn {
            SSL_CTX_set_alpn_select_cb(handle, alpnSelect, Unmanaged.passUnretained(alpn).toOpaque())
        }
        self.init(handle: handle, role: .server, alpn: alpn, serial: Self.serialOfLoadedCertificate(handle))
    }

    public convenience init(client configuration: ClientConfiguration) throws(OpenSSLError) {
        let handle = try Self.makeContext(role: .client)
        do throws(OpenSSLError) {
            if configuration.useSystemTrustStore {
                ERR_clear_error()
                guard SSL_CTX_set_default_verify_paths(handle) == 1 else {
                    throw OpenSSLError.drain("load system trust store")
                }
            }
            if let file = configuration.extraCAFile {
                ERR_clear_error()
                guard SSL_CTX_load_verify_locations(handle, file, nil) == 1 else {
                    throw OpenSSLError.drain("load CA file", kind: .file(path: file))
                }
            }
            SSL_CTX_set_verify(handle, SSL_VERIFY_PEER, nil)
            _ = cp_SSL_CTX_set_session_cache_mode(handle, cp_SSL_SESS_CACHE_CLIENT())
            if !configuration.alpnProtocols.isEmpty {
                let wire = try ALPNProtocolList.wireFormat(configuration.alpnProtocols)
                // SSL_CTX_set_alpn_protos returns 0 on success, unlike most of the API.
                guard SSL_CTX_set_alpn_protos(handle, wire, UInt32(wire.count)) == 0 else {
                    throw OpenSSLError.drain("SSL_CTX_set_alpn_protos")
                }
            }
        } catch {
            SSL_CTX_free(handle)
            throw error
        }
        self.init(handle: handle, role: .client, alpn: nil, serial: nil)
    }

    private init(handle: OpaquePointer, role: Role, alpn: ALPNProtocolList?, serial: String?) {
        self.handle = handle
        self.role = role
        self.alpn = alpn
        self.certificateSerial = serial
    }

    deinit {
        SSL_CTX_free(handle)
    }

    /// A new server-side session for one accepted connection.
    public func makeServerSession() throws(OpenSSLError) -> TLSSession {
        precondition(role == .server, "makeServerSession on a client context")
        return try TLSSession(context: self, role: .server, serverName: nil)
    }

    /// A new client-side session; `serverName` is sent as SNI (host names only) and verified against the
    /// peer certificate (host name or IP address).
    public func makeClientSession(serverName: String?) throws(OpenSSLError) -> TLSSession {
        precondition(role == .client, "makeClientSession on a server context")
        return try TLSSession(context: self, role: .client, serverName: serverName)
    }

    // MARK: - Building

    private static func makeContext(role: Role) throws(OpenSSLError) -> OpaquePointer {
        ERR_clear_error()
        let method = role == .server ? TLS_server_method() : TLS_client_method()
        guard let handle = SSL_CTX_new(method) else {
            throw OpenSSLError.drain("SSL_CTX_new")
        }
        do throws(OpenSSLError) {
            guard cp_SSL_CTX_set_min_proto_version(handle, TLS1_2_VERSION) == 1,
                cp_SSL_CTX_set_max_proto_version(handle, TLS1_3_VERSION) == 1
            else { throw OpenSSLError.drain("set protocol versions") }
            guard SSL_CTX_set_cipher_list(handle, tls12Ciphers) == 1 else {
                throw OpenSSLError.drain("SSL_CTX_set_cipher_list")
            }
            guard SSL_CTX_set_ciphersuites(handle, tls13Suites) == 1 else {
                throw OpenSSLError.drain("SSL_CTX_set_ciphersuites")
            }
            guard cp_SSL_CTX_set1_groups_list(handle, groups) == 1 else {
                throw OpenSSLError.drain("SSL_CTX_set1_groups_list")
            }
            var options = cp_SSL_OP_NO_COMPRESSION() | cp_SSL_OP_NO_RENEGOTIATION()
            if role == .server { options |= cp_SSL_OP_CIPHER_SERVER_PREFERENCE() }
            _ = SSL_CTX_set_options(handle, options)
            // Idle keep-alive connections from clients give their 2×~34 KB record buffers back. Upstream
            // connections are few and busy: releasing would only free and reallocate them on every read.
            if role == .server { _ = cp_SSL_CTX_set_mode(handle, cp_SSL_MODE_RELEASE_BUFFERS()) }
        } catch {
            SSL_CTX_free(handle)
            throw error
        }
        return handle
    }

    private static func loadIdentity(_ handle: OpaquePointer, chain: String, key: String) throws(OpenSSLError) {
        ERR_clear_error()
        guard SSL_CTX_use_certificate_chain_file(handle, chain) == 1 else {
            throw OpenSSLError.drain("load certificate chain", kind: .file(path: chain))
        }
        guard SSL_CTX_use_PrivateKey_file(handle, key, SSL_FILETYPE_PEM) == 1 else {
            throw OpenSSLError.drain("load private key", kind: .file(path: key))
        }
        guard SSL_CTX_check_private_key(handle) == 1 else {
            throw OpenSSLError.drain("private key does not match certificate", kind: .file(path: key))
        }
    }

    private static func serialOfLoadedCertificate(_ handle: OpaquePointer) -> String? {
        guard let certificate = SSL_CTX_get0_certificate(handle) else { return nil }
        return serialHex(of: certificate)
    }

    static func serialHex(of certificate: OpaquePointer) -> String? {
        guard let serial = X509_get_serialNumber(certificate),
            let number = ASN1_INTEGER_to_BN(serial, nil)
        else { return nil }
        defer { BN_free(number) }
        guard let hex = BN_bn2hex(number) else { return nil }
        defer { cp_OPENSSL_free(hex) }
        return String(cString: hex)
    }
}

/// ALPN protocol names in wire format (RFC 7301 §3.1: each name prefixed by its length), kept at a stable
/// address because OpenSSL's select callback returns a pointer into it.
final class ALPNProtocolList: @unchecked Sendable {
    // Invariant for @unchecked Sendable: `bytes` is written once in init and only read afterwards.
    let bytes: UnsafeMutableBufferPointer<UInt8>

    init(_ protocols: [String]) throws(OpenSSLError) {
        let wire = try Self.wireFormat(protocols)
        bytes = .allocate(capacity: wire.count)
        _ = bytes.initialize(from: wire)
    }

    deinit {
        bytes.deallocate()
    }

    static func wireFormat(_ protocols: [String]) throws(OpenSSLError) -> [UInt8] {
        var wire: [UInt8] = []
        for name in protocols {
            let utf8 = Array(name.utf8)
            guard !utf8.isEmpty, utf8.count < 256 else {
                throw OpenSSLError(operation: "ALPN protocol name '\(name)' must be 1 to 255 bytes")
            }
            wire.append(UInt8(utf8.count))
            wire.append(contentsOf: utf8)
        }
        guard !wire.isEmpty else { throw OpenSSLError(operation: "ALPN protocol list is empty") }
        return wire
    }

    /// The first of our protocols (server preference) that the client offered, as (offset, length) in `bytes`.
    func select(from offered: UnsafeBufferPointer<UInt8>) -> (offset: Int, length: Int)? {
        var ours = 0
        while ours < bytes.count {
            let length = Int(bytes[ours])
            var theirs = 0
            while theirs < offered.count {
                let theirLength = Int(offered[theirs])
                if theirLength == length, theirs + 1 + length <= offered.count,
                    (0..<length).allSatisfy({ offered[theirs + 1 + $0] == bytes[ours + 1 + $0] })
                {
                    return (ours + 1, length)
                }
                theirs += 1 + theirLength
            }
            ours += 1 + length
        }
        return nil
    }
}

/// OpenSSL's ALPN select callback (SSL_CTX_set_alpn_select_cb(3)). A client whose list shares nothing with
/// ours continues without ALPN (SSL_TLSEXT_ERR_NOACK) and is served HTTP/1.1, as nginx and HAProxy do.
private let alpnSelect:
    @convention(c) (
        OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
        UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?
    ) -> Int32 = { _, out, outLength, offered, offeredLength, argument in
        guard let out, let outLength, let offered, let argument else { return SSL_TLSEXT_ERR_NOACK }
        let list = Unmanaged<ALPNProtocolList>.fromOpaque(argument).takeUnretainedValue()
        guard let choice = list.select(from: UnsafeBufferPointer(start: offered, count: Int(offeredLength))) else {
            return SSL_TLSEXT_ERR_NOACK
        }
        out.pointee = UnsafePointer(list.bytes.baseAddress! + choice.offset)
        outLength.pointee = UInt8(choice.length)
        return SSL_TLSEXT_ERR_OK
    }
