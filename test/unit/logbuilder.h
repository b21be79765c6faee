/* SPDX-License-Identifier: Apache-2.0 */
/* Builds synthetic event logs for tests: crypto-agile or legacy, events with digests that
 * are the hash of their data (or given explicitly). */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct logbuilder {
        uint8_t *buf;
        size_t len, cap;
        int agile;
        uint32_t n_algs;
        uint16_t algs[8], sizes[8];
} logbuilder;

/* Crypto-agile log with a Spec ID event for the given algorithms (sizes looked up). */
void lb_init_agile(logbuilder *b, const uint16_t *algs, uint32_t n_algs);
/* Same, with explicit sizes (for unknown algorithms). */
void lb_init_agile_sizes(logbuilder *b, const uint16_t *algs, const uint16_t *sizes, uint32_t n_algs);
/* Legacy SHA-1 log; the first event is added by the first lb_event call. */
void lb_init_legacy(logbuilder *b);
/* Event whose digests are H(data) in every bank. */
void lb_event(logbuilder *b, uint32_t pcr, uint32_t type, const void *data, size_t len);
/* Event whose digests are H(measured) while the logged data is data. */
void lb_event_measured(logbuilder *b, uint32_t pcr, uint32_t type, const void *data, size_t len,
                       const void *measured, size_t mlen);
/* Event with all digests set to fill. */
void lb_event_fill(logbuilder *b, uint32_t pcr, uint32_t type, uint8_t fill, const void *data, size_t len);
void lb_raw(logbuilder *b, const void *p, size_t n);
void lb_u32(logbuilder *b, uint32_t v);
void lb_free(logbuilder *b);

/* A small UEFI boot in a crypto-agile SHA-1 + SHA-256 log: the CRTM version, SecureBoot on,
 * a separator in PCRs 0-7 and one boot application in PCR 4 (digests 0x21). */
void lb_sample_boot(logbuilder *b);

/* UEFI_VARIABLE_DATA for an ASCII name. Returns malloc'ed bytes, length in *ret_len. */
uint8_t *lb_variable(const uint8_t guid[16], const char *name, const void *data, size_t dlen, size_t *ret_len);
