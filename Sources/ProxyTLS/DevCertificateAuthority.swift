import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A development CA and one server certificate it signed, as PEM text.
public struct DevCertificates: Sendable, Equatable {
    /// The self-signed CA certificate: the one a client is told to trust.
    public var caCertificatePEM: String
    /// The CA's private key, PKCS#8 (`BEGIN PRIVATE KEY`).
    public var caPrivateKeyPEM: String
    /// The server's leaf certificate only, without the CA.
    public var serverCertificatePEM: String
    /// The server's private key, PKCS#8 (`BEGIN PRIVATE KEY`).
    public var serverPrivateKeyPEM: String
    /// The server certificate's serial number in upper-case hex, as `openssl x509 -serial` prints it after `serial=`.
    public var serverSerialHex: String

    public init(
        caCertificatePEM: String,
        caPrivateKeyPEM: String,
        serverCertificatePEM: String,
        serverPrivateKeyPEM: String,
        serverSerialHex: String
    ) {
        self.caCertificatePEM = caCertificatePEM
        self.caPrivateKeyPEM = caPrivateKeyPEM
        self.serverCertificatePEM = serverCertificatePEM
        self.serverPrivateKeyPEM = serverPrivateKeyPEM
        self.serverSerialHex = serverSerialHex
    }
}

/// Issues a throw-away CA and a server certificate for local TLS, through libcrypto.
public enum DevCertificateAuthority {
    /// The server key's algorithm; the CA key is always ECDSA P-256.
    public enum KeyType: Sendable, Equatable {
        case ecdsaP256
        case rsa(bits: Int)
    }

    public static let caCommonName = "claude-proxy development CA"
    /// Apple's platforms refuse TLS server certificates valid for more than 825 days, even from a locally trusted CA
    /// ("Requirements for trusted certificates in iOS 13 and macOS 10.15").
    public static let maximumValidDays = 825
    public static let rsaKeySizes = 2048...16384

    /// Self-signed ECDSA P-256 CA ("claude-proxy development CA") + server certificate signed by it,
    /// SAN = DNS for names, IP for addresses (IPv4 and IPv6, e.g. "127.0.0.1", "::1"). Random 128-bit positive serials.
    ///
    /// The subject CN of the server certificate is the first host. Both certificates are valid from an hour ago (clock
    /// skew) until `validDays` from now; 397 stays under the 398 days that browsers allow public CAs.
    public static func generate(
        hosts: [String] = ["localhost", "127.0.0.1", "::1"],
        validDays: Int = 397,
        keyType: KeyType = .ecdsaP256
    ) throws(OpenSSLError) -> DevCertificates {
        guard let commonName = hosts.first else {
            throw OpenSSLError(operation: "generate a certificate for an empty host list")
        }
        guard (1...maximumValidDays).contains(validDays) else {
            throw OpenSSLError(operation: "generate a certificate valid for \(validDays) days (allowed: 1...\(maximumValidDays))")
        }
        if case .rsa(let bits) = keyType, !rsaKeySizes.contains(bits) {
            throw OpenSSLError(operation: "generate a \(bits)-bit RSA key (allowed: \(rsaKeySizes))")
        }
        var alternativeNames: [SubjectAlternativeName] = []
        for host in hosts {
            alternativeNames.append(try SubjectAlternativeName(host: host))
        }

        ERR_clear_error()
        let caKey = try generateKey(.ecdsaP256)
        defer { EVP_PKEY_free(caKey) }
        let serverKey = try generateKey(keyType)
        defer { EVP_PKEY_free(serverKey) }

        let caProfile = CertificateProfile(
            commonName: caCommonName,
            serial: try SerialNumber.random(),
            validDays: validDays,
            extensions: [
                (cp_NID_basic_constraints(), "critical,CA:TRUE"),
                (cp_NID_key_usage(), "critical,keyCertSign,cRLSign"),
                (cp_NID_subject_key_identifier(), "hash"),
            ],
            alternativeNames: []
        )
        let ca = try issue(caProfile, subjectKey: caKey, issuer: nil)
        defer { X509_free(ca) }

        let keyUsage =
            switch keyType {
            case .ecdsaP256: "critical,digitalSignature"
            // TLS 1.2 RSA key exchange encrypts the premaster secret to the server's key (RFC 5246 §7.4.7.1).
            case .rsa: "critical,digitalSignature,keyEncipherment"
            }
        let serverProfile = CertificateProfile(
            commonName: commonName,
            serial: try SerialNumber.random(),
            validDays: validDays,
            extensions: [
                (cp_NID_basic_constraints(), "CA:FALSE"),
                (cp_NID_key_usage(), keyUsage),
                (cp_NID_ext_key_usage(), "serverAuth"),
                (cp_NID_subject_key_identifier(), "hash"),
                (cp_NID_authority_key_identifier(), "keyid:always"),
            ],
            alternativeNames: alternativeNames
        )
        let server = try issue(serverProfile, subjectKey: serverKey, issuer: (ca, caKey))
        defer { X509_free(server) }

        return DevCertificates(
            caCertificatePEM: try pem("CA certificate") { PEM_write_bio_X509($0, ca) },
            caPrivateKeyPEM: try pem("CA private key") { PEM_write_bio_PrivateKey($0, caKey, nil, nil, 0, nil, nil) },
            serverCertificatePEM: try pem("server certificate") { PEM_write_bio_X509($0, server) },
            serverPrivateKeyPEM: try pem("server private key") {
                PEM_write_bio_PrivateKey($0, serverKey, nil, nil, 0, nil, nil)
            },
            serverSerialHex: serverProfile.serial.hex
        )
    }

