/* SPDX-License-Identifier: Apache-2.0 */
/* The relying party's check of a SignedVerdict (docs/API.md, "Verdicts and their
 * signature"): the key id names a key of the verifier's published set, the ECDSA P-256 /
 * SHA-256 signature verifies over the verdict bytes exactly as sent, the signed bytes are
 * a Verdict, and the verdict has not expired. Pure: no files, no clock (now is a
 * parameter), no logging; every failure is described in the result. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vouch.pb-c.h"

#define VV_KEYS_MAX 64                 /* keys in one keys file (active + retired) */
#define VV_KEYS_FILE_MAX (256u << 10)  /* bytes of a keys file */
#define VV_SIGNED_MAX (1u << 20)       /* bytes of a SignedVerdict (or its JSON form) */
#define VV_DEFAULT_SKEW 300            /* seconds an issued_at may lie in the future */
#define VV_KEY_ID_LEN 64               /* hex SHA-256 */

typedef struct vv_key {
        struct evp_pkey_st *pkey;      /* EC P-256 public key */
        char id[VV_KEY_ID_LEN + 1];    /* hex SHA-256 of its DER SubjectPublicKeyInfo, computed here */
        int64_t not_after;             /* Unix seconds; 0 = no end (PEM keys have none) */
} vv_key;

typedef struct vv_keyring {
        size_t n;
        vv_key keys[VV_KEYS_MAX];
} vv_keyring;

/* Parses a keys file: PEM "PUBLIC KEY" blocks (STATE_DIR/verdict-keys.pem, GET /v1/keys?
 * format=pem) or a serialized VerdictKeys (GET /v1/keys). Every id is recomputed from the
 * key; a VerdictKeys entry whose key_id differs from the hash of its spki makes the file
 * unusable. On success *ret is allocated (free with vv_keyring_free).
 * Errors: -EBADMSG not PEM public keys / not a VerdictKeys, a block that is not a public
 * key, a key_id that does not match its key; -ENOTSUP a key that is not EC P-256;
 * -ENOENT no key at all; -E2BIG more than VV_KEYS_MAX keys or a file over
 * VV_KEYS_FILE_MAX; -EEXIST the same key twice; -ENOMEM. */
int vv_keyring_parse(const uint8_t *buf, size_t len, vv_keyring **ret);
vv_keyring *vv_keyring_free(vv_keyring *k);
const vv_key *vv_keyring_find(const vv_keyring *k, const char *id);

/* Parses a SignedVerdict file: the serialized message (what vouch-agent --verdict-out
 * writes) or its JSON form from docs/API.md ({"verdict_bytes": hex, "signature": hex,
 * "key_id": ...}; the decoded "verdict" object there is ignored: only the signed bytes
 * count). *ret is allocated (free with vouch__v1__signed_verdict__free_unpacked(.., NULL)).
 * Errors: -EBADMSG not a SignedVerdict (or verdict, signature or key_id missing),
 * -E2BIG over VV_SIGNED_MAX, -ENOMEM. */
int vv_signed_parse(const uint8_t *buf, size_t len, Vouch__V1__SignedVerdict **ret);

typedef enum vv_outcome {
        VV_VALID = 0,           /* signature, key and time all good (says nothing of the status) */
        VV_UNKNOWN_KEY = 1,     /* key_id names no key of the keyring */
        VV_BAD_SIGNATURE = 2,   /* does not verify with the named key */
        VV_BAD_VERDICT = 3,     /* correctly signed, but the bytes are not a Verdict */
        VV_KEY_RETIRED = 4,     /* issued at or after the key's not_after */
        VV_NOT_YET_VALID = 5,   /* issued_at more than skew seconds after now */
        VV_EXPIRED = 6,         /* now >= expires_at */
        VV_WRONG_DEVICE = 7,    /* valid, but about another device than expected (vv_expect_device) */
        VV_WRONG_KEY = 8,       /* valid, but it does not prove the key expected (vv_expect_device_key) */
} vv_outcome;

typedef struct vv_result {
        vv_outcome outcome;
        /* Decoded only once the signature verified (never from unauthenticated bytes);
         * NULL otherwise. Owned by the result. */
        Vouch__V1__Verdict *verdict;
        char reason[320];       /* what was wrong, for people; "" when valid */
} vv_result;

/* Checks sv against the keyring at time now (Unix seconds), allowing issued_at up to skew
 * seconds in the future. Fills *ret (release with vv_result_done) and returns 0 whatever
 * the outcome; -ENOMEM or -EINVAL (NULL arguments) when nothing could be evaluated. */
int vv_verify(const vv_keyring *k, const Vouch__V1__SignedVerdict *sv, int64_t now, int64_t skew, vv_result *ret);
void vv_result_done(vv_result *r);
/* A valid verdict that is about another device than `device` becomes VV_WRONG_DEVICE: a
 * genuine verdict proves nothing about a device that merely presents (or is served) it. */
void vv_expect_device(vv_result *r, const char *device);
/* A valid verdict that does not name the device key whose DER SubjectPublicKeyInfo is spki
 * (Verdict.device_key: the SHA-256 of the key the attestation proved in the TPM) becomes
 * VV_WRONG_KEY, also when it names none: a relying party that saw the key over TLS (the
 * device certificate's key) knows the verdict is about the party holding it, not a bearer. */
void vv_expect_device_key(vv_result *r, const uint8_t *spki, size_t spki_len);

/* The relying party's decision: a valid verdict that says TRUSTED (or, with any_status,
 * any valid verdict). A zeroed result is never accepted. */
bool vv_accept(const vv_result *r, bool any_status);

const char *vv_outcome_name(vv_outcome o);
/* "TRUSTED", ...; "UNSPECIFIED" for 0, NULL for a value the proto does not define. */
const char *vv_status_name(int status);

/* Time as Unix seconds ("1764064800") or RFC 3339 ("2026-11-25T10:00:00Z", an offset
 * "+01:00" and fractional seconds, which are dropped, also accepted). -EINVAL otherwise. */
int vv_parse_time(const char *s, int64_t *ret);
/* RFC 3339 in UTC ("2026-11-25T10:00:00Z") into buf (at least 32 bytes); the number
 * itself when out of the calendar's range. */
const char *vv_format_time(int64_t t, char *buf, size_t size);
