import COpenSSL

/// AES-256-GCM (NIST SP 800-38D) through OpenSSL EVP: a fresh random 96-bit nonce per message and a 16-byte
/// tag. The sealed form is `nonce || ciphertext || tag`.
enum SealedBox {
    static let nonceCount = 12
    static let tagCount = 16

    static func seal(_ plaintext: [UInt8], key: VaultKey, aad: [UInt8]) throws(VaultError) -> [UInt8] {
        let nonce = try SecureRandom.bytes(nonceCount)
        guard let context = EVP_CIPHER_CTX_new() else { throw OpenSSLFailure.error("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(context) }
        ERR_clear_error()
        var output = [UInt8](repeating: 0, count: nonceCount + plaintext.count + tagCount)
        output.replaceSubrange(0..<nonceCount, with: nonce)
        let ok: Bool = output.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            var length: Int32 = 0
            guard EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, nil, nil) == 1,
                EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, Int32(nonceCount), nil) == 1,
                key.withBytes({ EVP_EncryptInit_ex(context, nil, nil, $0, base) }) == 1,
                EVP_EncryptUpdate(context, nil, &length, aad, Int32(aad.count)) == 1,
                EVP_EncryptUpdate(context, base + nonceCount, &length, plaintext, Int32(plaintext.count)) == 1,
                EVP_EncryptFinal_ex(context, base + nonceCount + Int(length), &length) == 1,
                EVP_CIPHER_CTX_ctrl(
                    context, EVP_CTRL_GCM_GET_TAG, Int32(tagCount), base + nonceCount + plaintext.count) == 1
            else { return false }
            return true
        }
        guard ok else { throw OpenSSLFailure.error("AES-256-GCM encrypt") }
        return output
    }

    /// Returns the plaintext, or `nil` when the tag does not verify (wrong key, other AAD, changed bytes).
    static func open(_ sealed: [UInt8], key: VaultKey, aad: [UInt8]) throws(VaultError) -> [UInt8]? {
        guard sealed.count >= nonceCount + tagCount else { return nil }
        guard let context = EVP_CIPHER_CTX_new() else { throw OpenSSLFailure.error("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(context) }
        ERR_clear_error()
        let textCount = sealed.count - nonceCount - tagCount
        var plaintext = [UInt8](repeating: 0, count: textCount + 16)
        var tag = Array(sealed.suffix(tagCount))
        let ok: Bool = sealed.withUnsafeBufferPointer { input in
            plaintext.withUnsafeMutableBufferPointer { out in
                let base = input.baseAddress!
                var length: Int32 = 0
                guard EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, nil, nil) == 1,
                    EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, Int32(nonceCount), nil) == 1,
                    key.withBytes({ EVP_DecryptInit_ex(context, nil, nil, $0, base) }) == 1,
                    EVP_DecryptUpdate(context, nil, &length, aad, Int32(aad.count)) == 1,
                    EVP_DecryptUpdate(context, out.baseAddress, &length, base + nonceCount, Int32(textCount)) == 1,
                    EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(tagCount), &tag) == 1
                else { return false }
                // A tag mismatch shows here: EVP_DecryptFinal_ex returns 0.
                return EVP_DecryptFinal_ex(context, out.baseAddress! + Int(length), &length) == 1
            }
        }
        ERR_clear_error()
        guard ok else {
            OPENSSL_cleanse(&plaintext, plaintext.count)
            return nil
        }
        return Array(plaintext.prefix(textCount))
    }
}
