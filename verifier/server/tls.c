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
#include "log.h"
#include "tls.h"

static int path_of(char *out, size_t n, const char *dir, const char *name) {
        return snprintf(out, n, "%s/%s", dir, name) < (int) n ? 0 : -ENAMETOOLONG;
}

/* Writes a file atomically: a new temp file (O_EXCL | O_NOFOLLOW: never through a link
 * someone planted), fsync, rename over the name (which replaces a link, not its target).
 * -errno of the step that failed (ENOSPC for a full disk). */
static int write_file_atomic(const char *dir, const char *name, mode_t mode, const void *data, size_t len) {
        char path[4096], tmp[4200];
        if (path_of(path, sizeof(path), dir, name) < 0)
                return -ENAMETOOLONG;
        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0 && errno == EEXIST && unlink(tmp) == 0) /* left by an earlier process of this pid */
                fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        int r = fchmod(fd, mode) < 0 ? -errno : 0;
        for (size_t off = 0; r == 0 && off < len;) {
                ssize_t n = write(fd, (const uint8_t *) data + off, len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        r = n < 0 ? -errno : -EIO;
                else
                        off += (size_t) n;
        }
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

/* Writes a PEM object atomically with the given mode. */
static int write_pem(const char *dir, const char *name, mode_t mode, int (*writer)(BIO *, void *), void *obj) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL;
        int r = -ENOMEM;
        if (bio && writer(bio, obj) == 1) {
                long len = BIO_get_mem_data(bio, &data);
                r = len > 0 ? write_file_atomic(dir, name, mode, data, (size_t) len) : -EIO;
        }
        BIO_free(bio);
        return r;
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

/* Opens dir/name for reading without following a symbolic link (-ELOOP for one). */
static FILE *open_nofollow(const char *dir, const char *name, int *ret_errno) {
        char path[4096];
        if (path_of(path, sizeof(path), dir, name) < 0) {
                *ret_errno = ENAMETOOLONG;
                return NULL;
        }
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
        *ret_errno = fd < 0 ? errno : f ? 0 : ENOMEM;
        if (fd >= 0 && !f)
                close(fd);
        return f;
}

/* 0 with *ret set, -ENOENT when absent, -EBADMSG when present but not a PEM object of
 * that kind, -errno otherwise. */
static int load_key(const char *dir, const char *name, EVP_PKEY **ret) {
        int e;
        FILE *f = open_nofollow(dir, name, &e);
        if (!f)
                return -e;
        *ret = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        return *ret ? 0 : -EBADMSG;
}

static int load_cert(const char *dir, const char *name, X509 **ret) {
        int e;
        FILE *f = open_nofollow(dir, name, &e);
        if (!f)
                return -e;
        *ret = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        return *ret ? 0 : -EBADMSG;
}

static EVP_PKEY *read_key(const char *dir, const char *name) {
        EVP_PKEY *k = NULL;
        return load_key(dir, name, &k) == 0 ? k : NULL;
}

static X509 *read_cert(const char *dir, const char *name) {
        X509 *x = NULL;
        return load_cert(dir, name, &x) == 0 ? x : NULL;
}

/* ---- the state dir: only vouchd's user may change it (as ssh asks of ~/.ssh) ---- */

static const char *const key_files[] = { "ca.key", "server.key", "verdict.key" };
static const char *const other_files[] = { "ca.pem", "server.pem", "verdict-keys.pem", "vouch.db", "vouch.db-wal",
                                           "vouch.db-shm", "vouchd.lock" };

/* path's owner and mode: vouchd's user, none of forbidden's bits, not a link. */
static int check_path(const char *path, const struct stat *st, mode_t forbidden, bool dir, char *err, size_t n) {
        if (S_ISLNK(st->st_mode)) {
                snprintf(err, n, "%.300s is a symbolic link: vouchd writes and reads only its own files there", path);
                return -ELOOP;
        }
        if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode)) {
                snprintf(err, n, "%.300s is not a %s", path, dir ? "directory" : "regular file");
                return -EINVAL;
        }
        if (st->st_uid != geteuid()) {
                snprintf(err, n, "%.300s is owned by uid %u, not by vouchd's uid %u: chown it (or run vouchd as its owner)",
                         path, (unsigned) st->st_uid, (unsigned) geteuid());
                return -EPERM;
        }
        if (st->st_mode & forbidden) {
                snprintf(err, n, "%.150s has mode %04o: it must not be %s by group or others (chmod %s %.150s)", path,
                         (unsigned) (st->st_mode & 07777), forbidden & 044 ? "readable or writable" : "writable",
                         dir ? "700" : forbidden & 044 ? "600" : "go-w", path);
                return -EPERM;
        }
        return 0;
}

