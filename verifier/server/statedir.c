/* SPDX-License-Identifier: Apache-2.0 */
/* The state dir's files: written atomically without following links, read without
 * following them, and only vouchd's user may change them (as ssh asks of ~/.ssh). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "statedir.h"

int sd_path_of(char *out, size_t n, const char *dir, const char *name) {
        return snprintf(out, n, "%s/%s", dir, name) < (int) n ? 0 : -ENAMETOOLONG;
}

/* Writes a file atomically: a new temp file (O_EXCL | O_NOFOLLOW: never through a link
 * someone planted), fsync, rename over the name (which replaces a link, not its target).
 * -errno of the step that failed (ENOSPC for a full disk). */
int sd_write_file_atomic(const char *dir, const char *name, mode_t mode, const void *data, size_t len) {
        char path[4096], tmp[4200];
        if (sd_path_of(path, sizeof(path), dir, name) < 0)
                return -ENAMETOOLONG;
        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0 && errno == EEXIST && unlink(tmp) == 0) /* left by an earlier process of this pid */
                fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        int r = fchmod(fd, mode) < 0 ? -errno : 0;
        for (size_t off = 0; r == 0 && off < len;) {
                ssize_t n = write(fd, (const uint8_t *) data + off, len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        r = n < 0 ? -errno : -EIO;
                else
                        off += (size_t) n;
        }
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

/* Writes a PEM object atomically with the given mode. */
int sd_write_pem(const char *dir, const char *name, mode_t mode, int (*writer)(BIO *, void *), void *obj) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL;
        int r = -ENOMEM;
        if (bio && writer(bio, obj) == 1) {
                long len = BIO_get_mem_data(bio, &data);
                r = len > 0 ? sd_write_file_atomic(dir, name, mode, data, (size_t) len) : -EIO;
        }
        BIO_free(bio);
        return r;
}

int sd_w_key(BIO *b, void *k) {
        return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}
int sd_w_pub(BIO *b, void *k) {
        return PEM_write_bio_PUBKEY(b, k);
}
int sd_w_cert(BIO *b, void *x) {
        return PEM_write_bio_X509(b, x);
}

/* Opens dir/name for reading without following a symbolic link (-ELOOP for one). */
FILE *sd_open_nofollow(const char *dir, const char *name, int *ret_errno) {
        char path[4096];
        if (sd_path_of(path, sizeof(path), dir, name) < 0) {
                *ret_errno = ENAMETOOLONG;
                return NULL;
        }
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
        *ret_errno = fd < 0 ? errno : f ? 0 : ENOMEM;
        if (fd >= 0 && !f)
                close(fd);
        return f;
}

/* 0 with *ret set, -ENOENT when absent, -EBADMSG when present but not a PEM object of
 * that kind, -errno otherwise. */
static void *read_key(FILE *f) {
        return PEM_read_PrivateKey(f, NULL, NULL, NULL);
}

static void *read_cert(FILE *f) {
        return PEM_read_X509(f, NULL, NULL, NULL);
}

static int load_pem(const char *dir, const char *name, void *(*read)(FILE *f), void **ret) {
        int e;
        FILE *f = sd_open_nofollow(dir, name, &e);
        if (!f)
                return -e;
        *ret = read(f);
        fclose(f);
        return *ret ? 0 : -EBADMSG;
}

int sd_load_key(const char *dir, const char *name, EVP_PKEY **ret) {
        return load_pem(dir, name, read_key, (void **) ret);
}

int sd_load_cert(const char *dir, const char *name, X509 **ret) {
        return load_pem(dir, name, read_cert, (void **) ret);
}

EVP_PKEY *sd_read_key(const char *dir, const char *name) {
        EVP_PKEY *k = NULL;
        return sd_load_key(dir, name, &k) == 0 ? k : NULL;
}

