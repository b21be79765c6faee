/* SPDX-License-Identifier: Apache-2.0 */
#include "attest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vc_device_state_forget_log(vc_device_state *st) {
        free(st->head);
        free(st->replay);
        st->head = NULL;
        st->head_len = 0;
        st->replay = NULL;
        st->log_len = 0;
        st->n_events = 0;
}

void vc_device_state_done(vc_device_state *st) {
        vc_device_state_forget_log(st);
        vc_evaluation_done(&st->eval);
        st->has_eval = false;
}

size_t vc_device_state_log_offset(const vc_device_state *st) {
        return st->replay ? st->log_len : 0;
}

size_t vc_device_state_heap_size(const vc_device_state *st) {
        size_t n = st->head_len + (st->replay ? vc_replay_packed_size(st->replay) : 0);
        for (size_t i = 0; i < st->eval.n_findings; i++) {
                const vc_finding *f = &st->eval.findings[i];
                n += sizeof(*f) + strlen(f->expected) + strlen(f->actual) + strlen(f->explanation) + 3;
        }
        return n;
}

void vc_attest_result_done(vc_attest_result *r) {
        vc_evaluation_done(&r->evaluation);
}

static int fail(vc_attest_result *r, vc_attest_failure f, const char *fmt, ...) _printf_(3, 4);
static int fail(vc_attest_result *r, vc_attest_failure f, const char *fmt, ...) {
        va_list ap;
        r->trust = VC_TRUST_UNTRUSTED;
        r->failure = f;
        va_start(ap, fmt);
        vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
        va_end(ap);
        return 0;
}

/* TPM 2.0 Part 1, 36.6 (clock) and 36.7 (resetCount/restartCount): within a boot the
 * counts never go back and the clock only moves forward; an equal clock is a replayed
 * quote. A higher resetCount is a reboot. */
static bool fresh(const vc_device_state *st, const TPMS_CLOCK_INFO *ci, bool *reboot, char *why, size_t n) {
        *reboot = !st->has_last || ci->resetCount != st->reset_count;
        if (!st->has_last)
                return true;
        if (ci->resetCount < st->reset_count) {
                snprintf(why, n, "resetCount %u is lower than the last quote's %u", ci->resetCount, st->reset_count);
                return false;
        }
        if (ci->resetCount > st->reset_count)
                return true;
        if (ci->restartCount < st->restart_count) {
                snprintf(why, n, "restartCount %u is lower than the last quote's %u", ci->restartCount,
                         st->restart_count);
                return false;
        }
        if (ci->restartCount == st->restart_count && ci->clock <= st->clock) {
                snprintf(why, n, "clock %llu is not after the last quote's %llu (a replayed quote?)",
                         (unsigned long long) ci->clock, (unsigned long long) st->clock);
                return false;
        }
        return true;
}

/* The state's clock becomes this (verified, fresh) quote's. */
static void take_clock(vc_device_state *st, const vc_quote *q) {
        st->has_last = true;
        st->reset_count = q->attest.clockInfo.resetCount;
        st->restart_count = q->attest.clockInfo.restartCount;
        st->clock = q->attest.clockInfo.clock;
}

/* A quote that failed only in its PCR checks is still the TPM's own, made over this
 * challenge's nonce (signature, then nonce, are checked first): its clock is the device's,
 * and no quote made before it may be fresh any more (one held back from an earlier boot or
 * state, say). */
static bool genuine(const vc_quote_result *qr) {
        return qr->status == VC_QUOTE_VALID || qr->failed == VC_QUOTE_CHECK_PCR_MISSING ||
               qr->failed == VC_QUOTE_CHECK_PCR_DIGEST || qr->failed == VC_QUOTE_CHECK_EVENTLOG;
}

/* A genuine quote's clock becomes the device's. With new_boot (the quote came with, or
 * was owed, a whole log), the old boot's log goes too: the next challenge asks for the
 * whole log rather than continuing a boot the TPM left. */
static void take_clock_of(vc_device_state *st, const vc_quote_result *qr, bool new_boot) {
        if (new_boot)
                vc_device_state_forget_log(st);
        st->has_last = true;
        st->reset_count = qr->reset_count;
        st->restart_count = qr->restart_count;
        st->clock = qr->clock;
}

/* The log could not be used (none, or it did not parse or replay). If the quote is the
 * TPM's own over this challenge, its clock still counts, and after a reboot or restart
 * the old boot's log is of no more use: a quote held back from the old boot is not fresh
 * any more, whatever the new boot's agent sent. */
