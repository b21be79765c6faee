/* SPDX-License-Identifier: Apache-2.0 */
/* The state dir's keys and certificates, and the TLS contexts (tls.c). */
#pragma once

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int tls_issue_client(const char *dir, const char *cn, const char *prefix);
SSL_CTX *tls_api_ctx(const char *dir, const char *client_ca);
int tls_verifier_id(const char *dir, char out[65]);
/* Makes the state dir's keys and certificates that are absent when generate is set (vouchd
 * init, or a fresh state dir); one that is present but unreadable, or absent without
 * generate, is an error naming the file (err), never replaced. Checks the dir first. */
int tls_init_state_dir(const char *dir, char *const *sans, size_t n_sans, bool generate, char *err, size_t errlen);
/* vouchd init --join: the state dir dir (created if absent; the caller has checked that it
 * holds none of vouchd's files) gets the CA (ca.key, ca.pem) and the verdict-signing keys
 * (verdict.key, the retired keys still valid, verdict-keys.pem) of the initialised state
 * dir existing, which is only read (its server key, store and lock are not taken). Then
 * tls_init_state_dir makes dir's own server certificate under that CA. err says what
 * failed, naming the file. */
int tls_join_state_dir(const char *dir, const char *existing, char *err, size_t errlen);
SSL_CTX *tls_server_ctx(const char *dir);
