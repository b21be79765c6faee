/* SPDX-License-Identifier: Apache-2.0 */
/* The state dir's keys and certificates: a self-signed CA, the server certificate it
 * signs, the verdict-signing key; and the TLS 1.3 server context. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
            (!ca && add_ext(x, iss, NID_ext_key_usage, san ? "serverAuth" : "clientAuth") < 0) ||
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
        EVP_PKEY *ca_key = NULL, *srv_key = NULL, *vk = NULL;
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
        vk = read_key(dir, "verdict.key");
        if (!vk) {
                vk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                if (!vk || (r = write_pem(dir, "verdict.key", 0600, w_key, vk)) < 0)
                        goto out;
        }
out:
        if (r == 0 && (!ca || !srv || !vk))
                r = -EIO;
        EVP_PKEY_free(ca_key);
        EVP_PKEY_free(srv_key);
        EVP_PKEY_free(vk);
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
        /* idle connections (agents between challenges) give their read/write buffers back:
         * ~34 KiB per connection otherwise */
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        return ctx;
fail:
        SSL_CTX_free(ctx);
        return NULL;
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
                /* low S: one signature per verdict (the other of the pair is refused) */
                *sig_len = n;
                r = vc_ecdsa_p256_low_s(sig, sig_len) < 0 ? -EIO : 0;
                if (r < 0) {
                        OPENSSL_free(*sig);
                        *sig = NULL;
                }
        }
        EVP_MD_CTX_free(ctx);
        return r;
}

/* ---- client certificates for the policy-engine API ---- */

int tls_issue_client(const char *dir, const char *cn, const char *prefix) {
        EVP_PKEY *ca_key = read_key(dir, "ca.key"), *key = NULL;
        X509 *ca = read_cert(dir, "ca.pem"), *x = NULL;
        char name[4200];
        int r = -EIO;
        if (!ca_key || !ca) {
                r = -ENOENT;
                goto out;
        }
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        x = key ? make_cert(key, cn, ca, ca_key, false, NULL, 825) : NULL;
        if (!x)
                goto out;
        /* write_pem takes a dir and a name: split the prefix */
        const char *slash = strrchr(prefix, '/');
        char d[4096];
        snprintf(d, sizeof(d), "%.*s", slash ? (int) (slash - prefix) : 1, slash ? prefix : ".");
        if (slash && slash == prefix)
                snprintf(d, sizeof(d), "/");
        snprintf(name, sizeof(name), "%s.key", slash ? slash + 1 : prefix);
        if ((r = write_pem(d, name, 0600, w_key, key)) < 0)
                goto out;
        snprintf(name, sizeof(name), "%s.crt", slash ? slash + 1 : prefix);
        r = write_pem(d, name, 0644, w_cert, x);
out:
        EVP_PKEY_free(ca_key);
        EVP_PKEY_free(key);
        X509_free(ca);
        X509_free(x);
        ERR_clear_error();
        return r;
}

/* The API's TLS context: the state dir's server certificate, TLS 1.3, and a client
 * certificate from client_ca required. */
SSL_CTX *tls_api_ctx(const char *dir, const char *client_ca) {
        char ca[4096];
        SSL_CTX *ctx = tls_server_ctx(dir);
        if (!ctx)
                return NULL;
        if (!client_ca && path_of(ca, sizeof(ca), dir, "ca.pem") == 0)
                client_ca = ca;
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1 || !names) {
                sk_X509_NAME_pop_free(names, X509_NAME_free);
                SSL_CTX_free(ctx);
                return NULL;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        /* No session resumption: every connection shows its client certificate again (a
         * role may have been taken away since), and a client that offers a ticket from an
         * earlier session gets a full handshake rather than OpenSSL's "session id context
         * uninitialized" alert. */
        static const unsigned char sid_ctx[] = "vouchd-api";
        if (SSL_CTX_set_num_tickets(ctx, 0) != 1 ||
            SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
                SSL_CTX_free(ctx);
                return NULL;
        }
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        return ctx;
}

/* ---- the verdict-signing key ring ----
 * verdict.key signs; retired/<key id>.pem are former keys' public halves, each with
 * retired/<key id>.not_after (Unix seconds) until which they still verify. */

void verdict_keys_free(verdict_keys *k) {
        EVP_PKEY_free(k->active.pkey);
        for (size_t i = 0; i < k->n_retired; i++)
                EVP_PKEY_free(k->retired[i].pkey);
        memset(k, 0, sizeof(*k));
}

