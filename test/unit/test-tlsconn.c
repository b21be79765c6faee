/* SPDX-License-Identifier: Apache-2.0 */
/* vouchd's TLS connection (verifier/server/tlsconn.c) against an OpenSSL client in a
 * thread over a socketpair: records read ahead are all delivered, writes the socket does
 * not take are queued and flushed, the queue is capped, EOF / errors / deadlines are
 * reported, and the connection may be freed from its own callbacks. */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "tlsconn.h"

static SSL_CTX *server_ctx, *client_ctx, *big_server_ctx;

/* a self-signed P-256 certificate, made here (the client does not verify it); with pad > 0
 * it carries a private extension of pad bytes, for a handshake flight bigger than a small
 * socket buffer */
static SSL_CTX *make_server_ctx(size_t pad) {
        EVP_PKEY *key = EVP_EC_gen("P-256");
        X509 *crt = X509_new();
        assert_non_null(key);
        assert_non_null(crt);
        ASN1_INTEGER_set(X509_get_serialNumber(crt), 1);
        X509_gmtime_adj(X509_getm_notBefore(crt), 0);
        X509_gmtime_adj(X509_getm_notAfter(crt), 3600);
        X509_set_pubkey(crt, key);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(crt), "CN", MBSTRING_ASC, (const unsigned char *) "t", -1, -1, 0);
        X509_set_issuer_name(crt, X509_get_subject_name(crt));
        if (pad) {
                ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
                uint8_t *junk = calloc(1, pad);
                ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
                ASN1_OCTET_STRING_set(os, junk, (int) pad);
                X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os);
                assert_non_null(ext);
                assert_int_equal(X509_add_ext(crt, ext, -1), 1);
                X509_EXTENSION_free(ext);
                ASN1_OBJECT_free(oid);
                ASN1_OCTET_STRING_free(os);
                free(junk);
        }
        assert_true(X509_sign(crt, key, EVP_sha256()) > 0);
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
        assert_int_equal(SSL_CTX_use_certificate(ctx, crt), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        X509_free(crt);
        EVP_PKEY_free(key);
        return ctx;
}

static int setup_ctx(void **state) {
        server_ctx = make_server_ctx(0);
        big_server_ctx = make_server_ctx(200000);
        client_ctx = SSL_CTX_new(TLS_client_method());
        return 0;
}

static int teardown_ctx(void **state) {
        SSL_CTX_free(server_ctx);
        SSL_CTX_free(big_server_ctx);
        SSL_CTX_free(client_ctx);
        return 0;
}

/* ---- the client, in its own thread, with blocking I/O ---- */

typedef enum cmode {
        C_RECORDS,      /* "hi"; once told, a record, a 40 KB write, two records; reads the reply */
        C_SLOW_READER,  /* handshake, send "go", wait for go_read, then read everything */
        C_CLOSE,        /* handshake, then close_notify and close */
        C_ABRUPT,       /* handshake, then close without close_notify */
        C_SILENT,       /* handshake, then nothing until told to stop */
        C_GARBAGE,      /* no TLS at all */
        C_HELLO_NO_READ, /* a ClientHello and a few more bytes, then never reads */
} cmode;

typedef struct client {
        cmode mode;
        int fd;
        pthread_t th;
        sem_t go_read, stop, sent;
        size_t received;        /* bytes read (C_SLOW_READER) */
        bool pattern_ok, eof_seen;
        char reply[16];
} client;