static int note_genuine(vc_device_state *st, const vc_quote *q, const vc_ak *ak, const vc_attest_input *in,
                        const vc_quote_policy *policy, bool new_boot) {
        vc_quote_result qr;
        int r = vc_quote_verify(q, ak, in->pcrs, in->nonce, in->nonce_len, NULL, 0, NULL, policy, &qr);
        if (r < 0)
                return r;
        if (genuine(&qr))
                take_clock_of(st, &qr, new_boot);
        return 0;
}

/* The quote alone (no log): 1 valid, 0 invalid with ret set, <0 error. */
static int quote_only(const vc_quote *q, const vc_ak *ak, const vc_attest_input *in, const vc_quote_policy *policy,
                      vc_attest_result *ret) {
        vc_quote_result qr;
        int r = vc_quote_verify(q, ak, in->pcrs, in->nonce, in->nonce_len, NULL, 0, NULL, policy, &qr);
        if (r < 0)
                return r;
        ret->quote = qr;
        if (qr.status != VC_QUOTE_VALID)
                return fail(ret, VC_ATTEST_QUOTE, "quote invalid (%s): %s", vc_quote_check_name(qr.failed), qr.reason);
        return 1;
}

/* One attestation under way: its input, and what it made so far (freed by attempt_done). */
typedef struct attempt {
        vc_device_state *st;
        const vc_ak *ak;
        const vc_attest_input *in;
        const vc_quote_policy *policy;
        vc_quote *q;
        bool reboot, restart; /* the quote's resetCount, or only its restartCount, changed */
        size_t have;          /* bytes of this boot's log the verifier holds */
        bool whole;           /* the input's log is the whole log (have == 0) */
        vc_hasher *h, *own_h;
        vc_eventlog *log;     /* the input's log, parsed (NULL: none sent) */
        vc_replay *rp;        /* the state's replay (a copy) with the log's events */
        size_t n_events;      /* events in this boot's log, with the new ones */
} attempt;

static void attempt_done(attempt *a) {
        vc_eventlog_free(a->log);
        free(a->rp);
        vc_quote_free(a->q);
        vc_hasher_free(a->own_h);
}

/* After a reboot or restart the agent answered the challenge as asked, from where the
 * verifier's copy of the old boot ends (or from the end of its own log, when the new one
 * is shorter): it cannot know the verifier saw another boot. If the quote is genuine,
 * that boot's log is of no more use: drop it so that the next challenge asks for the
 * whole log, and take the quote's clock, so that no quote of the old boot is fresh any
 * more. No verdict. */
static int new_boot_at_old_offset(const attempt *a, vc_attest_result *ret) {
        vc_device_state *st = a->st;
        uint32_t was = a->reboot ? st->reset_count : st->restart_count;
        int r = quote_only(a->q, a->ak, a->in, a->policy, ret);
        if (r < 0 || (r == 0 && !genuine(&ret->quote)))
                return r;
        take_clock_of(st, &ret->quote, true);
        if (r == 0)
                return 0; /* its PCR values were wrong: UNTRUSTED (quote) */
        if (a->restart)
                return fail(ret, VC_ATTEST_NEW_BOOT, "the TPM restarted (restartCount %u, was %u: a resume "
                            "from hibernation or sleep): the whole event log is needed",
                            ret->quote.restart_count, was);
        return fail(ret, VC_ATTEST_NEW_BOOT, "the device rebooted (resetCount %u, was %u): the whole event log "
                    "is needed", ret->quote.reset_count, was);
}

/* The log did not parse or replay: MALFORMED, and a genuine quote's clock counts. */
static int log_refused(const attempt *a, const char *what, const vc_error *err, vc_attest_result *ret) {
        char msg[400];
        vc_error_format(err, msg, sizeof(msg));
        int r = note_genuine(a->st, a->q, a->ak, a->in, a->policy, a->reboot || a->restart);
        return r < 0 ? r : fail(ret, VC_ATTEST_MALFORMED, "%s: %s", what, msg);
}

/* No PCR the challenge did not ask for (the golden set's, in its bank): each extra value
 * an agent quotes would make another evaluation key, and another evaluation held, for
 * nothing. A PCR left out is the golden set's `attestation` finding. ret->quote is the
 * verified quote's result. 1 none, 0 some (ret says which; the quote's clock is taken). */
