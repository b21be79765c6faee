/* SPDX-License-Identifier: Apache-2.0 */
/* The state dir's CA and server certificate, API client certificates, and the TLS 1.3
 * contexts. */
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

#include "keys.h"
#include "log.h"
#include "statedir.h"
#include "tls.h"
#include "x509.h"

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
        if (vu_x509_add_ext(x, iss, NID_basic_constraints, ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE") < 0 ||
            vu_x509_add_ext(x, iss, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") < 0 ||
            vu_x509_add_ext(x, iss, NID_subject_key_identifier, "hash") < 0 ||
            (!ca && vu_x509_add_ext(x, iss, NID_ext_key_usage, san ? "serverAuth" : "clientAuth") < 0) ||
            (san && vu_x509_add_ext(x, iss, NID_subject_alt_name, san) < 0))
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
        int rk = sd_load_key(dir, kname, key), rc = sd_load_cert(dir, cname, cert);
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

/* A new P-256 key and its certificate (a CA when issuer is NULL), written as NAME.key (0600)
 * and NAME.pem. */
static int new_pair(const char *dir, const char *name, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                    const char *san, int days, EVP_PKEY **ret_key, X509 **ret_cert, char *err, size_t errlen) {
        char kname[32], cname[32];
        int r;
        snprintf(kname, sizeof(kname), "%s.key", name);
        snprintf(cname, sizeof(cname), "%s.pem", name);
        *ret_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        *ret_cert = *ret_key ? make_cert(*ret_key, cn, issuer, issuer_key, !issuer, san, days) : NULL;
        if (!*ret_cert) {
                snprintf(err, errlen, "cannot make a %s key and certificate", issuer ? "server" : "CA");
                return -EIO;
        }
        if ((r = wrote(dir, kname, sd_write_pem(dir, kname, 0600, sd_w_key, *ret_key), err, errlen)) < 0 ||
            (r = wrote(dir, cname, sd_write_pem(dir, cname, 0644, sd_w_cert, *ret_cert), err, errlen)) < 0)
                return r;
        return 0;
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
        if ((r = statedir_check(dir, err, errlen)) < 0)
                return r;
        for (size_t i = 0; i < n_sans; i++) {
                bool ip = strspn(sans[i], "0123456789.:abcdefABCDEF") == strlen(sans[i]) && strpbrk(sans[i], ".:");
                snprintf(san + strlen(san), sizeof(san) - strlen(san), ",%s:%s", ip ? "IP" : "DNS", sans[i]);
        }
        if ((r = key_pair(dir, "ca.key", "ca.pem", generate, &ca_key, &ca, err, errlen)) < 0 ||
            (r == 0 && (r = new_pair(dir, "ca", "vouch verifier CA", NULL, NULL, NULL, 3650, &ca_key, &ca, err, errlen)) < 0))
                goto out;
        if ((r = key_pair(dir, "server.key", "server.pem", generate, &srv_key, &srv, err, errlen)) < 0 ||
            (r == 0 && (r = new_pair(dir, "server", "vouchd", ca, ca_key, san, 825, &srv_key, &srv, err, errlen)) < 0))
                goto out;
        r = sd_load_key(dir, "verdict.key", &vk);
        if (r == -ENOENT && generate) {
                vk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                r = vk ? wrote(dir, "verdict.key", sd_write_pem(dir, "verdict.key", 0600, sd_w_key, vk), err, errlen) : -ENOMEM;
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

int tls_join_state_dir(const char *dir, const char *existing, char *err, size_t errlen) {
        EVP_PKEY *ca_key = NULL;
        X509 *ca = NULL;
        struct stat a, b;
        int r;

        if (stat(existing, &b) < 0) {
                r = -errno;
                snprintf(err, errlen, "--join %s: %s", existing, strerror(errno));
                return r;
        }
        if ((r = statedir_check(existing, err, errlen)) < 0)
                return r;
        if (statedir_is_fresh(existing)) {
                snprintf(err, errlen, "--join %s: not an initialised state dir (no CA, verdict key or store in it): "
                         "--join takes the state dir of an instance of the deployment", existing);
                return -ENOENT;
        }
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
                return -errno;
        }
        if ((r = statedir_check(dir, err, errlen)) < 0)
                return r;
        if (stat(dir, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
                snprintf(err, errlen, "--join %s: that is the state dir itself", existing);
                return -EINVAL;
        }
        /* the deployment's CA: its key and certificate, as a pair */
        if ((r = key_pair(existing, "ca.key", "ca.pem", false, &ca_key, &ca, err, errlen)) < 0)
                goto out;
        if ((r = wrote(dir, "ca.key", sd_write_pem(dir, "ca.key", 0600, sd_w_key, ca_key), err, errlen)) < 0 ||
            (r = wrote(dir, "ca.pem", sd_write_pem(dir, "ca.pem", 0644, sd_w_cert, ca), err, errlen)) < 0)
                goto out;
        /* the verdict-signing keys: the active one and the retired ones still valid */
        r = vk_copy(existing, dir, err, errlen);
out:
        EVP_PKEY_free(ca_key);
        X509_free(ca);
        ERR_clear_error();
        return r < 0 ? r : 0;
}

SSL_CTX *tls_server_ctx(const char *dir) {
        char cert[4096], key[4096];
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx || sd_path_of(cert, sizeof(cert), dir, "server.pem") < 0 || sd_path_of(key, sizeof(key), dir, "server.key") < 0)
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

/* ---- client certificates for the policy-engine API ---- */

int tls_issue_client(const char *dir, const char *cn, const char *prefix) {
        EVP_PKEY *ca_key = sd_read_key(dir, "ca.key"), *key = NULL;
        X509 *ca = sd_read_cert(dir, "ca.pem"), *x = NULL;
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
        /* sd_write_pem takes a dir and a name: split the prefix */
        const char *slash = strrchr(prefix, '/');
        char d[4096];
        snprintf(d, sizeof(d), "%.*s", slash ? (int) (slash - prefix) : 1, slash ? prefix : ".");
        if (slash && slash == prefix)
                snprintf(d, sizeof(d), "/");
        snprintf(name, sizeof(name), "%s.key", slash ? slash + 1 : prefix);
        if ((r = sd_write_pem(d, name, 0600, sd_w_key, key)) < 0)
                goto out;
        snprintf(name, sizeof(name), "%s.crt", slash ? slash + 1 : prefix);
        r = sd_write_pem(d, name, 0644, sd_w_cert, x);
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
        if (!client_ca && sd_path_of(ca, sizeof(ca), dir, "ca.pem") == 0)
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

/* The verifier's id: the key id of its CA's key, which outlives verdict-key rotation. */
int tls_verifier_id(const char *dir, char out[65]) {
        X509 *ca = sd_read_cert(dir, "ca.pem");
        EVP_PKEY *k = ca ? X509_get0_pubkey(ca) : NULL;
        int r = k ? vk_key_id(k, out) : -ENOENT;
        X509_free(ca);
        return r;
}
