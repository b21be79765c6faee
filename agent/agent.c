/* SPDX-License-Identifier: Apache-2.0 */
/* vouch-agent: proves with the device's TPM that it booted what it should. Connects out to
 * vouchd over TLS 1.3 (pinning the verifier's CA), enrolls its attestation key once (kept in
 * the state dir), and answers every challenge with a quote, the PCR values and the new part
 * of the event log. Runs in the foreground; --once attests once and exits 0 TRUSTED,
 * 1 UNTRUSTED or refused, 2 error. With each quote it proves that its device identity key
 * (issue 19: an ECC key made once in the TPM, kept in the state dir) is in the same TPM as
 * its AK (TPM2_Certify by the AK), writes that key as a TSS2 PRIVATE KEY file for OpenSSL's
 * tpm2 provider (--key-out) and the certificate chain the verifier issues for it with a
 * TRUSTED verdict (--cert-out).
 *
 * The TPM is opened for each operation (the start, a credential challenge, a quote
 * challenge) and closed right after it: between rounds the agent holds no TPM connection and
 * no TPM object, so other users of the TPM (a TPM without a resource manager serves one
 * client at a time; the kernel's resource manager keeps objects per open file) are not
 * blocked or charged for an agent that spends nearly all its life waiting. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include "certify.h"
#include "ekcert.h"
#include "fileio.h"
#include "frame.h"
#include "keyfile.h"
#include "notify.h"
#include "protocol.h"
#include "tpm.h"
#include "tpmkey.h"
#include "vouch.pb-c.h"
#include "vulog.h"
#include "wire.h"

#define EVENTLOG_MAX (32u << 20)

typedef struct opts {
        const char *server, *ca, *tcti, *eventlog, *state_dir, *verdict_out;
        const char *ek_cert;    /* --ek-cert FILE: the EK certificate from provisioning (PEM or DER) */
        const char *key_out;    /* --key-out PATH: the device key as a TSS2 PRIVATE KEY file */
        const char *cert_out;   /* --cert-out PATH: its certificate chain (PEM), when issued */
        bool once;
        va_ek_type ek_type;
} opts;

/* What the agent keeps between rounds, read from the TPM once at the start: the EK (public
 * area, certificate, chain) for Hello and the AK blobs (also in the state dir) to load the
 * AK again under the EK for each round. */
typedef struct keys {
        va_ek ek;
        uint32_t manufacturer;  /* TPM2_PT_MANUFACTURER */
        int cert_source;        /* Vouch__V1__EkCertSource of ek.cert */
        TPM2B_PUBLIC ak_public;
        TPM2B_PRIVATE ak_private;
        bool has_devkey;        /* the device identity key (its blobs also in the state dir) */
        TPM2B_PUBLIC devkey_public;
        TPM2B_PRIVATE devkey_private;
        bool stale;             /* the TPM no longer takes them: read them again */
} keys;

static volatile sig_atomic_t stop;

/* Renewal of the device certificate (--cert-out): when three quarters of the certificate's
 * life have passed and no new one came with a verdict (vouchd normally challenges before:
 * every interval, or at two thirds of a shorter certificate's life), the agent connects
 * again, which gets it attested (and its certificate renewed) at once. 0: not armed. */
static int64_t cert_renew_at;           /* CLOCK_MONOTONIC seconds */
static int64_t cert_not_after;          /* the certificate's notAfter, Unix seconds */
static bool cert_renew_due;             /* wait_readable gave up the connection for it */

static int64_t mono_seconds(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (int64_t) t.tv_sec;
}

/* The log: the programs' one format (common/vulog.h), text or JSON lines (--log-format). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vu_logv(LOG_INFO, fmt, ap);
        va_end(ap);
}

/* ---- files ---- */

static int write_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        char tmp[4200];
        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, getpid());
        /* a file of that name left by a crash keeps its mode under O_TRUNC: made anew */
        (void) unlink(tmp);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        const uint8_t *p = data;
        size_t left = len;
        while (left) {
                ssize_t k = write(fd, p, left);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        close(fd);
                        unlink(tmp);
                        return -EIO;
                }
                p += k;
                left -= (size_t) k;
        }
        if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
                unlink(tmp);
                return -EIO;
        }
        return 0;
}

/* ---- TLS ---- */

typedef struct conn {
        int fd;
        SSL_CTX *ctx;
        SSL *ssl;
        vf_decoder dec;         /* the verifier's frames */
        uint8_t in[16384];      /* read from TLS, not yet fed to dec: in[in_pos..in_len) */
        size_t in_pos, in_len;
} conn;

static void conn_close(conn *c) {
        if (c->ssl) {
                SSL_shutdown(c->ssl);
                SSL_free(c->ssl);
        }
        if (c->fd >= 0)
                close(c->fd);
        SSL_CTX_free(c->ctx);
        vf_decoder_done(&c->dec);
        memset(c, 0, sizeof(*c));
        c->fd = -1;
}

