/* SPDX-License-Identifier: Apache-2.0 */
/* Verdicts of several vouchd instances on one store (issue 18, docs/scale-out.md steps 5 and
 * 6): libvouchd instances in this process, each with a state dir and keys of its own and its
 * own store handle (instance name), on one shared store (vouchd.shared): PostgreSQL when
 * VOUCH_TEST_STORE_URL names one (test/pg/pg-harness.sh, test order-pg), else SQLite, one
 * instance only (test order). Verdicts are issued with verdict_issue and read back through
 * the done callback, the store, api_handle (GET and the lists), verdict_follow and the watch
 * stream's reads (api_watch_next). The fake clock runs. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <tss2/tss2_mu.h>

#include "api-internal.h"
#include "api.h"
#include "clock.h"
#include "eventlog.h"
#include "fileio.h"
#include "golden.h"
#include "logbuilder.h"
#include "quotebuilder.h"
#include "replay.h"
#include "tls.h"
#include "verdict-check.h"
#include "vouchd.h"

#define WALL 1800000000
#define TTL 3600

static const char *pg_url;      /* NULL: SQLite */
static char store_url[128];     /* the store every instance of a test opens */
static char tmp[64];            /* the test's temp dir */
static uint8_t ak_pub[600];     /* one AK for every device (only loaded, never used) */
static size_t ak_len;

typedef struct inst {
        char dir[128];
        vouchd d;
        struct api *a;
        vv_keyring *keys;       /* its verdict-keys.pem */
} inst;

/* golden/dev.json in dir, from the sample boot log (as vouchctl golden create makes it). */
static void write_golden(const char *dir) {
        logbuilder b;
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        vc_golden *g = NULL;
        vc_replay r;
        vc_error err;
        char path[512], *json = NULL;
        lb_sample_boot(&b);
        assert_int_equal(vc_eventlog_parse(b.buf, b.len, &log, NULL), 0);
        vc_event_check *checks = calloc(log->n_events, sizeof(*checks));
        assert_int_equal(vc_hasher_new(&h), 0);
        vc_replay_init(&r);
        assert_int_equal(vc_replay_update(h, log, &r, checks, NULL), 0);
        assert_int_equal(vc_golden_create(log, checks, &r.pcrs, "dev", NULL, &g, &err), 0);
        assert_int_equal(vc_golden_to_json(g, &json), 0);
        snprintf(path, sizeof(path), "%s/dev.json", dir);
        FILE *out = fopen(path, "w");
        assert_non_null(out);
        fputs(json, out);
        assert_int_equal(fclose(out), 0);
        free(json);
        vc_golden_free(g);
        vc_eventlog_free(log);
        free(checks);
        vc_hasher_free(h);
        lb_free(&b);
}

/* An instance named name on the test's store, loaded as vouchd_start loads it. */
static void inst_start(inst *in, const char *name) {
        vouchd *d = &in->d;
        char path[256], err[600];
        uint8_t *pem = NULL;
        size_t pem_len = 0;
        vs_open_info info;
        snprintf(in->dir, sizeof(in->dir), "%s/%s", tmp, name);
        assert_int_equal(mkdir(in->dir, 0700), 0);
        snprintf(path, sizeof(path), "%s/golden", in->dir);
        assert_int_equal(mkdir(path, 0700), 0);
        write_golden(path);
        vouchd_init(d);
        d->cfg.golden_dir = strdup(path);
        snprintf(path, sizeof(path), "%s/state", in->dir);
        d->cfg.state_dir = strdup(path);
        d->cfg.default_golden = strdup("dev");
        d->cfg.interval = 60;
        vlog_level = getenv("ORDER_DEBUG") ? LOG_DEBUG : -1;
        assert_int_equal(tls_init_state_dir(path, NULL, 0, true, err, sizeof(err)), 0);
        assert_int_equal(tls_verifier_id(path, d->verifier_id), 0);
        assert_int_equal(vk_load(path, &d->keys), 0);
        assert_int_equal(golden_table_load(d->cfg.golden_dir, &d->golden), 0);
        vs_open_options opt = { .history_keep = d->cfg.history, .flags = VS_OPEN_CREATE, .instance = name };
        if (vs_open_ex(store_url, &opt, &d->store, &info, err, sizeof(err)) < 0)
                fail_msg("vs_open_ex %s as %s: %s", store_url, name, err);
        d->shared = true;
        d->leases.manual = true; /* the fake clock stands still: no renewal is due */
        assert_int_equal(registry_load(d), 0);
        assert_int_equal(verdict_load_latest(d), 0);
        assert_int_equal(lease_heartbeat_start(d), 0);
        assert_int_equal(api_new(d, &in->a), 0);
        snprintf(path, sizeof(path), "%s/state/verdict-keys.pem", in->dir);
        assert_int_equal(vu_read_file(AT_FDCWD, path, 1 << 20, &pem, &pem_len), 0);
        assert_int_equal(vv_keyring_parse(pem, pem_len, &in->keys), 0);
        free(pem);
}

