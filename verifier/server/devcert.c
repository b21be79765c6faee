/* SPDX-License-Identifier: Apache-2.0 */
/* Device certificates (devcert.h): the device CA, issuing, the CRL. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certify.h"
#include "clock.h"
#include "devcert.h"
#include "devnames.h"
#include "fileio.h"
#include "keys.h"
#include "statedir.h"
#include "vouchd.h"
#include "wire.h"
#include "x509.h"

#define CA_FILE_MAX (1u << 20)  /* an operator's CA certificate file (with its chain) or key */
#define CA_DAYS 3650
#define CRL_URL_MAX 1024

/* One CRL entry, as the store has it. */
typedef struct crl_entry {
        char serial[VS_SERIAL_MAX + 1];
        int64_t revoked_at;
} crl_entry;

typedef struct crl_set {
        crl_entry *e;
        size_t n, cap;
} crl_set;

struct devcert {
        /* set by devcert_load, read-only after */
        EVP_PKEY *key;
        X509 *ca;
        uint8_t *chain[DEVCERT_CHAIN_MAX];      /* DER: the CA's certificate, then the rest of its file */
        size_t chain_len[DEVCERT_CHAIN_MAX], n_chain;
        char ca_id[65];                         /* vk_key_id of the CA's key */
        char ca_where[4200];                    /* the certificate file, for messages */
        int64_t ca_not_after;
        char *crl_url;                          /* NULL: no distribution point */
        devnames *names;                        /* --device-names, under names_mu (SIGHUP swaps it) */
        pthread_mutex_t names_mu;
        int64_t max_ttl;                        /* the longest lifetime (--device-cert-ttl), 0: none */
        bool issuing;
        /* /metrics (any thread) */
        atomic_ullong issued, refused, failed;

        /* the CRL, under mu; one refresh at a time (refresh_mu, taken first): the CRL's thread,
         * or a test */
        pthread_mutex_t refresh_mu;
        pthread_mutex_t mu;
        pthread_cond_t wake;
        uint8_t *crl_der;
        size_t crl_der_len;
        char *crl_pem;
        size_t crl_pem_len;
        BIGNUM *crl_number;
        int64_t crl_this_update;
        crl_set listed;                         /* sorted by serial */
        bool read_failing;                      /* the CRL's thread: a failure logged once */
        bool stop;
        /* the thread */
        pthread_t thread;
        bool started;
};

/* ---- the device CA's files ---- */

/* A new device CA: ECDSA P-256, self-signed. */
static int make_ca(EVP_PKEY **ret_key, X509 **ret_cert) {
        EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        X509 *x = key ? X509_new() : NULL;
        uint8_t serial[16];
        BIGNUM *bn = NULL;
        int r = -EIO;
        if (!x || RAND_bytes(serial, sizeof(serial)) != 1)
                goto out;
        serial[0] &= 0x7f;
        if (!(bn = BN_bin2bn(serial, sizeof(serial), NULL)) || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
                goto out;
        X509_NAME *name = X509_get_subject_name(x);
        if (X509_set_version(x, 2) != 1 || !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), (long) CA_DAYS * 86400) || X509_set_pubkey(x, key) != 1 ||
            X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *) "vouch", -1, -1, 0) != 1 ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) "vouch device CA", -1, -1, 0) != 1 ||
            X509_set_issuer_name(x, name) != 1)
                goto out;
        if (vu_x509_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
            vu_x509_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
            vu_x509_add_ext(x, x, NID_subject_key_identifier, "hash") < 0 || !X509_sign(x, key, EVP_sha256()))
                goto out;
        *ret_key = key;
        *ret_cert = x;
        key = NULL;
        x = NULL;
        r = 0;
out:
        BN_free(bn);
        EVP_PKEY_free(key);
        X509_free(x);
        return r;
}

static int ca_unreadable(const char *dir, const char *name, int r, char *err, size_t n) {
        if (r == -ENOENT)
                snprintf(err, n, "%.3000s/%s is missing, but %s is there: restore it from a backup (vouchd does "
                         "not replace half of a CA: the certificates it issued would not verify)", dir, name,
                         strcmp(name, DEVCA_KEY_FILE) == 0 ? DEVCA_CERT_FILE : DEVCA_KEY_FILE);
        else
                snprintf(err, n, "%.3000s/%s cannot be used: %s; restore it from a backup (vouchd does not replace "
                         "a key or certificate it cannot read)", dir, name,
                         r == -EBADMSG ? "not a readable PEM key or certificate (garbled?)"
                         : r == -ELOOP ? "it is a symbolic link" : strerror(-r));
        return r;
}

/* The pair in dir: 1 loaded (*key, *cert), 0 both absent, <0 otherwise (err). */
static int load_pair(const char *dir, EVP_PKEY **key, X509 **cert, char *err, size_t n) {
        int rk = sd_load_key(dir, DEVCA_KEY_FILE, key), rc = sd_load_cert(dir, DEVCA_CERT_FILE, cert);
        if (rk == -ENOENT && rc == -ENOENT)
                return 0;
        if (rk < 0 || rc < 0)
                return rk < 0 ? ca_unreadable(dir, DEVCA_KEY_FILE, rk, err, n) : ca_unreadable(dir, DEVCA_CERT_FILE, rc, err, n);
        if (X509_check_private_key(*cert, *key) != 1) {
                snprintf(err, n, "%.3000s/%s is not the certificate of %s: restore the pair from a backup", dir,
                         DEVCA_CERT_FILE, DEVCA_KEY_FILE);
                return -EINVAL;
        }
        return 1;
}

static int write_pair(const char *dir, EVP_PKEY *key, X509 *cert, char *err, size_t n) {
        int r = sd_write_pem(dir, DEVCA_KEY_FILE, 0600, sd_w_key, key);
        if (r == 0)
                r = sd_write_pem(dir, DEVCA_CERT_FILE, 0644, sd_w_cert, cert);
        if (r < 0)
                snprintf(err, n, "cannot write the device CA in %.3000s: %s", dir, strerror(-r));
        return r;
}