static int conn_open(const opts *o, conn *c) {
        char host[256], *port;
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
        memset(c, 0, sizeof(*c));
        c->fd = -1;
        vf_decoder_init(&c->dec, VA_MAX_VERIFIER_FRAME);
        snprintf(host, sizeof(host), "%s", o->server);
        port = strrchr(host, ':');
        if (!port) {
                say("--server %s: expected HOST:PORT", o->server);
                return -EINVAL;
        }
        *port++ = 0;
        if (host[0] == '[') {
                memmove(host, host + 1, strlen(host));
                host[strcspn(host, "]")] = 0;
        }
        int r = getaddrinfo(host, port, &hints, &ai);
        if (r != 0) {
                say("cannot resolve %s: %s", host, gai_strerror(r));
                return -EHOSTUNREACH;
        }
        for (struct addrinfo *a = ai; a; a = a->ai_next) {
                c->fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
                if (c->fd >= 0 && connect(c->fd, a->ai_addr, a->ai_addrlen) == 0)
                        break;
                if (c->fd >= 0)
                        close(c->fd);
                c->fd = -1;
        }
        freeaddrinfo(ai);
        if (c->fd < 0) {
                say("cannot connect to %s: %s", o->server, strerror(errno));
                return -ECONNREFUSED;
        }
        /* A blocked read or write gives up after 120 s. Waiting for the next challenge has no
         * limit (the verifier's interval can be a day: see wait_readable); a verifier that
         * went away is found by TCP keepalive, probing after 60 s of silence. */
        struct timeval tv = { 120, 0 };
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        int one = 1, idle = 60, intvl = 15, cnt = 4;
        setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
        c->ctx = SSL_CTX_new(TLS_client_method());
        if (!c->ctx)
                return -ENOMEM;
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION);
        /* pin the verifier's CA: only it is trusted */
        if (SSL_CTX_load_verify_locations(c->ctx, o->ca, NULL) != 1) {
                say("cannot load the verifier CA %s", o->ca);
                return -EINVAL;
        }
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        c->ssl = SSL_new(c->ctx);
        if (!c->ssl)
                return -ENOMEM;
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) {
                X509_VERIFY_PARAM_set1_host(vp, host, 0);
                SSL_set_tlsext_host_name(c->ssl, host);
        }
        SSL_set_fd(c->ssl, c->fd);
        if (SSL_connect(c->ssl) != 1) {
                char buf[256];
                ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
                say("TLS with %s failed: %s", o->server, buf);
                return -EPROTO;
        }
        return 0;
}

static int conn_write(conn *c, const uint8_t *b, size_t n) {
        return SSL_write(c->ssl, b, (int) n) == (int) n ? 0 : -EIO;
}

static int send_msg(conn *c, const Vouch__V1__AgentMessage *m) {
        uint8_t *b;
        size_t n;
        int r = va_frame(m, &b, &n);
        if (r < 0)
                return r;
        r = conn_write(c, b, n);
        free(b);
        return r;
}

/* Waits until the connection has something to read, checking for SIGTERM/SIGINT every
 * second (a signal that arrives just before a blocking read would not interrupt it).
 * Returns 0, or -EINTR when the agent is asked to stop. */
static int wait_readable(conn *c) {
        while (!stop) {
                if (SSL_pending(c->ssl) > 0)
                        return 0;
                if (cert_renew_at && mono_seconds() >= cert_renew_at) {
                        cert_renew_at = 0;
                        cert_renew_due = true;
                        return -ETIME;
                }
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                int k = poll(&p, 1, 1000);
                if (k > 0)
                        return 0;
                if (k < 0 && errno != EINTR)
                        return -errno;
        }
        return -EINTR;
}

/* The next message from the verifier (proto/frame.h's decoder over what TLS delivers), or
 * NULL when the connection ends, the agent is asked to stop, or the frame is over the limit or
 * not a VerifierMessage. */
static Vouch__V1__VerifierMessage *recv_msg(conn *c) {
        for (;;) {
                if (c->in_pos == c->in_len) {
                        if (wait_readable(c) < 0)
                                return NULL;
                        int k = SSL_read(c->ssl, c->in, (int) sizeof(c->in));
                        if (k <= 0)
                                return NULL;
                        c->in_pos = 0;
                        c->in_len = (size_t) k;
                }
                uint8_t *frame;
                size_t n;
                long used = vf_decoder_feed(&c->dec, c->in + c->in_pos, c->in_len - c->in_pos, &frame, &n);
                if (used < 0) {
                        if (used == -E2BIG)
                                say("the verifier sent a frame over the limit of %u bytes", VA_MAX_VERIFIER_FRAME);
                        return NULL;
                }
                c->in_pos += (size_t) used;
                if (!frame)
                        continue;
                Vouch__V1__VerifierMessage *m = vouch__v1__verifier_message__unpack(NULL, n, frame);
                free(frame);
                if (!m)
                        say("the verifier sent a message that does not parse");
                return m;
        }
}

/* ---- the AK, kept in the state dir ---- */

static int ak_ready(va_tpm *t, const opts *o, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *ret_priv, vc_error *err) {
        char ppub[4200], ppriv[4200];
        uint8_t *b = NULL;
        size_t n = 0, off = 0;
        TPM2B_PRIVATE priv = { 0 };
        snprintf(ppub, sizeof(ppub), "%s/ak.pub", o->state_dir);
        snprintf(ppriv, sizeof(ppriv), "%s/ak.priv", o->state_dir);
        if (vu_read_file(AT_FDCWD, ppub, 65536, &b, &n) == 0 &&
            Tss2_MU_TPM2B_PUBLIC_Unmarshal(b, n, &off, pub) == TSS2_RC_SUCCESS) {
                free(b);
                b = NULL;
                off = 0;
                if (vu_read_file(AT_FDCWD, ppriv, 65536, &b, &n) == 0 &&
                    Tss2_MU_TPM2B_PRIVATE_Unmarshal(b, n, &off, &priv) == TSS2_RC_SUCCESS &&
                    va_tpm_ak_load(t, pub, &priv, err) == 0) {
                        free(b);
                        *ret_priv = priv;
                        return 0;
                }
                say("the saved AK does not load (%s): creating a new one", err->msg);
        }
        free(b);
        int r = va_tpm_ak_create(t, VA_AK_RSA_2048, pub, &priv, err);
        if (r < 0)
                return r;
        uint8_t buf[sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE)];
        off = 0;
        Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off);
        if (write_atomic(ppub, buf, off, 0644) < 0)
                return vc_error_set(err, -EIO, SIZE_MAX, -1, "cannot write %s", ppub);
        off = 0;
        Tss2_MU_TPM2B_PRIVATE_Marshal(&priv, buf, sizeof(buf), &off);
        if (write_atomic(ppriv, buf, off, 0600) < 0)
                return vc_error_set(err, -EIO, SIZE_MAX, -1, "cannot write %s", ppriv);
        say("created a new attestation key (%s)", ppub);
        *ret_priv = priv;
        return 0;
}

