/* SPDX-License-Identifier: Apache-2.0 */
/* Length-prefix framing of the agent channel: a 4-byte big-endian payload length, then
 * the payload. Pure; the cap on a frame is checked before anything is allocated, and the
 * decoder accepts its input in pieces of any size (partial reads). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define VF_HEADER_SIZE 4u
#define VF_DEFAULT_MAX_FRAME (4u << 20)  /* event logs fit; a peer cannot make us allocate more */

typedef struct vf_decoder {
        size_t max_frame;
        uint8_t header[VF_HEADER_SIZE];
        size_t header_have;
        uint8_t *payload;        /* allocated once the header is complete and checked */
        size_t payload_len, payload_have;
} vf_decoder;

void vf_decoder_init(vf_decoder *d, size_t max_frame);
/* Frees a partly received frame. */
void vf_decoder_done(vf_decoder *d);

/* Consumes bytes from data. Returns how many were consumed (possibly fewer than len: the
 * rest belongs to the next frame) and, when a whole frame is complete, hands it over in
 * *ret_frame / *ret_len (malloc'ed, caller frees; *ret_frame stays NULL otherwise).
 * Errors: -E2BIG when the announced length exceeds max_frame (nothing is allocated; the
 * connection must be closed), -ENOMEM. */
long vf_decoder_feed(vf_decoder *d, const uint8_t *data, size_t len, uint8_t **ret_frame, size_t *ret_len);

/* True when the decoder is between frames (nothing partial held). */
int vf_decoder_idle(const vf_decoder *d);

/* Writes the header for a payload of len bytes; -E2BIG when len exceeds max_frame. */
int vf_header(size_t len, size_t max_frame, uint8_t out[VF_HEADER_SIZE]);