static void inst_stop(inst *in) {
        vs_flush(in->d.store);
        vouchd_free(&in->d); /* closes the store, frees the API */
        vv_keyring_free(in->keys);
}

static int setup(void **state) {
        snprintf(tmp, sizeof(tmp), "/tmp/vouch-order-XXXXXX");
        assert_non_null(mkdtemp(tmp));
        if (pg_url) /* one database for the run: every test has devices and instances of its own */
                snprintf(store_url, sizeof(store_url), "%s", pg_url);
        else
                snprintf(store_url, sizeof(store_url), "%s/vouch.db", tmp);
        vclock_fake(WALL, 1000);
        return 0;
}

static int teardown(void **state) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        assert_int_equal(system(cmd), 0);
        return 0;
}

#define PG_ONLY()                                                       \
        do {                                                            \
                if (!pg_url)                                            \
                        skip(); /* several instances: PostgreSQL only */ \
        } while (0)

/* ---- devices and verdicts ---- */

/* A device id (64 hex digits) for test t, number n. */
static void dev_id(char out[VS_ID_MAX + 1], unsigned t, unsigned n) {
        snprintf(out, VS_ID_MAX + 1, "%056x%04x%04x", 0xabcu, t, n);
}

static void leased(vouchd *d, device *dev, int result, const char *holder, void *userdata) {
        *(int *) userdata = result;
}

/* The device in in's registry (and, with put, in the store); when held, in claims its lease
 * (lease.h: the instance that issues its verdicts), kept until in stops. */
static device *add_device(inst *in, const char *id, bool put, bool held) {
        vouchd *d = &in->d;
        static uint8_t ek[] = "not an EK";
        vs_device rec = { .ek_public = ek, .ek_public_len = sizeof(ek), .ak_public = ak_pub, .ak_public_len = ak_len,
                          .approved = true, .enrolled_at = WALL, .ek_anchor = 1 };
        snprintf(rec.id, sizeof(rec.id), "%s", id);
        pthread_mutex_lock(&d->lock);
        device *dev = registry_find_locked(d, id);
        if (!dev)
                dev = registry_add_locked(d, &rec);
        assert_non_null(dev);
        pthread_mutex_unlock(&d->lock);
        if (put) {
                assert_int_equal(vs_device_put(d->store, &rec, NULL, NULL), 0);
                vs_flush(d->store);
        }
        if (held) {
                int result = 1;
                assert_int_equal(lease_get(d, dev, leased, &result), 0);
                vs_flush(d->store); /* the claim's answer runs before the queue counts as empty */
                assert_int_equal(result, 0);
        }
        return dev;
}

static device *find(inst *in, const char *id) {
        pthread_mutex_lock(&in->d.lock);
        device *dev = registry_find_locked(&in->d, id);
        pthread_mutex_unlock(&in->d.lock);
        assert_non_null(dev);
        return dev;
}

/* What a verdict's done callback got. */
typedef struct got {
        int error;
        uint8_t *rec;
        size_t len;
        int done;
} got;

static void on_verdict(int error, const uint8_t *record, size_t len, void *userdata) {
        got *g = userdata;
        g->error = error;
        if (record) {
                g->rec = malloc(len);
                assert_non_null(g->rec);
                memcpy(g->rec, record, len);
                g->len = len;
        }
        __atomic_store_n(&g->done, 1, __ATOMIC_SEQ_CST);
}