/* ---- the device identity key (issue 19), kept in the state dir ---- */

static int read_blobs(const char *ppub, const char *ppriv, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv) {
        uint8_t *b = NULL;
        size_t n = 0, off = 0;
        int r = vu_read_file(AT_FDCWD, ppub, 65536, &b, &n);
        if (r < 0)
                return r;
        *pub = (TPM2B_PUBLIC) { 0 };
        r = Tss2_MU_TPM2B_PUBLIC_Unmarshal(b, n, &off, pub) == TSS2_RC_SUCCESS && off == n ? 0 : -EBADMSG;
        free(b);
        if (r < 0)
                return r;
        b = NULL;
        off = 0;
        r = vu_read_file(AT_FDCWD, ppriv, 65536, &b, &n);
        if (r < 0)
                return r;
        *priv = (TPM2B_PRIVATE) { 0 };
        r = Tss2_MU_TPM2B_PRIVATE_Unmarshal(b, n, &off, priv) == TSS2_RC_SUCCESS && off == n ? 0 : -EBADMSG;
        OPENSSL_clear_free(b, n);
        return r;
}

/* The device key from the state dir (devkey.pub, devkey.priv) when the TPM still takes it,
 * else a new one made and saved there. It stays in the TPM: only the blobs, which this TPM
 * alone can load, are kept. */
static int devkey_ready(va_tpm *t, const opts *o, TPM2B_PUBLIC *ret_pub, TPM2B_PRIVATE *ret_priv, vc_error *err) {
        char ppub[4200], ppriv[4200];
        TPM2B_PUBLIC pub;
        TPM2B_PRIVATE priv;
        uint8_t buf[sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE)];
        size_t off = 0;
        int r;

        snprintf(ppub, sizeof(ppub), "%s/devkey.pub", o->state_dir);
        snprintf(ppriv, sizeof(ppriv), "%s/devkey.priv", o->state_dir);
        r = read_blobs(ppub, ppriv, &pub, &priv);
        if (r == 0) {
                r = va_tpm_devkey_check(t, &pub, &priv, err);
                if (r == 0) {
                        *ret_pub = pub;
                        *ret_priv = priv;
                        return 0;
                }
                if (r != -EBADMSG)
                        return r;
                say("the saved device key does not load (%s): making a new one", err->msg);
        } else if (r != -ENOENT)
                say("the saved device key in %s cannot be read (%s): making a new one", ppub, strerror(-r));
        r = va_tpm_devkey_create(t, &pub, &priv, err);
        if (r < 0)
                return r;
        /* the private blob first: a public part without it is read as no key at all */
        if (Tss2_MU_TPM2B_PRIVATE_Marshal(&priv, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS ||
            write_atomic(ppriv, buf, off, 0600) < 0)
                r = vc_error_set(err, -EIO, SIZE_MAX, -1, "cannot write %s", ppriv);
        OPENSSL_cleanse(buf, sizeof(buf));
        off = 0;
        if (r >= 0 && (Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS ||
                       write_atomic(ppub, buf, off, 0644) < 0))
                r = vc_error_set(err, -EIO, SIZE_MAX, -1, "cannot write %s", ppub);
        if (r < 0)
                return r;
        say("created a new device identity key (%s)", ppub);
        *ret_pub = pub;
        *ret_priv = priv;
        return 0;
}

/* --key-out: the device key as a TSS2 PRIVATE KEY file (0600), replaced atomically. */
static int write_key_out(const opts *o, const keys *k, vc_error *err) {
        char *pem = NULL;
        size_t len = 0;
        int r = va_tss2_key_pem(&k->devkey_public, &k->devkey_private, VA_DEVKEY_PARENT, &pem, &len);
        if (r < 0)
                return vc_error_set(err, r, SIZE_MAX, -1, "--key-out %s: cannot encode the key: %s", o->key_out,
                                    strerror(-r));
        r = write_atomic(o->key_out, pem, len, 0600);
        OPENSSL_clear_free(pem, len);
        if (r < 0)
                return vc_error_set(err, r, SIZE_MAX, -1, "--key-out %s: cannot write it", o->key_out);
        return 0;
}

/* --ek-cert FILE replaces what NV has (provisioning knows better, e.g. a certificate its
 * maker serves online for a firmware TPM); otherwise NV's, or none. */
