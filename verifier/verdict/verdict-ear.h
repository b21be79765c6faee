/* SPDX-License-Identifier: Apache-2.0 */
/* A verdict as an IETF RATS EAR, EAT Attestation Result (draft-fv-rats-ear): a JWT (RFC 7519)
 * signed ES256 (RFC 7518, 3.4: the raw r || s, not DER) with a verdict-signing key. Its
 * one submodule "vouch-tpm" carries the status, the AR4SI trustworthiness vector drawn from
 * the findings, the golden set as appraisal policy, and the verdict's ids and numbers. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "verdict-check.h"

struct json_object;

/* A JWK thumbprint (RFC 7638): base64url (no padding) of a SHA-256, 43 characters. */
#define VV_JWK_KID_LEN 43

/* The RFC 7638 thumbprint of key (an EC P-256 public key): the SHA-256 of
 * {"crv":"P-256","kty":"EC","x":X,"y":Y} (members in that order, no whitespace, x and y
 * base64url of 32 bytes each), base64url, into ret_kid. It is the "kid" of the key's JWK and
 * of the EAR tokens it signs. 0, -ENOTSUP (not an EC P-256 key), -ENOMEM. */
int vv_jwk_thumbprint(struct evp_pkey_st *key, char ret_kid[VV_JWK_KID_LEN + 1]);

/* key's public half as a JWK (RFC 7517, 7518 6.2): {"kty":"EC","crv":"P-256","x","y",
 * "use":"sig","alg":"ES256","kid": its thumbprint}; *ret is a new json-c object (put it),
 * written only on success. 0, -ENOTSUP (not an EC P-256 key), -ENOMEM. */
int vv_jwk(struct evp_pkey_st *key, struct json_object **ret);

/* The verdict in record (a serialized SignedVerdict, not checked here: the caller issued or
 * stored it) as an EAR signed with key->pkey. Its header is {"alg":"ES256","typ":"eat+jwt",
 * "kid": the key's JWK thumbprint (vv_jwk_thumbprint)}; "iss" is the verdict's verifier_id
 * (left out when it has none); build names the verifier in "ear.verifier-id" ("vouchd
 * 0.1.0"). *ret_jwt is a new NUL-terminated string (free it), written only on success. 0,
 * -EBADMSG (record is not a SignedVerdict holding a Verdict), -EIO (signing failed),
 * -ENOTSUP (not an EC P-256 key), -ENOMEM. */
int vv_ear(const uint8_t *record, size_t len, const vv_key *key, const char *build, char **ret_jwt);
