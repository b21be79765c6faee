/* SPDX-License-Identifier: Apache-2.0 */
/* One event loop per core, and the agent sessions on it (session.c). */
#pragma once

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "golden.h"
#include "hash.h"
#include "registry.h"


typedef struct loop {
        vouchd *d;
        unsigned index;
        struct event_base *base;
        struct evconnlistener *listener;
        /* --accept-rate: this loop's share as a token bucket; while it is empty the listener
         * is off and accept_resume turns it on when the next token is due (vouchd.c) */
        double accept_tokens;
        int64_t accept_refill_us;
        struct event *accept_resume;
        pthread_t thread;
        vc_eval_cache *cache;
        vc_hasher *hasher;              /* this loop's, for the attestations on it */
        atomic_ullong cache_hits, cache_misses;
        struct session *sessions;       /* every session of this loop (for shutdown) */
        /* challenge nonces and schedule jitter, drawn from the DRBG a pool at a time (each
         * RAND_bytes locks the DRBG and checks for a fork); bytes handed out are wiped */
        uint8_t nonce_pool[1024];
        size_t nonce_left;
        /* commits the store's writer thread finished for this loop's sessions, handed back
         * in one wake-up of the loop per batch instead of one event each (session.c) */
        pthread_mutex_t done_lock;
        struct pending *done_head, *done_tail;
        struct event *done_ev;
} loop;

/* The byte stream under a session: the agent's TLS connection (tlsconn.h), or a test's
 * (session_open). conn is passed to each; free is called once, when the session drops it. */
typedef struct session_io {
        int (*write)(void *conn, const void *data, size_t len);        /* tconn_write's contract */
        void (*set_timeout)(void *conn, unsigned secs);                /* 0: none */
        void (*stop_reading)(void *conn);
        void (*close_after_flush)(void *conn);  /* then session_event(TCONN_FLUSHED) */
        void (*free)(void *conn);
} session_io;

/* session.c */
void session_accept(loop *l, evutil_socket_t fd);
/* A session on another connection (unit tests drive the protocol without sockets): NULL
 * when out of memory. The connection delivers what it receives with session_data and its
 * TCONN_* events (tlsconn.h) with session_event. */
struct session *session_open(loop *l, const session_io *io, void *conn, const char *peer);
void session_data(struct session *s, const uint8_t *data, size_t len);
void session_event(struct session *s, int what, const char *detail);
/* Closes the device's session, if any, on its loop (from any thread). */
void session_kick(vouchd *d, device *dev, const char *why);
/* The loop's hand-back of finished commits: after its base exists / after its last run. */
int session_loop_init(loop *l);
void session_loop_fini(loop *l);
/* Frees every session of the loop (after its event loop has stopped). */
void session_free_all(loop *l);
