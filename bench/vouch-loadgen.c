/* SPDX-License-Identifier: Apache-2.0 */
/* vouch-loadgen: N simulated agents in one process, each speaking the real agent protocol
 * (agent/agent.c) over TLS 1.3 to a real vouchd. Every agent has a software EK (ECC P-256,
 * TCG default template shape) certified by a test EK CA this program creates, a software AK
 * (ECC P-256, restricted signing key attributes), answers the verifier's MakeCredential
 * with a software ActivateCredential, and answers challenges with real TPMS_ATTEST quotes
 * signed like a TPM (TPMT_SIGNATURE, ECDSA), over PCR values that a real event log replays
 * to. Several event loops (threads); many source addresses in 127.0.0.0/8.
 *
 * Modes: full (every attestation is a new boot: fresh resetCount, whole log), periodic
 * (one boot per agent; after the first attestation no new events), enroll (each agent
 * enrolls a fresh identity, then disconnects and starts over). Misbehaviour for the
 * reliability tests: wrong nonce, stale (replayed) quote, garbage frames, slow reads.
 *
 * Several instances (--server A,B,... or --server repeated): agent i starts at server
 * (first-agent + i) mod n. When its connection fails or is closed, the agent reconnects, with
 * exponential backoff and jitter, to another server (chosen at random among the others), as
 * vouch-agent behind a load balancer would: a lost connection is then counted as a
 * reconnection, not as a failed attestation, and the time from the loss to the agent's next
 * TRUSTED verdict is measured (an agent that never gets one again has failed for good). A
 * refusal because another instance holds the device's lease (an Error with code EBUSY) is
 * retried at the same server after the backoff, never counted as a failure. Each agent has
 * one connection at a time, so a simulated device is on one instance at a time.
 *
 * Protocol on stdout (bench/run reads it): "window-start" when the measurement window
 * opens (all agents attested once, or the warm-up timed out), "window-end" when it
 * closes, then one "result key=value ..." line. Progress goes to stderr. With --sync, a
 * "warm ..." line comes after the warm-up, and the window opens when a line comes on stdin
 * (bench/run opens several processes' windows together).
 *
 * --device-key (issue 19): every agent also has a software device identity key (ECC P-256,
 * the attributes of the key vouch-agent makes in its TPM) and sends with each quote a
 * TPM2_Certify of it, made in software and signed by its AK over SHA-256("vouch device key
 * certify" || nonce), as agent/agent.c does; vouchd with --trust-domain then issues a device
 * certificate with every TRUSTED verdict. Each TRUSTED verdict must come with a certificate
 * and name the key (Verdict.device_key): one that does not is a failed attestation.
 *
 * --floor: the cost floor of one attestation with this OpenSSL: one ECDSA P-256 verify of
 * a quote, one ECDSA P-256 sign of a verdict, SHA-256 over the event log. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include "certify.h"
#include "credential.h"
#include "enroll.h"
#include "eventlog.h"
#include "fileio.h"
#include "frame.h"
#include "hash.h"
#include "pcrs.h"
#include "protocol.h"
#include "replay.h"
#include "x509.h"
#include "vouch.pb-c.h"

#ifndef BENCH_SHARED_DIR
#define BENCH_SHARED_DIR "../shared"
#endif
#define DEFAULT_LOG "eventlogs/go-tpm-tools/cos-101-amd-sev.bin"
#define LG_MAX_LOOPS 64
#define LG_MAX_SERVERS 64

/* TCG EK Credential Profile 2.0, B.3.4 template L-2 (ECC NIST P-256): policy A. */
static const uint8_t ek_policy_a[32] = { 0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC,
                                         0x8D, 0x46, 0xA5, 0xD7, 0x24, 0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52,
                                         0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA };

typedef enum lg_mode { MODE_FULL = 0, MODE_PERIODIC = 1, MODE_ENROLL = 2 } lg_mode;

enum { MIS_WRONG_NONCE = 1u << 0, MIS_STALE = 1u << 1, MIS_GARBAGE = 1u << 2, MIS_SLOW = 1u << 3 };
static const char *const mis_names[] = { "wrong-nonce", "stale", "garbage", "slow" };

typedef struct options {
        const char *ca, *ek_ca_dir, *eventlog;
        unsigned agents, threads, sources, connect_rate;
        unsigned first_agent;    /* this process's agents are first_agent.. (several processes) */
        double backoff_min, backoff_max; /* reconnection backoff, seconds (before jitter) */
        bool sync_start;         /* --sync: after the warm-up, wait for a line on stdin */
        const char *dump;        /* --dump PREFIX: PREFIX.lat and PREFIX.reattest (uint32 us) */
        double duration, warmup_timeout;
        lg_mode mode;
        unsigned misbehave;      /* MIS_* bits */
        double misbehave_rate;   /* probability per challenge */
        unsigned idle_timeout;
        unsigned max_pending;    /* connections between connect and Welcome at once */
        bool offset_like_agent;  /* full mode: send the log from the challenge's offset, as agent.c does */
        const char *acked;       /* write every verdict received here (durability checks) */
        bool device_key;         /* --device-key: a device key certified with every quote (issue 19) */
} options;

/* ---- shared, read-only after start ---- */

typedef struct shared {
        options o;
        struct sockaddr_in servers[LG_MAX_SERVERS];
        char server_ip[LG_MAX_SERVERS][INET_ADDRSTRLEN];
        unsigned n_servers;      /* more than one: failover (see above) */
        SSL_CTX *tls;
        EVP_PKEY *ca_key;
        X509 *ca_cert;
        uint8_t *log;
        size_t log_len;
        vc_pcr_set pcrs;         /* what the log replays to */
        struct timespec t0;
        FILE *acked;             /* --acked: one line per verdict received (stdio locks each line) */
} shared;

static shared G;

static atomic_bool measuring, stopping;
static atomic_uint warm, connected_now, failures_printed, lost_now, losses_printed;

/* ---- statistics: one per loop, merged after the threads are joined ---- */

/* Durations in microseconds (latencies; times to attest again after a lost connection). */
typedef struct us_vec {
        uint32_t *v;
        size_t n, cap;
} us_vec;

static void us_vec_add(us_vec *x, uint64_t us) {
        if (x->n == x->cap) {
                size_t nc = x->cap ? x->cap * 2 : 4096;
                uint32_t *n = realloc(x->v, nc * sizeof(*n));
                if (!n)
                        return;
                x->v = n;
                x->cap = nc;
        }
        x->v[x->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t) us;
}

/* Appends src to dst and frees src's; false when out of memory (src is freed either way). */
static bool us_vec_take(us_vec *dst, us_vec *src) {
        bool ok = true;
        if (src->n) {
                uint32_t *n = realloc(dst->v, (dst->n + src->n) * sizeof(*n));
                if (n) {
                        memcpy(n + dst->n, src->v, src->n * sizeof(*n));
                        dst->v = n;
                        dst->n += src->n;
                        dst->cap = dst->n;
                } else
                        ok = false;
        }
        free(src->v);
        *src = (us_vec) {};
        return ok;
}

static int cmp_u32(const void *a, const void *b);

static void us_vec_sort(us_vec *x) {
        if (x->n)
                qsort(x->v, x->n, sizeof(*x->v), cmp_u32);
}

/* The value at fraction q (0..1) of a sorted vector, in ms. */
static double us_vec_ms(const us_vec *x, double q) {
        return x->n ? x->v[(size_t) ((double) (x->n - 1) * q)] / 1000.0 : 0;
}

typedef struct stats {
        uint64_t ok, trusted_total, failed, rejected, enrollments, connects, disconnects, errors_recv;
        uint64_t untrusted, fail_error, fail_drop, fail_timeout;
        uint64_t lost, interrupted, busy; /* failover: connections lost, with a quote in flight; EBUSY refusals */
        uint64_t certs, certs_total;     /* --device-key: TRUSTED verdicts with the key's certificate (in the
                                          * window; since the start) */
        uint64_t fail_cert;              /* --device-key: TRUSTED verdicts without it, or not naming the key */
        us_vec lat;              /* challenge -> verdict (enroll: Hello -> Welcome) */
        us_vec reattest;         /* failover: connection lost -> next TRUSTED verdict */
} stats;

typedef enum astate {
        A_OFF = 0,        /* not connected; timer pending */
        A_CONNECTING,     /* Hello sent (queued), waiting for Welcome or ActivateChallenge */
        A_READY,          /* enrolled / welcomed; waiting for a challenge */
        A_ANSWERED,       /* quote sent; waiting for the verdict */
} astate;

struct lg_loop;

/* A quote as it was sent (the stale misbehaviour replays it). */
typedef struct sent_quote {
        uint8_t *attest, *sig;
        size_t attest_len, sig_len;
} sent_quote;

typedef struct agent {
        struct lg_loop *l;
        unsigned idx;
        astate state;
        struct bufferevent *bev;
        struct event *timer;
        vf_decoder dec;
        /* identity */
        EVP_PKEY *ek_key, *ak_key;
        uint8_t *ek_cert;
        size_t ek_cert_len;
        uint8_t ekb[160], akb[160];          /* marshalled TPM2B_PUBLIC */
        size_t ekb_len, akb_len;
        uint8_t ek_x[32];
        uint8_t ak_name[2 + 32];
        /* the device identity key (--device-key) */
        EVP_PKEY *dk_key;
        uint8_t dk_pub[160];                 /* marshalled TPMT_PUBLIC (no size prefix) */
        size_t dk_pub_len;
        uint8_t dk_name[2 + 32], dk_qname[2 + 32];
        uint8_t dk_spki[32];                 /* SHA-256 of its DER SubjectPublicKeyInfo (Verdict.device_key) */
        /* boot */
        uint32_t reset_count;
        uint64_t clock, boot_ms;
        sent_quote last;                     /* for the stale misbehaviour */
        /* bookkeeping */
        bool warm, was_connected, has_identity, pending, waiting;
        struct agent *wait_next;             /* its loop's queue for a connection slot */
        unsigned expect;                     /* MIS_* of the attestation in flight, 0 = normal */
        uint64_t t_challenge, t_hello;
        uint64_t t_lost;                     /* failover: when its connection was lost, 0 once attested again */
        unsigned fails;
        unsigned server;                     /* index into G.servers */
        Vouch__V1__QuoteChallenge *slow_challenge; /* held while "slow reading" */
} agent;

typedef struct lg_loop {
        unsigned index;
        struct event_base *base;
        pthread_t thread;
        agent *agents;
        size_t n_agents;
        stats st;
        uint64_t rng;
        /* connections between connect and Welcome on this loop (its share of --max-pending),
         * and the agents waiting for one of them, in order: each is started when one ends, so
         * that a verifier slow to accept (vouchd --accept-rate) does not have thousands of
         * agents polling for a slot */
        unsigned pending;
        struct agent *wait_head, *wait_tail;
} lg_loop;

