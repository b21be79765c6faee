/* SPDX-License-Identifier: Apache-2.0 */
#include "logedit.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "logbuilder.h"

void le_load(logedit *le, const vc_eventlog *log) {
        memset(le, 0, sizeof(*le));
        le->agile = log->format == VC_LOG_CRYPTO_AGILE;
        le->n = log->n_events;
        le->ev = calloc(le->n + 64, sizeof(*le->ev));
        assert(le->ev);
        le->header_len = log->events[0].size;
        le->header = malloc(le->header_len);
        memcpy(le->header, log->buf, le->header_len);
        for (size_t i = 0; i < log->n_events; i++) {
                const vc_event *e = &log->events[i];
                le_event *o = &le->ev[i];
                o->pcr = e->pcr;
                o->type = e->type;
                o->n_digests = e->n_digests;
                for (uint32_t d = 0; d < e->n_digests; d++) {
                        o->algs[d] = e->digests[d].alg;
                        o->sizes[d] = e->digests[d].size;
                        memcpy(o->digests[d], e->digests[d].bytes, e->digests[d].size);
                }
                o->data = malloc(e->data_size ? e->data_size : 1);
                memcpy(o->data, e->data, e->data_size);
                o->data_size = e->data_size;
        }
}

void le_set_measured(logedit *le, size_t i, const void *measured, size_t mlen) {
        le_event *o = &le->ev[i];
        for (uint32_t d = 0; d < o->n_digests; d++) {
                uint8_t md[VC_MAX_DIGEST];
                if (vc_digest(o->algs[d], measured, mlen, md) == 0)
                        memcpy(o->digests[d], md, o->sizes[d]);
        }
}

void le_set_data(logedit *le, size_t i, const void *data, size_t len, const void *measured, size_t mlen) {
        le_event *o = &le->ev[i];
        free(o->data);
        o->data = malloc(len ? len : 1);
        memcpy(o->data, data, len);
        o->data_size = len;
        le_set_measured(le, i, measured, mlen);
}

void le_insert(logedit *le, size_t i, uint32_t pcr, uint32_t type, const void *data, size_t len) {
        assert(i >= 1 && i <= le->n);
        memmove(&le->ev[i + 1], &le->ev[i], (le->n - i) * sizeof(le_event));
        le->n++;
        le_event *o = &le->ev[i];
        *o = le->ev[i - 1];
        o->pcr = pcr;
        o->type = type;
        o->data = NULL;
        o->data_size = 0;
        le_set_data(le, i, data, len, data, len);
}

void le_delete(logedit *le, size_t i) {
        assert(i >= 1 && i < le->n);
        free(le->ev[i].data);
        memmove(&le->ev[i], &le->ev[i + 1], (le->n - i - 1) * sizeof(le_event));
        le->n--;
}

void le_write(const logedit *le, uint8_t **ret, size_t *ret_len) {
        logbuilder b = { 0 };
        lb_raw(&b, le->header, le->header_len);
        for (size_t i = 1; i < le->n; i++) {
                const le_event *o = &le->ev[i];
                lb_u32(&b, o->pcr);
                lb_u32(&b, o->type);
                if (le->agile)
                        lb_u32(&b, o->n_digests);
                for (uint32_t d = 0; d < o->n_digests; d++) {
                        if (le->agile)
                                lb_raw(&b, (uint8_t[]) { (uint8_t) o->algs[d], (uint8_t) (o->algs[d] >> 8) }, 2);
                        lb_raw(&b, o->digests[d], o->sizes[d]);
                }
                lb_u32(&b, (uint32_t) o->data_size);
                lb_raw(&b, o->data, o->data_size);
        }
        *ret = b.buf;
        *ret_len = b.len;
}

void le_free(logedit *le) {
        for (size_t i = 0; i < le->n; i++)
                free(le->ev[i].data);
        free(le->ev);
        free(le->header);
        memset(le, 0, sizeof(*le));
}
