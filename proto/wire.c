/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "wire.h"

/* vouch.proto: VerifierMessage.verdict is field 4, VerdictNotice.verdict field 1 and its
 * device_certificates field 2; messages and bytes are length-delimited (protobuf encoding:
 * tag = field << 3 | wire type 2). */
#define VERIFIER_MESSAGE_VERDICT 4u
#define VERDICT_NOTICE_VERDICT 1u
#define VERDICT_NOTICE_DEVICE_CERTIFICATES 2u
#define WIRE_TYPE_LEN 2u
#define VARINT_MAX 10u

/* A buffer for a frame of a payload of n bytes, its header written: the payload goes at
 * VF_HEADER_SIZE. */
static int frame_alloc(size_t n, size_t max_frame, uint8_t **ret) {
        uint8_t header[VF_HEADER_SIZE];
        if (vf_header(n, max_frame, header) < 0 || n > SIZE_MAX - VF_HEADER_SIZE)
                return -E2BIG;
        uint8_t *b = malloc(n + VF_HEADER_SIZE);
        if (!b)
                return -ENOMEM;
        memcpy(b, header, VF_HEADER_SIZE);
        *ret = b;
        return 0;
}

/* Any message, packed by protobuf-c after its frame header. */
static int frame_message(const ProtobufCMessage *m, size_t max_frame, uint8_t **ret, size_t *ret_len) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *b;
        int r = frame_alloc(n, max_frame, &b);
        if (r < 0)
                return r;
        protobuf_c_message_pack(m, b + VF_HEADER_SIZE);
        *ret = b;
        *ret_len = n + VF_HEADER_SIZE;
        return 0;
}

int vw_frame_agent_message(const Vouch__V1__AgentMessage *m, size_t max_frame, uint8_t **ret, size_t *ret_len) {
        return frame_message(&m->base, max_frame, ret, ret_len);
}

int vw_frame_verifier_message(const Vouch__V1__VerifierMessage *m, size_t max_frame, uint8_t **ret,
                              size_t *ret_len) {
        return frame_message(&m->base, max_frame, ret, ret_len);
}

/* Base-128 varint, least significant group first. Returns the bytes written (at most
 * VARINT_MAX). */
static size_t put_varint(uint8_t *p, uint64_t v) {
        size_t n = 0;
        do {
                p[n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
        } while (v);
        return n;
}

/* One length-delimited field's tag and length, before its len bytes of content. */
static size_t put_len_field(uint8_t *p, unsigned field, size_t len) {
        size_t n = put_varint(p, (uint64_t) field << 3 | WIRE_TYPE_LEN);
        return n + put_varint(p + n, len);
}

int vw_frame_verdict_notice(const uint8_t *signed_verdict, size_t len, size_t max_frame, uint8_t **ret,
                            size_t *ret_len) {
        return vw_frame_verdict_notice_certs(signed_verdict, len, NULL, NULL, 0, max_frame, ret, ret_len);
}

int vw_frame_verdict_notice_certs(const uint8_t *signed_verdict, size_t len, const uint8_t *const *certs,
                                  const size_t *cert_lens, size_t n_certs, size_t max_frame, uint8_t **ret,
                                  size_t *ret_len) {
        uint8_t notice_head[2 * VARINT_MAX], message_head[2 * VARINT_MAX];
        uint8_t cert_head[VW_MAX_DEVICE_CERTIFICATES][2 * VARINT_MAX];
        size_t ch[VW_MAX_DEVICE_CERTIFICATES];
        /* each part at most max_frame, and at most 4 GiB: then the sums below cannot overflow */
        if (n_certs > VW_MAX_DEVICE_CERTIFICATES || len > max_frame || len > 0xFFFFFFFFu)
                return -E2BIG;
        size_t nh = put_len_field(notice_head, VERDICT_NOTICE_VERDICT, len);
        size_t notice_len = nh + len;
        for (size_t i = 0; i < n_certs; i++) {
                if (cert_lens[i] > max_frame || cert_lens[i] > 0xFFFFFFFFu)
                        return -E2BIG;
                ch[i] = put_len_field(cert_head[i], VERDICT_NOTICE_DEVICE_CERTIFICATES, cert_lens[i]);
                notice_len += ch[i] + cert_lens[i];
        }
        size_t mh = put_len_field(message_head, VERIFIER_MESSAGE_VERDICT, notice_len);
        size_t n = mh + notice_len;
        uint8_t *b;
        int r = frame_alloc(n, max_frame, &b);
        if (r < 0)
                return r;
        uint8_t *p = b + VF_HEADER_SIZE;
        memcpy(p, message_head, mh);
        p += mh;
        memcpy(p, notice_head, nh);
        p += nh;
        if (len)
                memcpy(p, signed_verdict, len);
        p += len;
        /* protobuf-c packs a repeated bytes field as one length-delimited record per element,
         * in order, after the fields of lower numbers */
        for (size_t i = 0; i < n_certs; i++) {
                memcpy(p, cert_head[i], ch[i]);
                p += ch[i];
                if (cert_lens[i])
                        memcpy(p, certs[i], cert_lens[i]);
                p += cert_lens[i];
        }
        *ret = b;
        *ret_len = n + VF_HEADER_SIZE;
        return 0;
}