static uint64_t now_us(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t) t.tv_sec * 1000000u + (uint64_t) t.tv_nsec / 1000u;
}

static double rnd01(lg_loop *l) {
        /* xorshift64*: cheap per-loop randomness for jitter and misbehaviour choices */
        l->rng ^= l->rng >> 12;
        l->rng ^= l->rng << 25;
        l->rng ^= l->rng >> 27;
        return (double) ((l->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "vouch-loadgen: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* ---- the test EK CA ---- */

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca) {
        X509 *x = X509_new();
        BIGNUM *serial = BN_new();
        if (!x || !serial)
                goto fail;
        X509_set_version(x, 2);
        if (!BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
            !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)))
                goto fail;
        X509_gmtime_adj(X509_getm_notBefore(x), -86400);
        X509_gmtime_adj(X509_getm_notAfter(x), (long) 86400 * 3650);
        X509_set_pubkey(x, key);
        X509_NAME *name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *) "vouch-loadgen", -1, -1, 0);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1, 0);
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
        if (ca) {
                if (vu_x509_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
                    vu_x509_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
                    vu_x509_add_ext(x, x, NID_subject_key_identifier, "hash") < 0)
                        goto fail;
        } else {
                /* TCG EK Credential Profile 2.0, 3.2: an EK certificate is for key encipherment
                 * (ECC: keyAgreement), is not a CA, and is marked tcg-kp-EKCertificate */
                if (vu_x509_add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
                    vu_x509_add_ext(x, issuer, NID_key_usage, "critical,keyAgreement") < 0 ||
                    vu_x509_add_ext(x, issuer, NID_ext_key_usage, "2.23.133.8.1") < 0)
                        goto fail;
        }
        if (!X509_sign(x, issuer_key, EVP_sha256()))
                goto fail;
        BN_free(serial);
        return x;
fail:
        BN_free(serial);
        X509_free(x);
        return NULL;
}

static int write_pem(const char *path, EVP_PKEY *key, X509 *cert, mode_t mode) {
        char tmp[4200];
        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) {
                if (fd >= 0)
                        close(fd);
                return -errno;
        }
        int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
        if (fclose(f) != 0 || !ok || rename(tmp, path) < 0) {
                unlink(tmp);
                return -EIO;
        }
        return 0;
}

/* Loads DIR/ek-ca.pem + DIR/ek-ca.key, creating them first when absent. vouchd's --ek-ca
 * points at DIR/ek-ca.pem. */
static int ek_ca_ready(const char *dir) {
        char pcert[4200], pkey[4200];
        snprintf(pcert, sizeof(pcert), "%s/ek-ca.pem", dir);
        snprintf(pkey, sizeof(pkey), "%s/ek-ca.key", dir);
        FILE *fc = fopen(pcert, "r"), *fk = fopen(pkey, "r");
        if (fc && fk) {
                G.ca_cert = PEM_read_X509(fc, NULL, NULL, NULL);
                G.ca_key = PEM_read_PrivateKey(fk, NULL, NULL, NULL);
        }
        if (fc)
                fclose(fc);
        if (fk)
                fclose(fk);
        if (G.ca_cert && G.ca_key)
                return 0;
        X509_free(G.ca_cert);
        EVP_PKEY_free(G.ca_key);
        G.ca_cert = NULL;
        G.ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!G.ca_key || !(G.ca_cert = make_cert(G.ca_key, "vouch-loadgen test EK CA", NULL, G.ca_key, true)))
                return -EIO;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (write_pem(pkey, G.ca_key, NULL, 0600) < 0 || write_pem(pcert, NULL, G.ca_cert, 0644) < 0)
                return -EIO;
        say("created the test EK CA %s", pcert);
        return 0;
}

/* ---- identities ---- */

static int ec_xy(EVP_PKEY *k, uint8_t x[32], uint8_t y[32]) {
        BIGNUM *bx = NULL, *by = NULL;
        int r = EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &bx) == 1 &&
                                EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &by) == 1 &&
                                BN_bn2binpad(bx, x, 32) == 32 && BN_bn2binpad(by, y, 32) == 32
                        ? 0
                        : -EIO;
        BN_free(bx);
        BN_free(by);
        return r;
}

static void ecc_public(TPMT_PUBLIC *p, const uint8_t x[32], const uint8_t y[32]) {
        p->type = TPM2_ALG_ECC;
        p->nameAlg = TPM2_ALG_SHA256;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        p->unique.ecc.x.size = 32;
        p->unique.ecc.y.size = 32;
        memcpy(p->unique.ecc.x.buffer, x, 32);
        memcpy(p->unique.ecc.y.buffer, y, 32);
}

static void sent_quote_clear(sent_quote *q) {
        free(q->attest);
        free(q->sig);
        *q = (sent_quote) {};
}

/* Keeps a copy of the quote sent; on failure to copy, the one kept before stays. */
static void sent_quote_keep(sent_quote *q, const uint8_t *attest, size_t attest_len, const uint8_t *sig,
                            size_t sig_len) {
        uint8_t *na = malloc(attest_len), *ns = malloc(sig_len);
        if (!na || !ns) {
                free(na);
                free(ns);
                return;
        }
        memcpy(na, attest, attest_len);
        memcpy(ns, sig, sig_len);
        sent_quote_clear(q);
        *q = (sent_quote) { .attest = na, .attest_len = attest_len, .sig = ns, .sig_len = sig_len };
}

static void identity_free(agent *a) {
        EVP_PKEY_free(a->ek_key);
        EVP_PKEY_free(a->ak_key);
        EVP_PKEY_free(a->dk_key);
        a->ek_key = a->ak_key = a->dk_key = NULL;
        free(a->ek_cert);
        a->ek_cert = NULL;
        sent_quote_clear(&a->last);
        a->has_identity = false;
}

/* The device identity key (--device-key) as vouch-agent makes it in its TPM (agent/tpm.c,
 * devkey_template): ECC NIST P-256, nameAlg SHA-256, fixedTPM, fixedParent,
 * sensitiveDataOrigin, userWithAuth, sign, not restricted, no scheme; here in software. Its
 * Name, a qualifiedName (the hash of a stand-in parent's and its Name: vouchd does not read
 * it, but the TPMS_ATTEST has a real one's size) and its SPKI digest are kept. */
static int devkey_new(agent *a) {
        TPMT_PUBLIC pub = { 0 };
        uint8_t x[32], y[32], qin[2 * sizeof(a->dk_name)] = { 0 };
        unsigned char *der = NULL;
        size_t name_len = 0;
        a->dk_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!a->dk_key || ec_xy(a->dk_key, x, y) < 0)
                return -EIO;
        ecc_public(&pub, x, y);
        pub.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                               TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT;
        pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        a->dk_pub_len = 0;
        if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub, a->dk_pub, sizeof(a->dk_pub), &a->dk_pub_len) != TSS2_RC_SUCCESS ||
            vc_public_name(&pub, a->dk_name, &name_len) < 0 || name_len != sizeof(a->dk_name))
                return -EIO;
        /* TPM 2.0 Part 1, 16.6: qualifiedName = nameAlg || H(parent's qualifiedName || Name) */
        qin[1] = 0x0b;
        memcpy(qin + sizeof(a->dk_name), a->dk_name, sizeof(a->dk_name));
        a->dk_qname[0] = 0x00;
        a->dk_qname[1] = 0x0b;
        int n = i2d_PUBKEY(a->dk_key, &der);
        int r = n > 0 && vc_digest(VC_ALG_SHA256, qin, sizeof(qin), a->dk_qname + 2) == 0 &&
                                vc_digest(VC_ALG_SHA256, der, (size_t) n, a->dk_spki) == 0
                        ? 0
                        : -EIO;
        OPENSSL_free(der);
        return r;
}

/* A fresh EK (TCG default ECC P-256 shape, certified by the test EK CA) and AK (restricted
 * ECDSA P-256 signing key, as tpm2_createak makes); with --device-key, the device key. */
static int identity_new(agent *a) {
        TPM2B_PUBLIC ek = { 0 }, ak = { 0 };
        uint8_t x[32], y[32];
        size_t name_len = 0;
        identity_free(a);
        a->ek_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        a->ak_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!a->ek_key || !a->ak_key || ec_xy(a->ek_key, x, y) < 0)
                return -EIO;
        ecc_public(&ek.publicArea, x, y);
        memcpy(a->ek_x, x, 32);
        ek.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                         TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
        ek.publicArea.authPolicy.size = 32;
        memcpy(ek.publicArea.authPolicy.buffer, ek_policy_a, 32);
        ek.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
        ek.publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
        ek.publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        ek.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        if (ec_xy(a->ak_key, x, y) < 0)
                return -EIO;
        ecc_public(&ak.publicArea, x, y);
        ak.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                         TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
        ak.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        ak.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
        ak.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
        if (vc_public_name(&ak.publicArea, a->ak_name, &name_len) < 0 || name_len != sizeof(a->ak_name))
                return -EIO;
        a->ekb_len = a->akb_len = 0;
        if (Tss2_MU_TPM2B_PUBLIC_Marshal(&ek, a->ekb, sizeof(a->ekb), &a->ekb_len) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPM2B_PUBLIC_Marshal(&ak, a->akb, sizeof(a->akb), &a->akb_len) != TSS2_RC_SUCCESS)
                return -EIO;
        char cn[64];
        snprintf(cn, sizeof(cn), "simulated TPM %u", a->idx);
        X509 *cert = make_cert(a->ek_key, cn, G.ca_cert, G.ca_key, false);
        if (!cert)
                return -EIO;
        unsigned char *der = NULL;
        int n = i2d_X509(cert, &der);
        X509_free(cert);
        if (n <= 0)
                return -EIO;
        a->ek_cert = malloc((size_t) n);
        if (!a->ek_cert) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(a->ek_cert, der, (size_t) n);
        a->ek_cert_len = (size_t) n;
        OPENSSL_free(der);
        if (G.o.device_key && devkey_new(a) < 0)
                return -EIO;
        a->has_identity = true;
        return 0;
}

/* ---- software TPM2_ActivateCredential (the inverse of verifier/core/credential.c) ---- */

/* TPM 2.0 Part 1, 24 and Part 3, 12.5: seed from the ECDH of the EK and the ephemeral point
 * (KDFe "IDENTITY"), HMAC key = KDFa(seed, "INTEGRITY"), check outerHMAC over
 * encIdentity || AK name, symKey = KDFa(seed, "STORAGE", AK name), AES-128-CFB decrypt. */