int tls_check_state_dir(const char *dir, char *err, size_t n) {
        char path[4200];
        struct stat st;
        int r;
        if (stat(dir, &st) < 0)
                return errno == ENOENT ? 0 : (snprintf(err, n, "%s: %s", dir, strerror(errno)), -errno);
        if ((r = check_path(dir, &st, 022, true, err, n)) < 0)
                return r;
        snprintf(path, sizeof(path), "%s/retired", dir);
        if (lstat(path, &st) == 0 && (r = check_path(path, &st, 022, true, err, n)) < 0)
                return r;
        for (size_t i = 0; i < sizeof(key_files) / sizeof(*key_files); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, key_files[i]);
                if (lstat(path, &st) == 0 && (r = check_path(path, &st, 077, false, err, n)) < 0)
                        return r;
        }
        for (size_t i = 0; i < sizeof(other_files) / sizeof(*other_files); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, other_files[i]);
                if (lstat(path, &st) == 0 && (r = check_path(path, &st, 022, false, err, n)) < 0)
                        return r;
        }
        return 0;
}

bool tls_state_dir_is_fresh(const char *dir) {
        char path[4200];
        struct stat st;
        static const char *const any[] = { "ca.key", "ca.pem", "server.key", "server.pem", "verdict.key", "vouch.db" };
        for (size_t i = 0; i < sizeof(any) / sizeof(*any); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, any[i]);
                if (lstat(path, &st) == 0)
                        return false;
        }
        return true;
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

/* A present key or certificate that cannot be read is never replaced: a new CA would
 * break every agent and API client, a new verdict key every passport in the field. */
static int unreadable(const char *dir, const char *name, int r, char *err, size_t n) {
        if (r == -ENOENT)
                snprintf(err, n, "%s/%s is missing (the state dir has vouchd's other files): restore it from a backup, "
                         "or run 'vouchd init --state-dir %s' to make a new one", dir, name, dir);
        else
                snprintf(err, n, "%s/%s cannot be used: %s; restore it from a backup (vouchd does not replace a key "
                         "or certificate it cannot read)", dir, name,
                         r == -EBADMSG ? "not a readable PEM key or certificate (garbled?)"
                         : r == -ELOOP ? "it is a symbolic link" : strerror(-r));
        return r;
}

static int wrote(const char *dir, const char *name, int r, char *err, size_t n) {
        if (r < 0)
                snprintf(err, n, "cannot write %s/%s: %s", dir, name, strerror(-r));
        return r;
}

/* A key and its certificate: both loaded, or both absent (r_key, r_cert: -ENOENT) and made
 * when generate is set. */
static int key_pair(const char *dir, const char *kname, const char *cname, bool generate, EVP_PKEY **key, X509 **cert,
                    char *err, size_t n) {
        int rk = load_key(dir, kname, key), rc = load_cert(dir, cname, cert);
        if (rk == 0 && rc == 0) {
                if (X509_check_private_key(*cert, *key) != 1) {
                        snprintf(err, n, "%s/%s is not the certificate of %s/%s: restore the pair from a backup", dir,
                                 cname, dir, kname);
                        return -EINVAL;
                }
                return 1;
        }
        if (rk == -ENOENT && rc == -ENOENT && generate)
                return 0; /* both absent: the caller makes them (what it holds is freed by the caller) */
        return rk < 0 ? unreadable(dir, kname, rk, err, n) : unreadable(dir, cname, rc, err, n);
}

