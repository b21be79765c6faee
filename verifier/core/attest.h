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
        /* This boot (memory), O(1) in the log's size: how far the log has been replayed and
         * digest-checked, its first event (the Spec ID event, which says how to parse what
         * follows), the replay so far and the last evaluation with its key. The log's bytes
         * are not kept: an attestation that needs the whole log again (its events changed
         * the PCRs to a state no evaluation is known for) asks for it (VC_ATTEST_NEED_LOG). */
        size_t log_len;                 /* bytes of this boot's log replayed (0: none held) */
        size_t n_events;                /* events in them, the first included */
        uint8_t *head;                  /* the log's first event */
        size_t head_len;
        vc_replay_packed *replay;       /* its replay so far, of the banks the quote selected and
                                         * the golden set read (vc_golden_banks()) */
        bool has_eval;
        uint8_t eval_key[32];           /* vc_eval_key() of the state last evaluated */
        vc_evaluation eval;             /* and what the golden set said of it */
} vc_device_state;

void vc_device_state_done(vc_device_state *st);
/* The offset of the event log the verifier already holds for this boot (0 after a reboot,
 * before the first attestation, or when the whole log is needed again): what the next
 * challenge asks the agent to send from. */
size_t vc_device_state_log_offset(const vc_device_state *st);
/* Drops this boot's log state (the clock stays): the next challenge asks for the whole log. */
void vc_device_state_forget_log(vc_device_state *st);
/* Heap bytes the state holds (for memory accounting and tests). */
size_t vc_device_state_heap_size(const vc_device_state *st);

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
        VC_ATTEST_NEED_LOG,       /* a valid, fresh quote whose state (new events of this boot, or
                                   * another golden set) has no evaluation the verifier holds: the
                                   * log state is dropped so that the next challenge asks for the
                                   * whole log (the clock advances). Not a verdict. */
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
 * events replayed, the clock recorded, the evaluation remembered); on any other failure
 * the state is left exactly as it was, so a bad or replayed message cannot corrupt it,
 * except NEED_LOG (above). A reboot (resetCount changed) discards the previous boot's log
 * state: the agent must send its log from offset 0.
 * The evaluation: the device's own last one when the key (golden set, attested PCR values)
 * is the same; else the cache's; else, with the whole log in hand (sent from offset 0),
 * the golden set's, put in the cache; else NEED_LOG.
 * The log is replayed in the banks the quote selects and the golden set reads, and its
 * data checked against its digests in the set's bank alone (vc_golden_check_digests()):
 * the other banks are not attested. When the state was replayed for other banks (the
 * device's golden set changed to one that reads another bank), a valid quote gets
 * NEED_LOG: that bank cannot be replayed from a part of the log.
 * h: a hasher to use (NULL: one is made for the call). cache may be NULL.
 * Returns 0 with *ret filled; negative errno only when it could not evaluate. */
int vc_attest_verify(vc_device_state *st, const vc_ak *ak, const vc_golden *g, vc_eval_cache *cache,
                     vc_hasher *h, const vc_quote_policy *policy, const vc_attest_input *in,
                     vc_attest_result *ret);
