/* SPDX-License-Identifier: Apache-2.0 */
/* The verdict-signing key ring (keys.c): verdict.key signs; retired/<key id>.pem are former
 * keys' public halves, each with retired/<key id>.not_after (Unix seconds) until which they
 * still verify; verdict-keys.pem publishes them all. */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* The verdict-signing keys: the active one and retired ones still published. */
#define VERDICT_MAX_RETIRED 16
typedef struct vkey {
        EVP_PKEY *pkey;
        char id[65];
        int64_t not_after;              /* retired keys: verdicts verify until then */
} vkey;
typedef struct verdict_keys {
        vkey active;
        size_t n_retired;
        vkey retired[VERDICT_MAX_RETIRED];
} verdict_keys;
void verdict_keys_free(verdict_keys *k);

/* The key id: hex SHA-256 of the key's SubjectPublicKeyInfo. */
int vk_key_id(EVP_PKEY *k, char out[65]);
/* ECDSA P-256 over msg (SHA-256), DER, low S; *sig is OPENSSL_malloc'ed. */
int verdict_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len);
/* Loads verdict.key and the retired keys still valid (a file vouchd did not write is not
 * published), and writes verdict-keys.pem. */
int vk_load(const char *dir, verdict_keys *ret);
/* Writes DIR/verdict-keys.pem: the public keys of k (atomically). */
int vk_write_pubs(const char *dir, const verdict_keys *k);
/* A new verdict.key; the old one's public half retired until old_not_after. */
int vk_rotate(const char *dir, int64_t old_not_after, char new_id[65]);
