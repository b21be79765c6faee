/* SPDX-License-Identifier: Apache-2.0 */
/* The state dir's files (statedir.c): written atomically through a new temp file (O_EXCL,
 * O_NOFOLLOW) and a rename, read without following links; the dir and its files belong to
 * vouchd's user and only it can change them (keys: only it can read them). */
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/* out = DIR/NAME; -ENAMETOOLONG when it does not fit. */
int sd_path_of(char *out, size_t n, const char *dir, const char *name);
/* Writes the file atomically with mode: -errno of the step that failed (ENOSPC ...). */
int sd_write_file_atomic(const char *dir, const char *name, mode_t mode, const void *data, size_t len);
/* The same for a PEM object written by writer (sd_w_key, sd_w_pub, sd_w_cert). */
int sd_write_pem(const char *dir, const char *name, mode_t mode, int (*writer)(BIO *, void *), void *obj);
int sd_w_key(BIO *b, void *k);
int sd_w_pub(BIO *b, void *k);
int sd_w_cert(BIO *b, void *x);
/* DIR/NAME opened for reading without following a link (errno in *ret_errno; ELOOP: a link). */
FILE *sd_open_nofollow(const char *dir, const char *name, int *ret_errno);
/* 0 with *ret set, -ENOENT when absent, -EBADMSG when not a PEM object of that kind, -errno. */
int sd_load_key(const char *dir, const char *name, EVP_PKEY **ret);
int sd_load_cert(const char *dir, const char *name, X509 **ret);
/* The same, NULL for any failure. */
EVP_PKEY *sd_read_key(const char *dir, const char *name);
X509 *sd_read_cert(const char *dir, const char *name);
/* A file vouchd wrote: not a link, a regular file of vouchd's user that nobody else can
 * write; NULL with why set otherwise. */
FILE *sd_open_own(const char *dir, const char *name, char *why, size_t n);

/* The state dir and its files belong to vouchd's user and only it can change them (keys:
 * only it can read them), no file is a link; 0 when the dir does not exist yet. */
int statedir_check(const char *dir, char *err, size_t n);
/* None of vouchd's keys, certificates or store is there yet. */
bool statedir_is_fresh(const char *dir);