static int activate_credential(const agent *a, const Vouch__V1__ActivateChallenge *ac, uint8_t *out,
                               size_t *out_len) {
        TPM2B_ID_OBJECT blob;
        TPM2B_ENCRYPTED_SECRET sec;
        TPMS_ECC_POINT ep = { 0 };
        size_t o3 = 0;
        uint8_t point[65] = { 0x04 }, z[32], seed[32], hkey[32], skey[16], mac[32];
        size_t zl = sizeof(z), macl = 0;
        EVP_PKEY_CTX *pctx = NULL, *dctx = NULL;
        EVP_PKEY *peer = NULL;
        int r = -EBADMSG;
        if (va_activate_challenge_parse(ac, &blob, &sec) < 0 ||
            Tss2_MU_TPMS_ECC_POINT_Unmarshal(sec.secret, sec.size, &o3, &ep) != TSS2_RC_SUCCESS || ep.x.size > 32 ||
            ep.y.size > 32)
                return -EBADMSG;
        memcpy(point + 1 + 32 - ep.x.size, ep.x.buffer, ep.x.size);
        memcpy(point + 1 + 64 - ep.y.size, ep.y.buffer, ep.y.size);
        OSSL_PARAM params[3] = {
                OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *) "prime256v1", 0),
                OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
                OSSL_PARAM_construct_end(),
        };
        pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (!pctx || EVP_PKEY_fromdata_init(pctx) != 1 || EVP_PKEY_fromdata(pctx, &peer, EVP_PKEY_PUBLIC_KEY, params) != 1)
                goto out;
        dctx = EVP_PKEY_CTX_new_from_pkey(NULL, a->ek_key, NULL);
        if (!dctx || EVP_PKEY_derive_init(dctx) != 1 || EVP_PKEY_derive_set_peer(dctx, peer) != 1 ||
            EVP_PKEY_derive(dctx, z, &zl) != 1 || zl != 32)
                goto out;
        uint8_t ex[32] = { 0 };
        memcpy(ex + 32 - ep.x.size, ep.x.buffer, ep.x.size);
        if (vc_kdfe(VC_ALG_SHA256, z, zl, "IDENTITY", ex, 32, a->ek_x, 32, 256, seed) < 0 ||
            vc_kdfa(VC_ALG_SHA256, seed, 32, "INTEGRITY", NULL, 0, NULL, 0, 256, hkey) < 0 ||
            vc_kdfa(VC_ALG_SHA256, seed, 32, "STORAGE", a->ak_name, sizeof(a->ak_name), NULL, 0, 128, skey) < 0)
                goto out;
        /* credential = TPM2B_DIGEST(outerHMAC) || encIdentity */
        if (blob.size < 2 + 32 + 2 || blob.credential[0] != 0 || blob.credential[1] != 32)
                goto out;
        const uint8_t *enc = blob.credential + 34;
        size_t enc_len = blob.size - 34u;
        uint8_t macin[sizeof(blob.credential) + sizeof(a->ak_name)];
        memcpy(macin, enc, enc_len);
        memcpy(macin + enc_len, a->ak_name, sizeof(a->ak_name));
        if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, hkey, 32, macin, enc_len + sizeof(a->ak_name), mac,
                       sizeof(mac), &macl) ||
            macl != 32)
                goto out;
        if (CRYPTO_memcmp(mac, blob.credential + 2, 32) != 0) {
                r = -EPERM; /* integrity check failed: TPM_RC_INTEGRITY */
                goto out;
        }
        uint8_t plain[sizeof(blob.credential)], iv[16] = { 0 };
        int outl = 0, fl = 0;
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int ok = c && EVP_DecryptInit_ex2(c, EVP_aes_128_cfb128(), skey, iv, NULL) == 1 &&
                 EVP_DecryptUpdate(c, plain, &outl, enc, (int) enc_len) == 1 &&
                 EVP_DecryptFinal_ex(c, plain + outl, &fl) == 1;
        EVP_CIPHER_CTX_free(c);
        if (!ok || (size_t) (outl + fl) != enc_len || enc_len < 2)
                goto out;
        size_t n = (size_t) plain[0] << 8 | plain[1];
        if (n + 2 > enc_len || n > 64)
                goto out;
        memcpy(out, plain + 2, n);
        *out_len = n;
        OPENSSL_cleanse(plain, sizeof(plain));
        r = 0;
out:
        OPENSSL_cleanse(z, sizeof(z));
        OPENSSL_cleanse(seed, sizeof(seed));
        OPENSSL_cleanse(hkey, sizeof(hkey));
        OPENSSL_cleanse(skey, sizeof(skey));
        EVP_PKEY_CTX_free(dctx);
        EVP_PKEY_CTX_free(pctx);
        EVP_PKEY_free(peer);
        return r;
}

/* ---- quotes ---- */

static void reset_value(unsigned pcr, size_t size, uint8_t *out) {
        memset(out, pcr >= 17 && pcr <= 22 ? 0xff : 0, size);
}

/* The value of one PCR now: what the log replays to, or its reset value. */
static const uint8_t *pcr_value(uint16_t alg, unsigned pcr, uint8_t *scratch, size_t *size) {
        const vc_pcr_bank *b = vc_pcr_set_find(&G.pcrs, alg);
        const vc_alg_info *ai = vc_alg_lookup(alg);
        if (!ai)
                return NULL;
        *size = ai->size;
        if (b && (b->mask & (1u << pcr)))
                return b->values[pcr];
        reset_value(pcr, ai->size, scratch);
        return scratch;
}

/* ECDSA P-256 over SHA-256(msg), as a TPMT_SIGNATURE. */
static int sign_tpm(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t *out, size_t cap, size_t *out_len) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint8_t der[80];
        size_t dl = sizeof(der);
        int r = -EIO;
        if (!ctx || EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
            EVP_DigestSign(ctx, der, &dl, msg, len) != 1)
                goto out;
        const unsigned char *p = der;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long) dl);
        if (!es)
                goto out;
        TPMT_SIGNATURE s = { .sigAlg = TPM2_ALG_ECDSA };
        s.signature.ecdsa.hash = TPM2_ALG_SHA256;
        s.signature.ecdsa.signatureR.size = 32;
        s.signature.ecdsa.signatureS.size = 32;
        int ok = BN_bn2binpad(ECDSA_SIG_get0_r(es), s.signature.ecdsa.signatureR.buffer, 32) == 32 &&
                 BN_bn2binpad(ECDSA_SIG_get0_s(es), s.signature.ecdsa.signatureS.buffer, 32) == 32;
        ECDSA_SIG_free(es);
        size_t off = 0;
        if (ok && Tss2_MU_TPMT_SIGNATURE_Marshal(&s, out, cap, &off) == TSS2_RC_SUCCESS) {
                *out_len = off;
                r = 0;
        }
out:
        EVP_MD_CTX_free(ctx);
        return r;
}

/* ---- connection ---- */

static void agent_connect(agent *a);
static void agent_schedule(agent *a, uint64_t delay_us);

/* Queues a framed message (agent/protocol.h) and frees it. */
static int send_framed(agent *a, uint8_t *b, size_t n) {
        int r = bufferevent_write(a->bev, b, n) == 0 ? 0 : -EIO;
        free(b);
        return r;
}

static int send_msg(agent *a, const Vouch__V1__AgentMessage *m) {
        uint8_t *b;
        size_t n;
        int r = va_frame(m, &b, &n);
        return r < 0 ? r : send_framed(a, b, n);
}

static void pending_done(agent *a) {
        if (!a->pending)
                return;
        lg_loop *l = a->l;
        a->pending = false;
        l->pending--;
        agent *next = l->wait_head;
        if (next) {
                l->wait_head = next->wait_next;
                if (!l->wait_head)
                        l->wait_tail = NULL;
                next->wait_next = NULL;
                next->waiting = false;
                agent_schedule(next, 0);
        }
}

static void agent_disconnect(agent *a) {
        pending_done(a);
        if (a->bev) {
                bufferevent_free(a->bev);
                a->bev = NULL;
        }
        if (a->was_connected) {
                atomic_fetch_sub(&connected_now, 1);
                a->was_connected = false;
        }
        vf_decoder_done(&a->dec);
        if (a->slow_challenge) {
                vouch__v1__quote_challenge__free_unpacked(a->slow_challenge, NULL);
                a->slow_challenge = NULL;
        }
        a->state = A_OFF;
}

static void count_failure(agent *a, uint64_t *kind, const char *what) {
        stats *s = &a->l->st;
        if (atomic_load(&measuring)) {
                s->failed++;
                (*kind)++;
        }
        if (atomic_fetch_add(&failures_printed, 1) < 10)
                say("agent %u: %s%s", a->idx, what, atomic_load(&measuring) ? "" : " (during warm-up: not counted)");
}

/* The next reconnection's delay: exponential (--backoff-min doubled per failure in a row, at
 * most --backoff-max; by default 100 ms .. 25.6 s) with +-50 % jitter. */
static uint64_t backoff_us(agent *a) {
        unsigned f = a->fails < 30 ? a->fails : 30;
        a->fails++;
        double base = G.o.backoff_min * 1e6 * (double) (1u << f);
        if (base > G.o.backoff_max * 1e6)
                base = G.o.backoff_max * 1e6;
        return (uint64_t) (base * (0.5 + rnd01(a->l)));
}

/* Failover: a lost connection is a reconnection, not a failed attestation; from now until its
 * next TRUSTED verdict the agent waits to attest again. */
static void note_lost(agent *a, const char *why) {
        stats *s = &a->l->st;
        if (atomic_load(&measuring)) {
                s->lost++;
                if (a->state == A_ANSWERED)
                        s->interrupted++;
        }
        if (a->warm && !a->t_lost) {
                a->t_lost = now_us();
                atomic_fetch_add(&lost_now, 1);
        }
        if (atomic_fetch_add(&losses_printed, 1) < 5)
                say("agent %u: %s: reconnecting elsewhere", a->idx, why);
}

/* Failover: any server but the current one. */
static unsigned other_server(agent *a) {
        unsigned n = G.n_servers;
        if (n < 2)
                return a->server;
        unsigned k = 1 + (unsigned) (rnd01(a->l) * (n - 1)) % (n - 1);
        return (a->server + k) % n;
}

/* Unexpected end of a connection: count it (a failure with one server; a reconnection to
 * another one with several), reconnect with exponential backoff + jitter. */
static void agent_lost(agent *a, const char *why) {
        if (atomic_load(&stopping))
                return;
        bool failover = G.n_servers > 1;
        if (a->expect & (MIS_GARBAGE | MIS_SLOW)) {
                /* a misbehaving agent expects to be cut off; an Error frame came first (or not) */
                a->expect = 0;
        } else if (failover) {
                note_lost(a, why);
        } else {
                count_failure(a, &a->l->st.fail_drop, why);
        }
        agent_disconnect(a);
        a->l->st.disconnects++;
        if (failover)
                a->server = other_server(a);
        agent_schedule(a, backoff_us(a));
}

/* The selected PCRs' values (what the log replays to, or the reset value) into the answer's
 * banks and, concatenated in the same order, into the quote's digest input (*din bytes).
 * -ENOTSUP when a PCR of an unknown bank is selected. */
