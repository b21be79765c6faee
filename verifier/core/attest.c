/* SPDX-License-Identifier: Apache-2.0 */
#include "attest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vc_device_state_done(vc_device_state *st) {
        free(st->log_buf);
        free(st->checks);
        st->log_buf = NULL;
        st->log_len = 0;
        st->checks = NULL;
        st->cap_checks = 0;
        free(st->replay);
        st->replay = NULL;
}

size_t vc_device_state_log_offset(const vc_device_state *st) {
        return st->log_buf ? st->log_len : 0;
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

int vc_attest_verify(vc_device_state *st, const vc_ak *ak, const vc_golden *g, vc_eval_cache *cache,
                     const vc_quote_policy *policy, const vc_attest_input *in, vc_attest_result *ret) {
        vc_quote *q = NULL;
        vc_error err;
        char msg[400], why[200];
        bool reboot;
        int r;

        *ret = (vc_attest_result) { 0 };
        if (vc_quote_parse(in->attest, in->attest_len, in->signature, in->signature_len, &q, &err) < 0)
                return fail(ret, VC_ATTEST_MALFORMED, "quote: %s", vc_error_format(&err, msg, sizeof(msg)));
        if (!fresh(st, &q->attest.clockInfo, &reboot, why, sizeof(why))) {
                /* checked again after the signature: a forged clock only fails here */
                vc_quote_result qr;
                r = vc_quote_verify_ex(q, ak, in->pcrs, in->nonce, in->nonce_len, NULL, 0, NULL, policy, &qr);
                vc_quote_free(q);
                if (r < 0)
                        return r;
                if (qr.status != VC_QUOTE_VALID) {
                        ret->quote = qr;
                        return fail(ret, VC_ATTEST_QUOTE, "quote invalid (%s): %s", vc_quote_check_name(qr.failed),
                                    qr.reason);
                }
                return fail(ret, VC_ATTEST_STALE, "stale quote: %s", why);
        }
        ret->reboot = reboot;

        /* The log continues this boot's copy, or (after a reboot) starts from scratch.
         * Work on a candidate; the state changes only once everything checked out. */
        size_t have = reboot ? 0 : vc_device_state_log_offset(st);
        if (reboot && in->eventlog_offset && in->eventlog_offset == vc_device_state_log_offset(st)) {
                /* The agent answered the challenge as asked, from where the verifier's copy of
                 * the old boot ends: it cannot know the verifier saw another boot. If the quote
                 * is genuine, that boot's log is of no more use; drop it so that the next
                 * challenge asks for the whole log. Nothing else changes. */
                vc_quote_result qr;
                r = vc_quote_verify_ex(q, ak, in->pcrs, in->nonce, in->nonce_len, NULL, 0, NULL, policy, &qr);
                vc_quote_free(q);
                if (r < 0)
                        return r;
                if (qr.status != VC_QUOTE_VALID) {
                        ret->quote = qr;
                        return fail(ret, VC_ATTEST_QUOTE, "quote invalid (%s): %s", vc_quote_check_name(qr.failed),
                                    qr.reason);
                }
                free(st->log_buf);
                st->log_buf = NULL;
                st->log_len = 0;
                free(st->checks);
                st->checks = NULL;
                st->cap_checks = 0;
                free(st->replay);
                st->replay = NULL;
                return fail(ret, VC_ATTEST_NEW_BOOT, "the device rebooted (resetCount %u, was %u): the whole event log "
                            "is needed", qr.reset_count, st->reset_count);
        }
        if (in->eventlog_offset != have) {
                vc_quote_free(q);
                return fail(ret, VC_ATTEST_LOG_OFFSET, "event log sent from offset %zu, the verifier holds %zu bytes%s",
                            in->eventlog_offset, have, reboot ? " (new boot: the whole log is needed)" : "");
        }
        vc_eventlog *log = NULL;
        size_t old_events = 0;
        bool same_boot = !reboot && st->log_buf;
        if (!same_boot) {
                if (!in->eventlog_len) {
                        vc_quote_free(q);
                        return fail(ret, VC_ATTEST_MALFORMED, "no event log for a new boot");
                }
                r = vc_eventlog_parse(in->eventlog, in->eventlog_len, &log, &err);
        } else {
                /* The state keeps this boot's log as bytes: parsed again here (they parsed
                 * when they came), then the new part appended, all on a copy. */
                r = vc_eventlog_parse(st->log_buf, st->log_len, &log, &err);
                if (r == 0 && log->n_events != st->cap_checks)
                        r = -EIO; /* cannot be: the same bytes parse to the same events */
                if (r < 0) {
                        vc_eventlog_free(log);
                        vc_quote_free(q);
                        return r == -ENOMEM ? r : -EIO;
                }
                old_events = log->n_events;
                r = vc_eventlog_append(log, in->eventlog, in->eventlog_len, &err);
        }
        if (r < 0) {
                vc_eventlog_free(log);
                vc_quote_free(q);
                if (r == -ENOMEM)
                        return r;
                return fail(ret, VC_ATTEST_MALFORMED, "event log: %s", vc_error_format(&err, msg, sizeof(msg)));
        }
        /* Replay the new events on copies of the replay state and the digest checks. */
        vc_replay *rp = malloc(sizeof(*rp));
        vc_event_check *checks = calloc(log->n_events ? log->n_events : 1, sizeof(*checks));
        vc_hasher *h = NULL;
        if (!rp || !checks || vc_hasher_new(&h) < 0) {
                r = -ENOMEM;
        } else {
                if (same_boot) {
                        vc_replay_unpack(st->replay, rp);
                        memcpy(checks, st->checks, old_events * sizeof(*checks));
                } else {
                        vc_replay_init(rp);
                }
                r = vc_replay_update(h, log, rp, checks, &err);
                if (r == 0)
                        r = vc_quote_verify_ex(q, ak, in->pcrs, in->nonce, in->nonce_len, NULL, 0, &rp->pcrs, policy,
                                               &ret->quote);
        }
        vc_hasher_free(h);
        if (r < 0 || ret->quote.status != VC_QUOTE_VALID) {
                /* roll back: nothing of this attestation is kept */
                vc_eventlog_free(log);
                free(checks);
                free(rp);
                vc_quote_free(q);
                if (r == -ENOMEM || r == -EIO)
                        return r;
                if (r < 0)
                        return fail(ret, VC_ATTEST_MALFORMED, "event log replay: %s",
                                    vc_error_format(&err, msg, sizeof(msg)));
                return fail(ret, VC_ATTEST_QUOTE, "quote invalid (%s): %s", vc_quote_check_name(ret->quote.failed),
                            ret->quote.reason);
        }

        /* Valid and fresh: the state advances, whatever the golden set says. The replay
         * is kept packed; unchanged when no event was new. */
        vc_replay_packed *packed = NULL;
        if ((!same_boot || log->n_events != old_events || !st->replay) && vc_replay_pack(rp, &packed) < 0) {
                vc_eventlog_free(log);
                free(checks);
                free(rp);
                vc_quote_free(q);
                return -ENOMEM;
        }
        if (packed) {
                free(st->replay);
                st->replay = packed;
        }
        /* the bytes are kept, the parsed events only for this attestation */
        free(st->log_buf);
        st->log_buf = log->buf;
        st->log_len = log->len;
        free(st->checks);
        st->checks = checks;
        st->cap_checks = log->n_events;
        st->has_last = true;
        st->reset_count = q->attest.clockInfo.resetCount;
        st->restart_count = q->attest.clockInfo.restartCount;
        st->clock = q->attest.clockInfo.clock;
        vc_quote_free(q);

        uint32_t attested = vc_quote_attested(&ret->quote, g->bank);
        r = cache ? vc_golden_evaluate_cached(cache, g, log, st->checks, &rp->pcrs, attested, &ret->evaluation,
                                              &ret->cache_hit)
                  : vc_golden_evaluate(g, log, st->checks, &rp->pcrs, attested, &ret->evaluation);
        free(rp);
        log->buf = NULL; /* now the state's */
        vc_eventlog_free(log);
        if (r < 0)
                return r;
        if (ret->evaluation.trust == VC_TRUST_TRUSTED) {
                ret->trust = VC_TRUST_TRUSTED;
                ret->failure = VC_ATTEST_OK;
                return 0;
        }
        return fail(ret, VC_ATTEST_GOLDEN, "golden set %s version %lld: %zu finding%s, first: %s", g->name,
                    (long long) g->version, ret->evaluation.n_findings, ret->evaluation.n_findings == 1 ? "" : "s",
                    ret->evaluation.n_findings ? ret->evaluation.findings[0].explanation : "?");
}
