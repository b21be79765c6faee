/* SPDX-License-Identifier: Apache-2.0 */
/* A TLS connection on a libevent loop, for the agent channel: the socket stays armed for
 * reading (level-triggered, persistent) and writes go out at once with SSL_write; the
 * write event is armed only when the socket is full (or the handshake or a read needs
 * it). Records are read ahead: one read() takes what the socket has, and the loop stops
 * when OpenSSL holds no more bytes. Compared with libevent's OpenSSL bufferevent this
 * makes no epoll_ctl per message, no separate read of each 5-byte record header and no
 * copy through an evbuffer. */
#pragma once

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tconn tconn;

enum {
        TCONN_EOF = 1 << 0,     /* the peer closed (cleanly or not) */
        TCONN_ERROR = 1 << 1,   /* TLS or socket error; detail says which */
        TCONN_TIMEOUT = 1 << 2, /* the deadline set with tconn_set_timeout passed */
        TCONN_FLUSHED = 1 << 3, /* after tconn_close_after_flush: everything was written */
};

/* Plaintext received; called as it arrives, in pieces of any size. */
typedef void (*tconn_data_fn)(const uint8_t *data, size_t len, void *arg);
/* One of TCONN_*; detail is a human-readable cause ("" when none). After EOF, ERROR or
 * FLUSHED nothing more is delivered; the owner frees the connection. */
typedef void (*tconn_event_fn)(int what, const char *detail, void *arg);

/* Takes fd (non-blocking, accepted) and ssl (server side, not started): both are freed
 * with the connection, or here when NULL is returned. max_out caps the bytes queued for a
 * peer that does not read (a write beyond it fails the connection). */
tconn *tconn_new(struct event_base *base, evutil_socket_t fd, SSL *ssl, size_t max_out, tconn_data_fn on_data,
                 tconn_event_fn on_event, void *arg);
/* Closes the socket and frees everything; safe inside the connection's own callbacks. */
void tconn_free(tconn *c);
/* Sends len bytes (copying only what the socket does not take now). 0, or -EIO when the
 * connection has failed or is not usable yet (the handshake is not done), -ENOBUFS past
 * max_out (part may have been sent: close the connection); a failure found while sending
 * is also reported through on_event (ERROR), from the loop. */
int tconn_write(tconn *c, const void *data, size_t len);
/* A deadline secs from now (0 removes it): on_event(TIMEOUT) if it passes. */
void tconn_set_timeout(tconn *c, unsigned secs);
/* No more on_data: bytes that arrive are left unread. */
void tconn_stop_reading(tconn *c);
/* on_event(FLUSHED) once everything queued is written (from the loop, never from within
 * this call). */
void tconn_close_after_flush(tconn *c);
/* Bytes queued and not yet taken by the socket. */
size_t tconn_pending(const tconn *c);
