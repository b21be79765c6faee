/* SPDX-License-Identifier: Apache-2.0 */
/* The state dir's keys and certificates: a self-signed CA, the server certificate it
 * signs, the verdict-signing key; and the TLS 1.3 server context. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "server.h"

static int path_of(char *out, size_t n, const char *dir, const char *name) {
        return snprintf(out, n, "%s/%s", dir, name) < (int) n ? 0 : -ENAMETOOLONG;
}

/* Writes a PEM object atomically (temp file + rename) with the given mode. */
static int write_pem(const char *dir, const char *name, mode_t mode, int (*writer)(BIO *, void *), void *obj) {
        char path[4096], tmp[4200];
        if (path_of(path, sizeof(path), dir, name) < 0)
                return -ENAMETOOLONG;
        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        fchmod(fd, mode);
        FILE *f = fdopen(fd, "w");
        BIO *bio = f ? BIO_new_fp(f, BIO_NOCLOSE) : NULL;
        int ok = bio && writer(bio, obj) == 1;
        BIO_free(bio);
        if (f) {
                ok = ok && fflush(f) == 0 && fsync(fd) == 0;
                fclose(f);
        } else {
                close(fd);
        }
        if (!ok || rename(tmp, path) < 0) {
                unlink(tmp);
                return -EIO;
        }
        return 0;
}

static int w_key(BIO *b, void *k) {
        return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}
static int w_pub(BIO *b, void *k) {
        return PEM_write_bio_PUBKEY(b, k);
}
static int w_cert(BIO *b, void *x) {
        return PEM_write_bio_X509(b, x);
}

static EVP_PKEY *read_key(const char *dir, const char *name) {
        char path[4096];
        if (path_of(path, sizeof(path), dir, name) < 0)
                return NULL;
        FILE *f = fopen(path, "r");
        if (!f)
                return NULL;
        EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        return k;
}

static X509 *read_cert(const char *dir, const char *name) {
        char path[4096];
        if (path_of(path, sizeof(path), dir, name) < 0)
                return NULL;
        FILE *f = fopen(path, "r");
        if (!f)
                return NULL;
        X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        return x;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!ext)
                return -EINVAL;
        int ok = X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -EIO;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca, const char *san,
                       long days) {
        X509 *x = X509_new();
        uint8_t serial[16];
        BIGNUM *bn = NULL;
        if (!x)
                return NULL;
        if (RAND_bytes(serial, sizeof(serial)) != 1)
                goto fail;
        serial[0] &= 0x7f;
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
                goto fail;
        X509_set_version(x, 2);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), days * 86400);
        X509_set_pubkey(x, key);
        X509_NAME *name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *) "vouch", -1, -1, 0);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1, 0);
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
        X509 *iss = issuer ? issuer : x;
        if (add_ext(x, iss, NID_basic_constraints, ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE") < 0 ||
            add_ext(x, iss, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") < 0 ||
            add_ext(x, iss, NID_subject_key_identifier, "hash") < 0 ||
            (!ca && add_ext(x, iss, NID_ext_key_usage, "serverAuth") < 0) ||
            (san && add_ext(x, iss, NID_subject_alt_name, san) < 0))
                goto fail;
        if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
                goto fail;
        BN_free(bn);
        return x;
fail:
        BN_free(bn);
        X509_free(x);
        return NULL;
}

int tls_init_state_dir(const char *dir, char *const *sans, size_t n_sans) {
        EVP_PKEY *ca_key = NULL, *srv_key = NULL, *vkey = NULL;
        X509 *ca = NULL, *srv = NULL;
        char san[2048] = "DNS:localhost,IP:127.0.0.1,IP:::1";
        int r = 0;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        for (size_t i = 0; i < n_sans; i++) {
                bool ip = strspn(sans[i], "0123456789.:abcdefABCDEF") == strlen(sans[i]) && strpbrk(sans[i], ".:");
                snprintf(san + strlen(san), sizeof(san) - strlen(san), ",%s:%s", ip ? "IP" : "DNS", sans[i]);
        }
        ca_key = read_key(dir, "ca.key");
        ca = read_cert(dir, "ca.pem");
        if (!ca_key || !ca) {
                EVP_PKEY_free(ca_key);
                X509_free(ca);
                ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                ca = ca_key ? make_cert(ca_key, "vouch verifier CA", NULL, NULL, true, NULL, 3650) : NULL;
                if (!ca || (r = write_pem(dir, "ca.key", 0600, w_key, ca_key)) < 0 ||
                    (r = write_pem(dir, "ca.pem", 0644, w_cert, ca)) < 0)
                        goto out;
        }
        srv_key = read_key(dir, "server.key");
        srv = read_cert(dir, "server.pem");
        if (!srv_key || !srv) {
                EVP_PKEY_free(srv_key);
                X509_free(srv);
                srv_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                srv = srv_key ? make_cert(srv_key, "vouchd", ca, ca_key, false, san, 825) : NULL;
                if (!srv || (r = write_pem(dir, "server.key", 0600, w_key, srv_key)) < 0 ||
                    (r = write_pem(dir, "server.pem", 0644, w_cert, srv)) < 0)
                        goto out;
        }
        vkey = read_key(dir, "verdict.key");
        if (!vkey) {
                vkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                if (!vkey || (r = write_pem(dir, "verdict.key", 0600, w_key, vkey)) < 0)
                        goto out;
        }
        /* the verdict-signing public keys, for offline verification */
        r = write_pem(dir, "verdict-keys.pem", 0644, w_pub, vkey);
out:
        if (r == 0 && (!ca || !srv || !vkey))
                r = -EIO;
        EVP_PKEY_free(ca_key);
        EVP_PKEY_free(srv_key);
        EVP_PKEY_free(vkey);
        X509_free(ca);
        X509_free(srv);
        ERR_clear_error();
        return r;
}

SSL_CTX *tls_server_ctx(const char *dir) {
        char cert[4096], key[4096];
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx || path_of(cert, sizeof(cert), dir, "server.pem") < 0 || path_of(key, sizeof(key), dir, "server.key") < 0)
                goto fail;
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1)
                goto fail;
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
        return ctx;
fail:
        SSL_CTX_free(ctx);
        return NULL;
}

EVP_PKEY *tls_load_verdict_key(const char *dir) {
        return read_key(dir, "verdict.key");
}

int tls_key_id(EVP_PKEY *k, char out[65]) {
        unsigned char *der = NULL;
        uint8_t md[32];
        int n = i2d_PUBKEY(k, &der);
        if (n <= 0)
                return -EIO;
        int r = vc_digest(VC_ALG_SHA256, der, (size_t) n, md);
        OPENSSL_free(der);
        if (r < 0)
                return r;
        vc_hex(md, 32, out);
        return 0;
}

int verdict_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t n = 0;
        int r = -EIO;
        if (ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
            EVP_DigestSign(ctx, NULL, &n, msg, len) == 1 && (*sig = OPENSSL_malloc(n)) &&
            EVP_DigestSign(ctx, *sig, &n, msg, len) == 1) {
                *sig_len = n;
                r = 0;
        }
        EVP_MD_CTX_free(ctx);
        return r;
}
