/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's side of the protocol, one implementation for vouch-agent and for the simulated
 * agents of bench/vouch-loadgen.c: what the verifier's messages ask for in TPM terms, and the
 * answers as framed bytes (proto/wire.h). No I/O and no TPM: each program sends the bytes
 * over its own connection and gets the values from its own TPM. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_tpm2_types.h>

#include "vouch.pb-c.h"

#define VA_MAX_VERIFIER_FRAME (1u << 20) /* the largest frame taken from the verifier */
#define VA_MAX_AGENT_FRAME (64u << 20)   /* the largest frame sent (an event log is at most 32 MiB) */
#define VA_MAX_BANKS 4u                  /* PCR banks one challenge may select */
#define VA_MAX_NONCE 64u
#define VA_PCRS 24u                      /* PCRs 0..23 (PC Client) */

/* The PCRs a QuoteChallenge selects, as TPM2_Quote and TPM2_PCR_Read take them (three bytes
 * of bits per bank; PCR numbers over 23 are left out). -EBADMSG when the challenge selects no
 * bank or more than VA_MAX_BANKS, or its nonce is longer than VA_MAX_NONCE. */
int va_challenge_selection(const Vouch__V1__QuoteChallenge *ch, TPML_PCR_SELECTION *ret);

/* Where the event log sent with a quote starts: at the challenge's offset (the verifier holds
 * the log up to there), or at 0 when the offset is past the end of this log (the verifier's
 * copy is of another boot). */
size_t va_eventlog_from(uint64_t offset, size_t log_len);

/* The credential challenge as TPM2_ActivateCredential takes it. -EBADMSG when either part
 * does not unmarshal. */
int va_activate_challenge_parse(const Vouch__V1__ActivateChallenge *c, TPM2B_ID_OBJECT *ret_blob,
                                TPM2B_ENCRYPTED_SECRET *ret_secret);

/* The pcrs of a QuoteAnswer: banks in the order added, each with its PCRs in the order added
 * (ascending, as the quote's digest takes them). The values are not copied: they must outlive
 * the packing of the answer. */
typedef struct va_answer_pcrs {
        Vouch__V1__PcrBank banks[VA_MAX_BANKS], *bankp[VA_MAX_BANKS];
        Vouch__V1__PcrBank__ValuesEntry entries[VA_MAX_BANKS][VA_PCRS], *entryp[VA_MAX_BANKS][VA_PCRS];
        size_t n_banks;
} va_answer_pcrs;

void va_answer_pcrs_init(va_answer_pcrs *p);
/* Starts the next bank. -E2BIG past VA_MAX_BANKS. */
int va_answer_pcrs_bank(va_answer_pcrs *p, uint32_t hash_alg);
/* Adds a PCR's value to the bank started last. -EINVAL with no bank started or a PCR over
 * 23, -E2BIG when the bank has all its PCRs. */
int va_answer_pcrs_value(va_answer_pcrs *p, uint32_t pcr, const uint8_t *value, size_t size);
/* Points a->pcrs at the banks (p must outlive the packing of a). */
void va_answer_pcrs_put(va_answer_pcrs *p, Vouch__V1__QuoteAnswer *a);

/* An AgentMessage framed for the verifier (at most VA_MAX_AGENT_FRAME), as
 * vw_frame_agent_message(): *ret malloc'ed, the caller frees; -E2BIG, -ENOMEM. */
int va_frame(const Vouch__V1__AgentMessage *m, uint8_t **ret, size_t *ret_len);
/* The framed answer to a credential challenge: the secret TPM2_ActivateCredential recovered.
 * The buffer holds the secret: the caller cleanses it before freeing. */
int va_frame_activate_answer(const uint8_t *secret, size_t len, uint8_t **ret, size_t *ret_len);
