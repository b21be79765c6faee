/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the golden measurement code (golden.h) the way the verifier meets it.
 *
 * An input that starts with '{' is a golden set: vc_golden_parse, then vc_golden_to_json,
 * which must parse again to the same JSON ("same set, same bytes"). A NUL byte may follow
 * the JSON, then an event log, which is evaluated against the set.
 *
 * Anything else is an event log (a peer's): parsed, digest-checked and replayed as the
 * verifier does, then
 *  - vc_golden_create from it; when that succeeds the set must accept the log that made it
 *    ("a golden set that accepts exactly the platform that produced log"), also after a
 *    JSON round trip and merged with itself, and through the evaluation cache;
 *  - the log evaluated against the set made from the first event boundary the input
 *    chooses (another platform's set): findings must be well-formed.
 * Findings must name their rule and explain themselves in one line of text. What the rules
 * read of each event (vc_rule_content) must be what the event decoder gives. */
#include <errno.h>
#include <string.h>

#include "event.h"
#include "eventlog.h"
#include "fuzz.h"
#include "golden-classify.h"
#include "golden.h"
#include "replay.h"

static vc_hasher *hasher(void) {
        static vc_hasher *h;
        if (!h && vc_hasher_new(&h) < 0)
                abort();
        return h;
}

static void check_evaluation(const vc_evaluation *e) {
        FUZZ_CHECK(e->trust == VC_TRUST_TRUSTED || e->trust == VC_TRUST_UNTRUSTED);
        FUZZ_CHECK((e->trust == VC_TRUST_TRUSTED) == (e->n_findings == 0));
        for (size_t i = 0; i < e->n_findings; i++) {
                const vc_finding *f = &e->findings[i];
                FUZZ_CHECK(memchr(f->rule, '\0', sizeof(f->rule)) && f->rule[0]);
                FUZZ_CHECK(f->pcr >= -1 && f->pcr < (int) VC_PCR_COUNT);
                FUZZ_CHECK(f->explanation);
                FUZZ_CHECK_TEXT(f->explanation);
                if (f->expected)
                        (void) strlen(f->expected);
                if (f->actual)
                        (void) strlen(f->actual);
        }
}

static void print_findings(const vc_evaluation *e) {
        for (size_t i = 0; i < e->n_findings; i++)
                fprintf(stderr, "  [%s] PCR %d event %ld: %s\n", e->findings[i].rule, e->findings[i].pcr,
                        e->findings[i].event, e->findings[i].explanation);
}

/* VOUCH_FUZZ_IGNORE_RULES="rule,rule": findings of these rules do not count against
 * "accepts its own log", to hunt for other bugs while a known one is not fixed yet. */
static bool ignored_rule(const char *rule) {
        const char *list = getenv("VOUCH_FUZZ_IGNORE_RULES");
        size_t n = strlen(rule);
        for (const char *p = list; p && *p;) {
                const char *end = strchrnul(p, ',');
                if ((size_t) (end - p) == n && strncmp(p, rule, n) == 0)
                        return true;
                p = *end ? end + 1 : end;
        }
        return false;
}

static bool all_ignored(const vc_evaluation *e) {
        for (size_t i = 0; i < e->n_findings; i++)
                if (!ignored_rule(e->findings[i].rule))
                        return false;
        return true;
}

/* Banks of log this verifier computes. */
static unsigned computable_banks(const vc_eventlog *log) {
        unsigned n = 0;
        if (log->format == VC_LOG_SHA1_LEGACY)
                return 1;
        for (uint32_t i = 0; i < log->spec.n_algs; i++)
                n += vc_alg_lookup(log->spec.algs[i].alg) != NULL;
        return n;
}

static bool same_evaluation(const vc_evaluation *a, const vc_evaluation *b) {
        if (a->trust != b->trust || a->n_findings != b->n_findings)
                return false;
        for (size_t i = 0; i < a->n_findings; i++)
                if (strcmp(a->findings[i].rule, b->findings[i].rule) != 0 || a->findings[i].event != b->findings[i].event ||
                    strcmp(a->findings[i].explanation, b->findings[i].explanation) != 0)
                        return false;
        return true;
}

/* The evaluation as an attestation makes it (the set's banks replayed, its bank's digests
 * checked: vc_golden_banks, vc_golden_check_digests) must be well-formed, and the one of
 * every bank (e) when the log has one bank this verifier computes: only other banks'
 * digests, which no quote of the set's bank attests, can set them apart. */
static void evaluate_as_attestation(const vc_golden *g, const vc_eventlog *log, const vc_evaluation *e) {
        vc_event_check *checks = calloc(log->n_events, sizeof(*checks));
        vc_replay *rs = malloc(sizeof(*rs));
        vc_evaluation att;
        if (!checks || !rs)
                abort();
        vc_replay_init_banks(rs, vc_golden_banks(g));
        int r = vc_replay_update(hasher(), log, rs, NULL, NULL);
        FUZZ_CHECK(r == 0 || r == -ENOMEM); /* the whole replay worked: so does part of it */
        if (r == 0)
                r = vc_golden_check_digests(hasher(), g, log, checks);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        if (r == 0)
                r = vc_golden_evaluate(g, log, checks, &rs->pcrs, (1u << VC_PCR_COUNT) - 1, &att);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        if (r == 0) {
                check_evaluation(&att);
                if (computable_banks(log) == 1 && !same_evaluation(e, &att)) {
                        fprintf(stderr, "every bank:\n");
                        print_findings(e);
                        fprintf(stderr, "as an attestation:\n");
                        print_findings(&att);
                        FUZZ_CHECK(!"a one-bank log's evaluation is the same as an attestation's");
                }
                vc_evaluation_done(&att);
        }
        free(rs);
        free(checks);
}

/* Evaluates log against g with every PCR attested; TRUSTED is required when must_trust. */
static void evaluate(const vc_golden *g, const vc_eventlog *log, const vc_event_check *checks,
                     const vc_pcr_set *replayed, bool must_trust, const char *what) {
        vc_evaluation e;
        int r = vc_golden_evaluate(g, log, checks, replayed, (1u << VC_PCR_COUNT) - 1, &e);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        if (r < 0)
                return;
        check_evaluation(&e);
        evaluate_as_attestation(g, log, &e);
        if (must_trust && e.trust != VC_TRUST_TRUSTED && !all_ignored(&e)) {
                fprintf(stderr, "%s: the golden set made from this log does not accept it:\n", what);
                print_findings(&e);
                FUZZ_CHECK(!"a golden set accepts the log it was created from");
        }
        vc_evaluation_done(&e);
}

/* to_json -> parse -> to_json gives the same bytes. Returns the parsed set. */
static vc_golden *round_trip(const vc_golden *g) {
        char *json = NULL, *again = NULL;
        vc_golden *back = NULL;
        vc_error err;
        int r = vc_golden_to_json(g, &json);
        if (r == -ENOMEM)
                return NULL;
        FUZZ_CHECK(r == 0 && json);
        r = vc_golden_parse(json, strlen(json), &back, &err);
        if (r == -ENOMEM) {
                free(json);
                return NULL;
        }
        if (r < 0)
                fprintf(stderr, "vc_golden_parse of vc_golden_to_json's output: %s\n%s\n", err.msg, json);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(memcmp(back->fingerprint, g->fingerprint, sizeof(g->fingerprint)) == 0);
        r = vc_golden_to_json(back, &again);
        if (r == 0) {
                FUZZ_CHECK(strcmp(json, again) == 0);
                free(again);
        }
        free(json);
        return back;
}

static void fuzz_eventlog_against(const vc_golden *g, const uint8_t *data, size_t size, uint32_t attested);

static void fuzz_golden_json(const uint8_t *data, size_t size) {
        vc_golden *g = NULL;
        vc_error err;
        /* "{...}\0LOG": the set, and an event log to evaluate against it (JSON has no NUL) */
        const uint8_t *nul = memchr(data, '\0', size);
        size_t json_len = nul ? (size_t) (nul - data) : size;
        int r = vc_golden_parse((const char *) data, json_len, &g, &err);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -E2BIG || r == -ENOMEM);
                FUZZ_CHECK(!g);
                if (r != -ENOMEM)
                        FUZZ_CHECK(err.code == r && memchr(err.msg, '\0', sizeof(err.msg)) && err.msg[0]);
                return;
        }
        vc_golden_free(round_trip(g));
        if (nul)
                fuzz_eventlog_against(g, nul + 1, size - json_len - 1, (uint32_t) fuzz_hash(data, size));
        vc_golden_free(g);
}