/* Verdict.device_key for the verdicts issue() makes (NULL: none) */
static uint8_t issue_key[32];
static bool issue_with_key;

/* Issues a verdict of status about dev at in, judged by golden set dev. */
static void issue(inst *in, device *dev, int status, got *g) {
        Vouch__V1__Verdict v = VOUCH__V1__VERDICT__INIT;
        Vouch__V1__Finding f = VOUCH__V1__FINDING__INIT, *fp = &f;
        v.device_id = dev->rec.id;
        v.status = status;
        v.issued_at = vclock_wall();
        v.expires_at = v.issued_at + TTL;
        v.golden_name = (char *) "dev";
        pthread_mutex_lock(&in->d.lock);
        v.golden_version = golden_table_find(in->d.golden, "dev")->version;
        pthread_mutex_unlock(&in->d.lock);
        if (status != VOUCH__V1__TRUST_STATUS__TRUSTED)
                verdict_one_finding(&v, &f, &fp, "pcr_values", "expected", "actual", "a finding");
        if (issue_with_key) {
                v.device_key.data = issue_key;
                v.device_key.len = sizeof(issue_key);
        }
        memset(g, 0, sizeof(*g));
        assert_int_equal(verdict_issue(&in->d, dev, &v, on_verdict, g), 0);
        assert_int_equal(v.global_sequence, 0); /* the store numbers it */
}

/* The Verdict inside a SignedVerdict that verifies with in's keys, and is packed the way
 * protobuf-c packs it (the seal hook splices the global sequence into packed bytes). */
static Vouch__V1__Verdict *check_signed(inst *in, const uint8_t *rec, size_t len) {
        Vouch__V1__SignedVerdict *sv = NULL;
        vv_result r;
        assert_int_equal(vv_signed_parse(rec, len, &sv), 0);
        assert_int_equal(vv_verify(in->keys, sv, WALL, VV_DEFAULT_SKEW, &r), 0);
        if (r.outcome != VV_VALID)
                fail_msg("the record does not verify: %s", r.reason);
        vv_result_done(&r);
        Vouch__V1__Verdict *v = vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data);
        assert_non_null(v);
        size_t n = vouch__v1__verdict__get_packed_size(v);
        uint8_t *again = malloc(n);
        assert_non_null(again);
        assert_int_equal(vouch__v1__verdict__pack(v, again), n);
        assert_int_equal(n, sv->verdict.len);
        assert_memory_equal(again, sv->verdict.data, n);
        free(again);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        return v;
}

/* ---- the API ---- */

/* GET path at in, with format= (NULL: protobuf) and as an admin or a reader (a list: its
 * largest page); a 200. */
static void call(inst *in, const char *path, const char *format, bool admin, api_response *out) {
        api_param q[2] = { { "format", format ? format : "protobuf" }, { "page_size", "1000" } };
        bool list = strcmp(path, "/v1/devices") == 0 || strcmp(path, "/v1/verdicts") == 0;
        api_request req = { .method = API_METHOD_GET, .path = path, .query = q, .n_query = list ? 2 : 1,
                            .role = admin ? API_ROLE_ADMIN : API_ROLE_READER, .cn = admin ? "admin" : "reader" };
        api_handle(in->a, &req, out);
        if (out->status != 200)
                fail_msg("GET %s: %d %.*s", path, out->status, (int) out->body_len, (const char *) out->body);
}

/* GET /v1/devices/ID/verdict at in: the record served. */
static uint8_t *get_verdict(inst *in, const char *id, size_t *len) {
        char path[160];
        api_response out;
        snprintf(path, sizeof(path), "/v1/devices/%s/verdict", id);
        call(in, path, NULL, false, &out);
        uint8_t *rec = malloc(out.body_len);
        assert_non_null(rec);
        memcpy(rec, out.body, out.body_len);
        *len = out.body_len;
        api_response_done(&out);
        return rec;
}

