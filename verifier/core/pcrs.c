/* SPDX-License-Identifier: Apache-2.0 */
#include "pcrs.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

const vc_pcr_bank *vc_pcr_set_find(const vc_pcr_set *s, uint16_t alg) {
        for (uint32_t i = 0; i < s->n_banks; i++)
                if (s->banks[i].alg == alg)
                        return &s->banks[i];
        return NULL;
}

vc_pcr_bank *vc_pcr_set_bank(vc_pcr_set *s, uint16_t alg) {
        const vc_alg_info *a = vc_alg_lookup(alg);
        if (!a)
                return NULL;
        for (uint32_t i = 0; i < s->n_banks; i++)
                if (s->banks[i].alg == alg)
                        return &s->banks[i];
        if (s->n_banks >= VC_NUM_ALGS)
                return NULL;
        vc_pcr_bank *b = &s->banks[s->n_banks++];
        memset(b, 0, sizeof(*b));
        b->alg = alg;
        b->size = (uint16_t) a->size;
        return b;
}

static int parse_pcr_index(const char *key, unsigned *ret) {
        char *end;
        if (!key[0] || key[0] == '-' || key[0] == '+' || key[0] == ' ')
                return -EBADMSG;
        unsigned long v = strtoul(key, &end, 10);
        if (*end || v >= VC_PCR_COUNT)
                return -EBADMSG;
        *ret = (unsigned) v;
        return 0;
}

int vc_pcrs_parse_json(const char *text, size_t len, vc_pcr_set *ret, vc_error *err) {
        vc_pcr_set set = { 0 };
        struct json_tokener *tok;
        struct json_object *root;
        int r = 0;

        vc_error_clear(err);
        if (len > VC_PCRS_MAX_FILE)
                return vc_error_set(err, -E2BIG, SIZE_MAX, -1, "PCR file of %zu bytes exceeds %u bytes", len,
                                    VC_PCRS_MAX_FILE);
        tok = json_tokener_new_ex(8);
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, text, (int) len);
        if (!root || json_tokener_get_parse_end(tok) < len) {
                /* trailing blanks are fine */
                size_t end = root ? json_tokener_get_parse_end(tok) : 0;
                bool only_blank = root != NULL;
                for (size_t i = end; root && i < len; i++)
                        if (!strchr(" \t\r\n", text[i]))
                                only_blank = false;
                if (!only_blank) {
                        enum json_tokener_error je = json_tokener_get_error(tok);
                        r = vc_error_set(err, -EBADMSG, root ? end : json_tokener_get_parse_end(tok), -1,
                                         "PCR JSON: %s",
                                         root ? "trailing data after the object"
                                         : je == json_tokener_continue ? "unexpected end of input"
                                                                       : json_tokener_error_desc(je));
                        goto out;
                }
        }
        if (!json_object_is_type(root, json_type_object)) {
                r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "PCR JSON: $ must be an object of banks");
                goto out;
        }
        json_object_object_foreach(root, bank, pcrs) {
                const vc_alg_info *a = vc_alg_by_name(bank);
                if (!a) {
                        r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                         "PCR JSON: $.%s: unknown bank (expected sha1, sha256, sha384, sha512 "
                                         "or sm3_256)", bank);
                        goto out;
                }
                if (vc_pcr_set_find(&set, a->alg)) {
                        r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "PCR JSON: $.%s: bank given twice", bank);
                        goto out;
                }
                if (!json_object_is_type(pcrs, json_type_object)) {
                        r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                         "PCR JSON: $.%s must be an object of PCR index to hex value", bank);
                        goto out;
                }
                vc_pcr_bank *b = vc_pcr_set_bank(&set, a->alg);
                json_object_object_foreach(pcrs, key, val) {
                        unsigned idx;
                        if (parse_pcr_index(key, &idx) < 0) {
                                r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                                 "PCR JSON: $.%s.%s: PCR index must be 0-%u", bank, key,
                                                 VC_PCR_COUNT - 1);
                                goto out;
                        }
                        if (!json_object_is_type(val, json_type_string)) {
                                r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                                 "PCR JSON: $.%s.%s must be a hex string", bank, key);
                                goto out;
                        }
                        const char *hex = json_object_get_string(val);
                        size_t hl = (size_t) json_object_get_string_len(val);
                        /* accept an optional 0x prefix, as some tools print it */
                        if (hl >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X'))
                                hex += 2, hl -= 2;
                        int n = vc_unhex(hex, hl, b->values[idx], VC_MAX_DIGEST);
                        if (n != (int) a->size) {
                                r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                                 "PCR JSON: $.%s.%s: expected %zu bytes of hex, got %s", bank, key,
                                                 a->size, n < 0 ? "invalid hex" : "another length");
                                goto out;
                        }
                        if (b->mask & (1u << idx)) {
                                r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "PCR JSON: $.%s.%s given twice",
                                                 bank, key);
                                goto out;
                        }
                        b->mask |= 1u << idx;
                }
        }
        *ret = set;
out:
        json_object_put(root);
        json_tokener_free(tok);
        return r;
}

#define SER_SEL_SIZE 132u     /* sizeof(TPML_PCR_SELECTION) on x86-64 */
#define SER_SEL_ENTRY 8u      /* sizeof(TPMS_PCR_SELECTION): 2 + 1 + 4 + 1 padding */
#define SER_DIGESTS_SIZE 532u /* sizeof(TPML_DIGEST): 4 + 8 * 66 */
#define SER_MAX_DIGEST_LISTS 16u