static void *client_main(void *arg) {
        client *c = arg;
        if (c->mode == C_HELLO_NO_READ) {
                /* the ClientHello from a client SSL over memory BIOs, written by hand */
                SSL *cl = SSL_new(client_ctx);
                BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
                SSL_set_bio(cl, in, out);
                SSL_connect(cl); /* WANT_READ: the ClientHello is in out */
                char *hello;
                long n = BIO_get_mem_data(out, &hello);
                (void) !write(c->fd, hello, (size_t) n);
                (void) !write(c->fd, "12345", 5);
                SSL_free(cl);
                sem_wait(&c->stop);
                close(c->fd);
                return NULL;
        }
        if (c->mode == C_GARBAGE) {
                static const char junk[] = "GET / HTTP/1.0\r\n\r\n this is not TLS at all .........";
                (void) !write(c->fd, junk, sizeof(junk));
                sem_wait(&c->stop);
                close(c->fd);
                return NULL;
        }
        SSL *ssl = SSL_new(client_ctx);
        SSL_set_fd(ssl, c->fd);
        if (SSL_connect(ssl) != 1)
                goto out;
        switch (c->mode) {
        case C_RECORDS: {
                static uint8_t big[40000];
                for (size_t i = 0; i < sizeof(big); i++)
                        big[i] = (uint8_t) (i * 7);
                SSL_write(ssl, "hi", 2);
                sem_wait(&c->go_read); /* the server reads nothing until all is written */
                SSL_write(ssl, "aaaa", 4);
                SSL_write(ssl, big, sizeof(big));
                SSL_write(ssl, "bbbbbbbb", 8);
                SSL_write(ssl, "cccccccccccccccc", 16);
                sem_post(&c->sent);
                int n = SSL_read(ssl, c->reply, sizeof(c->reply) - 1);
                if (n > 0)
                        c->reply[n] = 0;
                break;
        }
        case C_SLOW_READER: {
                uint8_t buf[16384];
                SSL_write(ssl, "go", 2);
                sem_wait(&c->go_read);
                c->pattern_ok = true;
                for (;;) {
                        int n = SSL_read(ssl, buf, sizeof(buf));
                        if (n <= 0) {
                                c->eof_seen = true;
                                break;
                        }
                        for (int i = 0; i < n; i++)
                                if (buf[i] != (uint8_t) ((c->received + (size_t) i) % 251))
                                        c->pattern_ok = false;
                        c->received += (size_t) n;
                }
                break;
        }
        case C_CLOSE:
                SSL_shutdown(ssl);
                break;
        case C_ABRUPT:
                break;
        case C_SILENT:
                sem_wait(&c->stop);
                break;
        case C_GARBAGE:
        case C_HELLO_NO_READ:
                break;
        }
out:
        SSL_free(ssl);
        close(c->fd);
        return NULL;
}

/* ---- the server side under test ---- */

typedef struct server {
        struct event_base *base;
        tconn *conn;
        uint8_t got[40100];
        size_t got_len;
        int events;             /* TCONN_* seen */
        char detail[256];
        bool free_in_data;      /* tconn_free from on_data */
        bool reply_when_done;
        int write_rc;           /* of the big write in on_data (slow reader) */
        client *cl;
} server;

static void on_data(const uint8_t *p, size_t n, void *arg) {
        server *s = arg;
        if (s->free_in_data) {
                tconn_free(s->conn);
                s->conn = NULL;
                event_base_loopbreak(s->base);
                return;
        }
        if (s->got_len + n <= sizeof(s->got)) {
                memcpy(s->got + s->got_len, p, n);
        }
        s->got_len += n;
        if (s->reply_when_done && s->got_len == 2 + 4 + 40000 + 8 + 16)
                assert_int_equal(tconn_write(s->conn, "ok", 2), 0);
}

static void on_event(int what, const char *detail, void *arg) {
        server *s = arg;
        s->events |= what;
        snprintf(s->detail, sizeof(s->detail), "%s", detail);
        event_base_loopbreak(s->base);
}

static void watchdog(evutil_socket_t fd, short what, void *arg) {
        fail_msg("the test did not finish in 10 s");
}

static void start_ctx(server *s, client *c, cmode mode, size_t max_out, SSL_CTX *ctx, int sndbuf) {
        int sv[2];
        memset(s, 0, sizeof(*s));
        memset(c, 0, sizeof(*c));
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        assert_int_equal(evutil_make_socket_nonblocking(sv[0]), 0);
        if (sndbuf)
                assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
        s->base = event_base_new();
        s->cl = c;
        s->conn = tconn_new(s->base, sv[0], SSL_new(ctx), max_out, on_data, on_event, s);
        assert_non_null(s->conn);
        c->mode = mode;
        c->fd = sv[1];
        sem_init(&c->go_read, 0, 0);
        sem_init(&c->stop, 0, 0);
        sem_init(&c->sent, 0, 0);
        assert_int_equal(pthread_create(&c->th, NULL, client_main, c), 0);
        struct timeval tv = { 10, 0 };
        event_base_once(s->base, -1, EV_TIMEOUT, watchdog, NULL, &tv);
}