int devca_init_state_dir(const char *dir, bool generate, char *err, size_t n) {
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        int r = load_pair(dir, &key, &cert, err, n);
        if (r == 0 && generate) {
                if ((r = make_ca(&key, &cert)) < 0)
                        snprintf(err, n, "cannot make a device CA key and certificate");
                else
                        r = write_pair(dir, key, cert, err, n);
        }
        EVP_PKEY_free(key);
        X509_free(cert);
        ERR_clear_error();
        return r < 0 ? r : 0;
}

int devca_join_state_dir(const char *dir, const char *existing, bool *ret_copied, char *err, size_t n) {
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        int r = load_pair(existing, &key, &cert, err, n);
        *ret_copied = false;
        if (r > 0 && (r = write_pair(dir, key, cert, err, n)) == 0)
                *ret_copied = true;
        EVP_PKEY_free(key);
        X509_free(cert);
        ERR_clear_error();
        return r < 0 ? r : 0;
}

/* ---- loading it at start ---- */

static int64_t asn1_seconds(const ASN1_TIME *t) {
        struct tm tm;
        if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
                return 0;
        return (int64_t) timegm(&tm);
}

/* The operator's files: every certificate of cert_path (the CA's first: its chain after it)
 * and the key of key_path. */
static int load_files(devcert *c, const char *cert_path, const char *key_path, STACK_OF(X509) **ret_chain, char *err,
                      size_t n) {
        uint8_t *pem = NULL;
        size_t len = 0;
        BIO *b = NULL;
        STACK_OF(X509) *chain = sk_X509_new_null();
        int r = vu_read_file(AT_FDCWD, cert_path, CA_FILE_MAX, &pem, &len);
        if (r < 0) {
                snprintf(err, n, "--device-ca-cert %.2000s: %s", cert_path, r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
                goto out;
        }
        r = -EBADMSG;
        if (!chain || !(b = BIO_new_mem_buf(pem, (int) len)))
                goto oom;
        for (X509 *x; (x = PEM_read_bio_X509(b, NULL, NULL, NULL));)
                if (!sk_X509_push(chain, x)) {
                        X509_free(x);
                        goto oom;
                }
        if (sk_X509_num(chain) == 0) {
                snprintf(err, n, "--device-ca-cert %.2000s: no PEM certificate in it", cert_path);
                goto out;
        }
        if (sk_X509_num(chain) > DEVCERT_CHAIN_MAX) {
                snprintf(err, n, "--device-ca-cert %.2000s: %d certificates, at most %d (the CA's and its issuers')",
                         cert_path, sk_X509_num(chain), DEVCERT_CHAIN_MAX);
                r = -E2BIG;
                goto out;
        }
        BIO_free(b);
        b = NULL;
        free(pem);
        pem = NULL;
        if ((r = vu_read_file(AT_FDCWD, key_path, CA_FILE_MAX, &pem, &len)) < 0) {
                snprintf(err, n, "--device-ca-key %.2000s: %s", key_path, r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
                goto out;
        }
        if (!(b = BIO_new_mem_buf(pem, (int) len)))
                goto oom;
        if (!(c->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL))) {
                snprintf(err, n, "--device-ca-key %.2000s: not a PEM private key (an encrypted one needs its "
                         "passphrase: store it unencrypted, readable by vouchd's user only)", key_path);
                r = -EBADMSG;
                goto out;
        }
        *ret_chain = chain;
        chain = NULL;
        r = 0;
        goto out;
oom:
        snprintf(err, n, "out of memory");
        r = -ENOMEM;
out:
        if (pem)
                OPENSSL_cleanse(pem, len);
        free(pem);
        BIO_free(b);
        sk_X509_pop_free(chain, X509_free);
        return r;
}

/* The CA as a device CA: its key's, may sign certificates and CRLs, with a subject key
 * identifier, unexpired, a key that signs with SHA-256 (EC or RSA). */
static int check_ca(devcert *c, int64_t now, char *err, size_t n) {
        uint32_t flags = X509_get_extension_flags(c->ca);
        int type = EVP_PKEY_get_base_id(c->key);
        if (X509_check_private_key(c->ca, c->key) != 1)
                snprintf(err, n, "%s: the key given is not its certificate's", c->ca_where);
        else if (!(flags & EXFLAG_CA))
                snprintf(err, n, "%s: not a CA certificate (basicConstraints CA:TRUE)", c->ca_where);
        else if ((flags & EXFLAG_KUSAGE) &&
                 (X509_get_key_usage(c->ca) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) != (KU_KEY_CERT_SIGN | KU_CRL_SIGN))
                snprintf(err, n, "%s: its keyUsage lacks keyCertSign or cRLSign", c->ca_where);
        else if (!X509_get0_subject_key_id(c->ca)) /* what its certificates' and CRLs' AKI name */
                snprintf(err, n, "%s: no subjectKeyIdentifier (RFC 5280, 4.2.1.2: a CA certificate has one)",
                         c->ca_where);
        else if (type != EVP_PKEY_EC && type != EVP_PKEY_RSA)
                snprintf(err, n, "%s: an EC or RSA key is needed (it signs with SHA-256)", c->ca_where);
        else if ((c->ca_not_after = asn1_seconds(X509_get0_notAfter(c->ca))) <= now)
                snprintf(err, n, "%s: the CA's certificate has expired", c->ca_where);
        else
                return 0;
        return -EINVAL;
}

/* A SPIFFE trust domain (SPIFFE ID standard, 2.1): lowercase letters, digits, '.', '-', '_'. */
static bool trust_domain_ok(const char *td) {
        size_t n = strlen(td);
        return n > 0 && n <= 255 && strspn(td, "abcdefghijklmnopqrstuvwxyz0123456789.-_") == n;
}

/* A URL that goes into the certificates as it is: http(s), printable, without a comma or a
 * space (OpenSSL's configuration syntax would split it). */
static bool crl_url_ok(const char *u) {
        if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
                return false;
        if (strlen(u) > CRL_URL_MAX || strpbrk(u, ", \"\\"))
                return false;
        for (const char *p = u; *p; p++)
                if (*p < 0x21 || *p > 0x7e)
                        return false;
        return true;
}

static int settings(vouchd *d, devcert *c) {
        const config *cfg = &d->cfg;
        int64_t verdict_ttl = (int64_t) cfg->interval * cfg->verdict_ttl_intervals;
        char url[1200];
        if (cfg->trust_domain && !trust_domain_ok(cfg->trust_domain)) {
                vlog(LOG_ERR, "--trust-domain \"%.300s\": a SPIFFE trust domain is 1-255 of a-z 0-9 . - _",
                     cfg->trust_domain);
                return -EINVAL;
        }
        if (cfg->crl_url)
                snprintf(url, sizeof(url), "%s", cfg->crl_url);
        else if (cfg->http_listen)
                snprintf(url, sizeof(url), "http://%s/v1/crl", cfg->http_listen);
        else
                url[0] = 0;
        if (url[0] && !crl_url_ok(url)) {
                vlog(LOG_ERR, "%s \"%.300s\": an http:// or https:// URL without spaces, commas or quotes, at most "
                              "%d characters", cfg->crl_url ? "--crl-url" : "the CRL's URL from --http-listen", url,
                     CRL_URL_MAX);
                return -EINVAL;
        }
        if (url[0] && !(c->crl_url = strdup(url)))
                return -ENOMEM;
        c->max_ttl = cfg->device_cert_ttl;
        if (cfg->trust_domain && c->max_ttl > verdict_ttl)
                vlog(LOG_WARN, "--device-cert-ttl %lld is longer than a verdict lives (%lld s): certificates end with "
                               "their verdict", (long long) c->max_ttl, (long long) verdict_ttl);
        if (cfg->trust_domain && !url[0])
                vlog(LOG_WARN, "device certificates name no CRL distribution point (neither --crl-url nor "
                               "--http-listen): relying parties must fetch the CRL from the API or vouchctl crl get");
        else if (cfg->trust_domain && !cfg->crl_url &&
                 (strncmp(cfg->http_listen, "0.0.0.0:", 8) == 0 || cfg->http_listen[0] == ':' ||
                  strncmp(cfg->http_listen, "[::]:", 5) == 0))
                vlog(LOG_WARN, "the CRL distribution point is %s, made from --http-listen: give --crl-url with the "
                               "address relying parties reach", url);
        return 0;
}

int devcert_load(vouchd *d) {
        const config *cfg = &d->cfg;
        devcert *c = calloc(1, sizeof(*c));
        STACK_OF(X509) *chain = NULL;
        char err[4600];
        int r;
        if (!c)
                return -ENOMEM;
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_mutex_init(&c->mu, NULL);
        pthread_mutex_init(&c->refresh_mu, NULL);
        pthread_mutex_init(&c->names_mu, NULL);
        pthread_cond_init(&c->wake, &ca);
        pthread_condattr_destroy(&ca);
        d->devcert = c;
        if (!cfg->device_ca_cert != !cfg->device_ca_key) {
                vlog(LOG_ERR, "--device-ca-cert and --device-ca-key go together");
                return -EINVAL;
        }
        if ((r = settings(d, c)) < 0)
                return r;
        if (cfg->device_names && !cfg->trust_domain) {
                vlog(LOG_ERR, "--device-names %s: names for device certificates, which are issued only with "
                              "--trust-domain", cfg->device_names);
                return -EINVAL;
        }
        if (cfg->device_ca_cert) {
                snprintf(c->ca_where, sizeof(c->ca_where), "--device-ca-cert %.4000s", cfg->device_ca_cert);
                r = load_files(c, cfg->device_ca_cert, cfg->device_ca_key, &chain, err, sizeof(err));
        } else {
                X509 *x = NULL;
                snprintf(c->ca_where, sizeof(c->ca_where), "%.4000s/%s", cfg->state_dir, DEVCA_CERT_FILE);
                r = load_pair(cfg->state_dir, &c->key, &x, err, sizeof(err));
                if (r > 0 && (!(chain = sk_X509_new_null()) || !sk_X509_push(chain, x))) {
                        snprintf(err, sizeof(err), "out of memory");
                        r = -ENOMEM;
                }
                if (r <= 0)
                        X509_free(x);
        }
        if (r == 0 && !cfg->device_ca_cert) {
                /* a state dir made before device certificates (nothing is generated here: the
                 * instances of a deployment must share one) */
                if (cfg->trust_domain) {
                        vlog(LOG_ERR, "--trust-domain: there is no device CA to issue certificates with: %s/%s and %s "
                                      "are missing (a state dir made before vouch issued device certificates). Make "
                                      "them with 'vouchd init --state-dir %s' (with several instances: on one, then "
                                      "copy both files to the others' state dirs), or give --device-ca-cert and "
                                      "--device-ca-key (docs/vouchd.md, Device certificates)",
                             cfg->state_dir, DEVCA_CERT_FILE, DEVCA_KEY_FILE, cfg->state_dir);
                        return -ENOENT;
                }
                return 0;
        }
        if (r < 0) {
                vlog(LOG_ERR, "device CA: %s", err);
                sk_X509_pop_free(chain, X509_free);
                ERR_clear_error();
                return r;
        }
        r = 0;
        c->ca = sk_X509_value(chain, 0);
        X509_up_ref(c->ca);
        for (int i = 0; r == 0 && i < sk_X509_num(chain); i++) {
                unsigned char *der = NULL;
                int len = i2d_X509(sk_X509_value(chain, i), &der);
                if (len <= 0) {
                        r = -EIO;
                        break;
                }
                c->chain[c->n_chain] = der;
                c->chain_len[c->n_chain++] = (size_t) len;
        }
        sk_X509_pop_free(chain, X509_free);
        if (r == 0 && (r = check_ca(c, vclock_wall(), err, sizeof(err))) < 0)
                vlog(LOG_ERR, "device CA: %s", err);
        if (r == 0 && (r = vk_key_id(X509_get0_pubkey(c->ca), c->ca_id)) < 0)
                vlog(LOG_ERR, "device CA: %s: cannot compute its key id", c->ca_where);
        ERR_clear_error();
        if (r < 0)
                return r;
        if ((r = devcert_names_reload(d)) < 0)
                return r;
        c->issuing = cfg->trust_domain != NULL;
        if (c->issuing)
                vlog(LOG_INFO, "device certificates: issued by %s (key %.16s) for trust domain %s%s%s", c->ca_where,
                     c->ca_id, cfg->trust_domain, c->crl_url ? ", CRL at " : "", c->crl_url ? c->crl_url : "");
        else
                vlog(LOG_INFO, "device certificates: not issued (no --trust-domain); the CRL of %s is served",
                     c->ca_where);
        return 0;
}

bool devcert_issuing(vouchd *d) {
        return d->devcert && d->devcert->issuing;
}

int devcert_names_reload(vouchd *d) {
        devcert *c = d->devcert;
        const char *path = d->cfg.device_names;
        devnames *names = NULL;
        uint8_t *buf = NULL;
        size_t len = 0;
        char err[512];
        if (!c || !path)
                return 0;
        int r = vu_read_file(AT_FDCWD, path, DEVNAMES_FILE_MAX, &buf, &len);
        if (r < 0) {
                vlog(LOG_ERR, "--device-names %s: %s", path,
                     r == -E2BIG ? "more than 16 MiB" : strerror(-r));
                return r;
        }
        r = devnames_parse((const char *) buf, len, &names, err, sizeof(err));
        free(buf);
        if (r < 0) {
                vlog(LOG_ERR, "--device-names %s: %s", path, err);
                return r;
        }
        pthread_mutex_lock(&c->names_mu);
        devnames *old = c->names;
        c->names = names;
        pthread_mutex_unlock(&c->names_mu);
        devnames_free(old);
        vlog(LOG_INFO, "device certificates: DNS names for %zu devices from %s", devnames_count(names), path);
        return 0;
}

/* san (at least DEVCERT_SAN_MAX bytes): the SPIFFE ID, then the names the operator gave the
 * device (--device-names) */
#define DEVCERT_SAN_MAX (128 + DEVNAMES_PER_DEVICE * (DEVNAMES_NAME_MAX + 5) + 300)
static void san_of(vouchd *d, const char *device_id, char *san, size_t size) {
        devcert *c = d->devcert;
        const char *const *names;
        size_t k = (size_t) snprintf(san, size, "URI:spiffe://%s/device/%s", d->cfg.trust_domain, device_id);
        pthread_mutex_lock(&c->names_mu);
        size_t n = devnames_find(c->names, device_id, &names);
        for (size_t i = 0; i < n && k < size; i++)
                k += (size_t) snprintf(san + k, size - k, ",DNS:%s", names[i]);
        pthread_mutex_unlock(&c->names_mu);
}

/* A write's answer, waited for (at start, on the main thread). */
typedef struct wait_one {
        pthread_mutex_t mu;
        pthread_cond_t cond;
        bool done;
        int error;
} wait_one;

static void written(int error, void *ud) {
        wait_one *w = ud;
        pthread_mutex_lock(&w->mu);
        w->error = error;
        w->done = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->mu);
}

