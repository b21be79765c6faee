/* SPDX-License-Identifier: Apache-2.0 */
/* A verdict as an IETF RATS EAR, EAT Attestation Result (draft-fv-rats-ear): a JWT (RFC 7519)
 * signed ES256 (RFC 7518, 3.4: the raw r || s, not DER) with a verdict-signing key. Its
 * one submodule "vouch-tpm" carries the status, the AR4SI trustworthiness vector drawn from
 * the findings, the golden set as appraisal policy, and the verdict's ids and numbers. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "verdict-check.h"

/* The verdict in record (a serialized SignedVerdict, not checked here: the caller issued or
 * stored it) as an EAR signed with key->pkey, its header's "kid" key->id; build names the
 * verifier in "ear.verifier-id" ("vouchd 0.1.0"). *ret_jwt is a new NUL-terminated string
 * (free it), written only on success. 0, -EBADMSG (record is not a SignedVerdict holding a
 * Verdict), -EIO (signing failed), -ENOMEM. */
int vv_ear(const uint8_t *record, size_t len, const vv_key *key, const char *build, char **ret_jwt);
