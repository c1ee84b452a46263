#ifndef CLAUDE_PROXY_COPENSSL_SHIM_H
#define CLAUDE_PROXY_COPENSSL_SHIM_H
// Swift cannot call C macros or variadic functions: each one the proxy needs gets a `static inline` wrapper
// here, prefixed `cp_`.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/ec.h>
#include <openssl/bn.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>

// MARK: SSL_CTX macros
static inline int cp_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int cp_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
static inline long cp_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long cp_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}
static inline long cp_SSL_CTX_sess_set_cache_size(SSL_CTX *ctx, long size) {
    return SSL_CTX_sess_set_cache_size(ctx, size);
}
static inline int cp_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}
static inline long cp_SSL_CTX_sess_accept(SSL_CTX *ctx) { return SSL_CTX_sess_accept(ctx); }
static inline long cp_SSL_CTX_sess_hits(SSL_CTX *ctx) { return SSL_CTX_sess_hits(ctx); }

static inline uint64_t cp_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t cp_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t cp_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline uint64_t cp_SSL_OP_IGNORE_UNEXPECTED_EOF(void) { return SSL_OP_IGNORE_UNEXPECTED_EOF; }
static inline long cp_SSL_MODE_RELEASE_BUFFERS(void) { return SSL_MODE_RELEASE_BUFFERS; }
static inline long cp_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER(void) { return SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER; }
static inline long cp_SSL_SESS_CACHE_SERVER(void) { return SSL_SESS_CACHE_SERVER; }
static inline long cp_SSL_SESS_CACHE_CLIENT(void) { return SSL_SESS_CACHE_CLIENT; }

// MARK: SSL macros
static inline int cp_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
static inline int cp_SSL_session_reused(const SSL *ssl) { return (int)SSL_session_reused((SSL *)ssl); }

// MARK: BIO macros
static inline size_t cp_BIO_pending(BIO *bio) { return (size_t)BIO_pending(bio); }
static inline int cp_BIO_set_mem_eof_return(BIO *bio, int value) { return (int)BIO_set_mem_eof_return(bio, value); }

// MARK: keys and certificates
// EVP_EC_gen is a macro over the variadic EVP_PKEY_Q_keygen.
static inline EVP_PKEY *cp_generate_ec_p256(void) {
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    if (ctx == NULL) return NULL;
    if (EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) <= 0
        || EVP_PKEY_keygen(ctx, &key) <= 0) {
        key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}
static inline EVP_PKEY *cp_generate_rsa(unsigned int bits) {
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
    if (ctx == NULL) return NULL;
    if (EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) <= 0
        || EVP_PKEY_keygen(ctx, &key) <= 0) {
        key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}
static inline void cp_X509V3_set_ctx_nodb(X509V3_CTX *ctx) { X509V3_set_ctx_nodb(ctx); }
static inline int cp_NID_subject_alt_name(void) { return NID_subject_alt_name; }
static inline int cp_NID_basic_constraints(void) { return NID_basic_constraints; }
static inline int cp_NID_key_usage(void) { return NID_key_usage; }
static inline int cp_NID_ext_key_usage(void) { return NID_ext_key_usage; }
static inline int cp_NID_subject_key_identifier(void) { return NID_subject_key_identifier; }
static inline int cp_NID_authority_key_identifier(void) { return NID_authority_key_identifier; }
static inline int cp_MBSTRING_ASC(void) { return MBSTRING_ASC; }

// MARK: memory
static inline void cp_OPENSSL_free(void *pointer) { OPENSSL_free(pointer); }

// MARK: errors
static inline int cp_ERR_GET_REASON(unsigned long err) { return ERR_GET_REASON(err); }
static inline int cp_SSL_R_HTTP_REQUEST(void) { return SSL_R_HTTP_REQUEST; }

// MARK: certificate generation
// sk_GENERAL_NAME_push is a macro over OPENSSL_sk_push with type checks; on success the stack owns `name`.
static inline int cp_GENERAL_NAMES_push(GENERAL_NAMES *names, GENERAL_NAME *name) {
    return sk_GENERAL_NAME_push(names, name);
}

#endif