static int check_asked(const attempt *a, const vc_golden *g, vc_attest_result *ret) {
        for (int b = 0, gb = vc_alg_index(g->bank); b < VC_NUM_ALGS; b++) {
                uint32_t asked = b == gb ? g->pcrs : 0, extra = ret->quote.quoted[b] & ~asked;
                if (!extra)
                        continue;
                take_clock_of(a->st, &ret->quote, a->whole);
                return fail(ret, VC_ATTEST_QUOTE, "quote selects %s PCRs (mask 0x%06x) that the challenge did not ask for",
                            vc_alg_at(b)->name, extra);
        }
        return 1;
}

/* The state's replay of this boot lacks a bank that this attestation needs: the device's
 * golden set changed since the boot's log was replayed (another bank, or pcr_values in
 * another bank), or the quote selects a bank the challenge did not ask for. Without the
 * whole log that bank cannot be replayed. A valid quote of the PCRs asked for: its clock
 * is taken and the log state dropped, so that the next challenge asks for the whole log
 * (NEED_LOG, not a verdict). 0 with ret set, <0 error. */
static int replay_lacks_banks(const attempt *a, const vc_golden *g, vc_attest_result *ret) {
        int r = quote_only(a->q, a->ak, a->in, a->policy, ret);
        if (r == 0 && genuine(&ret->quote))
                take_clock_of(a->st, &ret->quote, false);
        if (r > 0)
                r = check_asked(a, g, ret);
        if (r <= 0)
                return r;
        take_clock_of(a->st, &ret->quote, true);
        return fail(ret, VC_ATTEST_NEED_LOG, "this boot's log was replayed for another golden set's banks (golden set "
                    "%s version %lld): the whole event log is needed", g->name, (long long) g->version);
}

/* Whether rp replays every bank in banks (vc_alg_index() bits). */
static bool replay_covers(const vc_replay *rp, uint32_t banks) {
        for (int b = 0; b < VC_NUM_ALGS; b++)
                if ((banks & (1u << b)) && !vc_replay_covers(rp, vc_alg_at(b)->alg))
                        return false;
        return true;
}

/* Parses the input's log (the whole log, or a tail after the state's head) and replays
 * its events on a copy of the state's replay, in the banks the quote selects and the
 * golden set reads (vc_golden_banks()): no quote the verifier accepts attests the others.
 * Their data's digests are checked only when the golden set evaluates them: a reused
 * evaluation does not look. 1 done, 0 the log is refused or cannot be used (ret says
 * why), <0 error. */
static int read_log(attempt *a, const vc_golden *g, vc_attest_result *ret) {
        vc_device_state *st = a->st;
        const vc_attest_input *in = a->in;
        uint32_t banks = vc_golden_banks(g) | vc_quote_banks(a->q);
        vc_error err;
        int r;

        a->rp = malloc(sizeof(*a->rp));
        if (!a->rp)
                return -ENOMEM;
        a->n_events = st->n_events;
        if (a->whole) {
                vc_replay_init_banks(a->rp, banks);
                r = vc_eventlog_parse(in->eventlog, in->eventlog_len, &a->log, &err);
        } else {
                vc_replay_unpack(st->replay, a->rp);
                if (!replay_covers(a->rp, banks))
                        return replay_lacks_banks(a, g, ret);
                r = in->eventlog_len ? vc_eventlog_parse_tail(st->head, st->head_len, st->log_len, st->n_events,
                                                              in->eventlog, in->eventlog_len, &a->log, &err)
                                     : 0;
        }
        if (r == -EINVAL) {
                /* the state's head is not a first event: cannot be. Whatever went wrong,
                 * drop the log state so that the next challenge asks for the whole log
                 * rather than failing the same way for ever. */
                vc_device_state_forget_log(st);
                return -EIO;
        }
        if (r == -ENOMEM || r == -EIO)
                return r;
        if (r < 0)
                return log_refused(a, "event log", &err, ret);
        if (!a->log)
                return 1;
        /* all of a whole log's events; a tail's events[0] is the head, replayed before */
        if (!a->whole)
                a->rp->next_event = 1;
        r = vc_replay_update(a->h, a->log, a->rp, NULL, &err);
        if (r == -ENOMEM || r == -EIO)
                return r;
        if (r < 0)
                return log_refused(a, "event log replay", &err, ret);
        a->n_events = a->whole ? a->log->n_events : st->n_events + a->log->n_events - 1;
        a->rp->next_event = a->n_events;
        return 1;
}

