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

#define VW_MAX_DEVICE_CERTIFICATES 8u /* VerdictNotice.device_certificates: the leaf and its issuers */

/* The same with VerdictNotice.device_certificates (issue 19): n_certs DER certificates
 * (certs[i] of cert_lens[i] bytes, the device key's first) after the verdict, as
 * protobuf-c packs them. vw_frame_verdict_notice() is this with none. Ownership and errors
 * as above; -E2BIG also for more than VW_MAX_DEVICE_CERTIFICATES. */
int vw_frame_verdict_notice_certs(const uint8_t *signed_verdict, size_t len, const uint8_t *const *certs,
                                  const size_t *cert_lens, size_t n_certs, size_t max_frame, uint8_t **ret,
                                  size_t *ret_len);