static int quoted_pcrs(const TPML_PCR_SELECTION *sel, va_answer_pcrs *ret, uint8_t *digest_in, size_t *din) {
        uint8_t scratch[VC_MAX_DIGEST];
        size_t n = 0;
        va_answer_pcrs_init(ret);
        for (uint32_t i = 0; i < sel->count; i++) {
                const TPMS_PCR_SELECTION *s = &sel->pcrSelections[i];
                int r = va_answer_pcrs_bank(ret, s->hash);
                if (r < 0)
                        return r;
                for (unsigned p = 0; p < VC_PCR_COUNT; p++) {
                        if (!(s->pcrSelect[p / 8] & (1u << (p % 8))))
                                continue;
                        size_t sz = 0;
                        const uint8_t *v = pcr_value(s->hash, p, scratch, &sz);
                        if (!v)
                                return -ENOTSUP;
                        /* pcr_value's scratch is reused: the answer points into the digest input */
                        memcpy(digest_in + n, v, sz);
                        r = va_answer_pcrs_value(ret, p, digest_in + n, sz);
                        if (r < 0)
                                return r;
                        n += sz;
                }
        }
        *din = n;
        return 0;
}

/* A TPMS_ATTEST quoting sel (pcrDigest = SHA-256 of digest_in) over the challenge's nonce (a
 * wrong one when misbehaving), at the agent's clock, signed by its AK like a TPM would. */
static int make_quote(agent *a, const Vouch__V1__QuoteChallenge *ch, const TPML_PCR_SELECTION *sel,
                      const uint8_t *digest_in, size_t din, uint8_t *attest, size_t *alen, uint8_t *sig, size_t *slen) {
        /* the clock: milliseconds since this boot, strictly increasing */
        uint64_t ms = now_us() / 1000;
        uint64_t c = ms - a->boot_ms + 1000;
        a->clock = c > a->clock ? c : a->clock + 1;

        TPMS_ATTEST at = { 0 };
        at.magic = TPM2_GENERATED_VALUE;
        at.type = TPM2_ST_ATTEST_QUOTE;
        at.qualifiedSigner.size = sizeof(a->ak_name);
        memcpy(at.qualifiedSigner.name, a->ak_name, sizeof(a->ak_name));
        at.extraData.size = (UINT16) ch->nonce.len;
        memcpy(at.extraData.buffer, ch->nonce.data, ch->nonce.len);
        if (a->expect == MIS_WRONG_NONCE)
                RAND_bytes(at.extraData.buffer, (int) ch->nonce.len);
        at.clockInfo.clock = a->clock;
        at.clockInfo.resetCount = a->reset_count;
        at.clockInfo.restartCount = 0;
        at.clockInfo.safe = TPM2_YES;
        at.firmwareVersion = 0x0000000100020003ull;
        at.attested.quote.pcrSelect = *sel;
        at.attested.quote.pcrDigest.size = 32;
        vc_digest(VC_ALG_SHA256, digest_in, din, at.attested.quote.pcrDigest.buffer);
        *alen = *slen = 0;
        if (Tss2_MU_TPMS_ATTEST_Marshal(&at, attest, sizeof(TPMS_ATTEST), alen) != TSS2_RC_SUCCESS)
                return -EIO;
        return sign_tpm(a->ak_key, attest, *alen, sig, sizeof(TPMT_SIGNATURE), slen);
}

/* TPM2_Certify (TPM 2.0 Part 3, 18.2) of the device key by the AK, in software: a TPMS_ATTEST
 * of type TPM_ST_ATTEST_CERTIFY over SHA-256("vouch device key certify" || the challenge's
 * nonce) (vc_certify_qualifying_data, as agent/agent.c passes it), with the key's Name and
 * qualifiedName, at the agent's clock, signed by the AK like a TPM would. */
static int make_certify(agent *a, const Vouch__V1__QuoteChallenge *ch, uint8_t *attest, size_t *alen, uint8_t *sig,
                        size_t *slen) {
        TPMS_ATTEST at = { 0 };
        at.magic = TPM2_GENERATED_VALUE;
        at.type = TPM2_ST_ATTEST_CERTIFY;
        at.qualifiedSigner.size = sizeof(a->ak_name);
        memcpy(at.qualifiedSigner.name, a->ak_name, sizeof(a->ak_name));
        at.extraData.size = VC_CERTIFY_QUALIFYING_SIZE;
        if (vc_certify_qualifying_data(ch->nonce.data, ch->nonce.len, at.extraData.buffer) < 0)
                return -EIO;
        at.clockInfo.clock = a->clock;
        at.clockInfo.resetCount = a->reset_count;
        at.clockInfo.restartCount = 0;
        at.clockInfo.safe = TPM2_YES;
        at.firmwareVersion = 0x0000000100020003ull;
        at.attested.certify.name.size = sizeof(a->dk_name);
        memcpy(at.attested.certify.name.name, a->dk_name, sizeof(a->dk_name));
        at.attested.certify.qualifiedName.size = sizeof(a->dk_qname);
        memcpy(at.attested.certify.qualifiedName.name, a->dk_qname, sizeof(a->dk_qname));
        *alen = *slen = 0;
        if (Tss2_MU_TPMS_ATTEST_Marshal(&at, attest, sizeof(TPMS_ATTEST), alen) != TSS2_RC_SUCCESS)
                return -EIO;
        return sign_tpm(a->ak_key, attest, *alen, sig, sizeof(TPMT_SIGNATURE), slen);
}

static void answer_challenge(agent *a, const Vouch__V1__QuoteChallenge *ch) {
        TPML_PCR_SELECTION sel;
        va_answer_pcrs banks;
        uint8_t digest_in[VC_PCR_COUNT * VC_NUM_ALGS * VC_MAX_DIGEST];
        uint8_t attest[sizeof(TPMS_ATTEST)], sig[sizeof(TPMT_SIGNATURE)];
        uint8_t cattest[sizeof(TPMS_ATTEST)], csig[sizeof(TPMT_SIGNATURE)];
        size_t din = 0, alen = 0, slen = 0, calen = 0, cslen = 0;
        if (va_challenge_selection(ch, &sel) < 0) {
                count_failure(a, &a->l->st.fail_error, "malformed challenge");
                return;
        }
        if (quoted_pcrs(&sel, &banks, digest_in, &din) < 0) {
                count_failure(a, &a->l->st.fail_error, "challenge selects an unknown bank");
                return;
        }
        if (make_quote(a, ch, &sel, digest_in, din, attest, &alen, sig, &slen) < 0) {
                count_failure(a, &a->l->st.fail_error, "cannot make a quote");
                return;
        }
        Vouch__V1__QuoteAnswer qa = VOUCH__V1__QUOTE_ANSWER__INIT;
        qa.nonce = ch->nonce;
        va_answer_pcrs_put(&banks, &qa);
        if (a->dk_key) {
                /* the device key's proof, by the same AK over the same challenge */
                if (make_certify(a, ch, cattest, &calen, csig, &cslen) < 0) {
                        count_failure(a, &a->l->st.fail_error, "cannot certify the device key");
                        return;
                }
                qa.device_key_public = (ProtobufCBinaryData) { .len = a->dk_pub_len, .data = a->dk_pub };
                qa.device_key_certify = (ProtobufCBinaryData) { .len = calen, .data = cattest };
                qa.device_key_signature = (ProtobufCBinaryData) { .len = cslen, .data = csig };
        }
        if (a->expect == MIS_STALE && a->last.attest) {
                /* replay the previous quote as it was */
                qa.attest.data = a->last.attest;
                qa.attest.len = a->last.attest_len;
                qa.signature.data = a->last.sig;
                qa.signature.len = a->last.sig_len;
        } else {
                if (a->expect == MIS_STALE)
                        a->expect = 0; /* nothing to replay yet: a normal answer */
                qa.attest.data = attest;
                qa.attest.len = alen;
                qa.signature.data = sig;
                qa.signature.len = slen;
        }
        /* a new boot sends the whole log; the same boot continues where the verifier is */
        size_t from = G.o.mode == MODE_FULL && !G.o.offset_like_agent ? 0
                                                                       : va_eventlog_from(ch->eventlog_offset, G.log_len);
        qa.eventlog_offset = from;
        qa.eventlog.data = G.log + from;
        qa.eventlog.len = G.log_len - from;
        Vouch__V1__AgentMessage m = VOUCH__V1__AGENT_MESSAGE__INIT;
        m.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_QUOTE;
        m.quote = &qa;
        if (send_msg(a, &m) < 0) {
                count_failure(a, &a->l->st.fail_error, "cannot send the quote");
                return;
        }
        if (G.o.misbehave & MIS_STALE)
                sent_quote_keep(&a->last, attest, alen, sig, slen);
        a->state = A_ANSWERED;
}

static void send_garbage(agent *a) {
        /* 64 bytes of 0xff: the first tag is a varint longer than 10 bytes, which no protobuf
         * parser accepts */
        uint8_t b[VF_HEADER_SIZE + 64];
        vf_header(64, UINT32_MAX, b);
        memset(b + VF_HEADER_SIZE, 0xff, 64);
        bufferevent_write(a->bev, b, sizeof(b));
}

static unsigned pick_misbehaviour(agent *a) {
        if (!G.o.misbehave || rnd01(a->l) >= G.o.misbehave_rate)
                return 0;
        unsigned kinds[4], n = 0;
        for (unsigned i = 0; i < 4; i++)
                if (G.o.misbehave & (1u << i))
                        kinds[n++] = 1u << i;
        return kinds[(unsigned) (rnd01(a->l) * n) % n];
}

static void on_challenge(agent *a, Vouch__V1__QuoteChallenge *ch, bool *keep) {
        a->t_challenge = now_us();
        if (G.o.mode == MODE_FULL) {
                /* a new boot for every attestation: resetCount moves on, the clock restarts */
                a->reset_count++;
                a->boot_ms = a->t_challenge / 1000;
                a->clock = 0;
        }
        a->expect = pick_misbehaviour(a);
        switch (a->expect) {
        case MIS_GARBAGE:
                send_garbage(a);
                a->state = A_ANSWERED;
                return;
        case MIS_SLOW: {
                /* stop reading; answer only after the challenge expired */
                bufferevent_disable(a->bev, EV_READ);
                a->slow_challenge = ch;
                *keep = true;
                agent_schedule(a, ch->expires_in_ms * 1000 + 1000000);
                return;
        }
        default:
                answer_challenge(a, ch);
        }
}

/* "DEVICE SEQUENCE GLOBAL_SEQUENCE SHA256" of a verdict the verifier acknowledged by
 * sending it: it must be in the verifier's store, byte for byte, whatever happens next. */
