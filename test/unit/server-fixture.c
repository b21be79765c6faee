/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <tss2/tss2_mu.h>

#include "clock.h"
#include "enroll.h"
#include "eventlog.h"
#include "frame.h"
#include "golden.h"
#include "replay.h"
#include "server-fixture.h"
#include "tls.h"
#include "uefi.h"

/* ---- the in-memory connection ---- */

static int fc_write(void *conn, const void *data, size_t len) {
        fconn *c = conn;
        assert_false(c->freed);
        if (c->fail_writes > 0) {
                c->fail_writes--;
                return -EIO;
        }
        c->out = realloc(c->out, c->len + len);
        assert_non_null(c->out);
        memcpy(c->out + c->len, data, len);
        c->len += len;
        return 0;
}

static void fc_set_timeout(void *conn, unsigned secs) {
        ((fconn *) conn)->timeout = secs;
}

static void fc_stop_reading(void *conn) {
        ((fconn *) conn)->stopped = true;
}

static void fc_close_after_flush(void *conn) {
        ((fconn *) conn)->flushing = true;
}

static void fc_free(void *conn) {
        ((fconn *) conn)->freed = true;
}

static const session_io fc_io = { fc_write, fc_set_timeout, fc_stop_reading, fc_close_after_flush, fc_free };

/* ---- the device ---- */

static size_t marshal_public(const TPMT_PUBLIC *p, uint8_t *buf, size_t cap) {
        TPM2B_PUBLIC pub = { .publicArea = *p };
        size_t off = 0;
        assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, buf, cap, &off), TSS2_RC_SUCCESS);
        return off;
}

/* An RSA EK public area (the key is never used: the device is enrolled beforehand). */
static void make_ek(sfx *f) {
        TPMT_PUBLIC ek = { .type = TPM2_ALG_RSA, .nameAlg = TPM2_ALG_SHA256,
                           .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                               TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
                                               TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT };
        ek.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
        ek.parameters.rsaDetail.symmetric.keyBits.aes = 128;
        ek.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        ek.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        ek.parameters.rsaDetail.keyBits = 2048;
        ek.unique.rsa.size = 256;
        for (int i = 0; i < 256; i++)
                ek.unique.rsa.buffer[i] = (uint8_t) (rand() | 0x80);
        f->ek_len = marshal_public(&ek, f->ek_pub, sizeof(f->ek_pub));
        assert_int_equal(vc_device_id(&ek, f->id), 0);
}

/* golden/NAME.json from the boot log, as `vouchctl golden create` makes it. */
static void write_golden(sfx *f, const char *name) {
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        vc_golden *g = NULL;
        vc_replay r;
        vc_error err;
        char path[128], *json = NULL;
        assert_int_equal(vc_eventlog_parse(f->b.buf, f->b.len, &log, NULL), 0);
        vc_event_check *checks = calloc(log->n_events, sizeof(*checks));
        assert_int_equal(vc_hasher_new(&h), 0);
        vc_replay_init(&r);
        assert_int_equal(vc_replay_update(h, log, &r, checks, NULL), 0);
        assert_int_equal(vc_golden_create(log, checks, &r.pcrs, name, NULL, &g, &err), 0);
        assert_int_equal(vc_golden_to_json(g, &json), 0);
        snprintf(path, sizeof(path), "%s/golden/%s.json", f->dir, name);
        FILE *out = fopen(path, "w");
        assert_non_null(out);
        fputs(json, out);
        assert_int_equal(fclose(out), 0);
        free(json);
        vc_golden_free(g);
        vc_eventlog_free(log);
        free(checks);
        vc_hasher_free(h);
}

/* ---- vouchd ---- */

const char *sfx_pg_url(void) {
        const char *u = getenv("VOUCH_TEST_STORE_URL");
        return u && strncmp(u, "postgres", 8) == 0 ? u : NULL;
}