static int ek_cert_choose(const opts *o, keys *k, vc_error *err) {
        char mf[12];
        vc_tpm_manufacturer_name(k->manufacturer, mf);
        if (!o->ek_cert) {
                k->cert_source = k->ek.cert_len ? VOUCH__V1__EK_CERT_SOURCE__EK_CERT_SOURCE_NV
                                                : VOUCH__V1__EK_CERT_SOURCE__EK_CERT_SOURCE_NONE;
                if (!k->ek.cert_len)
                        say("the TPM (manufacturer %s) has no EK certificate in NV: the verifier must fetch it from the "
                            "maker, take --ek-cert FILE, or know the EK key", mf);
                return 0;
        }
        uint8_t *buf;
        size_t n;
        int r = vu_read_file(AT_FDCWD, o->ek_cert, VA_EK_CERT_MAX, &buf, &n);
        if (r == -EFBIG)
                return vc_error_set(err, -E2BIG, SIZE_MAX, -1, "--ek-cert %s: too large", o->ek_cert);
        if (r < 0)
                return vc_error_set(err, r, SIZE_MAX, -1, "--ek-cert %s: %s", o->ek_cert, strerror(-r));
        /* DER as it is, or the first PEM certificate */
        const unsigned char *p = buf;
        X509 *x = d2i_X509(NULL, &p, (long) n);
        if (!x) {
                BIO *b = BIO_new_mem_buf(buf, (int) n);
                x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
                BIO_free(b);
        }
        free(buf);
        unsigned char *der = NULL;
        int dn = x ? i2d_X509(x, &der) : -1;
        X509_free(x);
        if (dn <= 0)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "--ek-cert %s: not a DER or PEM certificate", o->ek_cert);
        free(k->ek.cert);
        k->ek.cert = malloc((size_t) dn);
        if (!k->ek.cert) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(k->ek.cert, der, (size_t) dn);
        k->ek.cert_len = (size_t) dn;
        OPENSSL_free(der);
        k->cert_source = VOUCH__V1__EK_CERT_SOURCE__EK_CERT_SOURCE_FILE;
        return 0;
}

static void keys_clear(keys *k) {
        va_ek_clear(&k->ek);
        explicit_bzero(k, sizeof(*k));
}

/* At the start (and when the TPM stopped taking the keys): the EK with its certificate, the
 * AK loaded from the state dir or created; then the TPM is closed again. */
static int keys_read(const opts *o, keys *k, vc_error *err) {
        va_tpm *t = NULL;
        keys n = { 0 };
        int r = va_tpm_open(o->tcti, &t, err);
        if (r >= 0)
                r = va_tpm_ek(t, o->ek_type, &n.ek, err);
        if (r >= 0)
                r = va_tpm_manufacturer(t, &n.manufacturer, err);
        if (r >= 0)
                r = ak_ready(t, o, &n.ak_public, &n.ak_private, err);
        if (r >= 0) {
                /* Without the device key the agent still attests (vouchd then issues no
                 * certificate), unless --key-out asks for the key. */
                vc_error derr;
                int d = devkey_ready(t, o, &n.devkey_public, &n.devkey_private, &derr);
                n.has_devkey = d >= 0;
                if (d < 0 && o->key_out) {
                        *err = derr;
                        r = d;
                } else if (d < 0)
                        say("no device identity key (%s): attesting without one", derr.msg);
        }
        va_tpm_close(t);
        if (r >= 0)
                r = ek_cert_choose(o, &n, err);
        if (r >= 0 && o->key_out)
                r = write_key_out(o, &n, err);
        if (r < 0) {
                keys_clear(&n);
                return r;
        }
        keys_clear(k);
        *k = n;
        return 0;
}

/* For one round: opens the TPM, creates the same EK again and loads the AK under it. The
 * caller closes *ret with va_tpm_close() as soon as the round's TPM commands are done. When
 * the TPM holds another EK, or refuses the AK blobs, k is marked stale. */
static int tpm_round_open(const opts *o, keys *k, va_tpm **ret, vc_error *err) {
        va_tpm *t = NULL;
        int r = va_tpm_open(o->tcti, &t, err);
        if (r >= 0)
                r = va_tpm_ek_reload(t, k->ek.type, &k->ek.public, err);
        if (r >= 0)
                r = va_tpm_ak_load(t, &k->ak_public, &k->ak_private, err);
        if (r < 0) {
                if (r == -ESTALE || r == -EBADMSG)
                        k->stale = true;
                va_tpm_close(t);
                return r;
        }
        *ret = t;
        return 0;
}