static void start(server *s, client *c, cmode mode, size_t max_out) {
        start_ctx(s, c, mode, max_out, server_ctx, 0);
}

static void finish(server *s, client *c) {
        sem_post(&c->stop);
        sem_post(&c->go_read);
        tconn_free(s->conn); /* closes the socket: a client still reading sees the end */
        s->conn = NULL;
        pthread_join(c->th, NULL);
        event_base_free(s->base);
        sem_destroy(&c->go_read);
        sem_destroy(&c->stop);
        sem_destroy(&c->sent);
}

/* Runs the loop until cond holds (each on_event breaks the loop, so do idle turns). */
#define RUN_UNTIL(s, cond)                                                                     \
        do {                                                                                   \
                for (int _i = 0; _i < 100000 && !(cond); _i++)                                 \
                        event_base_loop((s)->base, EVLOOP_ONCE);                               \
                assert_true(cond);                                                             \
        } while (0)

static void test_records_all_delivered(void **state) {
        server s;
        client c;
        start(&s, &c, C_RECORDS, 1 << 20);
        s.reply_when_done = true;
        RUN_UNTIL(&s, s.got_len == 2);
        sem_post(&c.go_read);
        sem_wait(&c.sent);
        /* all of it sits in the socket now; OpenSSL reads ahead, so the last read() takes
         * the big write's tail and both small records at once: they must come out though
         * the socket is then empty */
        RUN_UNTIL(&s, s.got_len == 2 + 4 + 40000 + 8 + 16);
        assert_memory_equal(s.got, "hiaaaa", 6);
        for (size_t i = 0; i < 40000; i++)
                if (s.got[6 + i] != (uint8_t) (i * 7))
                        fail_msg("byte %zu of the big write differs", i);
        assert_memory_equal(s.got + 6 + 40000, "bbbbbbbbcccccccccccccccc", 24);
        tconn_close_after_flush(s.conn);
        RUN_UNTIL(&s, s.events & TCONN_FLUSHED);
        finish(&s, &c);
        assert_string_equal(c.reply, "ok");
}

static void test_queue_then_flush(void **state) {
        server s;
        client c;
        const size_t total = 1 << 20;
        uint8_t *big = malloc(total);
        for (size_t i = 0; i < total; i++)
                big[i] = (uint8_t) (i % 251);
        start(&s, &c, C_SLOW_READER, 4 << 20);
        RUN_UNTIL(&s, s.got_len == 2);
        /* the client reads nothing yet: the socket takes part, the rest is queued */
        assert_int_equal(tconn_write(s.conn, big, total / 2), 0);
        assert_int_equal(tconn_write(s.conn, big + total / 2, total / 2), 0);
        assert_true(tconn_pending(s.conn) > 0);
        tconn_close_after_flush(s.conn);
        sem_post(&c.go_read);
        RUN_UNTIL(&s, s.events & TCONN_FLUSHED);
        assert_int_equal(tconn_pending(s.conn), 0);
        tconn_free(s.conn); /* closes: the client sees the end */
        s.conn = NULL;
        pthread_join(c.th, NULL);
        assert_int_equal(c.received, total);
        assert_true(c.pattern_ok);
        assert_true(c.eof_seen);
        event_base_free(s.base);
        sem_destroy(&c.go_read);
        sem_destroy(&c.stop);
        sem_destroy(&c.sent);
        free(big);
}