/* Parses (by structure: a log whose Spec ID event has index 1 as CCEL, as vouchctl does),
 * checks and replays like the verifier; 0 when the log replays. */
static int prepare(const uint8_t *data, size_t size, vc_eventlog **ret_log, vc_event_check **ret_checks,
                   vc_replay *rs) {
        vc_eventlog *log = NULL;
        vc_error err;
        if (vc_eventlog_parse_as(data, size, VC_READ_AUTO, &log, &err) < 0)
                return -EBADMSG;
        vc_event_check *checks = calloc(log->n_events, sizeof(*checks));
        if (!checks)
                abort();
        vc_replay_init(rs);
        if (vc_replay_update(hasher(), log, rs, checks, &err) < 0) {
                free(checks);
                vc_eventlog_free(log);
                return -EBADMSG;
        }
        *ret_log = log;
        *ret_checks = checks;
        return 0;
}

static bool same_string(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* vc_rule_content reads without the decoder's text what the rules of the event's class
 * read; it must read the same (golden-classify.h). */
static void check_rule_content(const vc_eventlog *log) {
        for (size_t i = 0; i < log->n_events; i++) {
                const vc_event *ev = &log->events[i];
                vc_ev_class cls = vc_classify_event(log->kind, ev);
                vc_event_content rc, dc;
                if (vc_rule_content(ev, cls, &rc) < 0)
                        continue;
                if (vc_event_decode(ev, &dc, NULL) == -ENOMEM) {
                        vc_event_content_done(&rc);
                        continue;
                }
                if (cls == CLS_SEPARATOR)
                        FUZZ_CHECK((rc.kind == VC_CONTENT_SEPARATOR) == (dc.kind == VC_CONTENT_SEPARATOR) &&
                                   rc.separator_value == dc.separator_value);
                else if (cls == CLS_SB_VARIABLE)
                        FUZZ_CHECK(rc.kind == dc.kind && same_string(rc.var_name, dc.var_name) &&
                                   memcmp(rc.var_guid, dc.var_guid, 16) == 0 && rc.var_data == dc.var_data &&
                                   rc.var_data_len == dc.var_data_len);
                else if (cls == CLS_ACTION || cls == CLS_GRUB || cls == CLS_CMDLINE || cls == CLS_CRTM_VERSION)
                        FUZZ_CHECK(rc.kind == dc.kind && same_string(rc.string, dc.string));
                vc_event_content_done(&rc);
                vc_event_content_done(&dc);
        }
}

static void fuzz_eventlog(const uint8_t *data, size_t size) {
        vc_eventlog *log = NULL;
        vc_event_check *checks = NULL;
        vc_replay *rs = malloc(sizeof(*rs));
        vc_golden *g = NULL;
        vc_error err;

        if (!rs)
                abort();
        if (prepare(data, size, &log, &checks, rs) < 0) {
                free(rs);
                return;
        }
        check_rule_content(log);

        int r = vc_golden_create(log, checks, &rs->pcrs, "fuzz", "made by fuzz-golden", &g, &err);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -E2BIG || r == -ENOMEM);
                FUZZ_CHECK(!g);
        } else {
                evaluate(g, log, checks, &rs->pcrs, true, "created");

                vc_golden *back = round_trip(g);
                if (back) {
                        evaluate(back, log, checks, &rs->pcrs, true, "created, JSON round trip");
                        vc_golden_free(back);
                }

                vc_golden *m = NULL;
                r = vc_golden_merge(g, g, &m, &err);
                FUZZ_CHECK(r == 0 || r == -ENOMEM);
                if (r == 0) {
                        evaluate(m, log, checks, &rs->pcrs, true, "merged with itself");
                        vc_golden_free(m);
                }

                vc_eval_cache *cache = NULL;
                if (vc_eval_cache_new(4, &cache) == 0) {
                        for (int i = 0; i < 2; i++) {
                                vc_evaluation e;
                                bool hit = false;
                                r = vc_golden_evaluate_cached(cache, g, log, checks, &rs->pcrs,
                                                              (1u << VC_PCR_COUNT) - 1, &e, &hit);
                                FUZZ_CHECK(r == 0 || r == -ENOMEM);
                                if (r < 0)
                                        break;
                                check_evaluation(&e);
                                FUZZ_CHECK(e.trust == VC_TRUST_TRUSTED || all_ignored(&e));
                                FUZZ_CHECK(hit == (i == 1));
                                vc_evaluation_done(&e);
                        }
                        vc_eval_cache_free(cache);
                }
        }

        /* Another platform's set: the one made from a prefix of this log (the first part of
         * the same boot), which the rest of the log may or may not satisfy. */
        if (log->n_events > 2) {
                size_t k = 1 + (size_t) (fuzz_hash(data, size) % (log->n_events - 1));
                vc_eventlog *pre = NULL;
                vc_event_check *pchecks = NULL;
                vc_replay *prs = malloc(sizeof(*prs));
                vc_golden *pg = NULL;
                if (!prs)
                        abort();
                if (prepare(data, log->events[k].offset, &pre, &pchecks, prs) == 0) {
                        if (vc_golden_create(pre, pchecks, &prs->pcrs, "prefix", NULL, &pg, &err) == 0) {
                                evaluate(pg, log, checks, &rs->pcrs, false, "prefix");
                                vc_golden_free(pg);
                        }
                        free(pchecks);
                        vc_eventlog_free(pre);
                }
                free(prs);
        }

        vc_golden_free(g);
        free(checks);
        free(rs);
        vc_eventlog_free(log);
}

/* A log evaluated against a given set, with all PCRs attested and with a mask the input
 * chooses: the findings must be well-formed; no verdict is expected. */
static void fuzz_eventlog_against(const vc_golden *g, const uint8_t *data, size_t size, uint32_t attested) {
        vc_eventlog *log = NULL;
        vc_event_check *checks = NULL;
        vc_replay *rs = malloc(sizeof(*rs));
        if (!rs)
                abort();
        if (prepare(data, size, &log, &checks, rs) == 0) {
                evaluate(g, log, checks, &rs->pcrs, false, "given set");
                vc_evaluation e;
                if (vc_golden_evaluate(g, log, checks, &rs->pcrs, attested & ((1u << VC_PCR_COUNT) - 1), &e) == 0) {
                        check_evaluation(&e);
                        vc_evaluation_done(&e);
                }
                free(checks);
                vc_eventlog_free(log);
        }
        free(rs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 0 && data[0] == '{')
                fuzz_golden_json(data, size);
        else
                fuzz_eventlog(data, size);
        return 0;
}
