/* SPDX-License-Identifier: Apache-2.0 */
/* A vouchd in the test process, driven without sockets or a TPM: libvouchd with a fresh
 * state dir and SQLite store in a temp dir, one event loop run by hand, the fake clock
 * (clock.h), and one software device (a quotebuilder AK, a logbuilder boot log and a golden
 * set made from it) speaking the agent protocol to a session through an in-memory
 * connection. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logbuilder.h"
#include "quotebuilder.h"
#include "vouch.pb-c.h"
#include "vouchd.h"

#define SFX_WALL 1800000000 /* 2027-01-15 */
#define SFX_MONO 1000

/* The in-memory connection: what the session wrote, and what it asked of it. */
typedef struct fconn {
        uint8_t *out;
        size_t len, read;       /* bytes written; bytes taken by sfx_next */
        unsigned timeout;
        bool stopped, flushing, freed;
        int fail_writes;        /* the next writes fail (-EIO) */
} fconn;

typedef struct sfx {
        char dir[64];
        vouchd d;
        loop *l;
        /* the device */
        qb_key key;
        logbuilder b;
        uint8_t ek_pub[600], ak_pub[600];
        size_t ek_len, ak_len;
        char id[VS_ID_MAX + 1];
        uint64_t clock;
        uint32_t reset, restart;
        fconn conns[16];        /* the connections made (sessions may outlive a test's frame) */
        size_t n_conns;
        /* sfx_setup_shared: a store several instances share (PostgreSQL), and this one's name */
        const char *url, *instance;
        /* called by sfx_answer on each QuoteAnswer before it is sent (NULL: none), with the
         * challenge's nonce: adds the device key's fields (issue 19), for one */
        void (*answer_hook)(struct sfx *f, Vouch__V1__QuoteAnswer *a, const uint8_t *nonce);
        void *hook_data;
} sfx;

/* enroll: the device is known (enrolled and approved) before vouchd loads the store. */
void sfx_setup(sfx *f, bool enroll);
/* The same on the store at url (a postgresql:// one, created when absent), opened as
 * instance (vs_open_ex), as vouchd does with a shared store (d->shared). */
void sfx_setup_shared(sfx *f, bool enroll, const char *url, const char *instance);
/* golden/NAME.json from the device's boot log (as golden/dev.json is), and the golden sets
 * loaded again. */
void sfx_add_golden(sfx *f, const char *name);
/* Drains the store and the loop, then frees everything (the fake clock stays on). */
void sfx_teardown(sfx *f);
/* Stops and frees vouchd, then loads it again from the same state dir and store, as a
 * restart would (clean: the store was closed). */
void sfx_restart(sfx *f);

/* Commits what is queued and runs the loop until nothing is pending. */
void sfx_pump(sfx *f);
/* A new session on a new in-memory connection (*ret_conn, owned by f). */
struct session *sfx_connect(sfx *f, fconn **ret_conn);
void sfx_send(struct session *s, const Vouch__V1__AgentMessage *m);
void sfx_send_raw(struct session *s, const void *frame, size_t len);
/* The next message the session sent (the caller frees it), NULL when there is none. */
Vouch__V1__VerifierMessage *sfx_next(fconn *c);
/* The device's Hello. */
void sfx_hello(sfx *f, struct session *s);
/* Answers a challenge: a quote over nonce by the device's AK of the PCRs its boot log
 * replays to, with the whole log, the device's clock moved on by a minute. */
void sfx_answer(sfx *f, struct session *s, const Vouch__V1__QuoteChallenge *c, const uint8_t *nonce);
/* Hello, Welcome, the challenge answered, the verdict stored and sent: its status. */
int sfx_attest(sfx *f, struct session *s, fconn *c);
/* The verdict inside a VerdictNotice (the caller frees it). */
Vouch__V1__Verdict *sfx_verdict_of(const Vouch__V1__VerifierMessage *m);
device *sfx_device(sfx *f);