/* An empty PostgreSQL database. */
static void pg_empty(const char *url) {
        PGconn *c = PQconnectdb(url);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        PGresult *res = PQexec(c, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                fail_msg("emptying the database: %s", PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(c);
}

static void start(sfx *f, bool created) {
        vouchd *d = &f->d;
        char path[128], err[600], state[96];
        vs_open_info info;
        vouchd_init(d);
        snprintf(state, sizeof(state), "%s/state", f->dir);
        d->cfg.state_dir = strdup(state);
        snprintf(path, sizeof(path), "%s/golden", f->dir);
        d->cfg.golden_dir = strdup(path);
        d->cfg.default_golden = strdup("dev");
        d->cfg.interval = 60;
        d->cfg.max_connections = 100;
        d->cfg.threads = 1;
        vlog_level = getenv("SFX_DEBUG") ? LOG_DEBUG : -1;
        assert_int_equal(tls_init_state_dir(state, NULL, 0, created, err, sizeof(err)), 0);
        assert_int_equal(tls_verifier_id(state, d->verifier_id), 0);
        assert_int_equal(vk_load(state, &d->keys), 0);
        assert_int_equal(golden_table_load(d->cfg.golden_dir, &d->golden), 0);
        snprintf(path, sizeof(path), "%s/vouch.db", state);
        if (f->url) {
                vs_open_options opt = { .history_keep = d->cfg.history, .flags = VS_OPEN_CREATE,
                                        .instance = f->instance };
                if (vs_open_ex(f->url, &opt, &d->store, &info, err, sizeof(err)) < 0)
                        fail_msg("store %s as %s: %s", f->url, f->instance, err);
                d->shared = true;
                d->leases.manual = true;
        } else {
                assert_int_equal(vs_open(path, d->cfg.history, created ? VS_OPEN_CREATE : 0, &d->store, &info, err,
                                         sizeof(err)),
                                 0);
        }
        assert_int_equal(registry_load(d), 0);
        assert_int_equal(verdict_load_latest(d), 0);
        assert_int_equal(lease_heartbeat_start(d), 0);
        size_t stale, revoked;
        assert_int_equal(verdict_settle_at_start(d, info.previous_clean, &stale, &revoked), 0);
        d->n_loops = 1;
        d->loops = calloc(1, sizeof(*d->loops));
        f->l = &d->loops[0];
        f->l->d = d;
        f->l->base = event_base_new();
        assert_non_null(f->l->base);
        assert_int_equal(session_loop_init(f->l), 0);
        assert_int_equal(vc_eval_cache_new(64, &f->l->cache), 0);
        assert_int_equal(vc_hasher_new(&f->l->hasher), 0);
}

static void enroll(sfx *f) {
        vouchd *d = &f->d;
        vs_device rec = { .ek_public = f->ek_pub, .ek_public_len = f->ek_len, .ak_public = f->ak_pub,
                          .ak_public_len = f->ak_len, .approved = true, .enrolled_at = SFX_WALL };
        snprintf(rec.id, sizeof(rec.id), "%s", f->id);
        pthread_mutex_lock(&d->lock);
        assert_non_null(registry_add_locked(d, &rec));
        pthread_mutex_unlock(&d->lock);
        assert_int_equal(vs_device_put(d->store, &rec, NULL, NULL), 0);
        vs_flush(d->store);
}

void sfx_setup(sfx *f, bool enrolled) {
        sfx_setup_shared(f, enrolled, NULL, NULL, false);
}

void sfx_setup_shared(sfx *f, bool enrolled, const char *url, const char *instance, bool fresh_store) {
        char path[128];
        *f = (sfx) { .url = url };
        snprintf(f->instance, sizeof(f->instance), "%s", instance ? instance : "");
        if (url && fresh_store)
                pg_empty(url);
        snprintf(f->dir, sizeof(f->dir), "/tmp/vouch-sfx-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(path, sizeof(path), "%s/golden", f->dir);
        assert_int_equal(mkdir(path, 0700), 0);
        vclock_fake(SFX_WALL, SFX_MONO);
        qb_key_new(&f->key);
        f->ak_len = marshal_public(&f->key.pub, f->ak_pub, sizeof(f->ak_pub));
        make_ek(f);
        lb_sample_boot(&f->b);
        write_golden(f, "dev");
        f->clock = 1000;
        f->reset = 3;
        start(f, true);
        if (enrolled)
                enroll(f);
}

static void stop(sfx *f) {
        sfx_pump(f);
        vouchd_free(&f->d); /* closes the store, frees the sessions left and the loop */
        f->l = NULL;
}

void sfx_add_golden(sfx *f, const char *name) {
        golden_table *t = NULL;
        write_golden(f, name);
        assert_int_equal(golden_table_load(f->d.cfg.golden_dir, &t), 0);
        pthread_mutex_lock(&f->d.lock);
        golden_table *old = f->d.golden;
        f->d.golden = t;
        pthread_mutex_unlock(&f->d.lock);
        golden_table_unref(old);
}

void sfx_restart(sfx *f) {
        stop(f);
        start(f, false);
}

void sfx_teardown(sfx *f) {
        char cmd[128];
        stop(f);
        for (size_t i = 0; i < f->n_conns; i++)
                free(f->conns[i].out);
        qb_key_free(&f->key);
        lb_free(&f->b);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
}

void sfx_pump(sfx *f) {
        for (int i = 0; i < 4; i++) {
                vs_flush(f->d.store);
                event_base_loop(f->l->base, EVLOOP_NONBLOCK);
        }
}

struct session *sfx_connect(sfx *f, fconn **ret_conn) {
        assert_true(f->n_conns < sizeof(f->conns) / sizeof(f->conns[0]));
        fconn *c = &f->conns[f->n_conns++];
        struct session *s = session_open(f->l, &fc_io, c, "test:1");
        assert_non_null(s);
        *ret_conn = c;
        return s;
}

void sfx_send_raw(struct session *s, const void *frame, size_t len) {
        uint8_t *buf = malloc(len + VF_HEADER_SIZE);
        assert_non_null(buf);
        assert_int_equal(vf_header(len, VF_DEFAULT_MAX_FRAME, buf), 0);
        memcpy(buf + VF_HEADER_SIZE, frame, len);
        session_data(s, buf, len + VF_HEADER_SIZE);
        free(buf);
}

void sfx_send(struct session *s, const Vouch__V1__AgentMessage *m) {
        size_t n = vouch__v1__agent_message__get_packed_size(m);
        uint8_t *b = malloc(n ? n : 1);
        assert_non_null(b);
        vouch__v1__agent_message__pack(m, b);
        sfx_send_raw(s, b, n);
        free(b);
}

Vouch__V1__VerifierMessage *sfx_next(fconn *c) {
        vf_decoder dec;
        uint8_t *frame = NULL;
        size_t flen = 0;
        if (c->read == c->len)
                return NULL;
        vf_decoder_init(&dec, VF_DEFAULT_MAX_FRAME);
        long used = vf_decoder_feed(&dec, c->out + c->read, c->len - c->read, &frame, &flen);
        vf_decoder_done(&dec);
        assert_true(used > 0);
        assert_non_null(frame);
        c->read += (size_t) used;
        Vouch__V1__VerifierMessage *m = vouch__v1__verifier_message__unpack(NULL, flen, frame);
        free(frame);
        assert_non_null(m);
        return m;
}

void sfx_hello(sfx *f, struct session *s) {
        Vouch__V1__AgentMessage m = VOUCH__V1__AGENT_MESSAGE__INIT;
        Vouch__V1__Hello h = VOUCH__V1__HELLO__INIT;
        h.protocol_version = VOUCH__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1;
        h.ek_public = (ProtobufCBinaryData) { f->ek_len, f->ek_pub };
        h.ak_public = (ProtobufCBinaryData) { f->ak_len, f->ak_pub };
        m.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_HELLO;
        m.hello = &h;
        sfx_send(s, &m);
}

void sfx_answer(sfx *f, struct session *s, const Vouch__V1__QuoteChallenge *c, const uint8_t *nonce) {
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        vc_pcr_set pcrs;
        uint32_t mask = 0;
        assert_int_equal(vc_eventlog_parse(f->b.buf, f->b.len, &log, NULL), 0);
        assert_int_equal(vc_hasher_new(&h), 0);
        assert_int_equal(vc_eventlog_replay(h, log, &pcrs, NULL), 0);
        vc_eventlog_free(log);
        vc_hasher_free(h);
        assert_int_equal(c->n_selection, 1);
        for (size_t i = 0; i < c->selection[0]->n_pcrs; i++)
                mask |= 1u << c->selection[0]->pcrs[i];
        vc_pcr_bank *bank = vc_pcr_set_bank(&pcrs, VC_ALG_SHA256);
        bank->mask |= mask; /* quoted PCRs the log leaves alone are at their reset value */
        f->clock += 60000;
        qb_quote q;
        qb_quote_make(&f->key, &pcrs, mask, nonce, 32, f->clock, f->reset, f->restart, &q);

        Vouch__V1__PcrBank pb = VOUCH__V1__PCR_BANK__INIT, *pbp = &pb;
        Vouch__V1__PcrBank__ValuesEntry entries[VC_PCR_COUNT], *ep[VC_PCR_COUNT];
        pb.hash_alg = VC_ALG_SHA256;
        for (unsigned i = 0; i < VC_PCR_COUNT; i++)
                if (mask & (1u << i)) {
                        vouch__v1__pcr_bank__values_entry__init(&entries[pb.n_values]);
                        entries[pb.n_values].key = i;
                        entries[pb.n_values].value = (ProtobufCBinaryData) { bank->size, bank->values[i] };
                        ep[pb.n_values] = &entries[pb.n_values];
                        pb.n_values++;
                }
        pb.values = ep;
        Vouch__V1__QuoteAnswer a = VOUCH__V1__QUOTE_ANSWER__INIT;
        a.nonce = (ProtobufCBinaryData) { 32, (uint8_t *) nonce };
        a.attest = (ProtobufCBinaryData) { q.attest_len, q.attest };
        a.signature = (ProtobufCBinaryData) { q.sig_len, q.sig };
        a.n_pcrs = 1;
        a.pcrs = &pbp;
        /* the log from where the verifier asks (what it holds of this boot already) */
        size_t from = c->eventlog_offset <= f->b.len ? (size_t) c->eventlog_offset : f->b.len;
        a.eventlog_offset = from;
        a.eventlog = (ProtobufCBinaryData) { f->b.len - from, f->b.buf + from };
        if (f->answer_hook)
                f->answer_hook(f, &a, nonce);
        Vouch__V1__AgentMessage m = VOUCH__V1__AGENT_MESSAGE__INIT;
        m.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_QUOTE;
        m.quote = &a;
        sfx_send(s, &m);
}

Vouch__V1__Verdict *sfx_verdict_of(const Vouch__V1__VerifierMessage *m) {
        assert_int_equal(m->msg_case, VOUCH__V1__VERIFIER_MESSAGE__MSG_VERDICT);
        const Vouch__V1__SignedVerdict *sv = m->verdict->verdict;
        assert_non_null(sv);
        Vouch__V1__Verdict *v = vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data);
        assert_non_null(v);
        return v;
}

int sfx_attest(sfx *f, struct session *s, fconn *c) {
        sfx_hello(f, s);
        sfx_pump(f); /* a shared store: Welcome once the device's lease is claimed */
        Vouch__V1__VerifierMessage *w = sfx_next(c), *ch = sfx_next(c);
        assert_non_null(w);
        assert_int_equal(w->msg_case, VOUCH__V1__VERIFIER_MESSAGE__MSG_WELCOME);
        assert_string_equal(w->welcome->device_id, f->id);
        assert_non_null(ch);
        assert_int_equal(ch->msg_case, VOUCH__V1__VERIFIER_MESSAGE__MSG_CHALLENGE);
        assert_int_equal(ch->challenge->nonce.len, 32);
        sfx_answer(f, s, ch->challenge, ch->challenge->nonce.data);
        sfx_pump(f);
        Vouch__V1__VerifierMessage *vm = sfx_next(c);
        assert_non_null(vm);
        /* challenged again for the whole log (a state of the boot its evaluation does not
         * cover yet): answered the same way */
        for (int again = 0; vm->msg_case == VOUCH__V1__VERIFIER_MESSAGE__MSG_CHALLENGE && again < 2; again++) {
                vouch__v1__verifier_message__free_unpacked(ch, NULL);
                ch = vm;
                sfx_answer(f, s, ch->challenge, ch->challenge->nonce.data);
                sfx_pump(f);
                vm = sfx_next(c);
                assert_non_null(vm);
        }
        Vouch__V1__Verdict *v = sfx_verdict_of(vm);
        int status = v->status;
        assert_string_equal(v->device_id, f->id);
        assert_memory_equal(v->nonce.data, ch->challenge->nonce.data, 32);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__verifier_message__free_unpacked(vm, NULL);
        vouch__v1__verifier_message__free_unpacked(w, NULL);
        vouch__v1__verifier_message__free_unpacked(ch, NULL);
        return status;
}

device *sfx_device(sfx *f) {
        pthread_mutex_lock(&f->d.lock);
        device *dev = registry_find_locked(&f->d, f->id);
        pthread_mutex_unlock(&f->d.lock);
        assert_non_null(dev);
        return dev;
}