    /// Returns an `EVP_PKEY` the caller frees.
    static func generateKey(_ type: KeyType) throws(OpenSSLError) -> OpaquePointer {
        switch type {
        case .ecdsaP256:
            guard let key = cp_generate_ec_p256() else { throw .drain("generate ECDSA P-256 key") }
            return key
        case .rsa(let bits):
            guard let key = cp_generate_rsa(UInt32(bits)) else { throw .drain("generate \(bits)-bit RSA key") }
            return key
        }
    }

    /// Builds, extends and signs one X.509 v3 certificate; self-signed when `issuer` is nil. Returns an `X509` the
    /// caller frees.
    static func issue(
        _ profile: CertificateProfile,
        subjectKey: OpaquePointer,
        issuer: (certificate: OpaquePointer, key: OpaquePointer)?
    ) throws(OpenSSLError) -> OpaquePointer {
        guard let certificate = X509_new() else { throw .drain("X509_new") }
        var issued = false
        defer { if !issued { X509_free(certificate) } }

        guard X509_set_version(certificate, Int(X509_VERSION_3)) == 1 else { throw .drain("X509_set_version") }
        try profile.serial.assign(to: certificate)
        // notBefore an hour back, so a client whose clock runs a little behind still accepts a fresh certificate.
        guard X509_gmtime_adj(X509_getm_notBefore(certificate), -3600) != nil,
            X509_time_adj_ex(X509_getm_notAfter(certificate), Int32(profile.validDays), 0, nil) != nil
        else { throw .drain("set validity") }

        guard let subject = X509_NAME_new() else { throw .drain("X509_NAME_new") }
        defer { X509_NAME_free(subject) }
        let commonName = Array(profile.commonName.utf8)
        guard
            X509_NAME_add_entry_by_txt(subject, "CN", cp_MBSTRING_ASC(), commonName, Int32(commonName.count), -1, 0)
                == 1
        else { throw .drain("set subject CN \(profile.commonName)") }
        guard X509_set_subject_name(certificate, subject) == 1,
            X509_set_issuer_name(certificate, issuer.map { X509_get_subject_name($0.certificate) } ?? subject) == 1
        else { throw .drain("set subject and issuer names") }
        guard X509_set_pubkey(certificate, subjectKey) == 1 else { throw .drain("X509_set_pubkey") }

        // The context tells "hash" (subjectKeyIdentifier) and "keyid" (authorityKeyIdentifier) whose keys to hash.
        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer?.certificate ?? certificate, certificate, nil, nil, 0)
        for (nid, value) in profile.extensions {
            guard let `extension` = X509V3_EXT_nconf_nid(nil, &context, nid, value) else {
                throw .drain("build extension \(String(cString: OBJ_nid2sn(nid))) = \(value)")
            }
            defer { X509_EXTENSION_free(`extension`) }
            guard X509_add_ext(certificate, `extension`, -1) == 1 else { throw .drain("X509_add_ext") }
        }
        if !profile.alternativeNames.isEmpty {
            try addSubjectAlternativeNames(profile.alternativeNames, to: certificate)
        }