int tls_init_state_dir(const char *dir, char *const *sans, size_t n_sans, bool generate, char *err, size_t errlen) {
        EVP_PKEY *ca_key = NULL, *srv_key = NULL, *vk = NULL;
        X509 *ca = NULL, *srv = NULL;
        char san[2048] = "DNS:localhost,IP:127.0.0.1,IP:::1";
        int r;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
                return -errno;
        }
        if ((r = tls_check_state_dir(dir, err, errlen)) < 0)
                return r;
        for (size_t i = 0; i < n_sans; i++) {
                bool ip = strspn(sans[i], "0123456789.:abcdefABCDEF") == strlen(sans[i]) && strpbrk(sans[i], ".:");
                snprintf(san + strlen(san), sizeof(san) - strlen(san), ",%s:%s", ip ? "IP" : "DNS", sans[i]);
        }
        if ((r = key_pair(dir, "ca.key", "ca.pem", generate, &ca_key, &ca, err, errlen)) < 0)
                goto out;
        if (r == 0) {
                ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                ca = ca_key ? make_cert(ca_key, "vouch verifier CA", NULL, NULL, true, NULL, 3650) : NULL;
                if (!ca) {
                        snprintf(err, errlen, "cannot make a CA key and certificate");
                        r = -EIO;
                        goto out;
                }
                if ((r = wrote(dir, "ca.key", write_pem(dir, "ca.key", 0600, w_key, ca_key), err, errlen)) < 0 ||
                    (r = wrote(dir, "ca.pem", write_pem(dir, "ca.pem", 0644, w_cert, ca), err, errlen)) < 0)
                        goto out;
        }
        if ((r = key_pair(dir, "server.key", "server.pem", generate, &srv_key, &srv, err, errlen)) < 0)
                goto out;
        if (r == 0) {
                srv_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                srv = srv_key ? make_cert(srv_key, "vouchd", ca, ca_key, false, san, 825) : NULL;
                if (!srv) {
                        snprintf(err, errlen, "cannot make a server key and certificate");
                        r = -EIO;
                        goto out;
                }
                if ((r = wrote(dir, "server.key", write_pem(dir, "server.key", 0600, w_key, srv_key), err, errlen)) < 0 ||
                    (r = wrote(dir, "server.pem", write_pem(dir, "server.pem", 0644, w_cert, srv), err, errlen)) < 0)
                        goto out;
        }
        r = load_key(dir, "verdict.key", &vk);
        if (r == -ENOENT && generate) {
                vk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                r = vk ? wrote(dir, "verdict.key", write_pem(dir, "verdict.key", 0600, w_key, vk), err, errlen) : -ENOMEM;
        } else if (r < 0) {
                unreadable(dir, "verdict.key", r, err, errlen);
        }
out:
        EVP_PKEY_free(ca_key);
        EVP_PKEY_free(srv_key);
        EVP_PKEY_free(vk);
        X509_free(ca);
        X509_free(srv);
        ERR_clear_error();
        return r < 0 ? r : 0;
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

/* A file vouchd wrote: opened without following a link, a regular file of vouchd's user
 * that nobody else can write; NULL with why set otherwise. A retired key planted by
 * someone else is never published as a verdict key. */
static FILE *open_own(const char *dir, const char *name, char *why, size_t n) {
        int e;
        struct stat st;
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = open_nofollow(dir, name, &e);
        if (!f) {
                snprintf(why, n, "%.400s: %s", path, e == ELOOP ? "a symbolic link" : strerror(e));
                return NULL;
        }
        if (fstat(fileno(f), &st) < 0 || check_path(path, &st, 022, false, why, n) < 0) {
                fclose(f);
                return NULL;
        }
        return f;
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
                char na_name[128], why[600];
                snprintf(na_name, sizeof(na_name), "%.64s.not_after", de->d_name);
                snprintf(path, sizeof(path), "%s/%s", rdir, na_name);
                FILE *f = open_own(rdir, na_name, why, sizeof(why));
                long long na = 0;
                if (!f || fscanf(f, "%lld", &na) != 1) {
                        vlog(LOG_WARN, "%s: %s; the retired key %.64s is not published", path, f ? "unreadable" : why,
                             de->d_name);
                        if (f)
                                fclose(f);
                        continue;
                }
                fclose(f);
                if (na <= now)
                        continue; /* past its date: verdicts it signed no longer verify */
                snprintf(path, sizeof(path), "%s/%s", rdir, de->d_name);
                f = open_own(rdir, de->d_name, why, sizeof(why));
                if (!f) {
                        vlog(LOG_WARN, "%s; not published", why);
                        continue;
                }
                EVP_PKEY *pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
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
        char date[32];
        int dn = snprintf(date, sizeof(date), "%lld\n", (long long) old_not_after);
        snprintf(path, sizeof(path), "%s.not_after", old_id);
        if ((r = write_file_atomic(rdir, path, 0644, date, (size_t) dn)) < 0)
                goto out;
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
