/* SPDX-License-Identifier: Apache-2.0 */
/* The verdict-signing key ring: the active key, retired keys still published, their
 * public halves in verdict-keys.pem, rotation. Key ids and signatures are the verdict
 * library's (verdict-sign.h). */
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

#include "clock.h"
#include "keys.h"
#include "log.h"
#include "statedir.h"

int vk_key_id(EVP_PKEY *k, char out[65]) {
        return vv_key_id(k, out);
}

/* ---- the verdict-signing key ring ----
 * verdict.key signs; retired/<key id>.pem are former keys' public halves, each with
 * retired/<key id>.not_after (Unix seconds) until which they still verify. */

void verdict_keys_free(verdict_keys *k) {
        EVP_PKEY_free(k->active.pkey);
        for (size_t i = 0; i < k->n_retired; i++)
                EVP_PKEY_free(k->retired[i].pkey);
        memset(k, 0, sizeof(*k));
}

static int w_pubs(BIO *b, void *arg) {
        const verdict_keys *k = arg;
        if (PEM_write_bio_PUBKEY(b, k->active.pkey) != 1)
                return 0;
        for (size_t i = 0; i < k->n_retired; i++)
                if (PEM_write_bio_PUBKEY(b, k->retired[i].pkey) != 1)
                        return 0;
        return 1;
}

int vk_write_pubs(const char *dir, const verdict_keys *k) {
        return sd_write_pem(dir, "verdict-keys.pem", 0644, w_pubs, (void *) k);
}

/* verdict.key and the retired keys still valid (a file vouchd did not write is skipped),
 * without writing anything. */
static int vk_read(const char *dir, verdict_keys *ret) {
        char rdir[4096], path[4400];
        verdict_keys k = { 0 };
        time_t now = (time_t) vclock_wall();
        k.active.pkey = sd_read_key(dir, "verdict.key");
        if (!k.active.pkey || vv_key_id(k.active.pkey, k.active.id) < 0) {
                verdict_keys_free(&k);
                return -ENOENT;
        }
        if (sd_path_of(rdir, sizeof(rdir), dir, "retired") < 0) {
                verdict_keys_free(&k);
                return -ENAMETOOLONG;
        }
        DIR *dd = opendir(rdir);
        struct dirent *de;
        while (dd && (de = readdir(dd)) && k.n_retired < VERDICT_MAX_RETIRED) {
                size_t n = strlen(de->d_name);
                if (n != 64 + 4 || strcmp(de->d_name + 64, ".pem") != 0)
                        continue;
                char na_name[128], why[600];
                snprintf(na_name, sizeof(na_name), "%.64s.not_after", de->d_name);
                snprintf(path, sizeof(path), "%s/%s", rdir, na_name);
                FILE *f = sd_open_own(rdir, na_name, why, sizeof(why));
                long long na = 0;
                if (!f || fscanf(f, "%lld", &na) != 1) {
                        vlog(LOG_WARN, "%s: %s; the retired key %.64s is not published", path, f ? "unreadable" : why,
                             de->d_name);
                        if (f)
                                fclose(f);
                        continue;
                }
                fclose(f);
                if (na <= now)
                        continue; /* past its date: verdicts it signed no longer verify */
                snprintf(path, sizeof(path), "%s/%s", rdir, de->d_name);
                f = sd_open_own(rdir, de->d_name, why, sizeof(why));
                if (!f) {
                        vlog(LOG_WARN, "%s; not published", why);
                        continue;
                }
                EVP_PKEY *pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
                fclose(f);
                vkey *v = &k.retired[k.n_retired];
                if (!pk || vv_key_id(pk, v->id) < 0 || strncmp(v->id, de->d_name, 64) != 0) {
                        vlog(LOG_WARN, "%s: not the public key its name says; not published", path);
                        EVP_PKEY_free(pk);
                        continue;
                }
                v->pkey = pk;
                v->not_after = na;
                k.n_retired++;
        }
        if (dd)
                closedir(dd);
        *ret = k;
        ERR_clear_error();
        return 0;
}