/* The device as GET /v1/devices (JSON) at in lists it: its status and sequence. */
static void get_device(inst *in, const char *id, char *status, size_t n, uint64_t *sequence) {
        api_response out;
        call(in, "/v1/devices", "json", true, &out);
        json_tokener *tok = json_tokener_new();
        json_object *o = json_tokener_parse_ex(tok, (const char *) out.body, (int) out.body_len), *arr, *v;
        json_tokener_free(tok);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "devices", &arr));
        size_t found = 0;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *dev = json_object_array_get_idx(arr, i);
                assert_true(json_object_object_get_ex(dev, "id", &v));
                if (strcmp(json_object_get_string(v), id) != 0)
                        continue;
                found++;
                assert_true(json_object_object_get_ex(dev, "status", &v));
                snprintf(status, n, "%s", json_object_get_string(v));
                assert_true(json_object_object_get_ex(dev, "sequence", &v));
                *sequence = json_object_get_uint64(v);
        }
        assert_int_equal(found, 1);
        json_object_put(o);
        api_response_done(&out);
}

/* The status GET /v1/devices/ID/verdict serves at in (a stand-in expires at once: the
 * record is decoded, not checked). */
static int shown_status(inst *in, const char *id) {
        size_t len;
        uint8_t *rec = get_verdict(in, id, &len);
        Vouch__V1__SignedVerdict *sv = NULL;
        assert_int_equal(vv_signed_parse(rec, len, &sv), 0);
        Vouch__V1__Verdict *v = vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data);
        assert_non_null(v);
        assert_string_equal(v->device_id, id);
        int status = v->status;
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        free(rec);
        return status;
}

/* ---- tests ---- */

/* One instance: the store numbers the verdict, the seal hook signs it; the agent's copy
 * (the done callback), the store's and GET's are the same bytes; published follows. */
static void test_sealed_record(void **state) {
        inst a;
        char id[VS_ID_MAX + 1];
        got g[4];
        vs_verdict hist[8];
        inst_start(&a, "t1a");
        dev_id(id, 1, 0);
        device *dev = add_device(&a, id, true, true);
        for (int i = 0; i < 4; i++) {
                pthread_mutex_lock(&a.d.lock);
                dev->rec.ek_anchor = i % 2; /* ek_anchor, the field after the global sequence, and none */
                pthread_mutex_unlock(&a.d.lock);
                /* device_key, after ek_anchor: with and without either */
                issue_with_key = i >= 2;
                memset(issue_key, 0xa0 + i, sizeof(issue_key));
                issue(&a, dev, i == 2 ? VOUCH__V1__TRUST_STATUS__UNTRUSTED : VOUCH__V1__TRUST_STATUS__TRUSTED, &g[i]);
                if (i == 1)
                        vs_flush(a.d.store); /* some in a batch of their own */
        }
        issue_with_key = false;
        vs_flush(a.d.store);
        int n = vs_verdict_history(a.d.store, id, hist, 8);
        assert_int_equal(n, 4);
        uint64_t prev = 0;
        for (int i = 0; i < 4; i++) {
                const vs_verdict *s = &hist[3 - i]; /* newest first */
                assert_int_equal(g[i].done, 1);
                assert_int_equal(g[i].error, 0);
                assert_non_null(g[i].rec);
                assert_int_equal(g[i].len, s->record_len);
                assert_memory_equal(g[i].rec, s->record, s->record_len);
                Vouch__V1__Verdict *v = check_signed(&a, g[i].rec, g[i].len);
                assert_int_equal(v->global_sequence, s->global_sequence);
                assert_true(v->global_sequence > prev);
                prev = v->global_sequence;
                assert_int_equal(v->sequence, i + 1);
                assert_int_equal(s->sequence, i + 1);
                assert_int_equal(v->ek_anchor, i % 2);
                if (i >= 2) {
                        uint8_t want[32];
                        memset(want, 0xa0 + i, sizeof(want));
                        assert_int_equal(v->device_key.len, 32);
                        assert_memory_equal(v->device_key.data, want, 32);
                } else
                        assert_int_equal(v->device_key.len, 0);
                assert_string_equal(v->verifier_id, a.d.verifier_id);
                vouch__v1__verdict__free_unpacked(v, NULL);
        }
        for (int i = 0; i < n; i++)
                vs_verdict_done(&hist[i]);
        /* GET serves the latest, the watch stream goes up to it once followed */
        size_t len;
        uint8_t *rec = get_verdict(&a, id, &len);
        assert_int_equal(len, g[3].len);
        assert_memory_equal(rec, g[3].rec, len);
        free(rec);
        assert_true(verdict_follow(&a.d) >= 0);
        assert_int_equal(atomic_load(&a.d.published), prev);
        for (int i = 0; i < 4; i++)
                free(g[i].rec);
        inst_stop(&a);
}