        guard X509_sign(certificate, issuer?.key ?? subjectKey, EVP_sha256()) > 0 else {
            throw .drain("sign certificate \(profile.commonName)")
        }
        issued = true
        return certificate
    }

    /// Each name is encoded on its own (no comma-separated config string), so a host can never smuggle in a second
    /// entry.
    static func addSubjectAlternativeNames(
        _ names: [SubjectAlternativeName],
        to certificate: OpaquePointer
    ) throws(OpenSSLError) {
        guard let generalNames = GENERAL_NAMES_new() else { throw .drain("GENERAL_NAMES_new") }
        defer { GENERAL_NAMES_free(generalNames) }
        for name in names {
            guard let generalName = a2i_GENERAL_NAME(nil, nil, nil, name.generalNameType, name.value, 0) else {
                throw .drain("encode subjectAltName \(name.value)")
            }
            guard cp_GENERAL_NAMES_push(generalNames, generalName) > 0 else {
                GENERAL_NAME_free(generalName)
                throw .drain("add subjectAltName \(name.value)")
            }
        }
        guard
            X509_add1_ext_i2d(
                certificate,
                cp_NID_subject_alt_name(),
                UnsafeMutableRawPointer(generalNames),
                0,
                UInt(X509V3_ADD_DEFAULT)
            ) == 1
        else { throw .drain("add subjectAltName extension") }
    }

    static func pem(_ what: String, _ write: (OpaquePointer) -> Int32) throws(OpenSSLError) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw .drain("BIO_new") }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw .drain("PEM-encode \(what)") }
        var bytes = [UInt8](repeating: 0, count: cp_BIO_pending(bio))
        guard BIO_read(bio, &bytes, Int32(bytes.count)) == Int32(bytes.count) else {
            throw .drain("read PEM of \(what)")
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// What differs between the CA and the server certificate.
struct CertificateProfile {
    var commonName: String
    var serial: SerialNumber
    var validDays: Int
    /// (NID, value in `openssl x509v3_config` syntax); values are constants, never user input.
    var extensions: [(nid: Int32, value: String)]
    var alternativeNames: [SubjectAlternativeName]
}

/// A certificate serial number: 16 random bytes read as a positive integer. RFC 5280 §4.1.2.2 allows up to 20
/// octets (with the sign octet DER needs, this is at most 17); the CA/Browser Forum asks for at least 64 random bits.
struct SerialNumber: Equatable {
    var bytes: [UInt8]

    static func random() throws(OpenSSLError) -> SerialNumber {
        var bytes = [UInt8](repeating: 0, count: 16)
        repeat {
            guard RAND_bytes(&bytes, Int32(bytes.count)) == 1 else { throw .drain("RAND_bytes") }
        } while bytes.allSatisfy { $0 == 0 }  // zero is not a positive integer
        return SerialNumber(bytes: bytes)
    }

    /// Two upper-case hex digits per byte of the integer's minimal big-endian form, as `i2a_ASN1_INTEGER` (and so
    /// `openssl x509 -serial`) prints it.
    var hex: String {
        bytes.drop { $0 == 0 }.map { byte in
            let digits = String(byte, radix: 16, uppercase: true)
            return byte < 0x10 ? "0" + digits : digits
        }.joined()
    }

    func assign(to certificate: OpaquePointer) throws(OpenSSLError) {
        guard let number = BN_bin2bn(bytes, Int32(bytes.count), nil) else { throw .drain("BN_bin2bn") }
        defer { BN_free(number) }
        guard let integer = BN_to_ASN1_INTEGER(number, nil) else { throw .drain("BN_to_ASN1_INTEGER") }
        defer { ASN1_INTEGER_free(integer) }
        guard X509_set_serialNumber(certificate, integer) == 1 else { throw .drain("X509_set_serialNumber") }
    }
}

/// One subjectAltName entry (RFC 5280 §4.2.1.6): modern clients match hosts against these only, never the CN
/// (RFC 6125 §6.4.4; Chrome since 58).
enum SubjectAlternativeName: Equatable {
    case dnsName(String)
    case ipAddress(String)

    init(host: String) throws(OpenSSLError) {
        if Self.isIPAddress(host) {
            self = .ipAddress(host)
        } else if Self.isDNSName(host) {
            self = .dnsName(host)
        } else {
            throw OpenSSLError(operation: "use \"\(host)\" as subjectAltName (neither a DNS name nor an IP address)")
        }
    }

    var value: String {
        switch self {
        case .dnsName(let name): name
        case .ipAddress(let address): address
        }
    }

    var generalNameType: Int32 {
        switch self {
        case .dnsName: GEN_DNS
        case .ipAddress: GEN_IPADD
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        var address = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET, host, &address) == 1 || inet_pton(AF_INET6, host, &address) == 1
    }

    /// Letters, digits and hyphens in labels of 1...63 (RFC 1123 §2.1), at most 253 characters; a wildcard only as
    /// the whole leftmost label above at least two more (RFC 6125 §6.4.3, and what OpenSSL's host check accepts).
    static func isDNSName(_ host: String) -> Bool {
        guard !host.isEmpty, host.utf8.count <= 253 else { return false }
        var labels = host.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        if labels.count > 2, labels[0].elementsEqual("*".utf8) {
            labels.removeFirst()
        }
        return labels.allSatisfy { label in
            (1...63).contains(label.count) && label.first != UInt8(ascii: "-") && label.last != UInt8(ascii: "-")
                && label.allSatisfy { byte in
                    switch byte {
                    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
                        true
                    default: false
                    }
                }
        }
    }
}
