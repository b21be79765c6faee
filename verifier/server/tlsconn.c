/* SPDX-License-Identifier: Apache-2.0 */
/* A TLS connection on a libevent loop (see tlsconn.h for why not a bufferevent). */
#include "tlsconn.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tconn {
        evutil_socket_t fd;
        SSL *ssl;
        struct event *rev, *wev, *tev;  /* in the same allocation, after this struct */
        uint8_t *out;                   /* plaintext the socket has not taken: out[off, len) */
        size_t out_off, out_len, out_cap, max_out;
        tconn_data_fn on_data;
        tconn_event_fn on_event;
        void *arg;
        unsigned depth;                 /* this connection's callbacks running */
        bool reading;
        bool wev_armed;
        bool read_wants_write;          /* SSL_read (handshake) waits for the socket to take bytes:
                                         * the read event is off meanwhile (level-triggered, it
                                         * would fire again and again for bytes not yet readable) */
        bool established;               /* the handshake completed (writes allowed from then on) */
        bool flush_notify;              /* FLUSHED is wanted once out is empty */
        bool failed;                    /* a write failed: ERROR to be delivered from the loop */
        bool done;                      /* EOF, ERROR or FLUSHED delivered: nothing more */
        bool doomed;                    /* freed inside a callback: free on the way out */
        char detail[200];
};

/* One TLS record's plaintext at most (16 KiB); per thread, as every loop runs in one. */
static _Thread_local uint8_t scratch[16384];

static size_t align16(size_t n) {
        return (n + 15) & ~(size_t) 15;
}

static void stop_events(tconn *c);

static void release(tconn *c) {
        stop_events(c);
        SSL_free(c->ssl);
        evutil_closesocket(c->fd);
        free(c->out);
        free(c);
}

static void leave(tconn *c) {
        if (--c->depth == 0 && c->doomed)
                release(c);
}

static void stop_events(tconn *c) {
        event_del(c->rev);
        event_del(c->wev);
        event_del(c->tev);
        c->wev_armed = false;
        c->reading = false;
}

/* Delivers a final event: nothing is delivered after it. */
static void finish(tconn *c, int what, const char *detail) {
        if (c->done || c->doomed)
                return;
        c->done = true;
        stop_events(c);
        c->on_event(what, detail, c->arg);
}

static void arm_write(tconn *c) {
        if (!c->wev_armed && event_add(c->wev, NULL) == 0)
                c->wev_armed = true;
}

static void disarm_write(tconn *c) {
        if (c->wev_armed) {
                event_del(c->wev);
                c->wev_armed = false;
        }
}

/* The cause of a failed SSL call, as EOF or ERROR with a detail. */
static int classify(tconn *c, int ret, int err) {
        int saved = errno;
        unsigned long e = ERR_peek_error();
        errno = saved;
        if (err == SSL_ERROR_ZERO_RETURN) {
                snprintf(c->detail, sizeof(c->detail), "closed by the peer");
                return TCONN_EOF;
        }
        if (err == SSL_ERROR_SYSCALL && !e) {
                if (ret == 0 || errno == 0 || errno == EPIPE || errno == ECONNRESET) {
                        snprintf(c->detail, sizeof(c->detail), "closed by the peer%s%s", errno ? ": " : "",
                                 errno ? strerror(errno) : "");
                        return TCONN_EOF;
                }
                snprintf(c->detail, sizeof(c->detail), "%s", strerror(errno));
                return TCONN_ERROR;
        }
        if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                snprintf(c->detail, sizeof(c->detail), "closed by the peer without a TLS close_notify");
                return TCONN_EOF;
        }
        if (e)
                ERR_error_string_n(e, c->detail, sizeof(c->detail));
        else
                snprintf(c->detail, sizeof(c->detail), "TLS error %d", err);
        return TCONN_ERROR;
}

/* classify() with the thread's OpenSSL error queue emptied afterwards: other OpenSSL work
 * on this loop (signatures, certificate checks) must not find this connection's errors. */
static int classify_clear(tconn *c, int ret, int err) {
        int what = classify(c, ret, err);
        ERR_clear_error();
        return what;
}

