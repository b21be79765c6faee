/* SPDX-License-Identifier: Apache-2.0 */
/* The state dir's keys and certificates, and the TLS contexts (tls.c). */
#pragma once

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verdict.h"


int tls_issue_client(const char *dir, const char *cn, const char *prefix);
SSL_CTX *tls_api_ctx(const char *dir, const char *client_ca);
int tls_load_verdict_keys(const char *dir, verdict_keys *ret);
/* Writes DIR/verdict-keys.pem: the public keys of k (atomically). */
int tls_write_verdict_pubs(const char *dir, const verdict_keys *k);
int tls_rotate_verdict_key(const char *dir, int64_t old_not_after, char new_id[65]);
int tls_verifier_id(const char *dir, char out[65]);
/* Makes the state dir's keys and certificates that are absent when generate is set (vouchd
 * init, or a fresh state dir); one that is present but unreadable, or absent without
 * generate, is an error naming the file (err), never replaced. Checks the dir first. */
int tls_init_state_dir(const char *dir, char *const *sans, size_t n_sans, bool generate, char *err, size_t errlen);
/* The state dir and its files belong to vouchd's user and only it can change them (keys:
 * only it can read them), no file is a link; 0 when the dir does not exist yet. */
int tls_check_state_dir(const char *dir, char *err, size_t n);
/* None of vouchd's keys, certificates or store is there yet. */
bool tls_state_dir_is_fresh(const char *dir);
SSL_CTX *tls_server_ctx(const char *dir);
int tls_key_id(EVP_PKEY *k, char out[65]);