static void record_acked(const Vouch__V1__SignedVerdict *sv, const Vouch__V1__Verdict *v) {
        size_t n = vouch__v1__signed_verdict__get_packed_size(sv);
        uint8_t *b = malloc(n ? n : 1), md[32];
        char hex[65];
        if (!b || vouch__v1__signed_verdict__pack(sv, b) != n || EVP_Digest(b, n, md, NULL, EVP_sha256(), NULL) != 1) {
                free(b);
                fprintf(G.acked, "%s %llu %llu unhashable\n", v->device_id, (unsigned long long) v->sequence,
                        (unsigned long long) v->global_sequence);
                return;
        }
        free(b);
        for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        fprintf(G.acked, "%s %llu %llu %s\n", v->device_id, (unsigned long long) v->sequence,
                (unsigned long long) v->global_sequence, hex);
}

/* --device-key: a TRUSTED verdict comes with the device key's certificate (and the CA's
 * chain after it) and names the key it certifies (Verdict.device_key, SHA-256 of its SPKI). */
static bool certified(const agent *a, const Vouch__V1__VerdictNotice *vn, const Vouch__V1__Verdict *v) {
        return vn->n_device_certificates > 0 && vn->device_certificates[0].len > 0 &&
               v->device_key.len == sizeof(a->dk_spki) && memcmp(v->device_key.data, a->dk_spki, sizeof(a->dk_spki)) == 0;
}

static void on_verdict(agent *a, const Vouch__V1__VerdictNotice *vn) {
        stats *s = &a->l->st;
        uint64_t t = now_us();
        Vouch__V1__Verdict *v = vn->verdict ? vouch__v1__verdict__unpack(NULL, vn->verdict->verdict.len,
                                                                         vn->verdict->verdict.data)
                                            : NULL;
        bool trusted = v && v->status == VOUCH__V1__TRUST_STATUS__TRUSTED;
        if (G.acked && v)
                record_acked(vn->verdict, v);
        unsigned expect = a->expect;
        a->expect = 0;
        a->state = A_READY;
        if (expect == MIS_WRONG_NONCE || expect == MIS_STALE) {
                if (trusted)
                        count_failure(a, &s->fail_error, "a misbehaving quote was TRUSTED");
                else if (atomic_load(&measuring))
                        s->rejected++;
        } else if (trusted) {
                /* --device-key: without the key's certificate the agent attested (it is warm)
                 * but the attestation failed */
                bool cert_ok = !a->dk_key || certified(a, vn, v);
                if (!cert_ok) {
                        char why[600];
                        snprintf(why, sizeof(why), "TRUSTED verdict %s: %s",
                                 vn->n_device_certificates ? "that names another key" : "without a device certificate",
                                 v->n_findings ? v->findings[0]->explanation : "no finding");
                        count_failure(a, &s->fail_cert, why);
                } else if (a->dk_key) {
                        s->certs_total++;
                        if (atomic_load(&measuring))
                                s->certs++;
                }
                s->trusted_total++;
                a->fails = 0;
                if (a->t_lost) {
                        us_vec_add(&s->reattest, t - a->t_lost);
                        a->t_lost = 0;
                        atomic_fetch_sub(&lost_now, 1);
                }
                if (!a->warm) {
                        a->warm = true;
                        atomic_fetch_add(&warm, 1);
                }
                if (atomic_load(&measuring) && cert_ok) {
                        s->ok++;
                        us_vec_add(&s->lat, t - a->t_challenge);
                }
        } else {
                char why[300];
                snprintf(why, sizeof(why), "verdict %s: %s", v ? (v->status == VOUCH__V1__TRUST_STATUS__UNTRUSTED ? "UNTRUSTED" : "?") : "unparsable",
                         v && v->n_findings ? v->findings[0]->explanation : "");
                count_failure(a, &s->untrusted, why);
        }
        if (v)
                vouch__v1__verdict__free_unpacked(v, NULL);
}

static void on_welcome(agent *a) {
        stats *s = &a->l->st;
        a->state = A_READY;
        pending_done(a);
        if (G.o.mode != MODE_ENROLL)
                return;
        /* enrollment-only: this identity is done; a fresh one connects at once */
        if (atomic_load(&measuring)) {
                s->enrollments++;
                us_vec_add(&s->lat, now_us() - a->t_hello);
        }
        if (!a->warm) {
                a->warm = true;
                atomic_fetch_add(&warm, 1);
        }
        agent_disconnect(a);
        identity_free(a);
        agent_schedule(a, 0);
}

static void dispatch(agent *a, const uint8_t *frame, size_t len) {
        Vouch__V1__VerifierMessage *m = vouch__v1__verifier_message__unpack(NULL, len, frame);
        bool keep = false;
        if (!m) {
                agent_lost(a, "the verifier sent a message that does not parse");
                return;
        }
        switch (m->msg_case) {
        case VOUCH__V1__VERIFIER_MESSAGE__MSG_ACTIVATE: {
                uint8_t secret[64];
                size_t sl = 0;
                uint8_t *b;
                size_t n;
                if (activate_credential(a, m->activate, secret, &sl) < 0) {
                        agent_lost(a, "ActivateCredential failed");
                        break;
                }
                int r = va_frame_activate_answer(secret, sl, &b, &n);
                OPENSSL_cleanse(secret, sizeof(secret));
                if (r == 0)
                        send_framed(a, b, n);
                break;
        }
        case VOUCH__V1__VERIFIER_MESSAGE__MSG_WELCOME:
                on_welcome(a);
                break;
        case VOUCH__V1__VERIFIER_MESSAGE__MSG_CHALLENGE:
                on_challenge(a, m->challenge, &keep);
                if (keep)
                        m->challenge = NULL, m->msg_case = VOUCH__V1__VERIFIER_MESSAGE__MSG__NOT_SET;
                break;
        case VOUCH__V1__VERIFIER_MESSAGE__MSG_VERDICT:
                on_verdict(a, m->verdict);
                break;
        case VOUCH__V1__VERIFIER_MESSAGE__MSG_ERROR: {
                stats *s = &a->l->st;
                s->errors_recv++;
                if (m->error->code == EBUSY && !a->expect) {
                        /* another instance holds this device's lease (its old session there has
                         * not lapsed yet): not a failed attestation; the same server again after
                         * the backoff, by when the lease may have lapsed */
                        s->busy++;
                        if (atomic_fetch_add(&losses_printed, 1) < 5)
                                say("agent %u: refused, retrying: %s", a->idx,
                                    m->error->message ? m->error->message : "");
                        agent_disconnect(a);
                        agent_schedule(a, backoff_us(a));
                        break;
                }
                /* Garbage and slow peers are cut off with an Error; a wrong nonce or a stale
                 * quote as a session's first answer is refused the same way (no verdict: until a
                 * quote verifies, the session is not the device's), later ones get UNTRUSTED. */
                if (a->expect & (MIS_GARBAGE | MIS_SLOW | MIS_WRONG_NONCE | MIS_STALE)) {
                        if (atomic_load(&measuring))
                                s->rejected++;
                } else {
                        char why[600];
                        snprintf(why, sizeof(why), "the verifier refused: %s", m->error->message ? m->error->message : "");
                        count_failure(a, &s->fail_error, why);
                }
                a->expect = 0;
                /* the verifier closes now; do not count the close again */
                agent_disconnect(a);
                agent_schedule(a, 100000 + (uint64_t) (rnd01(a->l) * 100000));
                break;
        }
        default:
                agent_lost(a, "unexpected message");
        }
        vouch__v1__verifier_message__free_unpacked(m, NULL);
}

static void read_cb(struct bufferevent *bev, void *arg) {
        agent *a = arg;
        struct evbuffer *in = bufferevent_get_input(bev);
        while (a->bev == bev && evbuffer_get_length(in) > 0) {
                size_t avail = evbuffer_get_contiguous_space(in);
                const uint8_t *data = evbuffer_pullup(in, (ev_ssize_t) avail);
                uint8_t *frame = NULL;
                size_t flen = 0;
                long used = vf_decoder_feed(&a->dec, data, avail, &frame, &flen);
                if (used < 0) {
                        agent_lost(a, "the verifier sent a frame over the limit");
                        return;
                }
                evbuffer_drain(in, (size_t) used);
                if (frame) {
                        dispatch(a, frame, flen);
                        free(frame);
                }
        }
}

static void event_cb(struct bufferevent *bev, short what, void *arg) {
        agent *a = arg;
        if (what & BEV_EVENT_CONNECTED) {
                a->l->st.connects++;
                a->was_connected = true;
                atomic_fetch_add(&connected_now, 1);
                return;
        }
        if (what & BEV_EVENT_TIMEOUT) {
                count_failure(a, &a->l->st.fail_timeout, "the verifier was silent too long");
                a->expect = MIS_SLOW; /* already counted */
        }
        char why[300];
        unsigned long e = bufferevent_get_openssl_error(bev);
        char ebuf[200] = "";
        if (e)
                ERR_error_string_n(e, ebuf, sizeof(ebuf));
        snprintf(why, sizeof(why), "connection %s in state %d%s%s (%s)",
                 what & BEV_EVENT_EOF ? "closed by the verifier" : "error", (int) a->state, ebuf[0] ? ": " : "", ebuf,
                 strerror(EVUTIL_SOCKET_ERROR()));
        agent_lost(a, why);
}