int devcert_check_deployment(vouchd *d, char *err, size_t n) {
        devcert *c = d->devcert;
        char stored[VS_VERIFIER_ID_MAX + 1];
        wait_one w = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        if (!c || !c->ca)
                return 0;
        int r = vs_device_ca_register(d->store, c->ca_id, written, &w);
        if (r == 0) {
                pthread_mutex_lock(&w.mu);
                while (!w.done)
                        pthread_cond_wait(&w.cond, &w.mu);
                r = w.error;
                pthread_mutex_unlock(&w.mu);
        }
        pthread_mutex_destroy(&w.mu);
        pthread_cond_destroy(&w.cond);
        if (r < 0) {
                vs_stats st;
                vs_get_stats(d->store, &st);
                snprintf(err, n, "cannot register the device CA: %s", st.last_error[0] ? st.last_error : strerror(-r));
                return r;
        }
        if ((r = vs_device_ca_get(d->store, stored, sizeof(stored))) < 0) {
                vs_read_error(d->store, err, n);
                return r;
        }
        if (strcmp(stored, c->ca_id) == 0)
                return 0;
        snprintf(err, n, "%s is not the deployment's device CA (its key id is %.16s..., the store's %.16s...): the "
                 "instances sharing a store issue device certificates with one CA. Copy device-ca.pem and "
                 "device-ca.key from an instance's state dir (or give every instance the same --device-ca-cert and "
                 "--device-ca-key)", c->ca_where, c->ca_id, stored);
        return -EXDEV;
}