static void test_queue_is_capped(void **state) {
        server s;
        client c;
        const size_t total = 4 << 20;
        uint8_t *big = calloc(1, total);
        start(&s, &c, C_SLOW_READER, 256 << 10);
        RUN_UNTIL(&s, s.got_len == 2);
        /* a peer that does not read cannot make the server hold more than max_out */
        assert_int_equal(tconn_write(s.conn, big, total), -ENOBUFS);
        assert_true(tconn_pending(s.conn) <= (256 << 10));
        finish(&s, &c);
        free(big);
}

static void test_eof_clean_and_abrupt(void **state) {
        server s;
        client c;
        start(&s, &c, C_CLOSE, 1 << 20);
        RUN_UNTIL(&s, s.events);
        assert_int_equal(s.events, TCONN_EOF);
        finish(&s, &c);

        start(&s, &c, C_ABRUPT, 1 << 20);
        RUN_UNTIL(&s, s.events);
        assert_int_equal(s.events, TCONN_EOF);
        assert_non_null(strstr(s.detail, "closed"));
        finish(&s, &c);
}

static void test_not_tls_is_an_error(void **state) {
        server s;
        client c;
        start(&s, &c, C_GARBAGE, 1 << 20);
        RUN_UNTIL(&s, s.events);
        assert_int_equal(s.events, TCONN_ERROR);
        assert_true(strlen(s.detail) > 0);
        /* nothing can be sent before a handshake */
        assert_int_equal(tconn_write(s.conn, "x", 1), -EIO);
        finish(&s, &c);
}

static void test_deadline(void **state) {
        server s;
        client c;
        start(&s, &c, C_SILENT, 1 << 20);
        assert_int_equal(tconn_write(s.conn, "x", 1), -EIO); /* handshake not done */
        tconn_set_timeout(s.conn, 1);
        RUN_UNTIL(&s, s.events);
        assert_int_equal(s.events, TCONN_TIMEOUT);
        /* a removed deadline does not fire */
        s.events = 0;
        tconn_set_timeout(s.conn, 1);
        tconn_set_timeout(s.conn, 0);
        struct timeval tv = { 1, 500000 };
        event_base_loopexit(s.base, &tv);
        event_base_dispatch(s.base);
        assert_int_equal(s.events, 0);
        finish(&s, &c);
}

static void test_free_inside_callback(void **state) {
        server s;
        client c;
        start(&s, &c, C_RECORDS, 1 << 20);
        s.free_in_data = true;
        RUN_UNTIL(&s, s.conn == NULL);
        /* the freed connection's events are gone: the loop runs on without it */
        struct timeval tv = { 0, 200000 };
        event_base_loopexit(s.base, &tv);
        event_base_dispatch(s.base);
        finish(&s, &c);
        assert_int_equal(s.events, 0);
}

/* The handshake cannot write its (large) flight because the client does not read, while
 * bytes the client sent wait in the socket: the level-triggered read event must be off
 * until the socket takes bytes again, or the loop wakes for them without end. */
static void test_handshake_blocked_on_write_does_not_spin(void **state) {
        server s;
        client c;
        start_ctx(&s, &c, C_HELLO_NO_READ, 1 << 20, big_server_ctx, 4096);
        tconn_set_timeout(s.conn, 1);
        unsigned turns = 0;
        while (!s.events && turns < 1000000) {
                event_base_loop(s.base, EVLOOP_ONCE);
                turns++;
        }
        assert_int_equal(s.events, TCONN_TIMEOUT);
        if (turns > 1000)
                fail_msg("the loop woke %u times in the 1 s the handshake was blocked", turns);
        finish(&s, &c);
}

int main(void) {
        signal(SIGPIPE, SIG_IGN); /* as vouchd: a write to a closed peer is an error, not a signal */
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_records_all_delivered), cmocka_unit_test(test_queue_then_flush),
                cmocka_unit_test(test_queue_is_capped),       cmocka_unit_test(test_eof_clean_and_abrupt),
                cmocka_unit_test(test_not_tls_is_an_error),   cmocka_unit_test(test_deadline),
                cmocka_unit_test(test_free_inside_callback),
                cmocka_unit_test(test_handshake_blocked_on_write_does_not_spin),
        };
        return cmocka_run_group_tests(tests, setup_ctx, teardown_ctx);
}
