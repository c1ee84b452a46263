import COpenSSL
import ProxyTesting
import Testing

@testable import ProxyTLS

/// Two `TLSSession`s talking through memory: the engine without sockets or event loops.
@Suite struct TLSSessionTests {
    static let certificates = Result { try TestCertificates() }

    func pair(
        serverALPN: [String] = ["http/1.1"],
        clientALPN: [String] = ["http/1.1"],
        serverName: String = "localhost"
    ) throws -> TLSMemoryPair {
        let certificates = try Self.certificates.get()
        let server = try certificates.serverContext(alpn: serverALPN).makeServerSession()
        let client = try certificates.clientContext(alpn: clientALPN).makeClientSession(serverName: serverName)
        return TLSMemoryPair(client: client, server: server)
    }

    @Test func handshakeCompletesWithTLS13ByDefault() throws {
        let pair = try pair()
        let result = pair.handshake()
        #expect(result.client == .complete)
        #expect(result.server == .complete)
        #expect(pair.client.protocolVersion == "TLSv1.3")
        #expect(pair.server.protocolVersion == "TLSv1.3")
        #expect(pair.client.peerCertificateSerial == (try Self.certificates.get().serial))
    }

    @Test func tls12ClientNegotiatesAnECDHEAEADSuite() throws {
        let pair = try pair()
        #expect(SSL_set_max_proto_version_shim(pair.client.ssl, TLS1_2_VERSION))
        #expect(pair.handshake().server == .complete)
        #expect(pair.server.protocolVersion == "TLSv1.2")
        let cipher = try #require(pair.server.cipherName)
        #expect(cipher.hasPrefix("ECDHE-"))
        #expect(cipher.contains("GCM") || cipher.contains("CHACHA20"))
    }

    @Test(
        arguments: [
            (["h2", "http/1.1"], ["h2", "http/1.1"], "h2"),
            (["h2", "http/1.1"], ["http/1.1", "h2"], "h2"),  // the server's preference wins
            (["http/1.1"], ["h2", "http/1.1"], "http/1.1"),
            (["http/1.1"], ["h2"], nil),  // nothing shared: continue without ALPN
        ] as [([String], [String], String?)])
    func alpnSelectsTheServersFirstSharedProtocol(server: [String], client: [String], expected: String?) throws {
        let pair = try pair(serverALPN: server, clientALPN: client)
        #expect(pair.handshake().server == .complete)
        #expect(pair.server.negotiatedProtocol == expected)
        #expect(pair.client.negotiatedProtocol == expected)
    }