/* A write that cannot go on (an error, or SSL_write asking to read, which TLS 1.3 without
 * renegotiation does not do once established): ERROR is delivered from the loop. */
static void fail_write(tconn *c) {
        c->failed = true;
        event_active(c->wev, EV_WRITE, 0);
}

/* Writes out[off, len) as far as the socket takes it. False when the connection failed
 * (ERROR is delivered later, from the loop). */
static bool flush(tconn *c) {
        while (c->out_off < c->out_len) {
                size_t n = c->out_len - c->out_off;
                ERR_clear_error();
                int w = SSL_write(c->ssl, c->out + c->out_off, n > INT_MAX ? INT_MAX : (int) n);
                if (w > 0) {
                        c->out_off += (size_t) w;
                        continue;
                }
                int err = SSL_get_error(c->ssl, w);
                if (err == SSL_ERROR_WANT_WRITE) {
                        arm_write(c);
                        return true;
                }
                if (err == SSL_ERROR_WANT_READ)
                        snprintf(c->detail, sizeof(c->detail), "TLS wants to read while writing");
                else if (classify_clear(c, w, err) == TCONN_EOF)
                        snprintf(c->detail, sizeof(c->detail), "closed by the peer while writing");
                fail_write(c);
                return false;
        }
        /* all written: an idle connection holds no buffer */
        free(c->out);
        c->out = NULL;
        c->out_off = c->out_len = c->out_cap = 0;
        return true;
}

static void handle_read(tconn *c) {
        while (c->reading && !c->done && !c->doomed) {
                ERR_clear_error();
                int n = SSL_read(c->ssl, scratch, sizeof(scratch));
                if (n <= 0) {
                        int err = SSL_get_error(c->ssl, n);
                        if (err == SSL_ERROR_WANT_READ)
                                break; /* the read event is level-triggered and stays armed */
                        if (err == SSL_ERROR_WANT_WRITE) {
                                c->read_wants_write = true;
                                event_del(c->rev);
                                arm_write(c);
                                break;
                        }
                        int what = classify_clear(c, n, err);
                        finish(c, what, c->detail);
                        return;
                }
                c->on_data(scratch, (size_t) n, c->arg);
                /* what OpenSSL has not buffered is still in the socket, and the read event
                 * fires again for it: no read() that can only say EAGAIN */
                if (!SSL_has_pending(c->ssl))
                        break;
        }
}

static void read_cb(evutil_socket_t fd, short what, void *arg) {
        tconn *c = arg;
        c->depth++;
        handle_read(c);
        leave(c);
}