static void agent_connect(agent *a) {
        /* at most max_pending connections between connect and Welcome: a verifier that is
         * enrolling as fast as it can is not buried under handshakes that then time out */
        lg_loop *l = a->l;
        unsigned share = G.o.max_pending / G.o.threads ? G.o.max_pending / G.o.threads : 1;
        if (a->waiting) /* queued: started when a slot frees */
                return;
        if (l->pending >= share) {
                a->waiting = true;
                if (l->wait_tail)
                        l->wait_tail->wait_next = a;
                else
                        l->wait_head = a;
                l->wait_tail = a;
                return;
        }
        l->pending++;
        a->pending = true;
        if (!a->has_identity) {
                if (identity_new(a) < 0) {
                        say("agent %u: cannot make an identity", a->idx);
                        pending_done(a);
                        agent_schedule(a, 1000000);
                        return;
                }
                a->reset_count = 1 + (uint32_t) (rnd01(a->l) * 1000);
                a->boot_ms = now_us() / 1000;
                a->clock = 0;
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                count_failure(a, &a->l->st.fail_drop, "socket() failed (file limit?)");
                pending_done(a);
                agent_schedule(a, 1000000);
                return;
        }
        /* a source address of its own in 127.0.0.0/8 for every 1/sources of the agents: each
         * source address has its own ephemeral port range */
        struct sockaddr_in src = { .sin_family = AF_INET };
        src.sin_addr.s_addr = htonl(0x7f000002u + (a->idx % G.o.sources));
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *) &src, sizeof(src)) < 0 ||
            (connect(fd, (struct sockaddr *) &G.servers[a->server], sizeof(G.servers[0])) < 0 &&
             errno != EINPROGRESS)) {
                char why[200];
                snprintf(why, sizeof(why), "connect: %s", strerror(errno));
                close(fd);
                pending_done(a);
                if (G.n_servers > 1) {
                        agent_lost(a, why);
                        return;
                }
                count_failure(a, &a->l->st.fail_drop, why);
                agent_schedule(a, 1000000);
                return;
        }
        SSL *ssl = SSL_new(G.tls);
        if (!ssl) {
                close(fd);
                pending_done(a);
                agent_schedule(a, 1000000);
                return;
        }
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), G.server_ip[a->server]);
        a->bev = bufferevent_openssl_socket_new(a->l->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
        if (!a->bev) {
                SSL_free(ssl);
                close(fd);
                pending_done(a);
                agent_schedule(a, 1000000);
                return;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(a->bev, 1);
        vf_decoder_init(&a->dec, VA_MAX_VERIFIER_FRAME);
        bufferevent_setcb(a->bev, read_cb, NULL, event_cb, a);
        struct timeval tv = { G.o.idle_timeout, 0 };
        bufferevent_set_timeouts(a->bev, &tv, NULL);
        bufferevent_enable(a->bev, EV_READ | EV_WRITE);
        /* the connection is not up yet, but Hello can be queued: it goes once TLS is */
        char host[32];
        snprintf(host, sizeof(host), "loadgen-%u", a->idx);
        Vouch__V1__Hello h = VOUCH__V1__HELLO__INIT;
        h.protocol_version = VOUCH__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1;
        h.agent_version = (char *) "vouch-loadgen";
        h.ek_public.data = a->ekb;
        h.ek_public.len = a->ekb_len;
        h.ek_certificate.data = a->ek_cert;
        h.ek_certificate.len = a->ek_cert_len;
        h.ak_public.data = a->akb;
        h.ak_public.len = a->akb_len;
        h.hostname = host;
        Vouch__V1__AgentMessage m = VOUCH__V1__AGENT_MESSAGE__INIT;
        m.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_HELLO;
        m.hello = &h;
        a->t_hello = now_us();
        a->state = A_CONNECTING;
        send_msg(a, &m);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
        agent *a = arg;
        if (atomic_load(&stopping))
                return;
        if (a->slow_challenge) {
                /* the slow reader wakes up after the challenge expired and reads again: the
                 * verifier's Error (silent too long) is waiting */
                vouch__v1__quote_challenge__free_unpacked(a->slow_challenge, NULL);
                a->slow_challenge = NULL;
                if (a->bev)
                        bufferevent_enable(a->bev, EV_READ);
                return;
        }
        if (a->state == A_OFF)
                agent_connect(a);
}

static void agent_schedule(agent *a, uint64_t delay_us) {
        struct timeval tv = { (time_t) (delay_us / 1000000), (suseconds_t) (delay_us % 1000000) };
        evtimer_add(a->timer, &tv);
}

static void *loop_main(void *arg) {
        lg_loop *l = arg;
        event_base_dispatch(l->base);
        return NULL;
}

/* ---- the floor ---- */

static double time_op_us(double seconds, int (*fn)(void *), void *ud) {
        uint64_t t0 = now_us(), n = 0;
        while (now_us() - t0 < (uint64_t) (seconds * 1e6)) {
                for (int i = 0; i < 16; i++)
                        if (fn(ud) < 0)
                                return -1;
                n += 16;
        }
        return (double) (now_us() - t0) / (double) n;
}

typedef struct floor_ctx {
        EVP_PKEY *key;
        uint8_t msg[300];
        size_t msg_len;
        uint8_t sig[80];
        size_t sig_len;
        const uint8_t *log;
        size_t log_len;
} floor_ctx;

static int floor_verify(void *ud) {
        floor_ctx *f = ud;
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        int ok = c && EVP_DigestVerifyInit_ex(c, NULL, "SHA256", NULL, NULL, f->key, NULL) == 1 &&
                 EVP_DigestVerify(c, f->sig, f->sig_len, f->msg, 145) == 1;
        EVP_MD_CTX_free(c);
        return ok ? 0 : -1;
}

static int floor_sign(void *ud) {
        floor_ctx *f = ud;
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        uint8_t sig[80];
        size_t sl = sizeof(sig);
        int ok = c && EVP_DigestSignInit_ex(c, NULL, "SHA256", NULL, NULL, f->key, NULL) == 1 &&
                 EVP_DigestSign(c, sig, &sl, f->msg, f->msg_len) == 1;
        EVP_MD_CTX_free(c);
        return ok ? 0 : -1;
}

static int floor_hash(void *ud) {
        floor_ctx *f = ud;
        uint8_t md[32];
        return vc_digest(VC_ALG_SHA256, f->log, f->log_len, md);
}

/* One quote verification (ECDSA P-256 over a ~145-byte TPMS_ATTEST), one verdict
 * signature (ECDSA P-256 over ~300 bytes), SHA-256 over the whole event log: each timed
 * separately, best of 3 rounds. */
static int run_floor(double seconds) {
        floor_ctx f = { .msg_len = 300, .log = G.log, .log_len = G.log_len };
        f.key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        RAND_bytes(f.msg, sizeof(f.msg));
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        f.sig_len = sizeof(f.sig);
        if (!f.key || !c || EVP_DigestSignInit_ex(c, NULL, "SHA256", NULL, NULL, f.key, NULL) != 1 ||
            EVP_DigestSign(c, f.sig, &f.sig_len, f.msg, 145) != 1) {
                EVP_MD_CTX_free(c);
                EVP_PKEY_free(f.key);
                return 2;
        }
        EVP_MD_CTX_free(c);
        double v = 1e9, s = 1e9, h = 1e9;
        for (int round = 0; round < 3; round++) {
                double x = time_op_us(seconds / 9, floor_verify, &f), y = time_op_us(seconds / 9, floor_sign, &f),
                       z = time_op_us(seconds / 9, floor_hash, &f);
                if (x < 0 || y < 0 || z < 0) {
                        EVP_PKEY_free(f.key);
                        return 2;
                }
                v = fmin(v, x), s = fmin(s, y), h = fmin(h, z);
        }
        EVP_PKEY_free(f.key);
        printf("floor floor_us=%.2f verify_us=%.2f sign_us=%.2f hash_us=%.2f log_bytes=%zu openssl=\"%s\"\n", v + s + h,
               v, s, h, G.log_len, OpenSSL_version(OPENSSL_VERSION));
        return 0;
}

/* ---- main ---- */

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

static double cpu_seconds(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 + (double) ru.ru_stime.tv_sec +
               (double) ru.ru_stime.tv_usec / 1e6;
}

static void sleep_s(double s) {
        struct timespec ts = { (time_t) s, (long) ((s - (double) (time_t) s) * 1e9) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) {
        interrupted = 1;
}

static const char usage[] =
        "Usage: vouch-loadgen --server IP:PORT[,IP:PORT...] --ca FILE --ek-ca-dir DIR [options]\n"
        "       vouch-loadgen --init-ek-ca DIR          create DIR/ek-ca.pem (for vouchd --ek-ca) and exit\n"
        "       vouch-loadgen --floor [--eventlog FILE] [--duration SECONDS]\n"
        "  --server IP:PORT,...  the verifier; several (comma list, or --server repeated): agents\n"
        "                        spread over them and fail over to another when theirs is lost\n"
        "  --agents N            simulated agents (default 100)\n"
        "  --first-agent K       number this process's agents from K (several processes; default 0)\n"
        "  --mode MODE           full (new boot each attestation, whole log), periodic (same boot),\n"
        "                        enroll (fresh identities, enrollment only); default periodic\n"
        "  --duration SECONDS    measurement window (default 10)\n"
        "  --warmup-timeout S    longest wait for every agent's first verdict (default 120)\n"
        "  --threads N           event loops (default 2)\n"
        "  --sources N           source addresses 127.0.0.2.. (default 16)\n"
        "  --connect-rate N      new connections per second while ramping up (default 2000)\n"
        "  --eventlog FILE       (default $VOUCH_SHARED_DIR/" DEFAULT_LOG ")\n"
        "  --misbehave KINDS     comma list of wrong-nonce,stale,garbage,slow\n"
        "  --misbehave-rate P    probability per challenge (default 0.2)\n"
        "  --idle-timeout S      a connection silent this long is a failure (default 300)\n"
        "  --max-pending N       connections between connect and Welcome at once (default 64)\n"
        "  --acked FILE          write each verdict received (device, sequence, global sequence, SHA-256)\n"
        "  --backoff-min S       first reconnection delay, doubled per failure in a row (default 0.1)\n"
        "  --backoff-max S       longest reconnection delay before +-50% jitter (default 25.6)\n"
        "  --sync                after the warm-up print \"warm\" and open the window only when a line\n"
        "                        comes on stdin (bench/run starts several processes' windows at once)\n"
        "  --dump PREFIX         write the latencies (PREFIX.lat) and the times to attest again after\n"
        "                        a lost connection (PREFIX.reattest): native uint32 microseconds\n"
        "  --offset-like-agent   full mode: send the log from the challenge's eventlog_offset after a\n"
        "                        reboot, as agent/agent.c does (shows what the verifier makes of it)\n"
        "  --device-key          every agent has a software device key and sends a TPM2_Certify of it\n"
        "                        by its AK with each quote, as vouch-agent does (issue 19; vouchd with\n"
        "                        --trust-domain issues certificates): a TRUSTED verdict without the key's\n"
        "                        certificate is a failure\n"
        "  --version             print \"vouch-loadgen VERSION\" and exit\n";

static const char *mode_name(lg_mode m) {
        return m == MODE_FULL ? "full" : m == MODE_PERIODIC ? "periodic" : "enroll";
}

static int parse_mode(const char *arg, lg_mode *ret) {
        for (lg_mode m = MODE_FULL; m <= MODE_ENROLL; m++)
                if (strcmp(arg, mode_name(m)) == 0) {
                        *ret = m;
                        return 0;
                }
        fprintf(stderr, "vouch-loadgen: --mode %s: full, periodic or enroll\n", arg);
        return -EINVAL;
}

/* A comma list of misbehaviour names into MIS_* bits (added to *bits). */
static int parse_misbehave(const char *arg, unsigned *bits) {
        char buf[256], *save = NULL;
        snprintf(buf, sizeof(buf), "%s", arg);
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                unsigned i;
                for (i = 0; i < 4 && strcmp(t, mis_names[i]) != 0; i++)
                        ;
                if (i == 4) {
                        fprintf(stderr, "vouch-loadgen: --misbehave %s: not one of wrong-nonce,stale,garbage,slow\n", t);
                        return -EINVAL;
                }
                *bits |= 1u << i;
        }
        return 0;
}

/* One IPv4:PORT into G.servers. */
static int server_address(const char *server) {
        char host[64];
        if (G.n_servers == LG_MAX_SERVERS) {
                say("--server: at most %u servers", LG_MAX_SERVERS);
                return -E2BIG;
        }
        struct sockaddr_in *sa = &G.servers[G.n_servers];
        snprintf(host, sizeof(host), "%s", server);
        char *port = strrchr(host, ':'), *end = NULL;
        sa->sin_family = AF_INET;
        if (!port || (*port++ = 0, inet_pton(AF_INET, host, &sa->sin_addr) != 1)) {
                say("--server %s: expected IPv4:PORT", server);
                return -EINVAL;
        }
        unsigned long p = strtoul(port, &end, 10);
        if (!*port || *end || p == 0 || p > 65535) {
                say("--server %s: expected IPv4:PORT", server);
                return -EINVAL;
        }
        sa->sin_port = htons((uint16_t) p);
        inet_ntop(AF_INET, &sa->sin_addr, G.server_ip[G.n_servers], sizeof(G.server_ip[0]));
        G.n_servers++;
        return 0;
}

/* --server A,B,...: each into G.servers (the option may be repeated). */
static int parse_servers(const char *arg) {
        char buf[4096], *save = NULL;
        if (snprintf(buf, sizeof(buf), "%s", arg) >= (int) sizeof(buf)) {
                say("--server: the list is too long");
                return -E2BIG;
        }
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (server_address(t) < 0)
                        return -EINVAL;
        return 0;
}

static char default_log[4096];

/* Fills G.o. -1 to go on, or the exit code: 0 after --help or --version, 2 on a usage error.
 * *ret_init_dir (--init-ek-ca) and *ret_floor (--floor) say when main does something else
 * than a run. */
static int parse_options(int argc, char **argv, const char **ret_init_dir, bool *ret_floor) {
        enum { O_SERVER = 256, O_CA, O_EKCA, O_INIT, O_FLOOR, O_AGENTS, O_MODE, O_DURATION, O_WARMUP, O_THREADS,
               O_SOURCES, O_RATE, O_LOG, O_MIS, O_MISRATE, O_IDLE, O_PENDING, O_LIKE_AGENT, O_ACKED, O_FIRST,
               O_BACKOFF_MIN, O_BACKOFF_MAX, O_SYNC_START, O_DUMP, O_DEVICE_KEY, O_HELP, O_VERSION };
        static const struct option lo[] = {
                { "server", required_argument, NULL, O_SERVER },     { "ca", required_argument, NULL, O_CA },
                { "ek-ca-dir", required_argument, NULL, O_EKCA },    { "init-ek-ca", required_argument, NULL, O_INIT },
                { "floor", no_argument, NULL, O_FLOOR },             { "agents", required_argument, NULL, O_AGENTS },
                { "mode", required_argument, NULL, O_MODE },         { "duration", required_argument, NULL, O_DURATION },
                { "warmup-timeout", required_argument, NULL, O_WARMUP }, { "threads", required_argument, NULL, O_THREADS },
                { "sources", required_argument, NULL, O_SOURCES },   { "connect-rate", required_argument, NULL, O_RATE },
                { "eventlog", required_argument, NULL, O_LOG },      { "misbehave", required_argument, NULL, O_MIS },
                { "misbehave-rate", required_argument, NULL, O_MISRATE }, { "idle-timeout", required_argument, NULL, O_IDLE },
                { "acked", required_argument, NULL, O_ACKED },
                { "max-pending", required_argument, NULL, O_PENDING },
                { "offset-like-agent", no_argument, NULL, O_LIKE_AGENT },
                { "first-agent", required_argument, NULL, O_FIRST },
                { "backoff-min", required_argument, NULL, O_BACKOFF_MIN },
                { "backoff-max", required_argument, NULL, O_BACKOFF_MAX },
                { "sync", no_argument, NULL, O_SYNC_START },
                { "dump", required_argument, NULL, O_DUMP },
                { "device-key", no_argument, NULL, O_DEVICE_KEY },
                { "help", no_argument, NULL, O_HELP },               { "version", no_argument, NULL, O_VERSION },
                {},
        };
        options *o = &G.o;
        *o = (options) { .agents = 100, .threads = 2, .sources = 16, .connect_rate = 2000, .duration = 10,
                         .warmup_timeout = 120, .mode = MODE_PERIODIC, .misbehave_rate = 0.2, .idle_timeout = 300,
                         .max_pending = 64, .backoff_min = 0.1, .backoff_max = 25.6 };
        *ret_init_dir = NULL;
        *ret_floor = false;
        const char *sd = getenv("VOUCH_SHARED_DIR");
        snprintf(default_log, sizeof(default_log), "%s/%s", sd && *sd ? sd : BENCH_SHARED_DIR, DEFAULT_LOG);
        o->eventlog = default_log;
        int ch;
        while ((ch = getopt_long(argc, argv, "h", lo, NULL)) >= 0) {
                switch (ch) {
                case O_SERVER:
                        if (parse_servers(optarg) < 0)
                                return 2;
                        break;
                case O_CA: o->ca = optarg; break;
                case O_EKCA: o->ek_ca_dir = optarg; break;
                case O_INIT: *ret_init_dir = optarg; break;
                case O_FLOOR: *ret_floor = true; break;
                case O_AGENTS: o->agents = (unsigned) strtoul(optarg, NULL, 10); break;
                case O_MODE:
                        if (parse_mode(optarg, &o->mode) < 0)
                                return 2;
                        break;
                case O_DURATION: o->duration = strtod(optarg, NULL); break;
                case O_WARMUP: o->warmup_timeout = strtod(optarg, NULL); break;
                case O_THREADS: o->threads = (unsigned) strtoul(optarg, NULL, 10); break;
                case O_SOURCES: o->sources = (unsigned) strtoul(optarg, NULL, 10); break;
                case O_RATE: o->connect_rate = (unsigned) strtoul(optarg, NULL, 10); break;
                case O_LOG: o->eventlog = optarg; break;
                case O_MIS:
                        if (parse_misbehave(optarg, &o->misbehave) < 0)
                                return 2;
                        break;
                case O_MISRATE: o->misbehave_rate = strtod(optarg, NULL); break;
                case O_IDLE: o->idle_timeout = (unsigned) strtoul(optarg, NULL, 10); break;
                case O_PENDING: o->max_pending = (unsigned) strtoul(optarg, NULL, 10); break;
                case O_LIKE_AGENT: o->offset_like_agent = true; break;
                case O_ACKED: o->acked = optarg; break;
                case O_FIRST: o->first_agent = (unsigned) strtoul(optarg, NULL, 10); break;
                case O_BACKOFF_MIN: o->backoff_min = strtod(optarg, NULL); break;
                case O_BACKOFF_MAX: o->backoff_max = strtod(optarg, NULL); break;
                case O_SYNC_START: o->sync_start = true; break;
                case O_DUMP: o->dump = optarg; break;
                case O_DEVICE_KEY: o->device_key = true; break;
                case O_HELP: fputs(usage, stdout); return 0;
                case O_VERSION: puts("vouch-loadgen " VOUCH_VERSION); return 0;
                default: fputs(usage, stderr); return 2;
                }
        }
        if (optind != argc) {
                fputs(usage, stderr);
                return 2;
        }
        return -1;
}

/* --init-ek-ca DIR: make (or load) the test EK CA, print its certificate's path. */
static int init_ek_ca(const char *dir) {
        int r = ek_ca_ready(dir);
        X509_free(G.ca_cert);
        EVP_PKEY_free(G.ca_key);
        if (r < 0) {
                say("cannot create the EK CA in %s: %s", dir, strerror(-r));
                return 2;
        }
        printf("%s/ek-ca.pem\n", dir);
        return 0;
}

static bool fleet_options_valid(const options *o) {
        return G.n_servers > 0 && o->ca && o->ek_ca_dir && o->agents > 0 && o->threads > 0 &&
               o->threads <= LG_MAX_LOOPS && o->sources > 0 && o->sources <= 250 && o->connect_rate > 0 &&
               o->max_pending > 0 && o->backoff_min > 0 && o->backoff_max >= o->backoff_min &&
               o->agents <= UINT_MAX - o->first_agent;
}

/* G.pcrs: what the real log replays to. */
static int replay_log(void) {
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        vc_error err;
        int r = vc_eventlog_parse(G.log, G.log_len, &log, &err);
        if (r == 0)
                r = vc_hasher_new(&h);
        if (r == 0)
                r = vc_eventlog_replay(h, log, &G.pcrs, &err);
        vc_hasher_free(h);
        vc_eventlog_free(log);
        if (r < 0)
                say("%s does not parse and replay: %s", G.o.eventlog, err.msg);
        return r;
}

/* One connection per agent: as many files as the hard limit allows. */
static void raise_file_limit(unsigned agents) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
                if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t) agents + 64)
                        say("warning: the file limit is %llu (hard): at most ~%llu agents can connect",
                            (unsigned long long) rl.rlim_cur, (unsigned long long) rl.rlim_cur - 64);
        }
}

