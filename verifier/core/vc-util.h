/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared by the core: cleanup attributes, error reporting, hex. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Ownership helpers in the style of systemd's _cleanup_ / TAKE_PTR. */
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

static inline void freep(void *p) { free(*(void **) p); }
#define _cleanup_free_ _cleanup_(freep)

#define TAKE_PTR(p)                        \
        ({                                 \
                __typeof__(p) _ptr_ = (p); \
                (p) = NULL;                \
                _ptr_;                     \
        })

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Where and why an input was rejected. Library code never logs: it fills this in and the
 * edge (vouchctl, vouchd) prints it once. */
typedef struct vc_error {
        int code;       /* negative errno, same as the return value */
        size_t offset;  /* byte offset in the input, or SIZE_MAX if not about a position */
        long event;     /* event index, or -1 */
        char msg[320];  /* what was wrong: field, expected vs actual */
} vc_error;

/* Records the error (err may be NULL) and returns code, so callers can write
 * `return vc_error_set(err, -EBADMSG, off, idx, "...")`. */
int vc_error_set(vc_error *err, int code, size_t offset, long event, const char *fmt, ...) _printf_(5, 6);
void vc_error_clear(vc_error *err);
/* Formats "offset N, event M: msg" into buf. */
const char *vc_error_format(const vc_error *err, char *buf, size_t size);

/* Lowercase hex of len bytes into out, which must hold 2*len+1 chars. */
void vc_hex(const uint8_t *data, size_t len, char *out);
/* Allocates the hex string; NULL on ENOMEM. */
char *vc_hex_dup(const uint8_t *data, size_t len);
/* Parses hex (upper or lower case, no separators, optional surrounding whitespace) into
 * out (capacity cap). Returns the byte count, -EBADMSG on a bad character or odd length,
 * -E2BIG if it does not fit. */
int vc_unhex(const char *hex, size_t hexlen, uint8_t *out, size_t cap);

/* Big/little-endian readers; the caller has checked the bounds. */
static inline uint16_t vc_le16(const uint8_t *p) { return (uint16_t) (p[0] | (p[1] << 8)); }
static inline uint32_t vc_le32(const uint8_t *p) {
        return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}
static inline uint64_t vc_le64(const uint8_t *p) { return (uint64_t) vc_le32(p) | ((uint64_t) vc_le32(p + 4) << 32); }
static inline uint16_t vc_be16(const uint8_t *p) { return (uint16_t) ((p[0] << 8) | p[1]); }
static inline uint32_t vc_be32(const uint8_t *p) {
        return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

/* True when `need` bytes are available at `off` in a buffer of `len` bytes; safe against
 * overflow (tss2-mu's contract). */
static inline int vc_have(size_t len, size_t off, size_t need) { return off <= len && need <= len - off; }

/* A text buffer with a hard cap: appending past it sets error = -E2BIG and stops. */
typedef struct vc_sbuf {
        char *s;
        size_t len, cap;
        int error;
} vc_sbuf;

/* Allocates cap bytes; 0 or -ENOMEM. */
int vc_sbuf_init(vc_sbuf *b, size_t cap);
void vc_sbuf_printf(vc_sbuf *b, const char *fmt, ...) _printf_(2, 3);
void vc_sbuf_hex(vc_sbuf *b, const uint8_t *p, size_t n);
/* Returns the string (caller owns it) or NULL with the buffer freed when error is set. */
char *vc_sbuf_take(vc_sbuf *b);
