/* SPDX-License-Identifier: Apache-2.0 */
#include "vc-util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int vc_error_set(vc_error *err, int code, size_t offset, long event, const char *fmt, ...) {
        if (err) {
                va_list ap;
                err->code = code;
                err->offset = offset;
                err->event = event;
                va_start(ap, fmt);
                vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
                va_end(ap);
        }
        return code;
}

void vc_error_clear(vc_error *err) {
        if (!err)
                return;
        err->code = 0;
        err->offset = SIZE_MAX;
        err->event = -1;
        err->msg[0] = '\0';
}

const char *vc_error_format(const vc_error *err, char *buf, size_t size) {
        char where[64] = "";
        size_t n = 0;

        if (err->offset != SIZE_MAX)
                n += (size_t) snprintf(where + n, sizeof(where) - n, "offset %zu", err->offset);
        if (err->event >= 0)
                snprintf(where + n, sizeof(where) - n, "%sevent %ld", n ? ", " : "", err->event);
        if (where[0])
                snprintf(buf, size, "%s: %s", where, err->msg);
        else
                snprintf(buf, size, "%s", err->msg);
        return buf;
}

void vc_hex(const uint8_t *data, size_t len, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[data[i] >> 4];
                out[2 * i + 1] = digits[data[i] & 0xf];
        }
        out[2 * len] = '\0';
}

char *vc_hex_dup(const uint8_t *data, size_t len) {
        char *s = malloc(2 * len + 1);
        if (s)
                vc_hex(data, len, s);
        return s;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int vc_unhex(const char *hex, size_t hexlen, uint8_t *out, size_t cap) {
        while (hexlen > 0 && (hex[0] == ' ' || hex[0] == '\t' || hex[0] == '\n' || hex[0] == '\r'))
                hex++, hexlen--;
        while (hexlen > 0 && (hex[hexlen - 1] == ' ' || hex[hexlen - 1] == '\t' || hex[hexlen - 1] == '\n' ||
                              hex[hexlen - 1] == '\r'))
                hexlen--;
        if (hexlen % 2)
                return -EBADMSG;
        if (hexlen / 2 > cap)
                return -E2BIG;
        for (size_t i = 0; i < hexlen / 2; i++) {
                int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EBADMSG;
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        return (int) (hexlen / 2);
}

int vc_sbuf_init(vc_sbuf *b, size_t cap) {
        *b = (vc_sbuf) { .cap = cap };
        b->s = malloc(cap);
        if (!b->s)
                return -ENOMEM;
        b->s[0] = '\0';
        return 0;
}

void vc_sbuf_printf(vc_sbuf *b, const char *fmt, ...) {
        va_list ap;
        if (b->error)
                return;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= b->cap - b->len) {
                b->s[b->len] = '\0';
                b->error = -E2BIG;
                return;
        }
        b->len += (size_t) n;
}

void vc_sbuf_hex(vc_sbuf *b, const uint8_t *p, size_t n) {
        if (b->error)
                return;
        if (n > (b->cap - b->len - 1) / 2) {
                b->error = -E2BIG;
                return;
        }
        vc_hex(p, n, b->s + b->len);
        b->len += 2 * n;
}

char *vc_sbuf_take(vc_sbuf *b) {
        if (b->error) {
                free(b->s);
                b->s = NULL;
                return NULL;
        }
        return TAKE_PTR(b->s);
}