/* ---- the device key's proof ---- */

void devcert_proof_done(devcert_proof *p) {
        EVP_PKEY_free(p->key);
        p->key = NULL;
}

/* The DER SubjectPublicKeyInfo of a P-256 key before its uncompressed point (RFC 5480, 2:
 * id-ecPublicKey with the named curve prime256v1, a BIT STRING of 66 bytes). */
static const uint8_t p256_spki_prefix[26] = { 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                              0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                              0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00 };

int devcert_key_digest(EVP_PKEY *key, uint8_t out[32]) {
        char group[32] = "";
        uint8_t spki[sizeof(p256_spki_prefix) + 65];
        size_t len = 0;
        unsigned int dlen = 0;
        /* a P-256 key from its point: no encoder lookup (i2d_PUBKEY costs ~65 us in OpenSSL 3) */
        if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
            EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) == 1 &&
            strcmp(group, "prime256v1") == 0 &&
            EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, spki + sizeof(p256_spki_prefix), 65, &len) ==
                    1 &&
            len == 65 && spki[sizeof(p256_spki_prefix)] == 0x04) {
                memcpy(spki, p256_spki_prefix, sizeof(p256_spki_prefix));
                return EVP_Digest(spki, sizeof(spki), out, &dlen, EVP_sha256(), NULL) == 1 && dlen == 32 ? 0 : -EIO;
        }
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(key, &der);
        if (n <= 0)
                return -ENOMEM;
        int ok = EVP_Digest(der, (size_t) n, out, &dlen, EVP_sha256(), NULL) == 1 && dlen == 32;
        OPENSSL_free(der);
        return ok ? 0 : -EIO;
}