int vc_pcrs_parse_tpm2_serialized(const uint8_t *buf, size_t len, vc_pcr_set *ret, vc_error *err) {
        vc_pcr_set set = { 0 };
        struct {
                uint16_t alg;
                uint32_t mask;
        } sel[16];
        uint32_t nsel, nlists, total = 0;

        vc_error_clear(err);
        if (len < SER_SEL_SIZE + 4)
                return vc_error_set(err, -EBADMSG, 0, -1,
                                    "serialized PCR file: %zu bytes is shorter than the %u-byte header", len,
                                    SER_SEL_SIZE + 4);
        nsel = vc_le32(buf);
        if (nsel > 16)
                return vc_error_set(err, -EBADMSG, 0, -1, "serialized PCR file: %u selections, at most 16", nsel);
        for (uint32_t i = 0; i < nsel; i++) {
                const uint8_t *s = buf + 4 + i * SER_SEL_ENTRY;
                sel[i].alg = vc_le16(s);
                uint8_t sz = s[2];
                if (sz > 4)
                        return vc_error_set(err, -EBADMSG, 4 + i * SER_SEL_ENTRY + 2, -1,
                                            "serialized PCR file: sizeofSelect %u, at most 4", sz);
                sel[i].mask = 0;
                for (uint8_t j = 0; j < sz; j++)
                        sel[i].mask |= (uint32_t) s[3 + j] << (8 * j);
                if (sel[i].mask >> VC_PCR_COUNT)
                        return vc_error_set(err, -EBADMSG, 4 + i * SER_SEL_ENTRY + 3, -1,
                                            "serialized PCR file: PCR above %u selected", VC_PCR_COUNT - 1);
                const vc_alg_info *a = vc_alg_lookup(sel[i].alg);
                if (!a)
                        return vc_error_set(err, -ENOTSUP, 4 + i * SER_SEL_ENTRY, -1,
                                            "serialized PCR file: unknown bank algorithm 0x%04x", sel[i].alg);
                if (vc_pcr_set_find(&set, sel[i].alg))
                        return vc_error_set(err, -EBADMSG, 4 + i * SER_SEL_ENTRY, -1,
                                            "serialized PCR file: bank %s selected twice", a->name);
                vc_pcr_set_bank(&set, sel[i].alg);
                total += (uint32_t) __builtin_popcount(sel[i].mask);
        }
        nlists = vc_le32(buf + SER_SEL_SIZE);
        if (nlists > SER_MAX_DIGEST_LISTS)
                return vc_error_set(err, -EBADMSG, SER_SEL_SIZE, -1,
                                    "serialized PCR file: %u digest lists, at most %u", nlists, SER_MAX_DIGEST_LISTS);
        if (len != SER_SEL_SIZE + 4 + (size_t) nlists * SER_DIGESTS_SIZE)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                    "serialized PCR file: %zu bytes, expected %zu for %u digest lists", len,
                                    SER_SEL_SIZE + 4 + (size_t) nlists * SER_DIGESTS_SIZE, nlists);

        /* Walk the selection in order, taking digests from the lists in order. */
        uint32_t si = 0, pcr = 0, taken = 0;
        for (uint32_t l = 0; l < nlists; l++) {
                size_t lo = SER_SEL_SIZE + 4 + (size_t) l * SER_DIGESTS_SIZE;
                uint32_t count = vc_le32(buf + lo);
                if (count > 8)
                        return vc_error_set(err, -EBADMSG, lo, -1,
                                            "serialized PCR file: digest list %u holds %u digests, at most 8", l,
                                            count);
                for (uint32_t d = 0; d < count; d++) {
                        size_t dof = lo + 4 + d * 66u;
                        uint16_t dsize = vc_le16(buf + dof);
                        while (si < nsel && (pcr >= VC_PCR_COUNT || !(sel[si].mask & (1u << pcr)))) {
                                if (++pcr >= VC_PCR_COUNT)
                                        si++, pcr = 0;
                        }
                        if (si >= nsel)
                                return vc_error_set(err, -EBADMSG, dof, -1,
                                                    "serialized PCR file: more digests than selected PCRs (%u)",
                                                    total);
                        vc_pcr_bank *b = vc_pcr_set_bank(&set, sel[si].alg);
                        if (dsize != b->size)
                                return vc_error_set(err, -EBADMSG, dof, -1,
                                                    "serialized PCR file: %s PCR %u digest size %u, expected %u",
                                                    vc_alg_lookup(b->alg)->name, pcr, dsize, b->size);
                        memcpy(b->values[pcr], buf + dof + 2, dsize);
                        b->mask |= 1u << pcr;
                        taken++;
                        if (++pcr >= VC_PCR_COUNT)
                                si++, pcr = 0;
                }
        }
        if (taken != total)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                    "serialized PCR file: %u digests for %u selected PCRs", taken, total);
        *ret = set;
        return 0;
}

int vc_pcrs_parse(const uint8_t *buf, size_t len, vc_pcr_set *ret, vc_error *err) {
        size_t i = 0;
        while (i < len && strchr(" \t\r\n", buf[i]) && buf[i])
                i++;
        if (i < len && buf[i] == '{')
                return vc_pcrs_parse_json((const char *) buf, len, ret, err);
        return vc_pcrs_parse_tpm2_serialized(buf, len, ret, err);
}