    @Test func oneMegabyteEachWay() throws {
        let pair = try pair()
        #expect(pair.handshake().client == .complete)
        let upload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let download = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 17 &+ 3) }
        #expect(pair.transfer(upload, from: pair.client, to: pair.server) == upload)
        #expect(pair.transfer(download, from: pair.server, to: pair.client) == download)
    }

    @Test func closeNotifyEndsTheStream() throws {
        let pair = try pair()
        #expect(pair.handshake().client == .complete)
        #expect(pair.client.shutdown() == .sent)
        pair.pump()
        #expect(pair.drain(pair.server) == .closed)
    }

    @Test func wrongHostNameFailsVerification() throws {
        let pair = try pair(serverName: "not-this-host.example")
        let result = pair.handshake()
        guard case .failed(let error) = result.client else {
            Issue.record("client accepted a certificate for another name: \(result.client)")
            return
        }
        #expect(error.description.contains("certificate verify failed"))
    }

    @Test func untrustedCAFailsVerification() throws {
        let certificates = try Self.certificates.get()
        let stranger = try TestCertificates()
        defer { stranger.remove() }
        let server = try certificates.serverContext().makeServerSession()
        let client = try stranger.clientContext().makeClientSession(serverName: "localhost")
        let result = TLSMemoryPair(client: client, server: server).handshake()
        guard case .failed = result.client else {
            Issue.record("client trusted a certificate from an unknown CA")
            return
        }
    }

    @Test func ipAddressIsVerifiedAgainstIPSubjectAltName() throws {
        #expect(try pair(serverName: "127.0.0.1").handshake().client == .complete)
        let result = try pair(serverName: "10.9.8.7").handshake()
        guard case .failed = result.client else {
            Issue.record("client accepted a certificate without that IP address")
            return
        }
    }

    @Test func tls13TicketResumesTheNextSession() throws {
        let certificates = try Self.certificates.get()
        let serverContext = try certificates.serverContext()
        let clientContext = try certificates.clientContext()
        let first = TLSMemoryPair(
            client: try clientContext.makeClientSession(serverName: "localhost"),
            server: try serverContext.makeServerSession()
        )
        #expect(first.handshake().client == .complete)
        // TLS 1.3 tickets arrive after the handshake: the client must read to see them.
        #expect(first.transfer(Array("ping".utf8), from: first.server, to: first.client) == Array("ping".utf8))
        let saved = try #require(first.client.copySession())
        let second = TLSMemoryPair(
            client: try clientContext.makeClientSession(serverName: "localhost"),
            server: try serverContext.makeServerSession()
        )
        second.client.resume(saved)
        #expect(second.handshake().client == .complete)
        #expect(second.client.isResumed)
        #expect(second.server.isResumed)
        #expect(!first.server.isResumed)
    }

    @Test func plainHTTPIsRecognisedAsNotTLS() throws {
        let server = try Self.certificates.get().serverContext().makeServerSession()
        Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { server.receiveCiphertext($0) }
        guard case .failed(let error) = server.handshake() else {
            Issue.record("plain HTTP was not rejected")
            return
        }
        #expect(error.kind == .notTLS)
    }

    @Test func garbageFailsTheHandshake() throws {
        let server = try Self.certificates.get().serverContext().makeServerSession()
        let garbage: [UInt8] =
            [0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00] + Array(repeating: 0x41, count: 64)
        garbage.withUnsafeBytes { server.receiveCiphertext($0) }
        guard case .failed(let error) = server.handshake() else {
            Issue.record("garbage was accepted")
            return
        }
        #expect(error.kind == .library)
        #expect(!error.queue.isEmpty)
        #expect(!server.takeCiphertext().isEmpty, "an alert is queued for the peer")
    }

    @Test func rsaCertificateWorks() throws {
        let rsa = try TestCertificates(keyType: .rsa(bits: 2048))
        defer { rsa.remove() }
        let pair = TLSMemoryPair(
            client: try rsa.clientContext().makeClientSession(serverName: "localhost"),
            server: try rsa.serverContext().makeServerSession()
        )
        #expect(pair.handshake().client == .complete)
        #expect(pair.client.peerCertificateSerial == rsa.serial)
    }

    @Test func keyThatDoesNotMatchTheCertificateIsRefused() throws {
        let certificates = try Self.certificates.get()
        let other = try TestCertificates()
        defer { other.remove() }
        #expect {
            try TLSContext(
                server: .init(certificateChainFile: certificates.certificateFile, privateKeyFile: other.keyFile))
        } throws: { error in
            (error as? OpenSSLError)?.kind == .file(path: other.keyFile)
        }
    }

    @Test func missingCertificateFileNamesThePath() throws {
        #expect {
            try TLSContext(
                server: .init(certificateChainFile: "/nonexistent/server.crt", privateKeyFile: "/nonexistent/k"))
        } throws: { error in
            (error as? OpenSSLError)?.kind == .file(path: "/nonexistent/server.crt")
        }
    }

    @Test func alpnNamesMustFitTheWireFormat() {
        #expect(throws: OpenSSLError.self) { try ALPNProtocolList.wireFormat([""]) }
        #expect(throws: OpenSSLError.self) { try ALPNProtocolList.wireFormat([String(repeating: "x", count: 256)]) }
        #expect((try? ALPNProtocolList.wireFormat(["h2", "http/1.1"])) == [2, 104, 50, 8] + Array("http/1.1".utf8))
    }
}

/// `SSL_set_max_proto_version` is a macro; tests reach it through the shim's SSL_ctrl form.
func SSL_set_max_proto_version_shim(_ ssl: OpaquePointer, _ version: Int32) -> Bool {
    SSL_ctrl(ssl, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(version), nil) == 1
}
