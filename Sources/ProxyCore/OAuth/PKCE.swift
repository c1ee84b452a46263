import COpenSSL
import Foundation

/// Proof Key for Code Exchange with the S256 method (RFC 7636): random verifier and state, SHA-256 challenge.
public enum PKCE {
    /// 32 random bytes, base64url without padding: 43 characters (RFC 7636 §4.1).
    public static func makeVerifier() -> Secret {
        Secret(base64URL(randomBytes(32)))
    }

    /// 32 random bytes, base64url: the `state` that ties a callback to its pending authorization.
    public static func makeState() -> String {
        base64URL(randomBytes(32))
    }

    /// `BASE64URL(SHA256(ASCII(code_verifier)))` (RFC 7636 §4.2).
    public static func challenge(for verifier: Secret) -> String {
        base64URL(sha256(Array(verifier.reveal().utf8)))
    }

    /// Base64url without padding (RFC 4648 §5).
    public static func base64URL(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { input in
            digest.withUnsafeMutableBytes { output in
                EVP_Digest(
                    input.baseAddress, input.count, output.baseAddress?.assumingMemoryBound(to: UInt8.self), &length,
                    EVP_sha256(), nil)
            }
        }
        // EVP_Digest with SHA-256 and no engine fails only when libcrypto itself is broken.
        precondition(ok == 1 && length == 32, "EVP_Digest(SHA-256) failed")
        return digest
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let ok = bytes.withUnsafeMutableBytes {
            RAND_bytes($0.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(count))
        }
        // A CSPRNG that cannot seed must stop the login rather than hand out guessable verifiers.
        precondition(ok == 1, "RAND_bytes failed")
        return bytes
    }
}
