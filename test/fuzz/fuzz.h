/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the fuzz harnesses: the libFuzzer entry point and an invariant check. A harness
 * treats every input as hostile; a failed FUZZ_CHECK is a bug in the core (a broken
 * contract), not in the input, so it aborts and the fuzzer reports it as a crash. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                              \
        do {                                                                                          \
                if (!(cond)) {                                                                        \
                        fprintf(stderr, "%s:%d: %s: invariant violated: %s\n", __FILE__, __LINE__,    \
                                __func__, #cond);                                                     \
                        abort();                                                                      \
                }                                                                                     \
        } while (0)

/* Text the core makes for people (event descriptions, device paths) ends up in terminals,
 * logs and JSON: it must be one line of valid UTF-8 without control characters, whatever
 * the input held (event.h: "one-line human description"). Returns NULL when it is, else
 * what is wrong. */
static inline const char *fuzz_text_problem(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        while (*p) {
                unsigned c = *p, n;
                if (c < 0x20 || c == 0x7f)
                        return "control character";
                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        n = 1;
                else if (c >= 0xe0 && c <= 0xef)
                        n = 2;
                else if (c >= 0xf0 && c <= 0xf4)
                        n = 3;
                else
                        return "invalid UTF-8 lead byte";
                for (unsigned i = 1; i <= n; i++)
                        if ((p[i] & 0xc0) != 0x80)
                                return "truncated UTF-8 sequence";
                if (c == 0xc2 && p[1] < 0xa0)
                        return "C1 control character";
                p += 1 + n;
        }
        return NULL;
}

/* VOUCH_FUZZ_IGNORE_TEXT=1 turns the text check off, to hunt for other bugs while a text
 * bug is known and not fixed yet. */
static inline int fuzz_text_checked(void) {
        static int checked = -1;
        if (checked < 0) {
                const char *e = getenv("VOUCH_FUZZ_IGNORE_TEXT");
                checked = !(e && e[0] == '1');
        }
        return checked;
}

#define FUZZ_CHECK_TEXT(s)                                                                            \
        do {                                                                                          \
                const char *_why = fuzz_text_checked() ? fuzz_text_problem(s) : NULL;                 \
                if (_why) {                                                                           \
                        fprintf(stderr, "%s:%d: %s: %s in text \"%s\"\n", __FILE__, __LINE__,          \
                                __func__, _why, (s));                                                 \
                        abort();                                                                      \
                }                                                                                     \
        } while (0)

/* FNV-1a: a deterministic choice (split points, which PCR to tweak) that follows the input. */
static inline uint64_t fuzz_hash(const uint8_t *data, size_t size) {
        uint64_t h = 0xcbf29ce484222325u;
        for (size_t i = 0; i < size; i++)
                h = (h ^ data[i]) * 0x100000001b3u;
        return h;
}