/* The watch stream is never ahead of GET, also while a batch's hand-offs run: follow reads
 * a verdict of this instance that is committed but not handed off yet, and makes it its
 * device's latest before published passes it. The writer is held in a first verdict's
 * callback until two more are queued, so that they share a batch; the first of them
 * follows, in its own callback, before the second's hand-off. */
typedef struct hold {
        pthread_mutex_t mu;
        pthread_cond_t cv;
        int held, released;
        inst *in;
        uint64_t published, gseq;
        uint64_t other_latest;  /* the second device's latest sequence in memory then */
        device *other;
} hold;

static void on_first(int error, const uint8_t *record, size_t len, void *userdata) {
        hold *h = userdata;
        pthread_mutex_lock(&h->mu);
        h->held = 1;
        pthread_cond_broadcast(&h->cv);
        while (!h->released)
                pthread_cond_wait(&h->cv, &h->mu);
        pthread_mutex_unlock(&h->mu);
}

static void on_second(int error, const uint8_t *record, size_t len, void *userdata) {
        hold *h = userdata;
        Vouch__V1__SignedVerdict *sv = NULL;
        if (error == 0 && record && vv_signed_parse(record, len, &sv) == 0) {
                Vouch__V1__Verdict *v = vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data);
                h->gseq = v ? v->global_sequence : 0;
                vouch__v1__verdict__free_unpacked(v, NULL);
                vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        }
        verdict_follow(&h->in->d); /* as the API thread may, right now */
        h->published = atomic_load(&h->in->d.published);
        pthread_mutex_lock(&h->in->d.lock);
        h->other_latest = h->other->latest_sequence;
        pthread_mutex_unlock(&h->in->d.lock);
}

static void issue_cb(inst *in, device *dev, verdict_done_fn cb, void *userdata) {
        Vouch__V1__Verdict v = VOUCH__V1__VERDICT__INIT;
        v.device_id = dev->rec.id;
        v.status = VOUCH__V1__TRUST_STATUS__UNTRUSTED;
        v.issued_at = vclock_wall();
        v.expires_at = v.issued_at + TTL;
        assert_int_equal(verdict_issue(&in->d, dev, &v, cb, userdata), 0);
}

static void test_watch_not_ahead(void **state) {
        inst a;
        char id[VS_ID_MAX + 1];
        hold h = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
        got g;
        inst_start(&a, "t5a");
        h.in = &a;
        dev_id(id, 5, 0);
        device *d0 = add_device(&a, id, true, true);
        dev_id(id, 5, 1);
        device *d1 = add_device(&a, id, true, true);
        dev_id(id, 5, 2);
        device *d2 = add_device(&a, id, true, true);
        h.other = d2;
        issue_cb(&a, d0, on_first, &h);
        pthread_mutex_lock(&h.mu);
        while (!h.held)
                pthread_cond_wait(&h.cv, &h.mu);
        pthread_mutex_unlock(&h.mu);
        issue_cb(&a, d1, on_second, &h);
        issue(&a, d2, VOUCH__V1__TRUST_STATUS__UNTRUSTED, &g);
        pthread_mutex_lock(&h.mu);
        h.released = 1;
        pthread_cond_broadcast(&h.cv);
        pthread_mutex_unlock(&h.mu);
        vs_flush(a.d.store);
        assert_int_equal(g.error, 0);
        Vouch__V1__Verdict *v = check_signed(&a, g.rec, g.len);
        if (v->global_sequence != h.gseq + 1)
                skip(); /* not numbered in one batch: nothing shown */
        /* the second device's verdict, committed and not handed off yet, was read by follow:
         * published passed it only with the device's latest in memory */
        assert_int_equal(h.published, v->global_sequence);
        assert_int_equal(h.other_latest, 1);
        size_t len;
        uint8_t *rec = get_verdict(&a, d2->rec.id, &len);
        assert_int_equal(len, g.len);
        assert_memory_equal(rec, g.rec, len);
        free(rec);
        vouch__v1__verdict__free_unpacked(v, NULL);
        free(g.rec);
        inst_stop(&a);
}