int devcert_check(vouchd *d, const vc_ak *ak, const uint8_t *nonce, size_t nonce_len, const uint8_t *pub,
                  size_t pub_len, const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
                  devcert_proof *ret) {
        uint8_t qd[VC_CERTIFY_QUALIFYING_SIZE];
        vc_certify *c = NULL;
        vc_certify_result res;
        vc_error verr;
        int r;
        *ret = (devcert_proof) { .state = DEVCERT_PROOF_NONE };
        if (!devcert_issuing(d) || (pub_len == 0 && attest_len == 0 && sig_len == 0))
                return 0;
        if ((r = vc_certify_qualifying_data(nonce, nonce_len, qd)) < 0)
                return r;
        r = vc_certify_parse(pub, pub_len, attest, attest_len, sig, sig_len, &c, &verr);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                ret->state = DEVCERT_PROOF_INVALID;
                ret->check = "malformed";
                snprintf(ret->why, sizeof(ret->why), "%s", verr.msg);
                atomic_fetch_add(&d->devcert->refused, 1);
                return 0;
        }
        vc_quote_policy policy = { .allow_sha1 = d->cfg.allow_sha1 };
        r = vc_certify_verify(c, ak, qd, sizeof(qd), &policy, &res);
        if (r == 0 && res.status == VC_CERTIFY_VALID) {
                r = vc_certify_key(c, &ret->key, &verr);
                if (r == 0)
                        ret->state = DEVCERT_PROOF_VALID;
                else if (r != -ENOMEM) {
                        ret->state = DEVCERT_PROOF_INVALID;
                        ret->check = "key-type";
                        snprintf(ret->why, sizeof(ret->why), "%s", verr.msg);
                        r = 0;
                }
        } else if (r == 0) {
                ret->state = DEVCERT_PROOF_INVALID;
                ret->check = vc_certify_check_name(res.failed);
                snprintf(ret->why, sizeof(ret->why), "%s", res.reason);
        }
        vc_certify_free(c);
        if (ret->state == DEVCERT_PROOF_INVALID)
                atomic_fetch_add(&d->devcert->refused, 1);
        return r;
}

/* ---- issuing ---- */

/* The certificate's SubjectPublicKeyInfo: for an EC P-256 key (every device key: vc_certify
 * checks it) set from its point directly, as X509_set_pubkey would encode it but without
 * OpenSSL 3's encoder lookup, which costs ~175 us per key made from a TPM's point (measured,
 * release build); any other key through X509_set_pubkey. */
static int set_pubkey(X509 *x, EVP_PKEY *key) {
        char group[32] = "";
        unsigned char *point = NULL;
        size_t len = 0;
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
            EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1 ||
            strcmp(group, "prime256v1") != 0 ||
            EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, NULL, 0, &len) != 1 || len != 65 ||
            !(point = OPENSSL_malloc(len)) ||
            EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, len, &len) != 1 || point[0] != 0x04) {
                OPENSSL_free(point);
                return X509_set_pubkey(x, key) == 1 ? 0 : -EIO;
        }
        /* RFC 5480, 2: id-ecPublicKey with the named curve, the uncompressed point */
        if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                                   OBJ_nid2obj(NID_X9_62_prime256v1), point, (int) len) != 1) {
                OPENSSL_free(point);
                return -EIO;
        }
        return 0;
}