int vk_load(const char *dir, verdict_keys *ret) {
        verdict_keys k;
        int r = vk_read(dir, &k);
        if (r < 0)
                return r;
        /* the verdict-signing public keys, for offline verification */
        if ((r = vk_write_pubs(dir, &k)) < 0) {
                verdict_keys_free(&k);
                return r;
        }
        *ret = k;
        return 0;
}

int vk_copy(const char *from, const char *to, char *err, size_t n) {
        char rdir[4096], name[128];
        verdict_keys k;
        int r = vk_read(from, &k);
        if (r < 0) {
                snprintf(err, n, "%s/verdict.key cannot be used: %s", from, r == -ENOENT ? "missing or unreadable"
                                                                                       : strerror(-r));
                return r;
        }
        if ((r = sd_write_pem(to, "verdict.key", 0600, sd_w_key, k.active.pkey)) < 0) {
                snprintf(err, n, "cannot write %s/verdict.key: %s", to, strerror(-r));
                goto out;
        }
        if (k.n_retired > 0 && (sd_path_of(rdir, sizeof(rdir), to, "retired") < 0 || (mkdir(rdir, 0700) < 0 && errno != EEXIST))) {
                r = -errno;
                snprintf(err, n, "cannot create %s/retired: %s", to, strerror(errno));
                goto out;
        }
        /* each retired key as rotate-key leaves it: its date, then its public half */
        for (size_t i = 0; i < k.n_retired; i++) {
                char date[32];
                int dn = snprintf(date, sizeof(date), "%lld\n", (long long) k.retired[i].not_after);
                snprintf(name, sizeof(name), "%s.not_after", k.retired[i].id);
                if ((r = sd_write_file_atomic(rdir, name, 0644, date, (size_t) dn)) < 0)
                        break;
                snprintf(name, sizeof(name), "%s.pem", k.retired[i].id);
                if ((r = sd_write_pem(rdir, name, 0644, sd_w_pub, k.retired[i].pkey)) < 0)
                        break;
        }
        if (r < 0) {
                snprintf(err, n, "cannot write %s/%s: %s", rdir, name, strerror(-r));
                goto out;
        }
        if ((r = vk_write_pubs(to, &k)) < 0)
                snprintf(err, n, "cannot write %s/verdict-keys.pem: %s", to, strerror(-r));
out:
        verdict_keys_free(&k);
        ERR_clear_error();
        return r;
}

int vk_rotate(const char *dir, int64_t old_not_after, char new_id[65]) {
        char rdir[4096], name[128], path[4400];
        EVP_PKEY *old = sd_read_key(dir, "verdict.key"), *nk = NULL;
        char old_id[65];
        int r = -EIO;
        if (!old || vv_key_id(old, old_id) < 0) {
                r = -ENOENT;
                goto out;
        }
        if (sd_path_of(rdir, sizeof(rdir), dir, "retired") < 0 || (mkdir(rdir, 0700) < 0 && errno != EEXIST)) {
                r = -errno;
                goto out;
        }
        /* the old key's public half and its date first: a crash leaves it still active */
        char date[32];
        int dn = snprintf(date, sizeof(date), "%lld\n", (long long) old_not_after);
        snprintf(path, sizeof(path), "%s.not_after", old_id);
        if ((r = sd_write_file_atomic(rdir, path, 0644, date, (size_t) dn)) < 0)
                goto out;
        snprintf(name, sizeof(name), "%s.pem", old_id);
        if ((r = sd_write_pem(rdir, name, 0644, sd_w_pub, old)) < 0)
                goto out;
        nk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!nk || (r = sd_write_pem(dir, "verdict.key", 0600, sd_w_key, nk)) < 0 || (r = vv_key_id(nk, new_id)) < 0) {
                r = r < 0 ? r : -EIO;
                goto out;
        }
        r = 0;
out:
        EVP_PKEY_free(old);
        EVP_PKEY_free(nk);
        ERR_clear_error();
        return r;
}
