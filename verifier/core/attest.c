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

static int quote_only(vc_quote *q, const vc_ak *ak, const vc_attest_input *in, const vc_quote_policy *policy,
                      vc_attest_result *ret) {
        vc_quote_result qr;
        int r = vc_quote_verify(q, ak, in->pcrs, in->nonce, in->nonce_len, NULL, 0, NULL, policy, &qr);
        vc_quote_free(q);
        if (r < 0)
                return r;
        ret->quote = qr;
        if (qr.status != VC_QUOTE_VALID)
                return fail(ret, VC_ATTEST_QUOTE, "quote invalid (%s): %s", vc_quote_check_name(qr.failed), qr.reason);
        return 1;
}

int vc_attest_verify(vc_device_state *st, const vc_ak *ak, const vc_golden *g, vc_eval_cache *cache,
                     vc_hasher *hasher, const vc_quote_policy *policy, const vc_attest_input *in,
                     vc_attest_result *ret) {
        vc_quote *q = NULL;
        vc_eventlog *log = NULL;
        vc_event_check *checks = NULL;
        vc_replay *rp = NULL;
        vc_hasher *own = NULL, *h = hasher;
        vc_replay_packed *packed = NULL;
        vc_error err;
        char msg[400], why[200];
        uint8_t key[32];
        bool reboot;
        int r;

        *ret = (vc_attest_result) { 0 };
        if (vc_quote_parse(in->attest, in->attest_len, in->signature, in->signature_len, &q, &err) < 0)
                return fail(ret, VC_ATTEST_MALFORMED, "quote: %s", vc_error_format(&err, msg, sizeof(msg)));
        if (!fresh(st, &q->attest.clockInfo, &reboot, why, sizeof(why))) {
                /* checked again after the signature: a forged clock only fails here */
                r = quote_only(q, ak, in, policy, ret);
                if (r <= 0)
                        return r;
                ret->quote = (vc_quote_result) { 0 };
                return fail(ret, VC_ATTEST_STALE, "stale quote: %s", why);
        }
        ret->reboot = reboot;
        /* A TPM Restart (restartCount up, resetCount not) is a resume from hibernation,
         * PCRs reset and a new log, or from sleep, PCRs and log kept: the quote cannot tell
         * which, so the whole log decides, as after a reboot. */
        bool restart = !reboot && q->attest.clockInfo.restartCount != st->restart_count;

        /* The log continues this boot's replay, or (after a reboot or restart, or when the
         * verifier holds none) starts from scratch. Work on copies; the state changes only
         * once everything checked out. */
        size_t have = reboot || restart ? 0 : vc_device_state_log_offset(st);
        if ((reboot || restart) && in->eventlog_offset) {
                /* The agent answered the challenge as asked, from where the verifier's copy of
                 * the old boot ends (or from the end of its own log, when the new one is
                 * shorter): it cannot know the verifier saw another boot. If the quote is
                 * genuine, that boot's log is of no more use: drop it so that the next
                 * challenge asks for the whole log, and take the quote's clock, so that no
                 * quote of the old boot is fresh any more. No verdict. */
                uint32_t was = reboot ? st->reset_count : st->restart_count;
                r = quote_only(q, ak, in, policy, ret);
                if (r < 0 || (r == 0 && !genuine(&ret->quote)))
                        return r;
                take_clock_of(st, &ret->quote, true);
                if (r == 0)
                        return 0; /* its PCR values were wrong: UNTRUSTED (quote) */
                if (restart)
                        return fail(ret, VC_ATTEST_NEW_BOOT, "the TPM restarted (restartCount %u, was %u: a resume "
                                    "from hibernation or sleep): the whole event log is needed",
                                    ret->quote.restart_count, was);
                return fail(ret, VC_ATTEST_NEW_BOOT, "the device rebooted (resetCount %u, was %u): the whole event log "
                            "is needed", ret->quote.reset_count, was);
        }
        if (in->eventlog_offset != have) {
                vc_quote_free(q);
                return fail(ret, VC_ATTEST_LOG_OFFSET, "event log sent from offset %zu, the verifier holds %zu bytes%s",
                            in->eventlog_offset, have, reboot ? " (new boot: the whole log is needed)" : "");
        }
        bool whole = have == 0;
        if (whole && !in->eventlog_len) {
                r = note_genuine(st, q, ak, in, policy, reboot || restart);
                vc_quote_free(q);
                return r < 0 ? r : fail(ret, VC_ATTEST_MALFORMED, "no event log for a new boot");
        }
        if (!h && vc_hasher_new(&own) < 0) {
                vc_quote_free(q);
                return -ENOMEM;
        }
        if (!h)
                h = own;
        rp = malloc(sizeof(*rp));
        if (!rp) {
                r = -ENOMEM;
                goto out;
        }
        size_t n_events = st->n_events;
        if (whole) {
                vc_replay_init(rp);
                r = vc_eventlog_parse(in->eventlog, in->eventlog_len, &log, &err);
        } else {
                vc_replay_unpack(st->replay, rp);
                r = in->eventlog_len ? vc_eventlog_parse_tail(st->head, st->head_len, st->log_len, st->n_events,
                                                              in->eventlog, in->eventlog_len, &log, &err)
                                     : 0;
        }
        if (r < 0) {
                if (r == -EINVAL) {
                        /* the state's head is not a first event: cannot be. Whatever went
                         * wrong, drop the log state so that the next challenge asks for the
                         * whole log rather than failing the same way for ever. */
                        vc_device_state_forget_log(st);
                        r = -EIO;
                }
                if (r == -ENOMEM || r == -EIO)
                        goto out;
                vc_error_format(&err, msg, sizeof(msg));
                r = note_genuine(st, q, ak, in, policy, reboot || restart);
                if (r == 0)
                        r = fail(ret, VC_ATTEST_MALFORMED, "event log: %s", msg);
                goto out;
        }
        if (log) {
                /* Replay the new events (all of them for a whole log; a tail's events[0] is
                 * the head, replayed before). Their data's digests are checked only when the
                 * golden set evaluates them (below): a reused evaluation does not look. */
                if (!whole)
                        rp->next_event = 1;
                r = vc_replay_update(h, log, rp, NULL, &err);
                if (r == -ENOMEM || r == -EIO)
                        goto out;
                if (r < 0) {
                        vc_error_format(&err, msg, sizeof(msg));
                        r = note_genuine(st, q, ak, in, policy, reboot || restart);
                        if (r == 0)
                                r = fail(ret, VC_ATTEST_MALFORMED, "event log replay: %s", msg);
                        goto out;
                }
                n_events = whole ? log->n_events : st->n_events + log->n_events - 1;
                rp->next_event = n_events;
        }
        r = vc_quote_verify(q, ak, in->pcrs, in->nonce, in->nonce_len, NULL, 0, &rp->pcrs, policy, &ret->quote);
        if (r < 0)
                goto out;
        if (ret->quote.status != VC_QUOTE_VALID) {
                /* None of its log is kept. A genuine quote's clock is, and when it came with
                 * a whole log (a new boot), the old boot's log goes: the next challenge asks
                 * for the whole log again rather than continuing a boot the TPM left. */
                if (genuine(&ret->quote))
                        take_clock_of(st, &ret->quote, whole);
                r = fail(ret, VC_ATTEST_QUOTE, "quote invalid (%s): %s", vc_quote_check_name(ret->quote.failed),
                         ret->quote.reason);
                goto out;
        }
        /* No PCR the challenge did not ask for (the golden set's, in its bank): each extra
         * value an agent quotes would make another evaluation key, and another evaluation
         * held, for nothing. A PCR left out is the golden set's `attestation` finding. */
        for (int b = 0, gb = vc_alg_index(g->bank); b < VC_NUM_ALGS; b++) {
                uint32_t asked = b == gb ? g->pcrs : 0, extra = ret->quote.quoted[b] & ~asked;
                if (!extra)
                        continue;
                take_clock_of(st, &ret->quote, whole);
                r = fail(ret, VC_ATTEST_QUOTE, "quote selects %s PCRs (mask 0x%06x) that the challenge did not ask for",
                         vc_alg_at(b)->name, extra);
                goto out;
        }

        /* Valid and fresh. Which evaluation: the device's own last one for the same key,
         * the cache's, or the golden set's on the whole log in hand. */
        uint32_t attested = vc_quote_attested(&ret->quote, g->bank);
        r = vc_eval_key(h, g, &rp->pcrs, attested, key);
        if (r < 0)
                goto out;
        vc_evaluation ev = { 0 };
        bool own_hit = st->has_eval && memcmp(st->eval_key, key, 32) == 0;
        if (own_hit) {
                r = vc_evaluation_copy(&ev, &st->eval);
                ret->cache_hit = true;
        } else {
                r = cache ? vc_eval_cache_lookup(cache, key, &ev) : -ENOENT;
                ret->cache_hit = r == 0;
                if (r == -ENOENT && whole) {
                        /* evaluated here: the whole log is in hand; check every event's data
                         * against its digests first (the evaluation believes only verified
                         * content) */
                        checks = calloc(log->n_events, sizeof(*checks));
                        r = checks ? 0 : -ENOMEM;
                        for (size_t i = 0; r == 0 && i < log->n_events; i++)
                                r = vc_event_check_digests(h, &log->events[i], &checks[i]);
                        if (r == 0)
                                r = vc_golden_evaluate(g, log, checks, &rp->pcrs, attested, &ev);
                        if (r == 0 && cache)
                                (void) vc_eval_cache_put(cache, key, &ev); /* not cached: still the result */
                }
        }
        if (r == -ENOENT) {
                /* a new state of this boot that nobody evaluated, and the log is not here */
                take_clock(st, q);
                vc_device_state_forget_log(st);
                r = fail(ret, VC_ATTEST_NEED_LOG, "no evaluation is held for this state of the boot (golden set %s "
                         "version %lld): the whole event log is needed", g->name, (long long) g->version);
                goto out;
        }
        if (r < 0)
                goto out;

        /* The state advances, whatever the golden set says. */
        if ((whole || log) && vc_replay_pack(rp, &packed) < 0) {
                vc_evaluation_done(&ev);
                r = -ENOMEM;
                goto out;
        }
        if (whole) {
                uint8_t *head = malloc(log->events[0].size);
                if (!head) {
                        vc_evaluation_done(&ev);
                        r = -ENOMEM;
                        goto out;
                }
                memcpy(head, log->buf, log->events[0].size);
                free(st->head);
                st->head = head;
                st->head_len = log->events[0].size;
        }
        if (packed) {
                free(st->replay);
                st->replay = packed;
                packed = NULL;
        }
        /* Padding after the last event (a copied log area) is not held: the next part of
         * the log is asked for from the end of the last event, and the padding sent again
         * with it is read under the same rule as a whole log's. */
        st->log_len = have + in->eventlog_len - (log ? log->padding : 0);
        st->n_events = n_events;
        take_clock(st, q);
        if (!own_hit) {
                vc_evaluation_done(&st->eval);
                st->has_eval = vc_evaluation_copy(&st->eval, &ev) == 0;
                memcpy(st->eval_key, key, 32);
        }
        ret->evaluation = ev;
        if (ev.trust == VC_TRUST_TRUSTED) {
                ret->trust = VC_TRUST_TRUSTED;
                ret->failure = VC_ATTEST_OK;
                r = 0;
                goto out;
        }
        r = fail(ret, VC_ATTEST_GOLDEN, "golden set %s version %lld: %zu finding%s, first: %s", g->name,
                 (long long) g->version, ev.n_findings, ev.n_findings == 1 ? "" : "s",
                 ev.n_findings ? ev.findings[0].explanation : "?");
out:
        vc_eventlog_free(log);
        free(checks);
        free(rp);
        free(packed);
        vc_quote_free(q);
        vc_hasher_free(own);
        return r;
}
