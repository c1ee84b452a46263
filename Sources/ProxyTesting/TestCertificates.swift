import ProxyTLS

/// A development CA and server certificate written into a temporary folder.
public struct TestCertificates: Sendable {
    public let directory: TemporaryDirectory
    public let generated: DevCertificates

    public var caFile: String { directory.file("ca.crt") }
    public var certificateFile: String { directory.file("server.crt") }
    public var keyFile: String { directory.file("server.key") }
    public var serial: String { generated.serverSerialHex }

    public init(
        keyType: DevCertificateAuthority.KeyType = .ecdsaP256, hosts: [String] = ["localhost", "127.0.0.1", "::1"]
    ) throws {
        directory = try TemporaryDirectory(prefix: "claude-proxy-certs")
        generated = try DevCertificateAuthority.generate(hosts: hosts, keyType: keyType)
        try DevCertificateAuthority.write(generated, to: directory.path, overwrite: true)
    }

    public func serverContext(alpn: [String] = ["http/1.1"]) throws -> TLSContext {
        try TLSContext(
            server: .init(certificateChainFile: certificateFile, privateKeyFile: keyFile, alpnProtocols: alpn))
    }

    /// A client that trusts only this CA.
    public func clientContext(alpn: [String] = ["http/1.1"]) throws -> TLSContext {
        try TLSContext(client: .init(alpnProtocols: alpn, extraCAFile: caFile, useSystemTrustStore: false))
    }

    public func remove() { directory.remove() }
}