/* The quote against the replayed log, and no PCR the challenge did not ask for. 1 valid,
 * 0 not (ret says why; a genuine quote's clock is taken), <0 error. */
static int check_quote(const attempt *a, const vc_golden *g, vc_attest_result *ret) {
        const vc_attest_input *in = a->in;
        int r = vc_quote_verify(a->q, a->ak, in->pcrs, in->nonce, in->nonce_len, NULL, 0, &a->rp->pcrs, a->policy,
                                &ret->quote);
        if (r < 0)
                return r;
        if (ret->quote.status != VC_QUOTE_VALID) {
                /* None of its log is kept. A genuine quote's clock is, and when it came with
                 * a whole log (a new boot), the old boot's log goes: the next challenge asks
                 * for the whole log again rather than continuing a boot the TPM left. */
                if (genuine(&ret->quote))
                        take_clock_of(a->st, &ret->quote, a->whole);
                return fail(ret, VC_ATTEST_QUOTE, "quote invalid (%s): %s", vc_quote_check_name(ret->quote.failed),
                            ret->quote.reason);
        }
        return check_asked(a, g, ret);
}

/* The golden set's evaluation of the whole log in hand: the data of the events it
 * evaluates is checked against their digests in its bank, the one the quote attests,
 * first (the evaluation believes only verified content). */
static int evaluate_log(const attempt *a, const vc_golden *g, vc_eval_cache *cache, const uint8_t key[32],
                        uint32_t attested, vc_evaluation *ev) {
        vc_event_check *checks = calloc(a->log->n_events, sizeof(*checks));
        int r = checks ? vc_golden_check_digests(a->h, g, a->log, checks) : -ENOMEM;
        if (r == 0)
                r = vc_golden_evaluate(g, a->log, checks, &a->rp->pcrs, attested, ev);
        if (r == 0 && cache)
                (void) vc_eval_cache_put(cache, key, ev); /* not cached: still the result */
        free(checks);
        return r;
}

/* Which evaluation: the device's own last one for the same key (*ret_own_hit), the
 * cache's, or the golden set's on the whole log in hand. 0 with *ev, -ENOENT when none
 * (a new state of this boot that nobody evaluated, and the log is not here), <0 error. */
static int find_evaluation(const attempt *a, const vc_golden *g, vc_eval_cache *cache, const uint8_t key[32],
                           uint32_t attested, vc_evaluation *ev, bool *ret_own_hit, vc_attest_result *ret) {
        const vc_device_state *st = a->st;
        int r;
        *ret_own_hit = st->has_eval && memcmp(st->eval_key, key, 32) == 0;
        if (*ret_own_hit) {
                ret->cache_hit = true;
                return vc_evaluation_copy(ev, &st->eval);
        }
        r = cache ? vc_eval_cache_lookup(cache, key, ev) : -ENOENT;
        ret->cache_hit = r == 0;
        if (r == -ENOENT && a->whole)
                r = evaluate_log(a, g, cache, key, attested, ev);
        return r;
}

/* The state advances, whatever the golden set says: the log's head (a whole log), the
 * replay, how far the log goes, the clock, and the evaluation with its key. 0, or -ENOMEM
 * with the state unchanged. */
static int advance_state(const attempt *a, const uint8_t key[32], bool own_hit, const vc_evaluation *ev) {
        vc_device_state *st = a->st;
        vc_replay_packed *packed = NULL;
        if ((a->whole || a->log) && vc_replay_pack(a->rp, &packed) < 0)
                return -ENOMEM;
        if (a->whole) {
                uint8_t *head = malloc(a->log->events[0].size);
                if (!head) {
                        free(packed);
                        return -ENOMEM;
                }
                memcpy(head, a->log->buf, a->log->events[0].size);
                free(st->head);
                st->head = head;
                st->head_len = a->log->events[0].size;
        }
        if (packed) {
                free(st->replay);
                st->replay = packed;
        }
        /* Padding after the last event (a copied log area) is not held: the next part of
         * the log is asked for from the end of the last event, and the padding sent again
         * with it is read under the same rule as a whole log's. */
        st->log_len = a->have + a->in->eventlog_len - (a->log ? a->log->padding : 0);
        st->n_events = a->n_events;
        take_clock(st, a->q);
        if (!own_hit) {
                vc_evaluation_done(&st->eval);
                st->has_eval = vc_evaluation_copy(&st->eval, ev) == 0;
                memcpy(st->eval_key, key, 32);
        }
        return 0;
}