static void write_cb(evutil_socket_t fd, short what, void *arg) {
        tconn *c = arg;
        c->depth++;
        if (c->failed) {
                finish(c, TCONN_ERROR, c->detail);
                goto out;
        }
        if (c->read_wants_write) {
                c->read_wants_write = false;
                if (c->reading)
                        event_add(c->rev, NULL);
                handle_read(c);
                if (c->done || c->doomed)
                        goto out;
        }
        if (c->out_len && !flush(c))
                goto out;
        if (!c->out_len && !c->read_wants_write)
                disarm_write(c);
        if (!c->out_len && c->flush_notify)
                finish(c, TCONN_FLUSHED, "");
out:
        leave(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
        tconn *c = arg;
        c->depth++;
        if (!c->done && !c->doomed)
                c->on_event(TCONN_TIMEOUT, "deadline passed", c->arg);
        leave(c);
}

tconn *tconn_new(struct event_base *base, evutil_socket_t fd, SSL *ssl, size_t max_out, tconn_data_fn on_data,
                 tconn_event_fn on_event, void *arg) {
        size_t head = align16(sizeof(tconn)), ev = align16(event_get_struct_event_size());
        tconn *c = calloc(1, head + 3 * ev);
        if (!c || SSL_set_fd(ssl, (int) fd) != 1) {
                free(c);
                SSL_free(ssl);
                evutil_closesocket(fd);
                return NULL;
        }
        c->fd = fd;
        c->ssl = ssl;
        c->max_out = max_out;
        c->on_data = on_data;
        c->on_event = on_event;
        c->arg = arg;
        c->rev = (struct event *) ((uint8_t *) c + head);
        c->wev = (struct event *) ((uint8_t *) c + head + ev);
        c->tev = (struct event *) ((uint8_t *) c + head + 2 * ev);
        SSL_set_accept_state(ssl);
        SSL_set_read_ahead(ssl, 1);
        SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        if (event_assign(c->rev, base, fd, EV_READ | EV_PERSIST, read_cb, c) < 0 ||
            event_assign(c->wev, base, fd, EV_WRITE | EV_PERSIST, write_cb, c) < 0 ||
            event_assign(c->tev, base, -1, 0, timer_cb, c) < 0 || event_add(c->rev, NULL) < 0) {
                release(c);
                return NULL;
        }
        c->reading = true;
        return c;
}

void tconn_free(tconn *c) {
        if (!c)
                return;
        if (c->depth) {
                stop_events(c);
                c->doomed = true;
                return;
        }
        release(c);
}

static int queue(tconn *c, const uint8_t *p, size_t n) {
        size_t have = c->out_len - c->out_off;
        if (have + n > c->max_out)
                return -ENOBUFS;
        if (c->out_off && c->out_len + n > c->out_cap) {
                memmove(c->out, c->out + c->out_off, have); /* allowed: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER */
                c->out_off = 0;
                c->out_len = have;
        }
        if (c->out_len + n > c->out_cap) {
                size_t cap = c->out_cap ? c->out_cap : 4096;
                while (cap < c->out_len + n)
                        cap *= 2;
                if (cap > c->max_out && c->out_len + n <= c->max_out)
                        cap = c->max_out; /* max_out bounds the allocation too */
                uint8_t *b = realloc(c->out, cap);
                if (!b)
                        return -ENOMEM;
                c->out = b;
                c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, p, n);
        c->out_len += n;
        return 0;
}

int tconn_write(tconn *c, const void *data, size_t len) {
        const uint8_t *p = data;
        if (c->done || c->doomed || c->failed)
                return -EIO;
        if (!c->established) {
                if (!SSL_is_init_finished(c->ssl))
                        return -EIO;
                c->established = true; /* post-handshake messages later are SSL_write's business */
        }
        if (c->out_len > c->out_off)
                return queue(c, p, len);
        size_t off = 0;
        while (off < len) {
                size_t n = len - off;
                ERR_clear_error();
                int w = SSL_write(c->ssl, p + off, n > INT_MAX ? INT_MAX : (int) n);
                if (w > 0) {
                        off += (size_t) w;
                        continue;
                }
                int err = SSL_get_error(c->ssl, w);
                if (err == SSL_ERROR_WANT_WRITE) {
                        int r = queue(c, p + off, len - off);
                        if (r < 0) {
                                /* part of the message (or of a record) may be out: the stream
                                 * cannot carry anything else now */
                                snprintf(c->detail, sizeof(c->detail), "%s", r == -ENOBUFS
                                                ? "the peer does not read: output over the limit"
                                                : "out of memory queueing output");
                                fail_write(c);
                                return r;
                        }
                        arm_write(c);
                        return 0;
                }
                if (err == SSL_ERROR_WANT_READ)
                        snprintf(c->detail, sizeof(c->detail), "TLS wants to read while writing");
                else
                        classify_clear(c, w, err);
                fail_write(c);
                return -EIO;
        }
        return 0;
}

void tconn_set_timeout(tconn *c, unsigned secs) {
        if (c->done || c->doomed)
                return;
        if (secs) {
                struct timeval tv = { (time_t) secs, 0 };
                event_add(c->tev, &tv);
        } else {
                event_del(c->tev);
        }
}

void tconn_stop_reading(tconn *c) {
        if (c->reading) {
                c->reading = false;
                event_del(c->rev);
        }
}

void tconn_close_after_flush(tconn *c) {
        if (c->done || c->doomed)
                return;
        c->flush_notify = true;
        if (c->out_len > c->out_off)
                arm_write(c);
        else
                event_active(c->wev, EV_WRITE, 0);
}

size_t tconn_pending(const tconn *c) {
        return c->out_len - c->out_off;
}
