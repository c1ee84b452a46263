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
#include <stdlib.h>
#include <string.h>

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

// MARK: ciphertext BIO
// The one BIO between OpenSSL and TLSSession, in place of two memory BIOs (each of which cost a copy of every byte
// in and out of its own buffer). Inbound, OpenSSL reads the peer's ciphertext straight out of the caller's buffer
// while it is lent (`lent`); only what it did not take by the end of the loan (part of a record) is copied, into
// `held`, which is read first next time. Outbound, OpenSSL's records are copied straight into the caller's buffer
// while one is offered (`target`); without one, or once one is full, they queue in `spill`, in order.
typedef struct {
    unsigned char *bytes;
    size_t start, end, capacity;
} cp_byte_queue;

typedef struct {
    const unsigned char *lent;
    size_t lent_count;
    cp_byte_queue held;
    unsigned char *target;
    size_t target_capacity, target_count;
    cp_byte_queue spill;
} cp_tls_io;

static inline size_t cp_byte_queue_count(const cp_byte_queue *queue) { return queue->end - queue->start; }

/// Appends `count` bytes; 0 when memory ran out (nothing appended).
static inline int cp_byte_queue_append(cp_byte_queue *queue, const void *bytes, size_t count) {
    if (count == 0) return 1;
    if (queue->capacity - queue->end < count) {
        size_t used = queue->end - queue->start;
        if (queue->start > 0) {
            memmove(queue->bytes, queue->bytes + queue->start, used);
            queue->start = 0;
            queue->end = used;
        }
        if (queue->capacity - used < count) {
            size_t capacity = queue->capacity > 0 ? queue->capacity : 4096;
            while (capacity - used < count) capacity *= 2;
            unsigned char *grown = realloc(queue->bytes, capacity);
            if (grown == NULL) return 0;
            queue->bytes = grown;
            queue->capacity = capacity;
        }
    }
    memcpy(queue->bytes + queue->end, bytes, count);
    queue->end += count;
    return 1;
}

/// Moves up to `count` bytes into `out`; returns how many. An emptied queue larger than a handshake flight gives its
/// memory back (an idle connection holds it).
static inline size_t cp_byte_queue_take(cp_byte_queue *queue, void *out, size_t count) {
    size_t available = queue->end - queue->start;
    if (count > available) count = available;
    if (count == 0) return 0;
    memcpy(out, queue->bytes + queue->start, count);
    queue->start += count;
    if (queue->start == queue->end) {
        queue->start = queue->end = 0;
        if (queue->capacity > 16384) {
            free(queue->bytes);
            queue->bytes = NULL;
            queue->capacity = 0;
        }
    }
    return count;
}

static int cp_tls_io_read(BIO *bio, char *out, int size) {
    cp_tls_io *io = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    size_t wanted = size > 0 ? (size_t)size : 0;
    size_t count = cp_byte_queue_take(&io->held, out, wanted);
    if (count < wanted && io->lent_count > 0) {
        size_t more = wanted - count < io->lent_count ? wanted - count : io->lent_count;
        memcpy(out + count, io->lent, more);
        io->lent += more;
        io->lent_count -= more;
        count += more;
    }
    if (count == 0) {
        // Nothing buffered is "retry", not end of file: OpenSSL reports SSL_ERROR_WANT_READ.
        BIO_set_retry_read(bio);
        return -1;
    }
    return (int)count;
}

static int cp_tls_io_write(BIO *bio, const char *bytes, int size) {
    cp_tls_io *io = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (size <= 0) return 0;
    size_t count = (size_t)size;
    if (io->target != NULL && cp_byte_queue_count(&io->spill) == 0
        && io->target_capacity - io->target_count >= count) {
        memcpy(io->target + io->target_count, bytes, count);
        io->target_count += count;
        return size;
    }
    return cp_byte_queue_append(&io->spill, bytes, count) ? size : -1;
}

static long cp_tls_io_ctrl(BIO *bio, int command, long number, void *pointer) {
    (void)number;
    (void)pointer;
    cp_tls_io *io = BIO_get_data(bio);
    switch (command) {
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_DUP:
        return 1;
    case BIO_CTRL_PENDING:
        return (long)(cp_byte_queue_count(&io->held) + io->lent_count);
    case BIO_CTRL_WPENDING:
        return (long)cp_byte_queue_count(&io->spill);
    default:
        return 0;
    }
}

static int cp_tls_io_create(BIO *bio) {
    cp_tls_io *io = calloc(1, sizeof(cp_tls_io));
    if (io == NULL) return 0;
    BIO_set_data(bio, io);
    BIO_set_init(bio, 1);
    return 1;
}

static int cp_tls_io_destroy(BIO *bio) {
    cp_tls_io *io = BIO_get_data(bio);
    if (io != NULL) {
        free(io->held.bytes);
        free(io->spill.bytes);
        free(io);
    }
    BIO_set_data(bio, NULL);
    BIO_set_init(bio, 0);
    return 1;
}

/// The method table; make it once (BIO_get_new_index hands out a new type each call).
static inline BIO_METHOD *cp_tls_io_method_new(void) {
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "claude-proxy ciphertext");
    if (method == NULL) return NULL;
    if (BIO_meth_set_read(method, cp_tls_io_read) != 1 || BIO_meth_set_write(method, cp_tls_io_write) != 1
        || BIO_meth_set_ctrl(method, cp_tls_io_ctrl) != 1 || BIO_meth_set_create(method, cp_tls_io_create) != 1
        || BIO_meth_set_destroy(method, cp_tls_io_destroy) != 1) {
        BIO_meth_free(method);
        return NULL;
    }
    return method;
}

static inline cp_tls_io *cp_tls_io_of(BIO *bio) { return BIO_get_data(bio); }
static inline size_t cp_tls_io_inbound_count(const cp_tls_io *io) {
    return cp_byte_queue_count(&io->held) + io->lent_count;
}
static inline size_t cp_tls_io_spilled_count(const cp_tls_io *io) { return cp_byte_queue_count(&io->spill); }
static inline int cp_tls_io_hold(cp_tls_io *io, const void *bytes, size_t count) {
    return cp_byte_queue_append(&io->held, bytes, count);
}
static inline size_t cp_tls_io_take_spilled(cp_tls_io *io, void *out, size_t count) {
    return cp_byte_queue_take(&io->spill, out, count);
}

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