int devcert_issue(vouchd *d, const char *device_id, EVP_PKEY *key, int64_t now, int64_t expires_at, vs_cert *ret,
                  char *why, size_t n) {
        devcert *c = d->devcert;
        X509 *x = NULL;
        BIGNUM *bn = NULL;
        char *hex = NULL, san[DEVCERT_SAN_MAX];
        uint8_t serial[16];
        unsigned char *der = NULL;
        int r = -EIO;
        if (!devcert_issuing(d)) {
                snprintf(why, n, "issuing is off");
                return -EINVAL;
        }
        int64_t not_after = expires_at;
        if (c->max_ttl > 0 && now + c->max_ttl < not_after)
                not_after = now + c->max_ttl;
        if (c->ca_not_after < not_after)
                not_after = c->ca_not_after;
        if (not_after <= now) {
                snprintf(why, n, "%s", c->ca_not_after <= now ? "the device CA's certificate has expired"
                                                                : "the verdict expires at once");
                return -EINVAL;
        }
        /* RFC 5280, 4.1.2.2: positive, at most 20 octets; random, so unguessable and unique */
        if (RAND_bytes(serial, sizeof(serial)) != 1) {
                snprintf(why, n, "no randomness for a serial number");
                return -EIO;
        }
        serial[0] &= 0x7f;
        if (serial[0] == 0) /* 16 octets, not fewer */
                serial[0] = 1;
        san_of(d, device_id, san, sizeof(san));
        if (!(x = X509_new()) || !(bn = BN_bin2bn(serial, sizeof(serial), NULL)) || !(hex = BN_bn2hex(bn)) ||
            !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
                snprintf(why, n, "out of memory");
                r = -ENOMEM;
                goto out;
        }
        X509_NAME *subject = X509_get_subject_name(x);
        if (X509_set_version(x, 2) != 1 || !ASN1_TIME_set(X509_getm_notBefore(x), (time_t) (now - DEVCERT_BACKDATE)) ||
            !ASN1_TIME_set(X509_getm_notAfter(x), (time_t) not_after) || set_pubkey(x, key) < 0 ||
            X509_set_issuer_name(x, X509_get_subject_name(c->ca)) != 1 ||
            X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *) device_id, -1, -1, 0) != 1 ||
            vu_x509_add_ext(x, c->ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
            vu_x509_add_ext(x, c->ca, NID_key_usage, "critical,digitalSignature") < 0 ||
            vu_x509_add_ext(x, c->ca, NID_ext_key_usage, "clientAuth") < 0 ||
            vu_x509_add_ext(x, c->ca, NID_subject_alt_name, san) < 0 ||
            vu_x509_add_ext(x, c->ca, NID_subject_key_identifier, "hash") < 0 ||
            vu_x509_add_ext(x, c->ca, NID_authority_key_identifier, "keyid:always") < 0) {
                snprintf(why, n, "cannot build the certificate");
                goto out;
        }
        if (c->crl_url) {
                char dp[CRL_URL_MAX + 8];
                snprintf(dp, sizeof(dp), "URI:%s", c->crl_url);
                if (vu_x509_add_ext(x, c->ca, NID_crl_distribution_points, dp) < 0) {
                        snprintf(why, n, "cannot add the CRL distribution point");
                        goto out;
                }
        }
        if (!X509_sign(x, c->key, EVP_sha256())) {
                snprintf(why, n, "the device CA's key did not sign");
                goto out;
        }
        int len = i2d_X509(x, &der);
        if (len <= 0 || (size_t) len > VS_CERT_DER_MAX) {
                snprintf(why, n, "cannot encode the certificate");
                goto out;
        }
        *ret = (vs_cert) { .not_before = now - DEVCERT_BACKDATE, .not_after = not_after };
        for (size_t i = 0; hex[i] && i < VS_SERIAL_MAX; i++)
                ret->serial[i] = (char) (hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] - 'A' + 'a' : hex[i]);
        snprintf(ret->device, sizeof(ret->device), "%s", device_id);
        if (!(ret->der = malloc((size_t) len))) {
                snprintf(why, n, "out of memory");
                r = -ENOMEM;
                goto out;
        }
        memcpy(ret->der, der, (size_t) len);
        ret->der_len = (size_t) len;
        r = 0;
out:
        atomic_fetch_add(r == 0 ? &c->issued : &c->failed, 1);
        OPENSSL_free(der);
        OPENSSL_free(hex);
        BN_free(bn);
        X509_free(x);
        ERR_clear_error();
        return r;
}

int devcert_frame_notice(vouchd *d, const uint8_t *record, size_t len, const uint8_t *cert, size_t cert_len,
                         uint8_t **ret, size_t *ret_len) {
        devcert *c = d->devcert;
        const uint8_t *certs[1 + DEVCERT_CHAIN_MAX];
        size_t lens[1 + DEVCERT_CHAIN_MAX], k = 0;
        if (!cert || !c)
                return vw_frame_verdict_notice(record, len, d->cfg.max_frame, ret, ret_len);
        certs[k] = cert;
        lens[k++] = cert_len;
        for (size_t i = 0; i < c->n_chain; i++) {
                certs[k] = c->chain[i];
                lens[k++] = c->chain_len[i];
        }
        return vw_frame_verdict_notice_certs(record, len, certs, lens, k, d->cfg.max_frame, ret, ret_len);
}

/* ---- the CRL ---- */

static int entry_cmp(const void *a, const void *b) {
        const crl_entry *x = a, *y = b;
        int r = strcmp(x->serial, y->serial);
        return r ? r : x->revoked_at < y->revoked_at ? -1 : x->revoked_at > y->revoked_at;
}

static int collect(const vs_cert *vc, void *ud) {
        crl_set *s = ud;
        if (s->n == s->cap) {
                size_t nc = s->cap ? s->cap * 2 : 64;
                if (s->n >= DEVCERT_CRL_MAX)
                        return -E2BIG;
                crl_entry *ne = realloc(s->e, nc * sizeof(*ne));
                if (!ne)
                        return -ENOMEM;
                s->e = ne;
                s->cap = nc;
        }
        crl_entry *e = &s->e[s->n++];
        snprintf(e->serial, sizeof(e->serial), "%s", vc->serial);
        e->revoked_at = vc->revoked_at;
        return 0;
}

static bool same_set(const crl_set *a, const crl_set *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (entry_cmp(&a->e[i], &b->e[i]) != 0)
                        return false;
        return true;
}

/* The CRL (v2) of set, signed by the CA: thisUpdate now, nextUpdate now + next, its number,
 * the authority key identifier. DER and PEM (malloc'ed). */