/* Everything a run needs before the first agent starts; says what failed. */
static int fleet_setup(void) {
        options *o = &G.o;
        if (replay_log() < 0)
                return -EINVAL;
        if (o->acked && !(G.acked = fopen(o->acked, "we"))) {
                say("cannot create %s: %s", o->acked, strerror(errno));
                return -errno;
        }
        raise_file_limit(o->agents);
        signal(SIGPIPE, SIG_IGN);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        evthread_use_pthreads();
        if (ek_ca_ready(o->ek_ca_dir) < 0) {
                say("cannot load or create the EK CA in %s", o->ek_ca_dir);
                return -EIO;
        }
        G.tls = SSL_CTX_new(TLS_client_method());
        if (!G.tls || SSL_CTX_set_min_proto_version(G.tls, TLS1_3_VERSION) != 1 ||
            SSL_CTX_load_verify_locations(G.tls, o->ca, NULL) != 1) {
                say("cannot load the verifier CA %s", o->ca);
                return -EIO;
        }
        SSL_CTX_set_verify(G.tls, SSL_VERIFY_PEER, NULL);
        return 0;
}

/* The event loops and the agents on them; agent i starts at i / connect_rate seconds (the
 * ramp-up), on loop i % threads. Then the loops' threads run. */
static int fleet_start(lg_loop *loops, agent *agents) {
        const options *o = &G.o;
        for (unsigned i = 0; i < o->threads; i++) {
                loops[i].index = i;
                loops[i].base = event_base_new();
                RAND_bytes((uint8_t *) &loops[i].rng, sizeof(loops[i].rng));
                loops[i].rng |= 1;
                if (!loops[i].base)
                        return -ENOMEM;
        }
        for (unsigned i = 0; i < o->agents; i++) {
                agent *a = &agents[i];
                a->idx = o->first_agent + i;
                a->server = a->idx % G.n_servers;
                a->l = &loops[i % o->threads];
                a->timer = evtimer_new(a->l->base, timer_cb, a);
                if (!a->timer)
                        return -ENOMEM;
                agent_schedule(a, (uint64_t) i * 1000000u / o->connect_rate);
        }
        for (unsigned i = 0; i < o->threads; i++)
                pthread_create(&loops[i].thread, NULL, loop_main, &loops[i]);
        return 0;
}

