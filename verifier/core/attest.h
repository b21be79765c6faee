/* SPDX-License-Identifier: Apache-2.0 */
/* One attestation of an enrolled device, pure: the quote over the verifier's nonce, the
 * PCR values, the new part of the boot's event log, checked against the per-device state
 * (the boot's log and replay so far, the last quote's clock) and the golden set. The
 * server owns the state and the clock; nothing here does I/O. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "golden.h"
#include "quote.h"
#include "replay.h"

typedef struct vc_device_state {
        /* From the last accepted quote (persisted by the server): */
        bool has_last;
        uint32_t reset_count, restart_count;
        uint64_t clock;
        /* This boot (memory): the log received so far, replayed and digest-checked. Kept as
         * bytes; each attestation parses them again (a few us) rather than keeping the
         * parsed events (184 bytes each) between attestations. */
        uint8_t *log_buf;
        size_t log_len;
        vc_replay_packed *replay;       /* its replay so far (NULL: nothing replayed) */
        vc_event_check *checks;
        size_t cap_checks;
} vc_device_state;

void vc_device_state_done(vc_device_state *st);
/* The offset of the event log the verifier already holds for this boot (0 after a reboot
 * or before the first attestation): what the next challenge asks the agent to send from. */
size_t vc_device_state_log_offset(const vc_device_state *st);

typedef struct vc_attest_input {
        const uint8_t *attest, *signature;
        size_t attest_len, signature_len;
        const vc_pcr_set *pcrs;
        const uint8_t *nonce;           /* the challenge's nonce (the verifier's, not the agent's echo) */
        size_t nonce_len;
        size_t eventlog_offset;         /* where eventlog starts in the boot's log */
        const uint8_t *eventlog;
        size_t eventlog_len;
} vc_attest_input;

typedef enum vc_attest_failure {
        VC_ATTEST_OK = 0,
        VC_ATTEST_MALFORMED,      /* quote, signature or event log does not parse */
        VC_ATTEST_QUOTE,          /* vc_quote_verify said invalid (see quote.failed) */
        VC_ATTEST_STALE,          /* clock/resetCount/restartCount went backwards or did not advance: replay */
        VC_ATTEST_LOG_OFFSET,     /* the log does not start where the verifier's copy ends */
        VC_ATTEST_NEW_BOOT,       /* a valid quote from a new boot, with the log sent from the old
                                   * boot's offset (as challenged): the old boot's log is dropped, so
                                   * the next challenge asks for the whole log. Not a verdict. */
        VC_ATTEST_GOLDEN,         /* the golden set rejects the log (see evaluation) */
} vc_attest_failure;

typedef struct vc_attest_result {
        vc_trust trust;                 /* zeroed: UNKNOWN, never trusted */
        vc_attest_failure failure;
        char reason[512];
        bool reboot;                    /* the quote started a new boot (resetCount changed) */
        bool cache_hit;
        vc_quote_result quote;
        vc_evaluation evaluation;       /* owned; vc_attest_result_done() frees it */
} vc_attest_result;

void vc_attest_result_done(vc_attest_result *r);

/* Verifies one attestation. On TRUSTED or UNTRUSTED-by-golden the state advances (the new
 * log bytes are kept, the clock recorded); on any other failure the state is left exactly
 * as it was, so a bad or replayed message cannot corrupt it. A reboot (resetCount
 * changed) discards the previous boot's log: the agent must send its log from offset 0.
 * Returns 0 with *ret filled; negative errno only when it could not evaluate. */
int vc_attest_verify(vc_device_state *st, const vc_ak *ak, const vc_golden *g, vc_eval_cache *cache,
                     const vc_quote_policy *policy, const vc_attest_input *in, vc_attest_result *ret);
