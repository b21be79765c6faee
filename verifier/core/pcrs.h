/* SPDX-License-Identifier: Apache-2.0 */
/* Sets of PCR values per bank: what a quote covers, what a log replays to. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eventlog.h"
#include "hash.h"
#include "vc-util.h"

#define VC_PCRS_MAX_FILE (1u << 20) /* JSON or serialized PCR file */

typedef struct vc_pcr_bank {
        uint16_t alg;
        uint16_t size;
        uint32_t mask;                                  /* bit i: PCR i has a value */
        uint8_t values[VC_PCR_COUNT][VC_MAX_DIGEST];
} vc_pcr_bank;

typedef struct vc_pcr_set {
        uint32_t n_banks;
        vc_pcr_bank banks[VC_NUM_ALGS];
} vc_pcr_set;

/* The bank for alg, or NULL. */
const vc_pcr_bank *vc_pcr_set_find(const vc_pcr_set *s, uint16_t alg);
/* The bank for alg, added (empty) if absent. NULL when alg is not a known algorithm. */
vc_pcr_bank *vc_pcr_set_bank(vc_pcr_set *s, uint16_t alg);

/* {"sha256": {"0": "hex", ...}, ...}: the format of `vouchctl eventlog replay --json` and
 * of the .pcrs.json files in the shared data. Unknown bank names, PCR indices out of 0-23, and values of the
 * wrong length or not hex are errors naming the JSON path. */
int vc_pcrs_parse_json(const char *text, size_t len, vc_pcr_set *ret, vc_error *err);

/* tpm2-tools' "serialized" PCR file (`tpm2_quote -o`, tpm2-tools 5.x lib/pcr.c): the
 * TPML_PCR_SELECTION struct as laid out in memory on x86-64 (132 bytes, little-endian),
 * a UINT32 count, then that many TPML_DIGEST structs (4 + 8 x 66 bytes); digests follow the
 * selection in order (bank by bank, PCRs ascending) across the TPML_DIGESTs. */
int vc_pcrs_parse_tpm2_serialized(const uint8_t *buf, size_t len, vc_pcr_set *ret, vc_error *err);

/* Either of the above: JSON when the first non-blank byte is '{'. */
int vc_pcrs_parse(const uint8_t *buf, size_t len, vc_pcr_set *ret, vc_error *err);