/* ---- two instances at once ---- */

#define ND 8            /* devices per instance */
#define PER 400         /* verdicts per instance */

typedef struct issuer {
        inst *in;
        device *devs[ND];
        got g[PER];
        unsigned seed;
} issuer;

static void *issue_many(void *arg) {
        issuer *is = arg;
        for (int k = 0; k < PER; k++) {
                int status = rand_r(&is->seed) % 5 ? VOUCH__V1__TRUST_STATUS__TRUSTED : VOUCH__V1__TRUST_STATUS__UNTRUSTED;
                issue(is->in, is->devs[k % ND], status, &is->g[k]);
                if (rand_r(&is->seed) % 8 == 0) /* small batches too */
                        usleep((useconds_t) (rand_r(&is->seed) % 3000));
        }
        return NULL;
}

typedef struct seen {
        uint64_t gseq;
        uint8_t *rec;
        size_t len;
} seen;

static int cmp_seen(const void *x, const void *y) {
        uint64_t a = ((const seen *) x)->gseq, b = ((const seen *) y)->gseq;
        return a < b ? -1 : a > b;
}

/* Verdicts issued at a and at b at the same time, their commits interleaved: a watcher at b
 * (then resumed at a with since=) gets every one exactly once, in global order, never ahead
 * of that instance's GET; GET, the device and the list at b show a's verdicts. */