/* Tells the verifier why this round ends without an answer (it logs the message). */
static void send_error(conn *c, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void send_error(conn *c, int error, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        Vouch__V1__Error e = VOUCH__V1__ERROR__INIT;
        e.code = (uint32_t) (error < 0 ? -error : error);
        e.message = msg;
        Vouch__V1__AgentMessage m = VOUCH__V1__AGENT_MESSAGE__INIT;
        m.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_ERROR;
        m.error = &e;
        (void) send_msg(c, &m);
}

/* ---- one connection ---- */

enum { RUN_TRUSTED = 0, RUN_UNTRUSTED = 1, RUN_ERROR = 2, RUN_RETRY = 3, RUN_RENEW = 4 };

/* The quote's PCR values, bank by bank, as the answer carries them. */
static int answer_pcrs(const vc_pcr_set *pcrs, va_answer_pcrs *ret) {
        va_answer_pcrs_init(ret);
        for (uint32_t b = 0; b < pcrs->n_banks; b++) {
                const vc_pcr_bank *bank = &pcrs->banks[b];
                int r = va_answer_pcrs_bank(ret, bank->alg);
                for (unsigned p = 0; r >= 0 && p < VC_PCR_COUNT; p++)
                        if (bank->mask & (1u << p))
                                r = va_answer_pcrs_value(ret, p, bank->values[p], bank->size);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* TPM2_Certify of the device key by the AK over SHA-256("vouch device key certify" ||
 * nonce) (vc_certify_qualifying_data(): the quote has the nonce itself), for the answer.
 * On failure the quote goes without it (vouchd then issues no certificate); a TPM that no
 * longer takes the key's blobs makes the keys stale (read again, a new key made). */
static int devkey_certify(va_tpm *t, keys *k, const opts *o, const Vouch__V1__QuoteChallenge *ch, va_quote *ret) {
        uint8_t qd[VC_CERTIFY_QUALIFYING_SIZE];
        vc_error err;
        int r = vc_certify_qualifying_data(ch->nonce.data, ch->nonce.len, qd);
        if (r < 0) {
                say("device key: cannot derive the qualifying data: %s", strerror(-r));
                return r;
        }
        r = va_tpm_devkey_certify(t, &k->devkey_public, &k->devkey_private, qd, sizeof(qd), ret, &err);
        if (r < 0) {
                say("TPM (%s): %s: the quote goes without the device key", o->tcti, err.msg);
                if (r == -EBADMSG)
                        k->stale = true;
        }
        return r;
}

static int answer_challenge(conn *c, keys *k, const opts *o, const Vouch__V1__QuoteChallenge *ch) {
        TPML_PCR_SELECTION sel;
        va_answer_pcrs answer_banks;
        va_tpm *t = NULL;
        vc_error err;
        va_quote q, cq;
        vc_pcr_set pcrs;
        uint8_t *log = NULL;
        size_t log_len = 0;
        int r;
        if (va_challenge_selection(ch, &sel) < 0) {
                say("the challenge is malformed");
                send_error(c, EBADMSG, "the challenge is malformed");
                return -EBADMSG;
        }
        if ((r = vu_read_file(AT_FDCWD, o->eventlog, EVENTLOG_MAX, &log, &log_len)) < 0) {
                say("cannot read the event log %s: %s", o->eventlog, strerror(-r));
                send_error(c, r, "the agent cannot read its event log: %s", strerror(-r));
                return r;
        }
        /* from where the verifier's copy ends; past the end of this log it is another boot's
         * (this one's log is shorter): the whole log */
        size_t from = va_eventlog_from(ch->eventlog_offset, log_len);
        /* the TPM is open for this round only; quote first, then read the PCRs: the verifier
         * checks they agree */
        if ((r = tpm_round_open(o, k, &t, &err)) < 0 ||
            (r = va_tpm_quote(t, &sel, ch->nonce.data, ch->nonce.len, &q, &err)) < 0 ||
            (r = va_tpm_pcr_read(t, &sel, &pcrs, &err)) < 0) {
                say("TPM (%s): %s", o->tcti, err.msg);
                send_error(c, r, "the agent's TPM failed: %s", err.msg);
                va_tpm_close(t);
                free(log);
                return r;
        }
        bool certified = k->has_devkey && devkey_certify(t, k, o, ch, &cq) >= 0;
        t = va_tpm_close(t);
        if ((r = answer_pcrs(&pcrs, &answer_banks)) < 0) {
                say("the TPM read more PCR banks than the challenge selects");
                send_error(c, r, "the agent read more PCR banks than selected");
                free(log);
                return r;
        }
        Vouch__V1__QuoteAnswer a = VOUCH__V1__QUOTE_ANSWER__INIT;
        a.nonce = ch->nonce;
        a.attest.data = q.attest;
        a.attest.len = q.attest_len;
        a.signature.data = q.sig;
        a.signature.len = q.sig_len;
        va_answer_pcrs_put(&answer_banks, &a);
        uint8_t dkb[sizeof(TPMT_PUBLIC)];
        size_t dkl = 0;
        if (certified &&
            Tss2_MU_TPMT_PUBLIC_Marshal(&k->devkey_public.publicArea, dkb, sizeof(dkb), &dkl) == TSS2_RC_SUCCESS) {
                a.device_key_public = (ProtobufCBinaryData) { .len = dkl, .data = dkb };
                a.device_key_certify = (ProtobufCBinaryData) { .len = cq.attest_len, .data = cq.attest };
                a.device_key_signature = (ProtobufCBinaryData) { .len = cq.sig_len, .data = cq.sig };
        }
        a.eventlog_offset = from;
        a.eventlog.data = log + from;
        a.eventlog.len = log_len - from;
        Vouch__V1__AgentMessage m = VOUCH__V1__AGENT_MESSAGE__INIT;
        m.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_QUOTE;
        m.quote = &a;
        r = send_msg(c, &m);
        free(log);
        return r;
}

/* The device key's certificate chain that came with a TRUSTED verdict, as PEM (the device's
 * certificate first) for --cert-out: only when there are at most VW_MAX_DEVICE_CERTIFICATES,
 * each is one DER certificate, and the first is for this agent's device key (a chain for
 * another key would not work with --key-out). */
static int device_chain_pem(const keys *k, const Vouch__V1__VerdictNotice *vn, char **ret, size_t *ret_len,
                            int64_t *ret_not_after, char *info, size_t info_size) {
        EVP_PKEY *mine = NULL;
        BIO *bio = NULL;
        vc_error err;
        int r = -EBADMSG;

        if (!k->has_devkey) {
                snprintf(info, info_size, "this agent has no device key");
                return -ENOKEY;
        }
        if (vn->n_device_certificates > VW_MAX_DEVICE_CERTIFICATES) {
                snprintf(info, info_size, "%zu certificates (limit %u)", vn->n_device_certificates,
                         VW_MAX_DEVICE_CERTIFICATES);
                return -E2BIG;
        }
        if (vc_tpm_public_key(&k->devkey_public.publicArea, "device key", &mine, &err) < 0 ||
            !(bio = BIO_new(BIO_s_mem()))) {
                EVP_PKEY_free(mine);
                return -ENOMEM;
        }
        for (size_t i = 0; i < vn->n_device_certificates; i++) {
                const ProtobufCBinaryData *d = &vn->device_certificates[i];
                const unsigned char *p = d->data;
                X509 *x = d->len <= LONG_MAX ? d2i_X509(NULL, &p, (long) d->len) : NULL;
                bool whole = x && p == d->data + d->len;
                if (!whole) {
                        snprintf(info, info_size, "certificate %zu is not one DER certificate", i);
                        X509_free(x);
                        goto out;
                }
                if (i == 0 && EVP_PKEY_eq(X509_get0_pubkey(x), mine) != 1) {
                        snprintf(info, info_size, "the first certificate is not for this device key");
                        X509_free(x);
                        goto out;
                }
                if (i == 0) {
                        char subject[256] = "";
                        X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
                        struct tm na = { 0 };
                        ASN1_TIME_to_tm(X509_get0_notAfter(x), &na);
                        *ret_not_after = (int64_t) timegm(&na);
                        snprintf(info, info_size, "%s, valid until %04d-%02d-%02dT%02d:%02d:%02dZ, %zu in the chain",
                                 subject, na.tm_year + 1900, na.tm_mon + 1, na.tm_mday, na.tm_hour, na.tm_min,
                                 na.tm_sec, vn->n_device_certificates);
                }
                int ok = PEM_write_bio_X509(bio, x);
                X509_free(x);
                if (ok != 1) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        char *mem;
        long n = BIO_get_mem_data(bio, &mem);
        r = -ENOMEM;
        if (n > 0 && (*ret = malloc((size_t) n))) {
                memcpy(*ret, mem, (size_t) n);
                *ret_len = (size_t) n;
                r = 0;
        }
out:
        BIO_free(bio);
        EVP_PKEY_free(mine);
        return r;
}

static void on_device_certificates(const opts *o, const keys *k, const Vouch__V1__VerdictNotice *vn) {
        char info[512] = "", *pem = NULL;
        size_t len = 0;
        int64_t not_after = 0;
        int r = device_chain_pem(k, vn, &pem, &len, &not_after, info, sizeof(info));
        if (r < 0) {
                say("the verifier's device certificate is not used: %s", info);
                return;
        }
        if (!o->cert_out)
                say("device certificate: %s (no --cert-out to write it to)", info);
        else if (write_atomic(o->cert_out, pem, len, 0644) < 0)
                say("cannot write %s", o->cert_out);
        else {
                say("device certificate: %s: written to %s", info, o->cert_out);
                int64_t left = not_after - (int64_t) time(NULL);
                cert_not_after = not_after;
                cert_renew_at = !o->once && left > 0 ? mono_seconds() + (left * 3 / 4 > 1 ? left * 3 / 4 : 1) : 0;
        }
        free(pem);
}

static int on_verdict(const opts *o, const keys *k, const Vouch__V1__VerdictNotice *vn) {
        if (!vn->verdict)
                return RUN_ERROR;
        Vouch__V1__Verdict *v = vouch__v1__verdict__unpack(NULL, vn->verdict->verdict.len, vn->verdict->verdict.data);
        if (!v) {
                say("the verdict does not parse");
                return RUN_ERROR;
        }
        bool trusted = v->status == VOUCH__V1__TRUST_STATUS__TRUSTED;
        printf("verdict: %s (device %s, sequence %llu, golden %s version %lld)\n", trusted ? "TRUSTED" : "UNTRUSTED",
               v->device_id, (unsigned long long) v->sequence, v->golden_name, (long long) v->golden_version);
        for (size_t i = 0; i < v->n_findings; i++)
                printf("  [%s] %s\n", v->findings[i]->rule, v->findings[i]->explanation);
        fflush(stdout);
        vu_notify("STATUS=%s (sequence %llu, golden %s version %lld)", trusted ? "TRUSTED" : "UNTRUSTED",
                  (unsigned long long) v->sequence, v->golden_name, (long long) v->golden_version);
        if (o->verdict_out) {
                /* the passport: the signed verdict, for other services on the device */
                size_t n = vouch__v1__signed_verdict__get_packed_size(vn->verdict);
                uint8_t *b = malloc(n);
                if (b) {
                        vouch__v1__signed_verdict__pack(vn->verdict, b);
                        if (write_atomic(o->verdict_out, b, n, 0644) < 0)
                                say("cannot write %s", o->verdict_out);
                        free(b);
                }
        }
        /* a certificate comes only with a TRUSTED verdict (for no longer than it) */
        if (trusted && vn->n_device_certificates > 0)
                on_device_certificates(o, k, vn);
        vouch__v1__verdict__free_unpacked(v, NULL);
        return trusted ? RUN_TRUSTED : RUN_UNTRUSTED;
}

/* Hello: who this agent is (its EK, with the certificate and chain) and the AK it proposes. */
static int send_hello(conn *c, const keys *k) {
        const va_ek *ek = &k->ek;
        uint8_t ekb[sizeof(TPM2B_PUBLIC)], akb[sizeof(TPM2B_PUBLIC)];
        size_t ekl = 0, akl = 0;
        Tss2_MU_TPM2B_PUBLIC_Marshal(&ek->public, ekb, sizeof(ekb), &ekl);
        Tss2_MU_TPM2B_PUBLIC_Marshal(&k->ak_public, akb, sizeof(akb), &akl);
        char hostname[256] = "";
        gethostname(hostname, sizeof(hostname) - 1);
        Vouch__V1__Hello h = VOUCH__V1__HELLO__INIT;
        h.protocol_version = VOUCH__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1;
        h.agent_version = VOUCH_VERSION;
        h.ek_public.data = ekb;
        h.ek_public.len = ekl;
        h.ek_certificate.data = ek->cert;
        h.ek_certificate.len = ek->cert_len;
        h.ek_cert_source = k->cert_source;
        h.tpm_manufacturer = k->manufacturer;
        ProtobufCBinaryData inter[VA_EK_CHAIN_MAX];
        for (size_t i = 0; i < ek->n_chain; i++)
                inter[i] = (ProtobufCBinaryData) { .len = ek->chain_len[i], .data = ek->chain[i] };
        h.ek_intermediates = inter;
        h.n_ek_intermediates = ek->n_chain;
        h.ak_public.data = akb;
        h.ak_public.len = akl;
        h.hostname = hostname;
        Vouch__V1__AgentMessage m = VOUCH__V1__AGENT_MESSAGE__INIT;
        m.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_HELLO;
        m.hello = &h;
        return send_msg(c, &m);
}

/* Enrollment: TPM2_ActivateCredential on the verifier's credential challenge, and the secret
 * it recovers back to the verifier. */
static int answer_activate(conn *c, keys *k, const opts *o, const Vouch__V1__ActivateChallenge *ac) {
        TPM2B_ID_OBJECT blob;
        TPM2B_ENCRYPTED_SECRET sec;
        TPM2B_DIGEST out = { 0 };
        va_tpm *t = NULL;
        vc_error err;
        uint8_t *b;
        size_t n;
        if (va_activate_challenge_parse(ac, &blob, &sec) < 0) {
                say("the credential challenge is malformed");
                return -EBADMSG;
        }
        say("enrolling: answering the credential challenge");
        int r = tpm_round_open(o, k, &t, &err);
        if (r >= 0)
                r = va_tpm_activate(t, &blob, &sec, &out, &err);
        va_tpm_close(t);
        if (r < 0) {
                say("TPM (%s): %s", o->tcti, err.msg);
                send_error(c, r, "the agent's TPM failed: %s", err.msg);
                return r;
        }
        r = va_frame_activate_answer(out.buffer, out.size, &b, &n);
        OPENSSL_cleanse(out.buffer, sizeof(out.buffer));
        if (r >= 0) {
                (void) conn_write(c, b, n); /* a failed write shows as the connection lost at the next read */
                OPENSSL_cleanse(b, n);
                free(b);
        }
        return 0;
}

/* One connection: Hello, then whatever the verifier asks until it closes, an error, or (with
 * --once) the first verdict. *ret_verdicts counts the verdicts received. */
static int run_once_connected(keys *k, const opts *o, unsigned *ret_verdicts) {
        conn c;
        int r = conn_open(o, &c), result = RUN_RETRY;
        *ret_verdicts = 0;
        if (r < 0) {
                conn_close(&c);
                return RUN_RETRY;
        }
        if (send_hello(&c, k) < 0) {
                conn_close(&c);
                return RUN_RETRY;
        }
        while (!stop) {
                Vouch__V1__VerifierMessage *vm = recv_msg(&c);
                if (!vm && cert_renew_due) {
                        char t[32];
                        struct tm tm;
                        time_t na = (time_t) cert_not_after;
                        gmtime_r(&na, &tm);
                        strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
                        say("device certificate: valid until %s and no new one came: connecting again to be attested "
                            "for a new one", t);
                        cert_renew_due = false;
                        result = RUN_RENEW;
                        break;
                }
                if (!vm) {
                        if (!stop)
                                say("connection to %s lost", o->server);
                        break;
                }
                switch (vm->msg_case) {
                case VOUCH__V1__VERIFIER_MESSAGE__MSG_ACTIVATE:
                        if (answer_activate(&c, k, o, vm->activate) < 0)
                                result = RUN_ERROR;
                        break;
                case VOUCH__V1__VERIFIER_MESSAGE__MSG_WELCOME:
                        say("enrolled as device %s with verifier %.16s", vm->welcome->device_id, vm->welcome->verifier_id);
                        break;
                case VOUCH__V1__VERIFIER_MESSAGE__MSG_CHALLENGE:
                        if (answer_challenge(&c, k, o, vm->challenge) < 0)
                                result = RUN_ERROR;
                        break;
                case VOUCH__V1__VERIFIER_MESSAGE__MSG_VERDICT:
                        result = on_verdict(o, k, vm->verdict);
                        if (result != RUN_ERROR)
                                (*ret_verdicts)++;
                        break;
                case VOUCH__V1__VERIFIER_MESSAGE__MSG_ERROR:
                        say("the verifier refused: %s", vm->error->message ? vm->error->message : "");
                        result = RUN_UNTRUSTED;
                        break;
                default:
                        say("unexpected message %d", (int) vm->msg_case);
                        result = RUN_ERROR;
                }
                bool done = vm->msg_case == VOUCH__V1__VERIFIER_MESSAGE__MSG_ERROR || result == RUN_ERROR ||
                            (o->once && vm->msg_case == VOUCH__V1__VERIFIER_MESSAGE__MSG_VERDICT);
                vouch__v1__verifier_message__free_unpacked(vm, NULL);
                if (done)
                        break;
                if (result == RUN_TRUSTED || result == RUN_UNTRUSTED)
                        result = RUN_RETRY; /* keep serving challenges */
        }
        conn_close(&c);
        return result;
}

static void on_signal(int sig) {
        (void) sig;
        stop = 1;
}

static const char usage[] =
        "Usage: vouch-agent --server HOST:PORT --ca FILE [--tcti TCTI] [--eventlog FILE] --state-dir DIR\n"
        "                   [--once] [--verdict-out PATH] [--ek rsa|ecc|auto] [--ek-cert FILE]\n"
        "                   [--key-out PATH] [--cert-out PATH]\n"
        "  --server HOST:PORT  the verifier (vouchd)\n"
        "  --ca FILE           the verifier's CA certificate (vouchd init prints its path): pinned\n"
        "  --tcti TCTI         TPM access (default device:/dev/tpmrm0; tests: swtpm:host=127.0.0.1,port=N);\n"
        "                      opened for each round and closed between rounds\n"
        "  --eventlog FILE     default /sys/kernel/security/tpm0/binary_bios_measurements\n"
        "  --state-dir DIR     keeps the attestation key (ak.pub, ak.priv), so restarts do not re-enroll,\n"
        "                      and the device identity key (devkey.pub, devkey.priv)\n"
        "  --once              attest once and exit: 0 TRUSTED, 1 UNTRUSTED or refused, 2 error\n"
        "  --verdict-out PATH  write each signed verdict there (atomically) for other services\n"
        "  --ek-cert FILE      the EK certificate (PEM or DER) to send instead of NV's: for a TPM\n"
        "                      with none in NV (firmware TPMs), e.g. fetched by provisioning\n"
        "  --key-out PATH      write the device identity key there (mode 0600, atomically) as a\n"
        "                      TSS2 PRIVATE KEY file for OpenSSL's tpm2 provider (tpm2-openssl)\n"
        "  --cert-out PATH     write the certificate chain the verifier issues for that key with a\n"
        "                      TRUSTED verdict there (PEM, atomically), replacing it on renewal\n"
        "  --log-format FORMAT text (default) or json (one JSON object per line)\n"
        "  --version           print \"vouch-agent VERSION\" and exit\n";

int main(int argc, char **argv) {
        static const struct option lo[] = {
                { "server", required_argument, NULL, 's' },  { "ca", required_argument, NULL, 'c' },
                { "tcti", required_argument, NULL, 't' },    { "eventlog", required_argument, NULL, 'e' },
                { "state-dir", required_argument, NULL, 'd' }, { "once", no_argument, NULL, '1' },
                { "verdict-out", required_argument, NULL, 'v' }, { "ek", required_argument, NULL, 'k' },
                { "ek-cert", required_argument, NULL, 'E' }, { "log-format", required_argument, NULL, 'L' },
                { "key-out", required_argument, NULL, 'K' }, { "cert-out", required_argument, NULL, 'C' },
                { "version", no_argument, NULL, 'V' },       { "help", no_argument, NULL, 'h' },
                {},
        };
        opts o = { .tcti = "device:/dev/tpmrm0", .eventlog = "/sys/kernel/security/tpm0/binary_bios_measurements",
                   .ek_type = VA_EK_AUTO };
        int ch;
        vu_log_format lf = VU_LOG_TEXT;
        while ((ch = getopt_long(argc, argv, "h", lo, NULL)) >= 0) {
                switch (ch) {
                case 's': o.server = optarg; break;
                case 'c': o.ca = optarg; break;
                case 't': o.tcti = optarg; break;
                case 'e': o.eventlog = optarg; break;
                case 'd': o.state_dir = optarg; break;
                case '1': o.once = true; break;
                case 'v': o.verdict_out = optarg; break;
                case 'E': o.ek_cert = optarg; break;
                case 'K': o.key_out = optarg; break;
                case 'C': o.cert_out = optarg; break;
                case 'L':
                        if (vu_log_format_parse(optarg, &lf) < 0) {
                                fprintf(stderr, "vouch-agent: --log-format: \"%s\" is not text or json\n", optarg);
                                return 2;
                        }
                        break;
                case 'k':
                        o.ek_type = strcmp(optarg, "rsa") == 0   ? VA_EK_RSA_2048
                                    : strcmp(optarg, "ecc") == 0 ? VA_EK_ECC
                                                                 : VA_EK_AUTO;
                        break;
                case 'V': puts("vouch-agent " VOUCH_VERSION); return 0;
                case 'h': fputs(usage, stdout); return 0;
                default: fputs(usage, stderr); return 2;
                }
        }
        if (!o.server || !o.ca || !o.state_dir || optind != argc) {
                fputs(usage, stderr);
                return 2;
        }
        vu_log_setup("vouch-agent", lf);
        if (mkdir(o.state_dir, 0700) < 0 && errno != EEXIST) {
                say("cannot create %s: %s", o.state_dir, strerror(errno));
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);

        keys k = { 0 };
        vc_error err;
        if (keys_read(&o, &k, &err) < 0) {
                say("TPM (%s): %s", o.tcti, err.msg);
                return 2;
        }
        /* systemd (Type=notify): ready once the TPM's keys are read, not at the first verdict, so
         * that a verifier out of reach does not fail the agent's start (it reconnects) */
        vu_notify("READY=1\nSTATUS=attesting to %s", o.server);
        unsigned backoff = 1;
        int result = RUN_ERROR;
        while (!stop) {
                unsigned verdicts = 0;
                if (k.stale) {
                        /* another EK, or the AK no longer loads: read them again (a new AK
                         * is enrolled on the next connection) */
                        say("the TPM no longer takes the keys read at the start: reading them again");
                        if (keys_read(&o, &k, &err) < 0) {
                                say("TPM (%s): %s", o.tcti, err.msg);
                                result = RUN_ERROR;
                                if (o.once)
                                        break;
                                k.stale = true;
                                goto wait;
                        }
                }
                result = run_once_connected(&k, &o, &verdicts);
                if (o.once) {
                        if (result == RUN_RETRY || stop)
                                result = RUN_ERROR;
                        break;
                }
                if (stop)
                        break;
                if (verdicts > 0)
                        backoff = 1;
                if (result == RUN_RENEW)
                        continue; /* at once: the certificate is running out */
        wait:;
                /* reconnect with exponential backoff and jitter, so a fleet does not stampede */
                uint32_t rnd = 0;
                RAND_bytes((uint8_t *) &rnd, sizeof(rnd));
                unsigned wait = backoff + rnd % (backoff + 1);
                say("reconnecting in %u s", wait);
                vu_notify("STATUS=reconnecting to %s in %u s", o.server, wait);
                for (unsigned i = 0; i < wait && !stop; i++)
                        sleep(1);
                backoff = backoff < 60 ? backoff * 2 : 60;
        }
        vu_notify("STOPPING=1");
        keys_clear(&k);
        if (!o.once && stop) {
                say("stopped by a signal");
                return 0;
        }
        return result == RUN_TRUSTED ? 0 : result == RUN_UNTRUSTED ? 1 : 2;
}
