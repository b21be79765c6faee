/* SPDX-License-Identifier: Apache-2.0 */
/* The verdict-signing key ring (keys.c): verdict.key signs; retired/<key id>.pem are former
 * keys' public halves, each with retired/<key id>.not_after (Unix seconds) until which they
 * still verify; verdict-keys.pem publishes them all. */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "verdict-sign.h"

/* The verdict-signing keys: the active one and retired ones still published. An entry is
 * the verdict library's key (verdict-check.h): the key, its id, for a retired key the end
 * date (Unix seconds) until which verdicts it signed verify. */
#define VERDICT_MAX_RETIRED 16
typedef vv_key vkey;
typedef struct verdict_keys {
        vkey active;
        size_t n_retired;
        vkey retired[VERDICT_MAX_RETIRED];
} verdict_keys;
void verdict_keys_free(verdict_keys *k);

/* The key id (vv_key_id: hex SHA-256 of the key's SubjectPublicKeyInfo), for tls.c's
 * verifier id. */
int vk_key_id(EVP_PKEY *k, char out[65]);
/* Loads verdict.key and the retired keys still valid (a file vouchd did not write is not
 * published), and writes verdict-keys.pem. */
int vk_load(const char *dir, verdict_keys *ret);
/* Another state dir's verdict keys into to (vouchd init --join): verdict.key and the
 * retired keys still valid, as from's vk_load would read them, and to's verdict-keys.pem;
 * from is only read. -ENOENT: from has no usable verdict.key; err says what failed. */
int vk_copy(const char *from, const char *to, char *err, size_t n);
/* Writes DIR/verdict-keys.pem: the public keys of k (atomically). */
int vk_write_pubs(const char *dir, const verdict_keys *k);
/* A new verdict.key; the old one's public half retired until old_not_after. */
int vk_rotate(const char *dir, int64_t old_not_after, char new_id[65]);