static void test_two_instances(void **state) {
        PG_ONLY();
        inst a, b;
        static issuer ia, ib;
        char id[VS_ID_MAX + 1];
        pthread_t ta, tb;
        inst_start(&a, "t2a");
        inst_start(&b, "t2b");
        /* both know every device (the follower of device changes would tell them); a holds
         * the first ND, b the others */
        ia = (issuer) { .in = &a, .seed = 1 };
        ib = (issuer) { .in = &b, .seed = 2 };
        for (unsigned i = 0; i < 2 * ND; i++) {
                dev_id(id, 2, i);
                device *da = add_device(&a, id, true, i < ND), *db = add_device(&b, id, false, i >= ND);
                if (i < ND)
                        ia.devs[i] = da;
                else
                        ib.devs[i - ND] = db;
        }
        assert_int_equal(pthread_create(&ta, NULL, issue_many, &ia), 0);
        assert_int_equal(pthread_create(&tb, NULL, issue_many, &ib), 0);

        /* the watcher */
        seen *s = calloc(2 * PER, sizeof(*s));
        vs_verdict batch[64];
        size_t n_seen = 0;
        uint64_t last = atomic_load(&b.d.published); /* since= the last verdict of the tests before */
        inst *at = &b;
        time_t t0 = time(NULL);
        while (n_seen < 2 * PER) {
                if (time(NULL) - t0 > 60)
                        fail_msg("the watcher got %zu of %d verdicts", n_seen, 2 * PER);
                assert_true(verdict_follow(&at->d) >= 0);
                int n = api_watch_next(at->a, last, batch, 64);
                assert_true(n >= 0);
                for (int i = 0; i < n; i++) {
                        vs_verdict *v = &batch[i];
                        assert_true(v->global_sequence > last); /* in order, each once */
                        last = v->global_sequence;
                        /* never ahead of GET at the instance streaming it */
                        device *dev = find(at, v->device);
                        pthread_mutex_lock(&at->d.lock);
                        assert_true(dev->latest_sequence >= v->sequence);
                        pthread_mutex_unlock(&at->d.lock);
                        assert_true(n_seen < 2 * PER);
                        s[n_seen++] = (seen) { v->global_sequence, v->record, v->record_len };
                        v->record = NULL;
                        vs_verdict_done(v);
                }
                if (at == &b && n_seen >= PER) /* the stream resumed at the other instance */
                        at = &a;
                if (n == 0)
                        usleep(1000);
        }
        assert_int_equal(pthread_join(ta, NULL), 0);
        assert_int_equal(pthread_join(tb, NULL), 0);
        vs_flush(a.d.store);
        vs_flush(b.d.store);
        assert_int_equal(api_watch_next(at->a, last, batch, 64), 0); /* nothing more */

        /* what the watcher got is what the agents got, byte for byte */
        seen *agents = calloc(2 * PER, sizeof(*agents));
        size_t k = 0;
        for (int w = 0; w < 2; w++) {
                issuer *is = w ? &ib : &ia;
                for (int i = 0; i < PER; i++) {
                        assert_int_equal(is->g[i].done, 1);
                        assert_int_equal(is->g[i].error, 0);
                        Vouch__V1__Verdict *v = check_signed(is->in, is->g[i].rec, is->g[i].len);
                        agents[k++] = (seen) { v->global_sequence, is->g[i].rec, is->g[i].len };
                        vouch__v1__verdict__free_unpacked(v, NULL);
                }
        }
        qsort(agents, k, sizeof(*agents), cmp_seen);
        for (size_t i = 0; i < k; i++) {
                assert_int_equal(agents[i].gseq, s[i].gseq);
                assert_int_equal(agents[i].len, s[i].len);
                assert_memory_equal(agents[i].rec, s[i].rec, s[i].len);
        }

        /* b shows a's verdicts (and a b's): GET, the device, the list */
        assert_true(verdict_follow(&a.d) >= 0);
        assert_true(verdict_follow(&b.d) >= 0);
        for (int w = 0; w < 2; w++) {
                issuer *is = w ? &ib : &ia;
                inst *other = w ? &a : &b;
                for (int i = 0; i < ND; i++) {
                        const got *latest = &is->g[PER - ND + i];
                        const char *dev = is->devs[i]->rec.id;
                        size_t len;
                        uint8_t *rec = get_verdict(other, dev, &len);
                        assert_int_equal(len, latest->len);
                        assert_memory_equal(rec, latest->rec, len);
                        free(rec);
                        char status[16];
                        uint64_t sequence;
                        get_device(other, dev, status, sizeof(status), &sequence);
                        assert_int_equal(sequence, PER / ND);
                        Vouch__V1__Verdict *v = check_signed(is->in, latest->rec, latest->len);
                        assert_string_equal(status, v->status == VOUCH__V1__TRUST_STATUS__TRUSTED ? "TRUSTED" : "UNTRUSTED");
                        vouch__v1__verdict__free_unpacked(v, NULL);
                }
        }
        api_response out;
        call(&b, "/v1/verdicts", NULL, false, &out);
        Vouch__V1__VerdictPage *page = vouch__v1__verdict_page__unpack(NULL, out.body_len, out.body);
        assert_non_null(page);
        char prefix[VS_ID_MAX + 1];
        dev_id(prefix, 2, 0);
        size_t listed = 0;
        for (size_t i = 0; i < page->n_verdicts; i++) {
                Vouch__V1__Verdict *v = vouch__v1__verdict__unpack(NULL, page->verdicts[i]->verdict.len,
                                                                   page->verdicts[i]->verdict.data);
                assert_non_null(v);
                if (strncmp(v->device_id, prefix, 60) == 0) { /* this test's devices */
                        assert_int_equal(v->sequence, PER / ND);
                        listed++;
                }
                vouch__v1__verdict__free_unpacked(v, NULL);
        }
        assert_int_equal(listed, 2 * ND);
        vouch__v1__verdict_page__free_unpacked(page, NULL);
        api_response_done(&out);

        for (size_t i = 0; i < n_seen; i++)
                free(s[i].rec);
        for (size_t i = 0; i < k; i++)
                free(agents[i].rec);
        free(s);
        free(agents);
        inst_stop(&a);
        inst_stop(&b);
}

/* b shows a's verdict judged against b's view of the device: never TRUSTED once revoked,
 * STALE once expired. */
