/* SPDX-License-Identifier: Apache-2.0 */
/* Replay driver: runs LLVMFuzzerTestOneInput once over every input, so that the corpus of a
 * harness is an ordinary test in builds without libFuzzer (gcc, or clang without
 * -Dfuzzing=true). A crash, a sanitizer report or a failed FUZZ_CHECK ends the process
 * with a non-zero status; meson reports the test as failed and the last "replay:" line
 * names the input.
 *
 * Usage: fuzz-NAME [--shared=SUBDIR]... PATH...
 *   PATH            a file, or a directory whose files are replayed (recursively, sorted)
 *   --shared=SUBDIR $VOUCH_SHARED_DIR/SUBDIR: real data, read in place and never copied
 *                   into the project. Missing shared data is a loud skip, or a failure when
 *                   CI=true (as for the other real-data tests).
 * A PATH that does not exist, or an empty corpus, is an error: a test that replays
 * nothing proves nothing. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_MAX_FILE (64u << 20) /* larger than any cap in the core */
#define REPLAY_MAX_DEPTH 4

/* Sanitizer defaults for the replay (the environment still overrides them): UBSan must
 * stop at the first report, or undefined behaviour would pass as a successful replay. */
const char *__asan_default_options(void);
const char *__ubsan_default_options(void);
const char *__asan_default_options(void) {
        return "halt_on_error=1:detect_leaks=1:print_summary=1";
}
const char *__ubsan_default_options(void) {
        return "halt_on_error=1:print_stacktrace=1:print_summary=1";
}

static unsigned n_replayed;

static int replay_file(const char *path) {
        FILE *f = fopen(path, "rb");
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;

        if (!f) {
                fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
                return -errno;
        }
        for (;;) {
                if (len == cap) {
                        if (cap >= REPLAY_MAX_FILE) {
                                fprintf(stderr, "replay: %s: larger than %u bytes\n", path, REPLAY_MAX_FILE);
                                free(buf);
                                fclose(f);
                                return -E2BIG;
                        }
                        cap = cap ? cap * 2 : 4096;
                        uint8_t *nb = realloc(buf, cap);
                        if (!nb) {
                                free(buf);
                                fclose(f);
                                return -ENOMEM;
                        }
                        buf = nb;
                }
                size_t n = fread(buf + len, 1, cap - len, f);
                len += n;
                if (n == 0)
                        break;
        }
        if (ferror(f)) {
                fprintf(stderr, "replay: %s: read error\n", path);
                free(buf);
                fclose(f);
                return -EIO;
        }
        fclose(f);

        /* An exact-size copy, so that ASan sees a read one byte past the input. */
        uint8_t *exact = malloc(len ? len : 1);
        if (!exact) {
                free(buf);
                return -ENOMEM;
        }
        memcpy(exact, buf, len);
        free(buf);

        printf("replay: %s (%zu bytes)\n", path, len);
        fflush(stdout);
        (void) LLVMFuzzerTestOneInput(exact, len);
        free(exact);
        n_replayed++;
        return 0;
}

static int replay_path(const char *path, int depth) {
        struct stat st;
        if (stat(path, &st) < 0) {
                fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
                return -errno;
        }
        if (!S_ISDIR(st.st_mode))
                return replay_file(path);
        if (depth >= REPLAY_MAX_DEPTH) {
                fprintf(stderr, "replay: %s: nested deeper than %d directories\n", path, REPLAY_MAX_DEPTH);
                return -ELOOP;
        }

        struct dirent **entries = NULL;
        int n = scandir(path, &entries, NULL, alphasort), r = 0;
        if (n < 0) {
                fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                const char *name = entries[i]->d_name;
                if (r == 0 && name[0] != '.') { /* ".", "..", editor and VCS files */
                        size_t l = strlen(path) + 1 + strlen(name) + 1;
                        char *child = malloc(l);
                        if (!child)
                                r = -ENOMEM;
                        else {
                                snprintf(child, l, "%s/%s", path, name);
                                r = replay_path(child, depth + 1);
                                free(child);
                        }
                }
                free(entries[i]);
        }
        free(entries);
        return r;
}

static int replay_shared(const char *sub) {
        const char *dir = getenv("VOUCH_SHARED_DIR");
        const char *ci = getenv("CI");
        bool required = ci && strcmp(ci, "true") == 0;
        struct stat st;

        if (!dir || !dir[0]) {
                fprintf(stderr, "replay: VOUCH_SHARED_DIR is not set: %s real-data inputs %s\n", sub,
                        required ? "are missing (CI=true: failing)" : "SKIPPED");
                return required ? -ENOENT : 0;
        }
        size_t l = strlen(dir) + 1 + strlen(sub) + 1;
        char *path = malloc(l);
        if (!path)
                return -ENOMEM;
        snprintf(path, l, "%s/%s", dir, sub);
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
                fprintf(stderr, "replay: %s is not a directory: real-data inputs %s\n", path,
                        required ? "are missing (CI=true: failing)" : "SKIPPED");
                free(path);
                return required ? -ENOENT : 0;
        }
        int r = replay_path(path, 0);
        free(path);
        return r;
}

int main(int argc, char *argv[]) {
        unsigned given = 0;

        for (int i = 1; i < argc; i++) {
                int r;
                if (strncmp(argv[i], "--shared=", 9) == 0)
                        r = replay_shared(argv[i] + 9);
                else {
                        unsigned before = n_replayed;
                        r = replay_path(argv[i], 0);
                        if (r == 0 && n_replayed == before) {
                                fprintf(stderr, "replay: %s holds no input\n", argv[i]);
                                r = -ENOENT;
                        }
                        given++;
                }
                if (r < 0)
                        return EXIT_FAILURE;
        }
        if (given == 0) {
                fprintf(stderr, "usage: %s [--shared=SUBDIR]... PATH...\n", argv[0]);
                return EXIT_FAILURE;
        }
        printf("replay: %u inputs, no crash\n", n_replayed);
        return EXIT_SUCCESS;
}
