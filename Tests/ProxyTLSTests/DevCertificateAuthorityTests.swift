import Foundation
import ProxyTLS
import Testing

/// Every certificate is checked with Debian's `openssl` command, a second implementation, not with our own code.
@Suite struct DevCertificateAuthorityTests {
    static let keyTypes: [DevCertificateAuthority.KeyType] = [.ecdsaP256, .rsa(bits: 2048)]

    @Test(arguments: keyTypes)
    func serverCertificateVerifiesAgainstTheCA(keyType: DevCertificateAuthority.KeyType) throws {
        try withWrittenCertificates(DevCertificateAuthority.generate(keyType: keyType)) { folder, _ in
            let result = try openssl(
                ["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", "ca.crt", "server.crt"],
                in: folder
            )
            #expect(result.status == 0)
            #expect(result.output == "server.crt: OK\n")
        }
    }

    @Test(arguments: keyTypes)
    func privateKeysMatchTheirCertificates(keyType: DevCertificateAuthority.KeyType) throws {
        let certificates = try DevCertificateAuthority.generate(keyType: keyType)
        #expect(certificates.serverPrivateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        #expect(certificates.caPrivateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        try withWrittenCertificates(certificates) { folder, _ in
            for (key, certificate) in [("server.key", "server.crt"), ("ca.key", "ca.crt")] {
                let fromKey = try openssl(["pkey", "-in", key, "-pubout"], in: folder)
                let fromCertificate = try openssl(["x509", "-in", certificate, "-pubkey", "-noout"], in: folder)
                #expect(fromKey.status == 0)
                #expect(fromKey.output.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
                #expect(fromKey.output == fromCertificate.output)
            }
            let serverKey = try openssl(["pkey", "-in", "server.key", "-noout", "-text"], in: folder).output
            let caKey = try openssl(["pkey", "-in", "ca.key", "-noout", "-text"], in: folder).output
            switch keyType {
            case .ecdsaP256: #expect(serverKey.contains("NIST CURVE: P-256"))
            case .rsa(let bits): #expect(serverKey.contains("Private-Key: (\(bits) bit, 2 primes)"))
            }
            #expect(caKey.contains("NIST CURVE: P-256"))
        }
    }

    @Test func subjectAltNamesListDNSNamesAndIPAddresses() throws {
        try withWrittenCertificates(DevCertificateAuthority.generate()) { folder, _ in
            let result = try openssl(["x509", "-in", "server.crt", "-noout", "-ext", "subjectAltName"], in: folder)
            #expect(result.status == 0)
            let expected = "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"
            #expect(result.output == "X509v3 Subject Alternative Name: \n    \(expected)\n")
        }
    }

    @Test func serialIsTheOneOpenSSLReads() throws {
        let certificates = try DevCertificateAuthority.generate()
        #expect(certificates.serverSerialHex.count <= 32)
        #expect(certificates.serverSerialHex.allSatisfy { "0123456789ABCDEF".contains($0) })
        try withWrittenCertificates(certificates) { folder, _ in
            let result = try openssl(["x509", "-in", "server.crt", "-noout", "-serial"], in: folder)
            #expect(result.output == "serial=\(certificates.serverSerialHex)\n")
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
        try withWrittenCertificates(DevCertificateAuthority.generate()) { folder, _ in
            let extensions = try openssl(
                ["x509", "-in", "ca.crt", "-noout", "-ext", "basicConstraints,keyUsage,subjectKeyIdentifier"],
                in: folder
            ).output
            #expect(extensions.contains("X509v3 Basic Constraints: critical\n    CA:TRUE\n"))
            #expect(extensions.contains("X509v3 Key Usage: critical\n    Certificate Sign, CRL Sign\n"))
            #expect(extensions.contains("X509v3 Subject Key Identifier: \n"))
            let names = try openssl(["x509", "-in", "ca.crt", "-noout", "-subject", "-issuer"], in: folder).output
            #expect(names == "subject=CN = claude-proxy development CA\nissuer=CN = claude-proxy development CA\n")
        }
    }

    @Test(arguments: keyTypes)
    func serverExtensionsMakeItATLSServer(keyType: DevCertificateAuthority.KeyType) throws {
        try withWrittenCertificates(DevCertificateAuthority.generate(keyType: keyType)) { folder, _ in
            let extensions = try openssl(
                [
                    "x509", "-in", "server.crt", "-noout", "-ext",
                    "basicConstraints,keyUsage,extendedKeyUsage,subjectKeyIdentifier,authorityKeyIdentifier",
                ],
                in: folder
            ).output
            #expect(extensions.contains("X509v3 Basic Constraints: \n    CA:FALSE\n"))
            let usage = keyType == .ecdsaP256 ? "Digital Signature" : "Digital Signature, Key Encipherment"
            #expect(extensions.contains("X509v3 Key Usage: critical\n    \(usage)\n"))
            #expect(extensions.contains("X509v3 Extended Key Usage: \n    TLS Web Server Authentication\n"))
            #expect(extensions.contains("X509v3 Subject Key Identifier: \n"))
            #expect(extensions.contains("X509v3 Authority Key Identifier: \n"))
            let signature = try openssl(["x509", "-in", "server.crt", "-noout", "-text"], in: folder).output
            #expect(signature.contains("Signature Algorithm: ecdsa-with-SHA256"))
        }
    }

    @Test func subjectIsTheFirstHostAndValidityIsValidDays() throws {
        let certificates = try DevCertificateAuthority.generate(hosts: ["proxy.test", "10.1.2.3"], validDays: 30)
        try withWrittenCertificates(certificates) { folder, _ in
            let names = try openssl(["x509", "-in", "server.crt", "-noout", "-subject", "-issuer"], in: folder)
            #expect(names.output == "subject=CN = proxy.test\nissuer=CN = claude-proxy development CA\n")
            let alternativeNames = try openssl(
                ["x509", "-in", "server.crt", "-noout", "-ext", "subjectAltName"], in: folder)
            #expect(alternativeNames.output.hasSuffix("    DNS:proxy.test, IP Address:10.1.2.3\n"))
            for file in ["ca.crt", "server.crt"] {
                let day = 86_400
                // -checkend N exits 0 when the certificate is still valid N seconds from now.
                let in29Days = try openssl(["x509", "-in", file, "-noout", "-checkend", "\(29 * day)"], in: folder)
                let in31Days = try openssl(["x509", "-in", file, "-noout", "-checkend", "\(31 * day)"], in: folder)
                #expect(in29Days.status == 0)
                #expect(in31Days.status == 1)
            }
            let dates = try openssl(["x509", "-in", "server.crt", "-noout", "-startdate"], in: folder).output
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "'notBefore='MMM d HH:mm:ss yyyy 'GMT'"
            // A one-digit day is padded with a space: "Nov  5 14:07:45 2026 GMT".
            let startDate = dates.trimmingCharacters(in: .newlines).replacingOccurrences(of: "  ", with: " ")
            let notBefore = try #require(formatter.date(from: startDate))
            #expect(abs(notBefore.timeIntervalSinceNow + 3600) < 120)
        }
    }

    @Test func writeMakesAPrivateFolderOfPrivateFiles() throws {
        let certificates = try DevCertificateAuthority.generate()
        try withTemporaryDirectory { root in
            let folder = root.appendingPathComponent("missing/tls")
            try DevCertificateAuthority.write(certificates, to: folder.path, overwrite: false)
            #expect(try mode(of: folder) == 0o700)
            #expect(try listing(of: folder) == ["ca.crt", "ca.key", "server.crt", "server.key"])
            for name in ["ca.crt", "ca.key", "server.crt", "server.key"] {
                #expect(try mode(of: folder.appendingPathComponent(name)) == 0o600)
            }
            #expect(try contents(of: folder, "server.key") == certificates.serverPrivateKeyPEM)
            #expect(try contents(of: folder, "ca.crt") == certificates.caCertificatePEM)
        }
    }

    @Test func writeRefusesToOverwriteUnlessAsked() throws {
        let first = try DevCertificateAuthority.generate()
        let second = try DevCertificateAuthority.generate()
        try withWrittenCertificates(first) { folder, names in
            let error = #expect(throws: OpenSSLError.self) {
                try DevCertificateAuthority.write(second, to: folder.path, overwrite: false)
            }
            #expect(error?.kind == .file(path: folder.appendingPathComponent("ca.crt").path))
            #expect(try contents(of: folder, "ca.crt") == first.caCertificatePEM)
            #expect(try contents(of: folder, "ca.key") == first.caPrivateKeyPEM)
            #expect(try contents(of: folder, "server.crt") == first.serverCertificatePEM)
            #expect(try contents(of: folder, "server.key") == first.serverPrivateKeyPEM)
            #expect(try listing(of: folder) == names)

            try DevCertificateAuthority.write(second, to: folder.path, overwrite: true)
            #expect(try contents(of: folder, "ca.crt") == second.caCertificatePEM)
            #expect(try contents(of: folder, "server.key") == second.serverPrivateKeyPEM)
            #expect(try listing(of: folder) == names)
            #expect(try mode(of: folder.appendingPathComponent("server.key")) == 0o600)
        }
    }

    @Test func writeRefusesWhenOnlyOneFileExists() throws {
        let certificates = try DevCertificateAuthority.generate()
        try withTemporaryDirectory { folder in
            let existing = folder.appendingPathComponent("server.key")
            try "keep me".write(to: existing, atomically: false, encoding: .utf8)
            #expect(throws: OpenSSLError.self) {
                try DevCertificateAuthority.write(certificates, to: folder.path, overwrite: false)
            }
            #expect(try String(contentsOf: existing, encoding: .utf8) == "keep me")
            #expect(try listing(of: folder) == ["server.key"])
        }
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
        try withWrittenCertificates(certificates) { folder, _ in
            let result = try openssl(["x509", "-in", "server.crt", "-noout", "-ext", "subjectAltName"], in: folder)
            #expect(result.output.hasSuffix("DNS:*.dev.test, IP Address:FE80:0:0:0:0:0:0:1, IP Address:192.168.0.10\n"))
        }
    }
}

// MARK: helpers

private func withTemporaryDirectory<Result>(_ body: (URL) throws -> Result) throws -> Result {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dev-ca-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(at: folder) }
    return try body(folder)
}

/// Writes `certificates` into a fresh temporary folder, hands it and its sorted listing to `body`, then removes it.
private func withWrittenCertificates(
    _ certificates: DevCertificates,
    _ body: (URL, [String]) throws -> Void
) throws {
    try withTemporaryDirectory { folder in
        try DevCertificateAuthority.write(certificates, to: folder.path, overwrite: false)
        try body(folder, listing(of: folder))
    }
}

/// Runs Debian's `openssl` in `folder`; stdout and stderr together.
private func openssl(_ arguments: [String], in folder: URL) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["openssl"] + arguments
    process.currentDirectoryURL = folder
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

private func mode(of url: URL) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
    return try #require(attributes[.posixPermissions] as? Int) & 0o777
}

private func listing(of folder: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
}

private func contents(of folder: URL, _ name: String) throws -> String {
    try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
}