static int make_crl(devcert *c, const crl_set *set, int64_t now, int64_t next, const BIGNUM *number, uint8_t **ret_der,
                    size_t *ret_der_len, char **ret_pem, size_t *ret_pem_len) {
        X509_CRL *crl = X509_CRL_new();
        ASN1_TIME *t = NULL;
        ASN1_INTEGER *num = NULL;
        AUTHORITY_KEYID *akid = NULL;
        BIO *b = NULL;
        unsigned char *der = NULL;
        int r = -EIO;
        if (!crl || X509_CRL_set_version(crl, 1) != 1 || X509_CRL_set_issuer_name(crl, X509_get_subject_name(c->ca)) != 1 ||
            !(t = ASN1_TIME_set(NULL, (time_t) now)) || X509_CRL_set1_lastUpdate(crl, t) != 1 ||
            !ASN1_TIME_set(t, (time_t) (now + next)) || X509_CRL_set1_nextUpdate(crl, t) != 1)
                goto out;
        for (size_t i = 0; i < set->n; i++) {
                X509_REVOKED *rv = X509_REVOKED_new();
                BIGNUM *bn = NULL;
                ASN1_INTEGER *sn = NULL;
                bool ok = rv && BN_hex2bn(&bn, set->e[i].serial) > 0 && (sn = BN_to_ASN1_INTEGER(bn, NULL)) &&
                          X509_REVOKED_set_serialNumber(rv, sn) == 1 && ASN1_TIME_set(t, (time_t) set->e[i].revoked_at) &&
                          X509_REVOKED_set_revocationDate(rv, t) == 1 && X509_CRL_add0_revoked(crl, rv) == 1;
                ASN1_INTEGER_free(sn);
                BN_free(bn);
                if (!ok) {
                        X509_REVOKED_free(rv);
                        goto out;
                }
        }
        /* RFC 5280, 5.2.1 and 5.2.3: the authority key identifier and the CRL number */
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(c->ca);
        if (ski && (!(akid = AUTHORITY_KEYID_new()) || !(akid->keyid = ASN1_OCTET_STRING_dup(ski)) ||
                    X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) != 1))
                goto out;
        if (!(num = BN_to_ASN1_INTEGER(number, NULL)) || X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1 ||
            X509_CRL_sort(crl) != 1 || !X509_CRL_sign(crl, c->key, EVP_sha256()))
                goto out;
        int len = i2d_X509_CRL(crl, &der);
        char *p = NULL;
        long plen;
        if (len <= 0 || !(b = BIO_new(BIO_s_mem())) || PEM_write_bio_X509_CRL(b, crl) != 1 ||
            (plen = BIO_get_mem_data(b, &p)) <= 0)
                goto out;
        *ret_der = malloc((size_t) len);
        *ret_pem = malloc((size_t) plen);
        if (!*ret_der || !*ret_pem) {
                free(*ret_der);
                free(*ret_pem);
                r = -ENOMEM;
                goto out;
        }
        memcpy(*ret_der, der, (size_t) len);
        *ret_der_len = (size_t) len;
        memcpy(*ret_pem, p, (size_t) plen);
        *ret_pem_len = (size_t) plen;
        r = 0;
out:
        OPENSSL_free(der);
        BIO_free(b);
        AUTHORITY_KEYID_free(akid);
        ASN1_INTEGER_free(num);
        ASN1_TIME_free(t);
        X509_CRL_free(crl);
        ERR_clear_error();
        return r;
}

/* The CRL's number (RFC 5280, 5.2.3: increasing for the CA's CRLs): the store's numbering
 * (vs_cert_revoked's state, larger after every revocation, at every instance) times 2^32,
 * plus thisUpdate (Unix seconds, below 2^32 until 2106) for CRLs of the same state; and above
 * this process's last one in any case (a clock set back). */
static BIGNUM *crl_number(uint64_t state, int64_t now, const BIGNUM *last) {
        BIGNUM *n = BN_new();
        if (!n || !BN_set_word(n, (BN_ULONG) state) || !BN_lshift(n, n, 32) ||
            !BN_add_word(n, (BN_ULONG) (now > 0 ? (uint64_t) now & 0xffffffffu : 0))) {
                BN_free(n);
                return NULL;
        }
        if (last && BN_cmp(n, last) <= 0 && (!BN_copy(n, last) || !BN_add_word(n, 1))) {
                BN_free(n);
                return NULL;
        }
        return n;
}

static int refresh_locked(vouchd *d, bool force) {
        devcert *c = d->devcert;
        crl_set set = { 0 };
        uint64_t state = 0;
        int64_t now = vclock_wall();
        int r = vs_cert_revoked(d->store, now - DEVCERT_CRL_EXPIRED_GRACE, collect, &set, &state);
        if (r < 0) {
                free(set.e);
                return r;
        }
        if (set.n)
                qsort(set.e, set.n, sizeof(*set.e), entry_cmp);
        int64_t every = d->cfg.interval, next = 2 * (int64_t) d->cfg.interval;
        if (next < 60)
                next = 60;
        pthread_mutex_lock(&c->mu);
        bool due = force || !c->crl_der || !same_set(&set, &c->listed) || now - c->crl_this_update >= every ||
                   now < c->crl_this_update;
        BIGNUM *last = c->crl_number ? BN_dup(c->crl_number) : NULL;
        pthread_mutex_unlock(&c->mu);
        if (!due) {
                BN_free(last);
                free(set.e);
                return 0;
        }
        uint8_t *der = NULL;
        char *pem = NULL;
        size_t der_len = 0, pem_len = 0;
        BIGNUM *number = crl_number(state, now, last);
        BN_free(last);
        r = number ? make_crl(c, &set, now, next, number, &der, &der_len, &pem, &pem_len) : -ENOMEM;
        if (r < 0) {
                BN_free(number);
                free(set.e);
                return r;
        }
        pthread_mutex_lock(&c->mu);
        free(c->crl_der);
        free(c->crl_pem);
        BN_free(c->crl_number);
        free(c->listed.e);
        c->crl_der = der;
        c->crl_der_len = der_len;
        c->crl_pem = pem;
        c->crl_pem_len = pem_len;
        c->crl_number = number;
        c->crl_this_update = now;
        c->listed = set;
        pthread_mutex_unlock(&c->mu);
        return 1;
}

