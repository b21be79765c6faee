/* SPDX-License-Identifier: Apache-2.0 */
/* A vouchd in the test process, driven without sockets or a TPM: libvouchd with a fresh
 * state dir and SQLite store in a temp dir (or a shared PostgreSQL store: sfx_setup_shared), one event loop run by hand, the fake clock
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
        /* the store: SQLite in the temp dir (url NULL), or the shared one at url (PostgreSQL:
         * vouchd.shared, leases with the heartbeat run by hand, lease_heartbeat_tick) opened
         * as this instance */
        const char *url;
        char instance[VS_INSTANCE_MAX + 1];
        /* called by sfx_answer on each QuoteAnswer before it is sent (NULL: none), with the
         * challenge's nonce: adds the device key's fields (issue 19), for one */
        void (*answer_hook)(struct sfx *f, Vouch__V1__QuoteAnswer *a, const uint8_t *nonce);
        void *hook_data;
} sfx;

/* The PostgreSQL store's URL when the test runs under test/pg/pg-harness.sh
 * (VOUCH_TEST_STORE_URL), else NULL: SQLite. */
const char *sfx_pg_url(void);

/* enroll: the device is known (enrolled and approved) before vouchd loads the store. */
void sfx_setup(sfx *f, bool enroll);
/* The same on the shared store at url (a postgresql:// one; the string must outlive f),
 * opened as instance (vs_open_ex), as vouchd does with a shared store (d->shared): device
 * leases (lease.h) with the heartbeat started and run by hand (lease_state.manual: the test
 * calls lease_heartbeat_tick as the fake clock moves on). fresh_store: the database is
 * emptied first, else this vouchd joins the store as it is (a second instance: its own
 * state dir, golden set and device; the store's devices and verdicts loaded). */
void sfx_setup_shared(sfx *f, bool enroll, const char *url, const char *instance, bool fresh_store);
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
