/* SPDX-License-Identifier: Apache-2.0 */
/* Edits a parsed event log and writes it back: for tests that change what a real log
 * says while keeping every digest consistent with its data. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "eventlog.h"

typedef struct le_event {
        uint32_t pcr, type;
        uint32_t n_digests;
        uint16_t algs[VC_EVENTLOG_MAX_ALGS], sizes[VC_EVENTLOG_MAX_ALGS];
        uint8_t digests[VC_EVENTLOG_MAX_ALGS][VC_EVENTLOG_MAX_DIGEST_SIZE];
        uint8_t *data;
        size_t data_size;
} le_event;

typedef struct logedit {
        int agile;
        uint8_t *header;        /* the first event, verbatim */
        size_t header_len;
        size_t n;
        le_event *ev;           /* ev[0] mirrors the header event (not rewritten) */
} logedit;

void le_load(logedit *le, const vc_eventlog *log);
/* Replaces event i's data; its digests become the hash of `measured` in every bank. */
void le_set_data(logedit *le, size_t i, const void *data, size_t len, const void *measured, size_t mlen);
/* Sets every digest of event i to the hash of `measured`, keeping the data. */
void le_set_measured(logedit *le, size_t i, const void *measured, size_t mlen);
/* Inserts an event before position i, digests = hash of its data, banks as event i-1. */
void le_insert(logedit *le, size_t i, uint32_t pcr, uint32_t type, const void *data, size_t len);
/* Removes event i (i >= 1). */
void le_delete(logedit *le, size_t i);
void le_write(const logedit *le, uint8_t **ret, size_t *ret_len);
void le_free(logedit *le);