static void test_judged_where_shown(void **state) {
        PG_ONLY();
        inst a, b;
        char id[VS_ID_MAX + 1], status[16];
        uint64_t sequence;
        got g;
        inst_start(&a, "t3a");
        inst_start(&b, "t3b");
        dev_id(id, 3, 0);
        device *da = add_device(&a, id, true, true), *db = add_device(&b, id, false, false);
        assert_int_equal(shown_status(&b, id), VOUCH__V1__TRUST_STATUS__UNKNOWN);
        issue(&a, da, VOUCH__V1__TRUST_STATUS__TRUSTED, &g);
        vs_flush(a.d.store);
        assert_int_equal(g.error, 0);
        assert_true(verdict_follow(&b.d) >= 1);
        assert_int_equal(shown_status(&b, id), VOUCH__V1__TRUST_STATUS__TRUSTED);
        /* revoked (as b would learn it from the change feed): UNTRUSTED at b */
        verdict_set_access(&b.d, db, false, true);
        assert_int_equal(shown_status(&b, id), VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        get_device(&b, id, status, sizeof(status), &sequence);
        assert_string_equal(status, "UNTRUSTED");
        assert_int_equal(sequence, 1);
        verdict_set_access(&b.d, db, true, false);
        assert_int_equal(shown_status(&b, id), VOUCH__V1__TRUST_STATUS__TRUSTED);
        /* expired: STALE at b, and b does not hold the device, so it issues nothing */
        vclock_fake_advance(TTL + 1);
        assert_int_equal(shown_status(&b, id), VOUCH__V1__TRUST_STATUS__STALE);
        get_device(&b, id, status, sizeof(status), &sequence);
        assert_string_equal(status, "STALE");
        vs_flush(b.d.store);
        vs_verdict latest;
        assert_int_equal(vs_verdict_latest(b.d.store, id, &latest), 0);
        assert_int_equal(latest.sequence, 1);
        vs_verdict_done(&latest);
        free(g.rec);
        inst_stop(&a);
        inst_stop(&b);
}

/* An instance that starts after another's verdicts has them at once, and follows the
 * store from the last of them on. */
static void test_start_after(void **state) {
        PG_ONLY();
        inst a, b;
        char id[VS_ID_MAX + 1];
        got g[2];
        inst_start(&a, "t4a");
        dev_id(id, 4, 0);
        device *da = add_device(&a, id, true, true);
        issue(&a, da, VOUCH__V1__TRUST_STATUS__UNTRUSTED, &g[0]);
        vs_flush(a.d.store);
        Vouch__V1__Verdict *v = check_signed(&a, g[0].rec, g[0].len);
        inst_start(&b, "t4b"); /* loads the device and its verdict from the store */
        assert_int_equal(atomic_load(&b.d.published), v->global_sequence);
        vouch__v1__verdict__free_unpacked(v, NULL);
        assert_int_equal(shown_status(&b, id), VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        issue(&a, da, VOUCH__V1__TRUST_STATUS__TRUSTED, &g[1]);
        vs_flush(a.d.store);
        assert_int_equal(shown_status(&b, id), VOUCH__V1__TRUST_STATUS__UNTRUSTED); /* not read yet */
        assert_int_equal(verdict_follow(&b.d), 1);
        size_t len;
        uint8_t *rec = get_verdict(&b, id, &len);
        assert_int_equal(len, g[1].len);
        assert_memory_equal(rec, g[1].rec, len);
        free(rec);
        free(g[0].rec);
        free(g[1].rec);
        inst_stop(&a);
        inst_stop(&b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_sealed_record, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch_not_ahead, setup, teardown),
                cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
                cmocka_unit_test_setup_teardown(test_judged_where_shown, setup, teardown),
                cmocka_unit_test_setup_teardown(test_start_after, setup, teardown),
        };
        const char *u = getenv("VOUCH_TEST_STORE_URL");
        if (u && *u && strncmp(u, "sqlite", 6) != 0)
                pg_url = u;
        qb_key key;
        qb_key_new(&key);
        TPM2B_PUBLIC pub = { .publicArea = key.pub };
        size_t off = 0;
        if (Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, ak_pub, sizeof(ak_pub), &off) != TSS2_RC_SUCCESS)
                return 1;
        ak_len = off;
        qb_key_free(&key);
        print_message("store backend: %s\n", pg_url ? pg_url : "sqlite");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
