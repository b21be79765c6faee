/* SPDX-License-Identifier: Apache-2.0 */
/* Signing verdicts (docs/API.md, "Verdicts and their signature"): ECDSA P-256 with SHA-256
 * over the Verdict bytes exactly as packed, DER-encoded, with the low S, so that a verdict
 * has one valid signature (vv_verify refuses the other of the pair); a key is named by its
 * id, the hex SHA-256 of its DER SubjectPublicKeyInfo. The key and its id come from the
 * caller (vouchd's key ring, a test's key): nothing here reads files, keeps state or logs. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "verdict-check.h"
#include "vouch.pb-c.h"

/* key's id into ret_id (VV_KEY_ID_LEN hex digits and a NUL). 0, -EIO (the key has no DER
 * form), -ENOMEM. */
int vv_key_id(struct evp_pkey_st *key, char ret_id[VV_KEY_ID_LEN + 1]);

/* ECDSA over SHA-256 of msg with key (EC P-256), DER, low S. *ret_sig is OPENSSL_malloc'ed
 * (OPENSSL_free it); ret_sig and ret_sig_len are written only on success. 0, or -EIO when
 * the key does not sign (not an EC P-256 private key, an OpenSSL failure). */
int vv_sign(struct evp_pkey_st *key, const uint8_t *msg, size_t len, uint8_t **ret_sig, size_t *ret_sig_len);

/* The serialized SignedVerdict {verdict, signature, key_id} in a new malloc'ed buffer
 * (written only on success). 0 or -ENOMEM. */
int vv_signed_pack(const ProtobufCBinaryData *verdict, const ProtobufCBinaryData *signature, const char *key_id,
                   uint8_t **ret, size_t *ret_len);

/* v packed, signed with key->pkey and named key->id: the serialized SignedVerdict in a new
 * malloc'ed buffer (written only on success). v is the caller's: every field, the ids
 * (device, verifier) and numbers included, is signed as it is. 0, -EIO (signing failed),
 * -ENOMEM. */
int vv_verdict_sign(const Vouch__V1__Verdict *v, const vv_key *key, uint8_t **ret_record, size_t *ret_len);