static int w_pubs(BIO *b, void *arg) {
        const verdict_keys *k = arg;
        if (PEM_write_bio_PUBKEY(b, k->active.pkey) != 1)
                return 0;
        for (size_t i = 0; i < k->n_retired; i++)
                if (PEM_write_bio_PUBKEY(b, k->retired[i].pkey) != 1)
                        return 0;
        return 1;
}

int tls_write_verdict_pubs(const char *dir, const verdict_keys *k) {
        return write_pem(dir, "verdict-keys.pem", 0644, w_pubs, (void *) k);
}

int tls_load_verdict_keys(const char *dir, verdict_keys *ret) {
        char rdir[4096], path[4400];
        verdict_keys k = { 0 };
        time_t now = time(NULL);
        int r;
        k.active.pkey = read_key(dir, "verdict.key");
        if (!k.active.pkey || tls_key_id(k.active.pkey, k.active.id) < 0) {
                verdict_keys_free(&k);
                return -ENOENT;
        }
        if (path_of(rdir, sizeof(rdir), dir, "retired") < 0)
                return -ENAMETOOLONG;
        DIR *dd = opendir(rdir);
        struct dirent *de;
        while (dd && (de = readdir(dd)) && k.n_retired < VERDICT_MAX_RETIRED) {
                size_t n = strlen(de->d_name);
                if (n != 64 + 4 || strcmp(de->d_name + 64, ".pem") != 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%.64s.not_after", rdir, de->d_name);
                FILE *f = fopen(path, "r");
                long long na = 0;
                if (!f || fscanf(f, "%lld", &na) != 1) {
                        vlog(LOG_WARN, "%s: unreadable; the retired key %.64s is not published", path, de->d_name);
                        if (f)
                                fclose(f);
                        continue;
                }
                fclose(f);
                if (na <= now)
                        continue; /* past its date: verdicts it signed no longer verify */
                snprintf(path, sizeof(path), "%s/%s", rdir, de->d_name);
                f = fopen(path, "r");
                EVP_PKEY *pk = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
                if (f)
                        fclose(f);
                vkey *v = &k.retired[k.n_retired];
                if (!pk || tls_key_id(pk, v->id) < 0 || strncmp(v->id, de->d_name, 64) != 0) {
                        vlog(LOG_WARN, "%s: not the public key its name says; not published", path);
                        EVP_PKEY_free(pk);
                        continue;
                }
                v->pkey = pk;
                v->not_after = na;
                k.n_retired++;
        }
        if (dd)
                closedir(dd);
        /* the verdict-signing public keys, for offline verification */
        if ((r = tls_write_verdict_pubs(dir, &k)) < 0) {
                verdict_keys_free(&k);
                return r;
        }
        *ret = k;
        ERR_clear_error();
        return 0;
}

int tls_rotate_verdict_key(const char *dir, int64_t old_not_after, char new_id[65]) {
        char rdir[4096], name[128], path[4400];
        EVP_PKEY *old = read_key(dir, "verdict.key"), *nk = NULL;
        char old_id[65];
        int r = -EIO;
        if (!old || tls_key_id(old, old_id) < 0) {
                r = -ENOENT;
                goto out;
        }
        if (path_of(rdir, sizeof(rdir), dir, "retired") < 0 || (mkdir(rdir, 0700) < 0 && errno != EEXIST)) {
                r = -errno;
                goto out;
        }
        /* the old key's public half and its date first: a crash leaves it still active */
        snprintf(path, sizeof(path), "%s/%s.not_after", rdir, old_id);
        FILE *f = fopen(path, "w");
        if (!f || fprintf(f, "%lld\n", (long long) old_not_after) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
                if (f)
                        fclose(f);
                goto out;
        }
        fclose(f);
        snprintf(name, sizeof(name), "%s.pem", old_id);
        if ((r = write_pem(rdir, name, 0644, w_pub, old)) < 0)
                goto out;
        nk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!nk || (r = write_pem(dir, "verdict.key", 0600, w_key, nk)) < 0 || (r = tls_key_id(nk, new_id)) < 0) {
                r = r < 0 ? r : -EIO;
                goto out;
        }
        r = 0;
out:
        EVP_PKEY_free(old);
        EVP_PKEY_free(nk);
        ERR_clear_error();
        return r;
}

/* The verifier's id: the key id of its CA's key, which outlives verdict-key rotation. */
int tls_verifier_id(const char *dir, char out[65]) {
        X509 *ca = read_cert(dir, "ca.pem");
        EVP_PKEY *k = ca ? X509_get0_pubkey(ca) : NULL;
        int r = k ? tls_key_id(k, out) : -ENOENT;
        X509_free(ca);
        return r;
}