/* A valid, fresh quote over the replayed log: the golden set's verdict, and the state
 * advances. 0 with ret set, <0 error. */
static int conclude(const attempt *a, const vc_golden *g, vc_eval_cache *cache, vc_attest_result *ret) {
        uint32_t attested = vc_quote_attested(&ret->quote, g->bank);
        vc_evaluation ev = { 0 };
        uint8_t key[32];
        bool own_hit;
        int r = vc_eval_key(a->h, g, &a->rp->pcrs, attested, key);
        if (r < 0)
                return r;
        r = find_evaluation(a, g, cache, key, attested, &ev, &own_hit, ret);
        if (r == -ENOENT) {
                take_clock(a->st, a->q);
                vc_device_state_forget_log(a->st);
                return fail(ret, VC_ATTEST_NEED_LOG, "no evaluation is held for this state of the boot (golden set %s "
                            "version %lld): the whole event log is needed", g->name, (long long) g->version);
        }
        if (r < 0)
                return r;
        r = advance_state(a, key, own_hit, &ev);
        if (r < 0) {
                vc_evaluation_done(&ev);
                return r;
        }
        ret->evaluation = ev;
        if (ev.trust == VC_TRUST_TRUSTED) {
                ret->trust = VC_TRUST_TRUSTED;
                ret->failure = VC_ATTEST_OK;
                return 0;
        }
        return fail(ret, VC_ATTEST_GOLDEN, "golden set %s version %lld: %zu finding%s, first: %s", g->name,
                    (long long) g->version, ev.n_findings, ev.n_findings == 1 ? "" : "s",
                    ev.n_findings ? ev.findings[0].explanation : "?");
}

int vc_attest_verify(vc_device_state *st, const vc_ak *ak, const vc_golden *g, vc_eval_cache *cache,
                     vc_hasher *hasher, const vc_quote_policy *policy, const vc_attest_input *in,
                     vc_attest_result *ret) {
        _cleanup_(attempt_done) attempt a = { .st = st, .ak = ak, .in = in, .policy = policy, .h = hasher };
        vc_error err;
        char msg[400], why[200];
        int r;

        *ret = (vc_attest_result) { 0 };
        if (vc_quote_parse(in->attest, in->attest_len, in->signature, in->signature_len, &a.q, &err) < 0)
                return fail(ret, VC_ATTEST_MALFORMED, "quote: %s", vc_error_format(&err, msg, sizeof(msg)));
        if (!fresh(st, &a.q->attest.clockInfo, &a.reboot, why, sizeof(why))) {
                /* checked again after the signature: a forged clock only fails here */
                r = quote_only(a.q, ak, in, policy, ret);
                if (r <= 0)
                        return r;
                ret->quote = (vc_quote_result) { 0 };
                return fail(ret, VC_ATTEST_STALE, "stale quote: %s", why);
        }
        ret->reboot = a.reboot;
        /* A TPM Restart (restartCount up, resetCount not) is a resume from hibernation,
         * PCRs reset and a new log, or from sleep, PCRs and log kept: the quote cannot tell
         * which, so the whole log decides, as after a reboot. */
        a.restart = !a.reboot && a.q->attest.clockInfo.restartCount != st->restart_count;

        /* The log continues this boot's replay, or (after a reboot or restart, or when the
         * verifier holds none) starts from scratch. Work on copies; the state changes only
         * once everything checked out. */
        a.have = a.reboot || a.restart ? 0 : vc_device_state_log_offset(st);
        if ((a.reboot || a.restart) && in->eventlog_offset)
                return new_boot_at_old_offset(&a, ret);
        if (in->eventlog_offset != a.have)
                return fail(ret, VC_ATTEST_LOG_OFFSET, "event log sent from offset %zu, the verifier holds %zu bytes%s",
                            in->eventlog_offset, a.have, a.reboot ? " (new boot: the whole log is needed)" : "");
        a.whole = a.have == 0;
        if (a.whole && !in->eventlog_len) {
                r = note_genuine(st, a.q, ak, in, policy, a.reboot || a.restart);
                return r < 0 ? r : fail(ret, VC_ATTEST_MALFORMED, "no event log for a new boot");
        }
        if (!a.h && vc_hasher_new(&a.own_h) < 0)
                return -ENOMEM;
        if (!a.h)
                a.h = a.own_h;
        r = read_log(&a, g, ret);
        if (r > 0)
                r = check_quote(&a, g, ret);
        if (r > 0)
                r = conclude(&a, g, cache, ret);
        return r;
}
