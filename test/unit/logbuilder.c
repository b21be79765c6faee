/* SPDX-License-Identifier: Apache-2.0 */
#include "logbuilder.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "hash.h"
#include "uefi.h"

static void reserve(logbuilder *b, size_t n) {
        if (b->len + n <= b->cap)
                return;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
                cap *= 2;
        b->buf = realloc(b->buf, cap);
        assert(b->buf);
        b->cap = cap;
}

void lb_raw(logbuilder *b, const void *p, size_t n) {
        reserve(b, n);
        if (n)
                memcpy(b->buf + b->len, p, n);
        b->len += n;
}

void lb_u32(logbuilder *b, uint32_t v) {
        uint8_t x[4] = { (uint8_t) v, (uint8_t) (v >> 8), (uint8_t) (v >> 16), (uint8_t) (v >> 24) };
        lb_raw(b, x, 4);
}

static void lb_u16(logbuilder *b, uint16_t v) {
        uint8_t x[2] = { (uint8_t) v, (uint8_t) (v >> 8) };
        lb_raw(b, x, 2);
}

void lb_init_agile_sizes(logbuilder *b, const uint16_t *algs, const uint16_t *sizes, uint32_t n_algs) {
        memset(b, 0, sizeof(*b));
        b->agile = 1;
        b->n_algs = n_algs;
        for (uint32_t i = 0; i < n_algs; i++) {
                b->algs[i] = algs[i];
                b->sizes[i] = sizes[i];
        }
        /* TCG_PCR_EVENT header with the Spec ID event */
        uint8_t zero[20] = { 0 };
        lb_u32(b, 0);
        lb_u32(b, 3); /* EV_NO_ACTION */
        lb_raw(b, zero, 20);
        lb_u32(b, 16 + 4 + 4 + 4 + 4 * n_algs + 1);
        lb_raw(b, "Spec ID Event03", 16);
        lb_u32(b, 0);                        /* platform class */
        lb_raw(b, (uint8_t[]) { 0, 2, 0, 2 }, 4); /* 2.0 errata 0, uintn 8 bytes */
        lb_u32(b, n_algs);
        for (uint32_t i = 0; i < n_algs; i++) {
                lb_u16(b, algs[i]);
                lb_u16(b, sizes[i]);
        }
        lb_raw(b, (uint8_t[]) { 0 }, 1);
}

void lb_init_agile(logbuilder *b, const uint16_t *algs, uint32_t n_algs) {
        uint16_t sizes[8];
        for (uint32_t i = 0; i < n_algs; i++) {
                const vc_alg_info *a = vc_alg_lookup(algs[i]);
                sizes[i] = a ? (uint16_t) a->size : 32;
        }
        lb_init_agile_sizes(b, algs, sizes, n_algs);
}

void lb_init_legacy(logbuilder *b) {
        memset(b, 0, sizeof(*b));
        b->n_algs = 1;
        b->algs[0] = VC_ALG_SHA1;
        b->sizes[0] = 20;
}

static void event_common(logbuilder *b, uint32_t pcr, uint32_t type, const void *data, size_t len,
                         const void *measured, size_t mlen, int fill) {
        lb_u32(b, pcr);
        lb_u32(b, type);
        if (b->agile)
                lb_u32(b, b->n_algs);
        for (uint32_t i = 0; i < b->n_algs; i++) {
                uint8_t md[128];
                if (fill >= 0 || !vc_alg_lookup(b->algs[i]))
                        memset(md, fill >= 0 ? fill : 0x5a, sizeof(md));
                else
                        assert(vc_digest(b->algs[i], measured, mlen, md) == 0);
                if (b->agile)
                        lb_u16(b, b->algs[i]);
                lb_raw(b, md, b->sizes[i]);
        }
        lb_u32(b, (uint32_t) len);
        lb_raw(b, data, len);
}

void lb_event(logbuilder *b, uint32_t pcr, uint32_t type, const void *data, size_t len) {
        event_common(b, pcr, type, data, len, data, len, -1);
}

void lb_event_measured(logbuilder *b, uint32_t pcr, uint32_t type, const void *data, size_t len,
                       const void *measured, size_t mlen) {
        event_common(b, pcr, type, data, len, measured, mlen, -1);
}

void lb_event_fill(logbuilder *b, uint32_t pcr, uint32_t type, uint8_t fill, const void *data, size_t len) {
        event_common(b, pcr, type, data, len, NULL, 0, fill);
}

void lb_free(logbuilder *b) {
        free(b->buf);
        memset(b, 0, sizeof(*b));
}

uint8_t *lb_variable(const uint8_t guid[16], const char *name, const void *data, size_t dlen, size_t *ret_len) {
        size_t nl = strlen(name), len = 32 + 2 * nl + dlen;
        uint8_t *v = calloc(1, len), *p = v;
        assert(v);
        memcpy(p, guid, 16);
        for (int i = 0; i < 8; i++) {
                p[16 + i] = (uint8_t) ((uint64_t) nl >> (8 * i));
                p[24 + i] = (uint8_t) ((uint64_t) dlen >> (8 * i));
        }
        for (size_t i = 0; i < nl; i++)
                p[32 + 2 * i] = (uint8_t) name[i];
        if (dlen)
                memcpy(p + 32 + 2 * nl, data, dlen);
        *ret_len = len;
        return v;
}

void lb_sample_boot(logbuilder *b) {
        static const uint16_t algs[] = { VC_ALG_SHA1, VC_ALG_SHA256 };
        size_t n;
        lb_init_agile(b, algs, 2);
        lb_event(b, 0, EV_S_CRTM_VERSION, "v\0\0\0", 4);
        uint8_t *sb = lb_variable(vc_guid_efi_global_variable, "SecureBoot", "\1", 1, &n);
        lb_event(b, 7, EV_EFI_VARIABLE_DRIVER_CONFIG, sb, n);
        free(sb);
        for (uint32_t p = 0; p < 8; p++)
                lb_event(b, p, EV_SEPARATOR, "\0\0\0\0", 4);
        lb_event_fill(b, 4, EV_EFI_BOOT_SERVICES_APPLICATION, 0x21, "app1", 4);
}