static void fleet_stop(lg_loop *loops) {
        atomic_store(&stopping, true);
        for (unsigned i = 0; i < G.o.threads; i++)
                event_base_loopexit(loops[i].base, NULL);
        for (unsigned i = 0; i < G.o.threads; i++)
                pthread_join(loops[i].thread, NULL);
}

/* Everything is freed, so the ASan build's leak check is meaningful. */
static void fleet_free(lg_loop *loops, agent *agents) {
        for (unsigned i = 0; i < G.o.agents; i++) {
                agent *a = &agents[i];
                if (a->bev)
                        bufferevent_free(a->bev);
                a->bev = NULL;
                vf_decoder_done(&a->dec);
                if (a->slow_challenge)
                        vouch__v1__quote_challenge__free_unpacked(a->slow_challenge, NULL);
                event_free(a->timer);
                identity_free(a);
        }
        for (unsigned i = 0; i < G.o.threads; i++)
                event_base_free(loops[i].base);
        free(agents);
        free(loops);
        SSL_CTX_free(G.tls);
        X509_free(G.ca_cert);
        EVP_PKEY_free(G.ca_key);
        libevent_global_shutdown();
}

/* The warm-up and the measurement window, as bench/run reads them. */
typedef struct window {
        unsigned warm_at_start, connected_end;
        double warmup_s, cpu_s;
        uint64_t w0, w1;
} window;

/* Waits until every agent attested (or enrolled) once, or the warm-up timed out. */
static void warm_up(window *w) {
        const options *o = &G.o;
        uint64_t t_start = now_us();
        double last_print = 0;
        while (!interrupted && o->mode != MODE_ENROLL && atomic_load(&warm) < o->agents &&
               (double) (now_us() - t_start) / 1e6 < o->warmup_timeout) {
                sleep_s(0.05);
                double t = (double) (now_us() - t_start) / 1e6;
                if (t - last_print >= 2) {
                        say("warm-up %.0f s: %u connected, %u attested", t, atomic_load(&connected_now), atomic_load(&warm));
                        last_print = t;
                }
        }
        w->warm_at_start = atomic_load(&warm);
        w->warmup_s = (double) (now_us() - t_start) / 1e6;
        if (o->mode != MODE_ENROLL && w->warm_at_start < o->agents)
                say("warm-up timed out after %.0f s: %u of %u agents attested", w->warmup_s, w->warm_at_start, o->agents);
}

/* The window: statistics count from "window-start" to "window-end". */
static void measure(window *w) {
        double cpu0 = cpu_seconds(), last_print = 0;
        w->w0 = now_us();
        atomic_store(&measuring, true);
        printf("window-start warm=%u warmup_s=%.1f\n", w->warm_at_start, w->warmup_s);
        while (!interrupted && (double) (now_us() - w->w0) / 1e6 < G.o.duration) {
                sleep_s(0.05);
                double t = (double) (now_us() - w->w0) / 1e6;
                if (t - last_print >= 5) {
                        unsigned lost = atomic_load(&lost_now);
                        if (lost)
                                say("window %.0f s: %u connected, %u lost their connection and wait to attest "
                                    "again", t, atomic_load(&connected_now), lost);
                        else
                                say("window %.0f s: %u connected", t, atomic_load(&connected_now));
                        last_print = t;
                }
        }
        atomic_store(&measuring, false);
        w->w1 = now_us();
        w->cpu_s = cpu_seconds() - cpu0;
        w->connected_end = atomic_load(&connected_now);
        printf("window-end\n");
}

/* The loops' statistics merged, latencies sorted. */
static void stats_merge(lg_loop *loops, stats *tot) {
        *tot = (stats) {};
        for (unsigned i = 0; i < G.o.threads; i++) {
                stats *s = &loops[i].st;
                tot->ok += s->ok, tot->failed += s->failed, tot->rejected += s->rejected, tot->enrollments += s->enrollments;
                tot->connects += s->connects, tot->disconnects += s->disconnects, tot->untrusted += s->untrusted;
                tot->fail_error += s->fail_error, tot->fail_drop += s->fail_drop, tot->fail_timeout += s->fail_timeout;
                tot->errors_recv += s->errors_recv;
                tot->lost += s->lost, tot->interrupted += s->interrupted, tot->busy += s->busy;
                tot->certs += s->certs, tot->certs_total += s->certs_total, tot->fail_cert += s->fail_cert;
                if (!us_vec_take(&tot->lat, &s->lat) | !us_vec_take(&tot->reattest, &s->reattest))
                        say("out of memory merging the latencies: the percentiles miss some");
        }
        us_vec_sort(&tot->lat);
        us_vec_sort(&tot->reattest);
}

/* --dump PREFIX: one file of native uint32 microseconds per vector (bench/run merges several
 * processes' percentiles from them). */
static int dump_us(const char *suffix, const us_vec *x) {
        char path[4200];
        snprintf(path, sizeof(path), "%s.%s", G.o.dump, suffix);
        FILE *f = fopen(path, "we");
        if (!f) {
                say("cannot create %s: %s", path, strerror(errno));
                return -EIO;
        }
        bool ok = x->n == 0 || fwrite(x->v, sizeof(*x->v), x->n, f) == x->n;
        if (fclose(f) != 0 || !ok) {
                say("cannot write %s", path);
                return -EIO;
        }
        return 0;
}

/* The "result key=value ..." line bench/run parses. never: agents that never attested during
 * the warm-up; unrecovered: agents that lost their connection (failover) and were not attested
 * again by the end. Both are failures. */
static void print_result(const stats *tot, const window *w, uint64_t never, uint64_t unrecovered) {
        const options *o = &G.o;
        double secs = (double) (w->w1 - w->w0) / 1e6;
        uint64_t ops = o->mode == MODE_ENROLL ? tot->enrollments : tot->ok;
        printf("result mode=%s agents=%u connected=%u warm=%u ops=%llu seconds=%.3f ops_per_s=%.2f p50_ms=%.3f "
               "p99_ms=%.3f max_ms=%.3f failed=%llu never_attested=%llu untrusted=%llu errors=%llu drops=%llu "
               "timeouts=%llu rejected_as_expected=%llu reconnects=%llu loadgen_cpu_s=%.3f loadgen_cpu_us_per_op=%.1f "
               "servers=%u lost=%llu interrupted=%llu busy=%llu reattested=%zu unrecovered=%llu reattest_p99_ms=%.1f "
               "reattest_max_ms=%.1f device_key=%d certs=%llu certs_total=%llu cert_failures=%llu\n",
               mode_name(o->mode), o->agents, w->connected_end, w->warm_at_start, (unsigned long long) ops, secs,
               (double) ops / secs, us_vec_ms(&tot->lat, 0.5), us_vec_ms(&tot->lat, 0.99), us_vec_ms(&tot->lat, 1),
               (unsigned long long) (tot->failed + never + unrecovered), (unsigned long long) never,
               (unsigned long long) tot->untrusted, (unsigned long long) tot->fail_error,
               (unsigned long long) tot->fail_drop, (unsigned long long) tot->fail_timeout,
               (unsigned long long) tot->rejected, (unsigned long long) tot->disconnects, w->cpu_s,
               ops ? w->cpu_s * 1e6 / (double) ops : 0.0, G.n_servers, (unsigned long long) tot->lost,
               (unsigned long long) tot->interrupted, (unsigned long long) tot->busy, tot->reattest.n,
               (unsigned long long) unrecovered, us_vec_ms(&tot->reattest, 0.99), us_vec_ms(&tot->reattest, 1),
               o->device_key, (unsigned long long) tot->certs, (unsigned long long) tot->certs_total,
               (unsigned long long) tot->fail_cert);
}

/* --sync: "warm" on stdout, then the window opens when a line (or the end) comes on stdin. */
static void wait_for_start(const window *w) {
        char line[64];
        printf("warm warm=%u warmup_s=%.1f\n", w->warm_at_start, w->warmup_s);
        if (!fgets(line, sizeof(line), stdin))
                say("stdin closed before the start: starting the window now");
}

/* A whole run: the agents, the warm-up, the window, the result. 0 when no attestation failed,
 * 1 when one did, 2 on an error. */
static int run_fleet(void) {
        const options *o = &G.o;
        lg_loop *loops = calloc(o->threads, sizeof(*loops));
        agent *agents = calloc(o->agents, sizeof(*agents));
        if (!loops || !agents || fleet_start(loops, agents) < 0)
                return 2;
        say("%u agents (%s mode) against %u server%s (%s:%u first) on %u loops, %u source addresses", o->agents,
            mode_name(o->mode), G.n_servers, G.n_servers > 1 ? "s" : "", G.server_ip[0], ntohs(G.servers[0].sin_port),
            o->threads, o->sources);
        window w = {};
        warm_up(&w);
        if (o->sync_start)
                wait_for_start(&w);
        measure(&w);
        fleet_stop(loops);

        stats tot;
        stats_merge(loops, &tot);
        uint64_t never = o->mode != MODE_ENROLL && w.warm_at_start < o->agents ? o->agents - w.warm_at_start : 0;
        uint64_t unrecovered = 0;
        for (unsigned i = 0; i < o->agents; i++)
                if (agents[i].t_lost)
                        unrecovered++;
        print_result(&tot, &w, never, unrecovered);
        int r = tot.failed + never + unrecovered ? 1 : 0;
        if (o->dump && (dump_us("lat", &tot.lat) < 0 || dump_us("reattest", &tot.reattest) < 0))
                r = 2;
        free(tot.lat.v);
        free(tot.reattest.v);
        fleet_free(loops, agents);
        return r;
}

int main(int argc, char **argv) {
        const char *init_dir;
        bool floor_mode;
        int r = parse_options(argc, argv, &init_dir, &floor_mode);
        if (r >= 0)
                return r;
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (init_dir)
                return init_ek_ca(init_dir);
        r = vu_read_file(AT_FDCWD, G.o.eventlog, VC_EVENTLOG_MAX_SIZE, &G.log, &G.log_len);
        if (r < 0) {
                say("cannot read the event log %s: %s", G.o.eventlog, strerror(-r));
                return 2;
        }
        if (floor_mode)
                r = run_floor(G.o.duration > 0 && G.o.duration < 30 ? G.o.duration : 3);
        else if (!fleet_options_valid(&G.o)) {
                fputs(usage, stderr);
                r = 2;
        } else
                r = fleet_setup() < 0 ? 2 : run_fleet();
        free(G.log);
        if (G.acked && fclose(G.acked) != 0) {
                say("cannot write %s: %s", G.o.acked, strerror(errno));
                return 2;
        }
        return r;
}