int devcert_crl_refresh(vouchd *d, bool force) {
        devcert *c = d->devcert;
        if (!c || !c->ca)
                return -ENOENT;
        pthread_mutex_lock(&c->refresh_mu); /* the number above the last one issued */
        int r = refresh_locked(d, force);
        pthread_mutex_unlock(&c->refresh_mu);
        return r;
}

void devcert_metrics(vouchd *d, FILE *f) {
        devcert *c = d->devcert;
        if (!c || !c->ca)
                return;
        pthread_mutex_lock(&c->mu);
        size_t listed = c->listed.n;
        int64_t age = c->crl_der ? vclock_wall() - c->crl_this_update : -1;
        pthread_mutex_unlock(&c->mu);
        fprintf(f,
                "# HELP vouch_device_certs_issued_total Device certificates made for TRUSTED verdicts (stored with them).\n"
                "# TYPE vouch_device_certs_issued_total counter\n"
                "vouch_device_certs_issued_total %llu\n"
                "# HELP vouch_device_key_proofs_refused_total Device key proofs (TPM2_Certify) that failed: no certificate.\n"
                "# TYPE vouch_device_key_proofs_refused_total counter\n"
                "vouch_device_key_proofs_refused_total %llu\n"
                "# HELP vouch_device_certs_failed_total Device certificates that could not be made (the CA expired, OpenSSL).\n"
                "# TYPE vouch_device_certs_failed_total counter\n"
                "vouch_device_certs_failed_total %llu\n"
                "# HELP vouch_crl_revoked Certificates on the device CRL served now.\n"
                "# TYPE vouch_crl_revoked gauge\n"
                "vouch_crl_revoked %zu\n"
                "# HELP vouch_crl_age_seconds Since the device CRL served now was issued (-1: none yet).\n"
                "# TYPE vouch_crl_age_seconds gauge\n"
                "vouch_crl_age_seconds %lld\n",
                (unsigned long long) atomic_load(&c->issued), (unsigned long long) atomic_load(&c->refused),
                (unsigned long long) atomic_load(&c->failed), listed, (long long) age);
}

int devcert_crl_get(vouchd *d, bool pem, uint8_t **ret, size_t *ret_len) {
        devcert *c = d->devcert;
        int r = 0;
        if (!c || !c->ca)
                return -ENOENT;
        pthread_mutex_lock(&c->mu);
        const void *src = pem ? (const void *) c->crl_pem : c->crl_der;
        size_t len = pem ? c->crl_pem_len : c->crl_der_len;
        if (!src)
                r = -EAGAIN;
        else if (!(*ret = malloc(len)))
                r = -ENOMEM;
        else {
                memcpy(*ret, src, len);
                *ret_len = len;
        }
        pthread_mutex_unlock(&c->mu);
        return r;
}

/* One refresh of the CRL's thread, its failures logged once until one succeeds. */
static void refresh_logged(vouchd *d) {
        devcert *c = d->devcert;
        char why[400];
        int r = devcert_crl_refresh(d, false);
        if (r >= 0) {
                if (c->read_failing)
                        vlog(LOG_INFO, "device CRL: reissued from the store again");
                c->read_failing = false;
                return;
        }
        if (c->read_failing)
                return;
        c->read_failing = true;
        if (r == -E2BIG)
                snprintf(why, sizeof(why), "more than %d revoked certificates", DEVCERT_CRL_MAX);
        else if (r == -EIO || r == -EUCLEAN)
                vs_read_error(d->store, why, sizeof(why));
        else
                snprintf(why, sizeof(why), "%s", strerror(-r));
        vlog(LOG_ERR, "device CRL: cannot reissue it (%s): the last one is served until it can; trying every %d ms",
             why, DEVCERT_CRL_POLL_MS);
}

static void *crl_main(void *arg) {
        vouchd *d = arg;
        devcert *c = d->devcert;
        pthread_mutex_lock(&c->mu);
        while (!c->stop) {
                struct timespec t;
                clock_gettime(CLOCK_MONOTONIC, &t);
                t.tv_nsec += DEVCERT_CRL_POLL_MS * 1000000L;
                t.tv_sec += t.tv_nsec / 1000000000L;
                t.tv_nsec %= 1000000000L;
                pthread_cond_timedwait(&c->wake, &c->mu, &t);
                if (c->stop)
                        break;
                pthread_mutex_unlock(&c->mu);
                refresh_logged(d);
                pthread_mutex_lock(&c->mu);
        }
        pthread_mutex_unlock(&c->mu);
        return NULL;
}

int devcert_start(vouchd *d) {
        devcert *c = d->devcert;
        if (!c || !c->ca)
                return 0;
        refresh_logged(d);
        int e = pthread_create(&c->thread, NULL, crl_main, d);
        if (e != 0) {
                vlog(LOG_ERR, "device CRL: cannot start its thread: %s", strerror(e));
                return -e;
        }
        c->started = true;
        return 0;
}

void devcert_stop(vouchd *d) {
        devcert *c = d->devcert;
        if (!c || !c->started)
                return;
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
        c->started = false;
}

void devcert_free(vouchd *d) {
        devcert *c = d->devcert;
        if (!c)
                return;
        devcert_stop(d);
        EVP_PKEY_free(c->key);
        X509_free(c->ca);
        for (size_t i = 0; i < c->n_chain; i++)
                OPENSSL_free(c->chain[i]);
        free(c->crl_url);
        devnames_free(c->names);
        pthread_mutex_destroy(&c->names_mu);
        free(c->crl_der);
        free(c->crl_pem);
        BN_free(c->crl_number);
        free(c->listed.e);
        pthread_mutex_destroy(&c->mu);
        pthread_mutex_destroy(&c->refresh_mu);
        pthread_cond_destroy(&c->wake);
        free(c);
        d->devcert = NULL;
}
