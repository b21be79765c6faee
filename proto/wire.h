/* SPDX-License-Identifier: Apache-2.0 */
/* Messages of the agent channel as framed bytes (proto/frame.h's header, then the message):
 * every wire byte either side sends is made here. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vouch.pb-c.h"

/* An AgentMessage (agent -> verifier) or a VerifierMessage (verifier -> agent), packed by
 * protobuf-c after its frame header. *ret is malloc'ed (caller frees) and *ret_len counts the
 * header; both are written only on success. -E2BIG when the packed message is longer than
 * max_frame, -ENOMEM. */
int vw_frame_agent_message(const Vouch__V1__AgentMessage *m, size_t max_frame, uint8_t **ret, size_t *ret_len);
int vw_frame_verifier_message(const Vouch__V1__VerifierMessage *m, size_t max_frame, uint8_t **ret,
                              size_t *ret_len);

/* VerifierMessage{verdict: VerdictNotice{verdict: SignedVerdict}} around signed_verdict, a
 * serialized SignedVerdict as the store keeps it, without decoding and packing it again: the
 * same bytes protobuf-c packs for the decoded record (test/unit/test-frame.c checks it).
 * Ownership and errors as above. */
int vw_frame_verdict_notice(const uint8_t *signed_verdict, size_t len, size_t max_frame, uint8_t **ret,
                            size_t *ret_len);
