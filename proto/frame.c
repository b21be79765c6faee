/* SPDX-License-Identifier: Apache-2.0 */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void vf_decoder_init(vf_decoder *d, size_t max_frame) {
        memset(d, 0, sizeof(*d));
        d->max_frame = max_frame;
}

void vf_decoder_done(vf_decoder *d) {
        free(d->payload);
        vf_decoder_init(d, d->max_frame);
}

int vf_decoder_idle(const vf_decoder *d) {
        return d->header_have == 0 && d->payload == NULL;
}

long vf_decoder_feed(vf_decoder *d, const uint8_t *data, size_t len, uint8_t **ret_frame, size_t *ret_len) {
        size_t used = 0;
        *ret_frame = NULL;
        *ret_len = 0;
        if (d->header_have < VF_HEADER_SIZE) {
                size_t n = VF_HEADER_SIZE - d->header_have;
                if (n > len)
                        n = len;
                memcpy(d->header + d->header_have, data, n);
                d->header_have += n;
                used += n;
                if (d->header_have < VF_HEADER_SIZE)
                        return (long) used;
                size_t plen = (size_t) d->header[0] << 24 | (size_t) d->header[1] << 16 | (size_t) d->header[2] << 8 |
                              d->header[3];
                if (plen > d->max_frame)
                        return -E2BIG;
                d->payload = malloc(plen ? plen : 1);
                if (!d->payload)
                        return -ENOMEM;
                d->payload_len = plen;
                d->payload_have = 0;
        }
        size_t n = d->payload_len - d->payload_have;
        if (n > len - used)
                n = len - used;
        if (n)
                memcpy(d->payload + d->payload_have, data + used, n);
        d->payload_have += n;
        used += n;
        if (d->payload_have == d->payload_len) {
                *ret_frame = d->payload;
                *ret_len = d->payload_len;
                d->payload = NULL;
                d->header_have = 0;
                d->payload_len = d->payload_have = 0;
        }
        return (long) used;
}

int vf_header(size_t len, size_t max_frame, uint8_t out[VF_HEADER_SIZE]) {
        if (len > max_frame || len > 0xFFFFFFFFu)
                return -E2BIG;
        out[0] = (uint8_t) (len >> 24);
        out[1] = (uint8_t) (len >> 16);
        out[2] = (uint8_t) (len >> 8);
        out[3] = (uint8_t) len;
        return 0;
}
