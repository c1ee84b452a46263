import Foundation
import ProxyTLS
import ProxyTesting
import Testing

/// Every certificate is checked with Debian's `openssl` command, a second implementation, not with our own code.
@Suite struct DevCertificateAuthorityTests {
    static let keyTypes: [DevCertificateAuthority.KeyType] = [.ecdsaP256, .rsa(bits: 2048)]
    static let fileNames = ["ca.crt", "ca.key", "server.crt", "server.key"]

    @Test(arguments: keyTypes)
    func serverCertificateVerifiesAgainstTheCA(keyType: DevCertificateAuthority.KeyType) throws {
        try withWrittenCertificates(DevCertificateAuthority.generate(keyType: keyType)) { folder in
            let result = try openssl(
                "verify", "-x509_strict", "-purpose", "sslserver",
                "-CAfile", folder.file("ca.crt"), folder.file("server.crt")
            )
            #expect(result.exitCode == 0)
            #expect(result.stdout == "\(folder.file("server.crt")): OK\n")
        }
    }

    @Test(arguments: keyTypes)
    func privateKeysMatchTheirCertificates(keyType: DevCertificateAuthority.KeyType) throws {
        let certificates = try DevCertificateAuthority.generate(keyType: keyType)
        #expect(certificates.serverPrivateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        #expect(certificates.caPrivateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        try withWrittenCertificates(certificates) { folder in
            for (key, certificate) in [("server.key", "server.crt"), ("ca.key", "ca.crt")] {
                let fromKey = try openssl("pkey", "-in", folder.file(key), "-pubout")
                let fromCertificate = try openssl("x509", "-in", folder.file(certificate), "-pubkey", "-noout")
                #expect(fromKey.exitCode == 0)
                #expect(fromKey.stdout.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
                #expect(fromKey.stdout == fromCertificate.stdout)
            }
            let serverKey = try openssl("pkey", "-in", folder.file("server.key"), "-noout", "-text").stdout
            switch keyType {
            case .ecdsaP256: #expect(serverKey.contains("NIST CURVE: P-256"))
            case .rsa(let bits): #expect(serverKey.contains("Private-Key: (\(bits) bit, 2 primes)"))
            }
            let caKey = try openssl("pkey", "-in", folder.file("ca.key"), "-noout", "-text").stdout
            #expect(caKey.contains("NIST CURVE: P-256"))
        }
    }

    @Test func subjectAltNamesListDNSNamesAndIPAddresses() throws {
        try withWrittenCertificates(DevCertificateAuthority.generate()) { folder in
            let result = try openssl("x509", "-in", folder.file("server.crt"), "-noout", "-ext", "subjectAltName")
            #expect(result.exitCode == 0)
            let expected = "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"
            #expect(result.stdout == "X509v3 Subject Alternative Name: \n    \(expected)\n")
        }
    }

    @Test func serialIsTheOneOpenSSLReads() throws {
        let certificates = try DevCertificateAuthority.generate()
        #expect(certificates.serverSerialHex.count <= 32)
        #expect(certificates.serverSerialHex.allSatisfy { "0123456789ABCDEF".contains($0) })
        try withWrittenCertificates(certificates) { folder in
            let result = try openssl("x509", "-in", folder.file("server.crt"), "-noout", "-serial")
            #expect(result.stdout == "serial=\(certificates.serverSerialHex)\n")
        }
    }

    @Test func twoGenerationsShareNothing() throws {
        let first = try DevCertificateAuthority.generate()
        let second = try DevCertificateAuthority.generate()
        #expect(first.serverSerialHex != second.serverSerialHex)
        #expect(first.caPrivateKeyPEM != second.caPrivateKeyPEM)
        #expect(first.serverPrivateKeyPEM != second.serverPrivateKeyPEM)
    }

    @Test func caExtensionsMakeItACertificateSigner() throws {
        try withWrittenCertificates(DevCertificateAuthority.generate()) { folder in
            let ca = folder.file("ca.crt")
            let extensions = try openssl(
                "x509", "-in", ca, "-noout", "-ext", "basicConstraints,keyUsage,subjectKeyIdentifier"
            ).stdout
            #expect(extensions.contains("X509v3 Basic Constraints: critical\n    CA:TRUE\n"))
            #expect(extensions.contains("X509v3 Key Usage: critical\n    Certificate Sign, CRL Sign\n"))
            #expect(extensions.contains("X509v3 Subject Key Identifier: \n"))
            let names = try openssl("x509", "-in", ca, "-noout", "-subject", "-issuer").stdout
            #expect(names == "subject=CN = claude-proxy development CA\nissuer=CN = claude-proxy development CA\n")
        }
    }

    @Test(arguments: keyTypes)
    func serverExtensionsMakeItATLSServer(keyType: DevCertificateAuthority.KeyType) throws {
        try withWrittenCertificates(DevCertificateAuthority.generate(keyType: keyType)) { folder in
            let server = folder.file("server.crt")
            let extensions = try openssl(
                "x509", "-in", server, "-noout", "-ext",
                "basicConstraints,keyUsage,extendedKeyUsage,subjectKeyIdentifier,authorityKeyIdentifier"
            ).stdout
            #expect(extensions.contains("X509v3 Basic Constraints: \n    CA:FALSE\n"))
            let usage = keyType == .ecdsaP256 ? "Digital Signature" : "Digital Signature, Key Encipherment"
            #expect(extensions.contains("X509v3 Key Usage: critical\n    \(usage)\n"))
            #expect(extensions.contains("X509v3 Extended Key Usage: \n    TLS Web Server Authentication\n"))
            #expect(extensions.contains("X509v3 Subject Key Identifier: \n"))
            #expect(extensions.contains("X509v3 Authority Key Identifier: \n"))
            let text = try openssl("x509", "-in", server, "-noout", "-text").stdout
            #expect(text.contains("Signature Algorithm: ecdsa-with-SHA256"))
        }
    }

    @Test func subjectIsTheFirstHostAndValidityIsValidDays() throws {
        let certificates = try DevCertificateAuthority.generate(hosts: ["proxy.test", "10.1.2.3"], validDays: 30)
        try withWrittenCertificates(certificates) { folder in
            let server = folder.file("server.crt")
            let names = try openssl("x509", "-in", server, "-noout", "-subject", "-issuer").stdout
            #expect(names == "subject=CN = proxy.test\nissuer=CN = claude-proxy development CA\n")
            let alternativeNames = try openssl("x509", "-in", server, "-noout", "-ext", "subjectAltName").stdout
            #expect(alternativeNames.hasSuffix("    DNS:proxy.test, IP Address:10.1.2.3\n"))
            for file in [folder.file("ca.crt"), server] {
                let day = 86_400
                // -checkend N exits 0 when the certificate is still valid N seconds from now, 1 when it is not.
                #expect(try openssl("x509", "-in", file, "-noout", "-checkend", "\(29 * day)").exitCode == 0)
                #expect(try openssl("x509", "-in", file, "-noout", "-checkend", "\(31 * day)").exitCode == 1)
            }
            let startDate = try openssl("x509", "-in", server, "-noout", "-startdate").stdout
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "'notBefore='MMM d HH:mm:ss yyyy 'GMT'"
            // A one-digit day is padded with a space: "Nov  5 14:07:45 2026 GMT".
            let text = startDate.trimmingCharacters(in: .newlines).replacingOccurrences(of: "  ", with: " ")
            let notBefore = try #require(formatter.date(from: text))
            #expect(abs(notBefore.timeIntervalSinceNow + 3600) < 120)
        }
    }

    @Test func writeMakesAPrivateFolderOfPrivateFiles() throws {
        let certificates = try DevCertificateAuthority.generate()
        let root = try TemporaryDirectory(prefix: "dev-ca")
        defer { root.remove() }
        let folder = root.file("missing/tls")
        try DevCertificateAuthority.write(certificates, to: folder, overwrite: false)
        #expect(try mode(of: folder) == 0o700)
        #expect(try listing(of: folder) == Self.fileNames)
        for name in Self.fileNames {
            #expect(try mode(of: folder + "/" + name) == 0o600)
        }
        #expect(try String(contentsOfFile: folder + "/server.key", encoding: .utf8) == certificates.serverPrivateKeyPEM)
        #expect(try String(contentsOfFile: folder + "/ca.crt", encoding: .utf8) == certificates.caCertificatePEM)
    }

    @Test func writeRefusesToOverwriteUnlessAsked() throws {
        let first = try DevCertificateAuthority.generate()
        let second = try DevCertificateAuthority.generate()
        try withWrittenCertificates(first) { folder in
            let error = #expect(throws: OpenSSLError.self) {
                try DevCertificateAuthority.write(second, to: folder.path, overwrite: false)
            }
            #expect(error?.kind == .file(path: folder.file("ca.crt")))
            #expect(try contents(of: folder) == contents(of: first))
            #expect(try listing(of: folder.path) == Self.fileNames)

            try DevCertificateAuthority.write(second, to: folder.path, overwrite: true)
            #expect(try contents(of: folder) == contents(of: second))
            #expect(try listing(of: folder.path) == Self.fileNames)
            for name in Self.fileNames {
                #expect(try mode(of: folder.file(name)) == 0o600)
            }
        }
    }

    @Test func writeRefusesWhenOnlyOneFileExists() throws {
        let certificates = try DevCertificateAuthority.generate()
        let folder = try TemporaryDirectory(prefix: "dev-ca")
        defer { folder.remove() }
        try folder.write("keep me", to: "server.key")
        #expect(throws: OpenSSLError.self) {
            try DevCertificateAuthority.write(certificates, to: folder.path, overwrite: false)
        }
        #expect(try String(contentsOfFile: folder.file("server.key"), encoding: .utf8) == "keep me")
        #expect(try listing(of: folder.path) == ["server.key"])
    }

    @Test(arguments: [
        ([], 397, DevCertificateAuthority.KeyType.ecdsaP256),
        (["not a host"], 397, .ecdsaP256),
        (["localhost", "-bad.example"], 397, .ecdsaP256),
        (["evil.example,DNS:bank.example"], 397, .ecdsaP256),
        (["*.localhost"], 397, .ecdsaP256),
        (["localhost"], 0, .ecdsaP256),
        (["localhost"], 826, .ecdsaP256),
        (["localhost"], 397, .rsa(bits: 1024)),
    ])
    func rejectsInputItCannotHonour(hosts: [String], validDays: Int, keyType: DevCertificateAuthority.KeyType) {
        #expect(throws: OpenSSLError.self) {
            try DevCertificateAuthority.generate(hosts: hosts, validDays: validDays, keyType: keyType)
        }
    }

    @Test func acceptsWildcardsAndIPv6() throws {
        let certificates = try DevCertificateAuthority.generate(hosts: ["*.dev.test", "fe80::1", "192.168.0.10"])
        try withWrittenCertificates(certificates) { folder in
            let result = try openssl("x509", "-in", folder.file("server.crt"), "-noout", "-ext", "subjectAltName")
            #expect(result.stdout.hasSuffix("DNS:*.dev.test, IP Address:FE80:0:0:0:0:0:0:1, IP Address:192.168.0.10\n"))
        }
    }
}

// MARK: helpers

/// Writes `certificates` into a fresh temporary folder, hands it to `body`, then removes it.
private func withWrittenCertificates(
    _ certificates: DevCertificates,
    _ body: (TemporaryDirectory) throws -> Void
) throws {
    let folder = try TemporaryDirectory(prefix: "dev-ca")
    defer { folder.remove() }
    try DevCertificateAuthority.write(certificates, to: folder.path, overwrite: false)
    try body(folder)
}

private func openssl(_ arguments: String...) throws -> ProcessResult {
    try ProcessRunner.run(["openssl"] + arguments)
}

private func mode(of path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return try #require(attributes[.posixPermissions] as? Int) & 0o777
}

private func listing(of path: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: path).sorted()
}

/// The four files' texts, in `fileNames` order.
private func contents(of folder: TemporaryDirectory) throws -> [String] {
    try DevCertificateAuthorityTests.fileNames.map { try String(contentsOfFile: folder.file($0), encoding: .utf8) }
}

private func contents(of certificates: DevCertificates) -> [String] {
    [
        certificates.caCertificatePEM, certificates.caPrivateKeyPEM,
        certificates.serverCertificatePEM, certificates.serverPrivateKeyPEM,
    ]
}