X509 *sd_read_cert(const char *dir, const char *name) {
        X509 *x = NULL;
        return sd_load_cert(dir, name, &x) == 0 ? x : NULL;
}

/* ---- the state dir: only vouchd's user may change it (as ssh asks of ~/.ssh) ---- */

static const char *const key_files[] = { "ca.key", "server.key", "verdict.key", "device-ca.key" };
static const char *const other_files[] = { "ca.pem", "server.pem", "verdict-keys.pem", "vouch.db", "vouch.db-wal",
                                           "vouch.db-shm", "vouchd.lock", "device-ca.pem" };

/* path's owner and mode: vouchd's user, none of forbidden's bits, not a link. */
static int check_path(const char *path, const struct stat *st, mode_t forbidden, bool dir, char *err, size_t n) {
        if (S_ISLNK(st->st_mode)) {
                snprintf(err, n, "%.300s is a symbolic link: vouchd writes and reads only its own files there", path);
                return -ELOOP;
        }
        if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode)) {
                snprintf(err, n, "%.300s is not a %s", path, dir ? "directory" : "regular file");
                return -EINVAL;
        }
        if (st->st_uid != geteuid()) {
                snprintf(err, n, "%.300s is owned by uid %u, not by vouchd's uid %u: chown it (or run vouchd as its owner)",
                         path, (unsigned) st->st_uid, (unsigned) geteuid());
                return -EPERM;
        }
        if (st->st_mode & forbidden) {
                snprintf(err, n, "%.150s has mode %04o: it must not be %s by group or others (chmod %s %.150s)", path,
                         (unsigned) (st->st_mode & 07777), forbidden & 044 ? "readable or writable" : "writable",
                         dir ? "700" : forbidden & 044 ? "600" : "go-w", path);
                return -EPERM;
        }
        return 0;
}

int statedir_check(const char *dir, char *err, size_t n) {
        char path[4200];
        struct stat st;
        int r;
        if (stat(dir, &st) < 0)
                return errno == ENOENT ? 0 : (snprintf(err, n, "%s: %s", dir, strerror(errno)), -errno);
        if ((r = check_path(dir, &st, 022, true, err, n)) < 0)
                return r;
        snprintf(path, sizeof(path), "%s/retired", dir);
        if (lstat(path, &st) == 0 && (r = check_path(path, &st, 022, true, err, n)) < 0)
                return r;
        for (size_t i = 0; i < sizeof(key_files) / sizeof(*key_files); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, key_files[i]);
                if (lstat(path, &st) == 0 && (r = check_path(path, &st, 077, false, err, n)) < 0)
                        return r;
        }
        for (size_t i = 0; i < sizeof(other_files) / sizeof(*other_files); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, other_files[i]);
                if (lstat(path, &st) == 0 && (r = check_path(path, &st, 022, false, err, n)) < 0)
                        return r;
        }
        return 0;
}

bool statedir_is_fresh(const char *dir) {
        char path[4200];
        struct stat st;
        static const char *const any[] = { "ca.key", "ca.pem", "server.key", "server.pem", "verdict.key", "vouch.db" };
        for (size_t i = 0; i < sizeof(any) / sizeof(*any); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, any[i]);
                if (lstat(path, &st) == 0)
                        return false;
        }
        return true;
}

/* A file vouchd wrote: opened without following a link, a regular file of vouchd's user
 * that nobody else can write; NULL with why set otherwise. A retired key planted by
 * someone else is never published as a verdict key. */
FILE *sd_open_own(const char *dir, const char *name, char *why, size_t n) {
        int e;
        struct stat st;
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = sd_open_nofollow(dir, name, &e);
        if (!f) {
                snprintf(why, n, "%.400s: %s", path, e == ELOOP ? "a symbolic link" : strerror(e));
                return NULL;
        }
        if (fstat(fileno(f), &st) < 0 || check_path(path, &st, 022, false, why, n) < 0) {
                fclose(f);
                return NULL;
        }
        return f;
}
