/* SPDX-License-Identifier: Apache-2.0 */
#include "event.h"

#include <errno.h>
#include <string.h>

#include "uefi.h"

#define TEXT_MAX 16384u      /* cap on one event's description */
#define HEX_SHOWN 512u       /* raw data shown in hex, at most */

const char *vc_digest_status_name(vc_digest_status s) {
        switch (s) {
        case VC_DIGEST_NOT_CHECKED:
                return "not-checked";
        case VC_DIGEST_VERIFIED:
                return "verified";
        case VC_DIGEST_MISMATCH:
                return "MISMATCH";
        case VC_DIGEST_NOT_EXTENDED:
                return "not-extended";
        }
        return "?";
}

int vc_parse_variable(const uint8_t *data, size_t len, const uint8_t **ret_guid, const uint8_t **ret_name,
                      uint64_t *ret_name_chars, const uint8_t **ret_vardata, uint64_t *ret_vardata_len) {
        /* UEFI_VARIABLE_DATA: GUID, UINT64 name length (chars), UINT64 data length, name, data. */
        if (len < 32)
                return -EBADMSG;
        uint64_t nchars = vc_le64(data + 16), dlen = vc_le64(data + 24);
        if (nchars > (len - 32) / 2)
                return -EBADMSG;
        size_t off = 32 + (size_t) nchars * 2;
        if (dlen > len - off)
                return -EBADMSG;
        *ret_guid = data;
        *ret_name = data + 32;
        *ret_name_chars = nchars;
        *ret_vardata = data + off;
        *ret_vardata_len = dlen;
        return 0;
}

/* ---- digest checks ---- */

typedef struct candidate {
        const uint8_t *p;
        size_t n;
        vc_measured kind;
} candidate;

static bool has_prefix(const uint8_t *d, size_t n, const char *prefix) {
        size_t pl = strlen(prefix);
        return n >= pl && memcmp(d, prefix, pl) == 0;
}

/* Fills the candidates for the measured data of ev; returns how many and sets *defined when
 * the spec (or a well-known measuring component) defines the measured data, so a
 * difference is a mismatch rather than "not checkable". */
static size_t measured_candidates(const vc_event *ev, candidate c[4], bool *defined) {
        const uint8_t *d = ev->data;
        size_t n = ev->data_size, k = 0;

        *defined = false;
        switch (ev->type) {
        case EV_SEPARATOR:
                /* PFP 1.05 10.4.1: the digest is of the event data. SeaBIOS (tcgbios.c
                 * tpm_add_event_separators) logs no data and measures 0xFFFFFFFF. */
                *defined = true;
                c[k++] = (candidate) { d, n, VC_MEASURED_EVENT_DATA };
                if (n == 0)
                        c[k++] = (candidate) { (const uint8_t *) "\xff\xff\xff\xff", 4, VC_MEASURED_ERROR_SEPARATOR };
                break;
        case EV_EFI_ACTION:
        case EV_ACTION:
        case EV_EFI_GPT_EVENT:
        case EV_EFI_GPT_EVENT2:
        case EV_EFI_VARIABLE_DRIVER_CONFIG:
        case EV_EFI_SPDM_DEVICE_POLICY:
        case EV_EFI_SPDM_DEVICE_AUTHORITY:
                /* PFP 1.05 10.4.1 / 10.4.4: the digest is of the event data. */
                *defined = true;
                c[k++] = (candidate) { d, n, VC_MEASURED_EVENT_DATA };
                break;
        case EV_EFI_VARIABLE_AUTHORITY:
                *defined = true;
                c[k++] = (candidate) { d, n, VC_MEASURED_EVENT_DATA };
                /* shim before 8a27a480 logged one byte more than it measured */
                if (n > 0)
                        c[k++] = (candidate) { d, n - 1, VC_MEASURED_TRUNCATED };
                break;
        case EV_EFI_VARIABLE_BOOT:
        case EV_EFI_VARIABLE_BOOT2: {
                /* The spec measures UEFI_VARIABLE_DATA; EDK2 measures only VariableData. */
                const uint8_t *g, *name, *vd;
                uint64_t nc, vl;
                *defined = true;
                c[k++] = (candidate) { d, n, VC_MEASURED_EVENT_DATA };
                if (vc_parse_variable(d, n, &g, &name, &nc, &vd, &vl) == 0)
                        c[k++] = (candidate) { vd, (size_t) vl, VC_MEASURED_VARIABLE_DATA };
                break;
        }
        case EV_IPL: {
                /* GRUB: data is prefix + string + NUL; the digest covers the string (grub
                 * 2.06 grub_tpm_verify_string; tcglog-parser grubeventdata.go). */
                static const char *const grub[] = { "grub_cmd: ", "kernel_cmdline: ", "module_cmdline: ",
                                                    "grub_kernel_cmdline ", "grub_cmd " };
                size_t body = n;
                while (body > 0 && d[body - 1] == 0)
                        body--;
                for (size_t i = 0; i < ELEMENTSOF(grub); i++)
                        if (has_prefix(d, body, grub[i])) {
                                size_t pl = strlen(grub[i]);
                                *defined = true;
                                c[k++] = (candidate) { d + pl, body - pl, VC_MEASURED_STRING };
                                /* RHEL 8's grub ("grub_cmd " form) measures the NUL too */
                                if (body < n)
                                        c[k++] = (candidate) { d + pl, body - pl + 1, VC_MEASURED_STRING };
                                break;
                        }
                if (*defined)
                        break;
                /* systemd-stub: UTF-16 string with NUL, measured as logged. */
                c[k++] = (candidate) { d, n, VC_MEASURED_EVENT_DATA };
                if (body != n)
                        c[k++] = (candidate) { d, body, VC_MEASURED_STRING };
                break;
        }
        default:
                /* Anything else is believed only if its digest happens to be of its data. */
                c[k++] = (candidate) { d, n, VC_MEASURED_EVENT_DATA };
                break;
        }
        return k;
}

int vc_event_check_digests(vc_hasher *h, const vc_event *ev, vc_event_check *ret) {
        return vc_event_check_digests_in(h, ev, VC_ALGS_ALL, ret);
}

int vc_event_check_digests_in(vc_hasher *h, const vc_event *ev, uint32_t algs, vc_event_check *ret) {
        candidate c[4];
        bool defined;
        uint8_t md[VC_MAX_DIGEST];
        uint32_t unchecked = 0, known = 0;

        *ret = (vc_event_check) { 0 };
        if (ev->type == EV_NO_ACTION || ev->pcr == VC_PCR_NONE) {
                ret->status = VC_DIGEST_NOT_EXTENDED;
                return 0;
        }
        for (uint32_t i = 0; i < ev->n_digests; i++) {
                int b = vc_alg_index(ev->digests[i].alg);
                if (algs != VC_ALGS_ALL && (b < 0 || !(algs & (1u << b))))
                        continue; /* a bank not asked for: left alone */
                if (b >= 0)
                        known |= 1u << i;
                else
                        unchecked |= 1u << i;
        }
        ret->unchecked_mask = unchecked;
        if (!known) {
                ret->status = VC_DIGEST_NOT_CHECKED;
                return 0;
        }

        size_t nc = measured_candidates(ev, c, &defined);
        uint32_t first_mismatch = 0;
        bool any_partial = false;
        for (size_t k = 0; k < nc; k++) {
                uint32_t mismatch = 0, matched = 0;
                for (uint32_t i = 0; i < ev->n_digests; i++) {
                        if (!(known & (1u << i)))
                                continue;
                        int r = vc_hasher_digest(h, ev->digests[i].alg, c[k].p, c[k].n, md);
                        if (r == -ENOTSUP) {
                                known &= ~(1u << i);
                                ret->unchecked_mask |= 1u << i;
                                continue;
                        }
                        if (r < 0)
                                return r;
                        if (memcmp(md, ev->digests[i].bytes, ev->digests[i].size) == 0)
                                matched |= 1u << i;
                        else {
                                mismatch |= 1u << i;
                                /* Not defined and the first bank differs: no need to hash the rest. */
                                if (!defined && !matched)
                                        break;
                        }
                }
                if (k == 0)
                        first_mismatch = mismatch;
                if (matched && !mismatch) {
                        ret->status = VC_DIGEST_VERIFIED;
                        ret->measured = c[k].kind;
                        return 0;
                }
                if (matched && mismatch) {
                        /* One bank agrees with the data and another does not: inconsistent. */
                        any_partial = true;
                        first_mismatch = mismatch;
                        break;
                }
        }
        if (defined || any_partial) {
                ret->status = VC_DIGEST_MISMATCH;
                ret->mismatch_mask = first_mismatch ? first_mismatch : known;
        } else {
                ret->status = VC_DIGEST_NOT_CHECKED;
        }
        return 0;
}

/* ---- decoding ---- */

/* Length of the UTF-8 sequence at s[0..n) (RFC 3629: no overlongs, surrogates or code
 * points past U+10FFFF), 0 when invalid. C1 controls (U+0080-U+009F) count as invalid:
 * they are not text. */
static size_t utf8_seq(const uint8_t *s, size_t n) {
        unsigned c = s[0];
        size_t k;
        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                k = 2;
        else if (c >= 0xe0 && c <= 0xef)
                k = 3;
        else if (c >= 0xf0 && c <= 0xf4)
                k = 4;
        else
                return 0;
        if (n < k)
                return 0;
        for (size_t i = 1; i < k; i++)
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
        if ((c == 0xc2 && s[1] < 0xa0) || (c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) ||
            (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
                return 0;
        return k;
}

/* Printable ASCII, tab, newline, carriage return. */
static bool is_text_ascii(uint8_t c) {
        return (c >= 0x20 && c < 0x7f) || c == '\t' || c == '\n' || c == '\r';
}

/* Text: printable ASCII, tab, newline, carriage return, and with utf8 any other character
 * written in UTF-8; trailing NULs are not part of it (*ret_len without them). */
static bool is_text(const uint8_t *d, size_t n, bool utf8, size_t *ret_len) {
        size_t len = n;
        while (len > 0 && d[len - 1] == 0)
                len--;
        if (len == 0)
                return false;
        for (size_t i = 0; i < len;) {
                size_t k = d[i] < 0x80 ? is_text_ascii(d[i]) : utf8 ? utf8_seq(d + i, len - i) : 0;
                if (!k)
                        return false;
                i += k;
        }
        *ret_len = len;
        return true;
}

static bool is_ascii_text(const uint8_t *d, size_t n, size_t *ret_len) {
        return is_text(d, n, false, ret_len);
}

static bool is_utf8_text(const uint8_t *d, size_t n, size_t *ret_len) {
        return is_text(d, n, true, ret_len);
}

static bool is_utf16_text(const uint8_t *d, size_t n, size_t *ret_chars) {
        size_t chars = 0;
        bool ended = false;
        if (n < 2 || n % 2)
                return false;
        for (size_t i = 0; i < n / 2; i++) {
                uint16_t cu = vc_le16(d + 2 * i);
                if (ended) {
                        if (cu != 0)
                                return false;
                        continue;
                }
                if (cu == 0) {
                        ended = true;
                        continue;
                }
                if (cu < 0x20 || cu == 0x7f || (cu >= 0xd800 && cu < 0xe000))
                        return false;
                chars++;
        }
        if (chars == 0)
                return false;
        *ret_chars = chars;
        return true;
}

static void text_escaped(vc_sbuf *b, const uint8_t *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '\n')
                        vc_sbuf_printf(b, "\\n");
                else if (s[i] == '\r')
                        vc_sbuf_printf(b, "\\r");
                else if (s[i] == '\t')
                        vc_sbuf_printf(b, "\\t");
                else
                        vc_sbuf_printf(b, "%c", s[i]);
        }
}

/* Bytes as text: valid UTF-8 characters as they are, \n \r \t escaped, every other byte
 * (controls, bytes of no valid UTF-8 sequence) as \xNN. */
static void text_bytes_escaped(vc_sbuf *b, const uint8_t *s, size_t n) {
        for (size_t i = 0; i < n;) {
                size_t k = utf8_seq(s + i, n - i);
                if (s[i] == '\n' || s[i] == '\r' || s[i] == '\t') {
                        text_escaped(b, s + i, 1);
                        i++;
                } else if (k == 0 || (s[i] < 0x80 && (s[i] < 0x20 || s[i] == 0x7f)) || s[i] == '\\') {
                        vc_sbuf_printf(b, s[i] == '\\' ? "\\\\" : "\\x%02x", s[i]);
                        i++;
                } else {
                        vc_sbuf_printf(b, "%.*s", (int) k, (const char *) s + i);
                        i += k;
                }
        }
}

static void text_hex_capped(vc_sbuf *b, const uint8_t *d, size_t n) {
        vc_sbuf_hex(b, d, n < HEX_SHOWN ? n : HEX_SHOWN);
        if (n > HEX_SHOWN)
                vc_sbuf_printf(b, "... (%zu bytes)", n);
}

/* EFI_SIGNATURE_LIST summary (UEFI 2.10, 32.4.1): count of certificates and hashes. */
static void text_signature_lists(vc_sbuf *b, const uint8_t *d, size_t n) {
        static const uint8_t x509[16] = { 0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a,
                                          0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72 };
        static const uint8_t sha256[16] = { 0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40,
                                            0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28 };
        size_t off = 0, lists = 0, certs = 0, hashes = 0, other = 0;
        while (off < n) {
                if (!vc_have(n, off, 28))
                        return;
                uint32_t lsize = vc_le32(d + off + 16), hsize = vc_le32(d + off + 20), ssize = vc_le32(d + off + 24);
                if (lsize < 28 || !vc_have(n, off, lsize) || hsize > lsize - 28 || ssize < 16)
                        return;
                size_t entries = (lsize - 28 - hsize) / ssize;
                if (memcmp(d + off, x509, 16) == 0)
                        certs += entries;
                else if (memcmp(d + off, sha256, 16) == 0)
                        hashes += entries;
                else
                        other += entries;
                lists++;
                off += lsize;
        }
        vc_sbuf_printf(b, "; %zu signature list%s: %zu X.509, %zu SHA-256, %zu other", lists, lists == 1 ? "" : "s",
                       certs, hashes, other);
}

static bool var_is(const char *name, const char *const names[], size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(name, names[i]) == 0)
                        return true;
        return false;
}

static int decode_variable(const vc_event *ev, vc_event_content *c, vc_sbuf *b, vc_error *err) {
        const uint8_t *g, *name, *vd;
        uint64_t nc, vl;
        if (vc_parse_variable(ev->data, ev->data_size, &g, &name, &nc, &vd, &vl) < 0)
                return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                    "UEFI_VARIABLE_DATA of %u bytes is malformed (name or data length past the end)",
                                    ev->data_size);
        c->kind = VC_CONTENT_VARIABLE;
        memcpy(c->var_guid, g, 16);
        c->var_name = vc_utf16_to_utf8(name, (size_t) nc);
        if (!c->var_name)
                return -ENOMEM;
        c->var_data = vd;
        c->var_data_len = vl;
        vc_sbuf_printf(b, "%s ", c->var_name);
        vc_sbuf_guid(b, g);
        vc_sbuf_printf(b, " (%llu bytes)", (unsigned long long) vl);

        static const char *const flags[] = { "SecureBoot", "SetupMode", "AuditMode", "DeployedMode", "MokSBState" };
        static const char *const siglists[] = { "PK", "KEK", "db", "dbx", "dbt", "dbr", "MokList", "MokListX",
                                                "MokListTrusted" };
        if (var_is(c->var_name, flags, ELEMENTSOF(flags)) && vl == 1)
                vc_sbuf_printf(b, ": %s", vd[0] ? "enabled" : "disabled");
        else if (var_is(c->var_name, siglists, ELEMENTSOF(siglists)) && ev->type != EV_EFI_VARIABLE_AUTHORITY)
                text_signature_lists(b, vd, (size_t) vl);
        else if (strcmp(c->var_name, "BootOrder") == 0 && vl % 2 == 0) {
                vc_sbuf_printf(b, ":");
                for (size_t i = 0; i < vl / 2; i++)
                        vc_sbuf_printf(b, "%s%04X", i ? "," : " ", vc_le16(vd + 2 * i));
        } else if (strncmp(c->var_name, "Boot", 4) == 0 && strlen(c->var_name) == 8 && vl >= 6) {
                /* EFI_LOAD_OPTION: Attributes, FilePathListLength, Description, FilePathList */
                uint16_t fpl = vc_le16(vd + 4);
                size_t off = 6, chars = 0;
                while (vc_have((size_t) vl, off + 2 * chars, 2) && vc_le16(vd + off + 2 * chars) != 0)
                        chars++;
                vc_sbuf_printf(b, ": attributes 0x%x, \"", vc_le32(vd));
                vc_sbuf_utf16(b, vd + off, chars);
                vc_sbuf_printf(b, "\"");
                off += 2 * (chars + 1);
                if (vc_have((size_t) vl, off, fpl)) {
                        char *path = NULL;
                        if (vc_devpath_to_text(vd + off, fpl, &path) == 0) {
                                vc_sbuf_printf(b, ", %s", path);
                                free(path);
                        }
                }
        } else if (ev->type == EV_EFI_VARIABLE_AUTHORITY && vl >= 16) {
                vc_sbuf_printf(b, ": signature owner ");
                vc_sbuf_guid(b, vd);
        }
        return 0;
}

static int decode_image(const vc_event *ev, vc_event_content *c, vc_sbuf *b, vc_error *err) {
        const uint8_t *d = ev->data;
        if (ev->data_size < 32)
                return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                    "UEFI_IMAGE_LOAD_EVENT needs at least 32 bytes, event has %u", ev->data_size);
        uint64_t dplen = vc_le64(d + 24);
        if (dplen > ev->data_size - 32u)
                return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                    "UEFI_IMAGE_LOAD_EVENT device path length %llu exceeds the %u bytes left",
                                    (unsigned long long) dplen, ev->data_size - 32u);
        c->kind = VC_CONTENT_IMAGE;
        c->image_location = vc_le64(d);
        c->image_length = vc_le64(d + 8);
        c->image_link_time_address = vc_le64(d + 16);
        vc_sbuf_printf(b, "image at 0x%llx, %llu bytes", (unsigned long long) c->image_location,
                       (unsigned long long) c->image_length);
        if (dplen > 0) {
                int r = vc_devpath_to_text(d + 32, (size_t) dplen, &c->device_path);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        vc_sbuf_printf(b, ", malformed device path");
                else
                        vc_sbuf_printf(b, ", %s", c->device_path);
        }
        return 0;
}

/* The description of the "2" events (UEFI_PLATFORM_FIRMWARE_BLOB2,
 * UEFI_HANDOFF_TABLE_POINTERS2): a UINT8 size and that many bytes, which the caller knows
 * are there; quoted, empty when not ASCII text. Returns the bytes it takes. */
static size_t description_text(vc_sbuf *b, const uint8_t *d) {
        size_t dl;
        vc_sbuf_printf(b, "\"");
        if (is_ascii_text(d + 1, d[0], &dl))
                text_escaped(b, d + 1, dl);
        vc_sbuf_printf(b, "\" ");
        return 1u + d[0];
}

static int decode_blob(const vc_event *ev, vc_event_content *c, vc_sbuf *b, bool v2, vc_error *err) {
        const uint8_t *d = ev->data;
        size_t off = 0;
        c->kind = VC_CONTENT_BLOB;
        if (v2) {
                /* UEFI_PLATFORM_FIRMWARE_BLOB2: UINT8 description size, description, base, length */
                if (ev->data_size < 1 || ev->data_size != 1u + d[0] + 16u)
                        return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                            "UEFI_PLATFORM_FIRMWARE_BLOB2 of %u bytes does not match its "
                                            "description size", ev->data_size);
                off = description_text(b, d);
        } else if (ev->data_size != 16) {
                return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                    "UEFI_PLATFORM_FIRMWARE_BLOB must be 16 bytes, event has %u", ev->data_size);
        }
        c->blob_base = vc_le64(d + off);
        c->blob_length = vc_le64(d + off + 8);
        vc_sbuf_printf(b, "blob at 0x%llx, %llu bytes", (unsigned long long) c->blob_base,
                       (unsigned long long) c->blob_length);
        return 0;
}

static int decode_gpt(const vc_event *ev, vc_event_content *c, vc_sbuf *b, vc_error *err) {
        const uint8_t *d = ev->data;
        size_t n = ev->data_size;
        /* UEFI_GPT_DATA: EFI_PARTITION_TABLE_HEADER (HeaderSize bytes, at least 92), UINT64 count,
         * entries of SizeOfPartitionEntry bytes. */
        if (n < 92 || memcmp(d, "EFI PART", 8) != 0)
                return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                    "UEFI_GPT_DATA: no \"EFI PART\" header in %zu bytes", n);
        uint32_t hsize = vc_le32(d + 12), esize = vc_le32(d + 84);
        if (hsize < 92 || !vc_have(n, hsize, 8) || esize < 128)
                return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                    "UEFI_GPT_DATA: header size %u / entry size %u invalid for %zu bytes", hsize,
                                    esize, n);
        uint64_t count = vc_le64(d + hsize);
        if (count > (n - hsize - 8) / esize)
                return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                    "UEFI_GPT_DATA: %llu partitions of %u bytes do not fit in %zu bytes",
                                    (unsigned long long) count, esize, n);
        c->kind = VC_CONTENT_GPT;
        c->count = count;
        vc_sbuf_printf(b, "disk ");
        vc_sbuf_guid(b, d + 56);
        vc_sbuf_printf(b, ", %llu partitions", (unsigned long long) count);
        for (uint64_t i = 0; i < count; i++) {
                const uint8_t *e = d + hsize + 8 + i * esize;
                vc_sbuf_printf(b, "%s", i ? ", \"" : ": \"");
                vc_sbuf_utf16(b, e + 56, 36);
                vc_sbuf_printf(b, "\" ");
                vc_sbuf_guid(b, e + 16);
        }
        return 0;
}

static int decode_handoff(const vc_event *ev, vc_event_content *c, vc_sbuf *b, bool v2, vc_error *err) {
        const uint8_t *d = ev->data;
        size_t n = ev->data_size, off = 0;
        if (v2) {
                /* UEFI_HANDOFF_TABLE_POINTERS2: UINT8 description size, description, then as v1 */
                if (n < 1 || !vc_have(n, 1, d[0]))
                        return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                            "UEFI_HANDOFF_TABLE_POINTERS2: description past the end");
                off = description_text(b, d);
        }
        if (!vc_have(n, off, 8))
                return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                    "UEFI_HANDOFF_TABLE_POINTERS: truncated table count");
        uint64_t count = vc_le64(d + off);
        off += 8;
        if (count > (n - off) / 24 || (n - off) != count * 24)
                return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                    "UEFI_HANDOFF_TABLE_POINTERS: %llu tables do not match %zu bytes",
                                    (unsigned long long) count, n - off);
        c->kind = VC_CONTENT_HANDOFF_TABLES;
        c->count = count;
        vc_sbuf_printf(b, "%llu table%s", (unsigned long long) count, count == 1 ? "" : "s");
        for (uint64_t i = 0; i < count; i++) {
                vc_sbuf_printf(b, "%s", i ? ", " : ": ");
                vc_sbuf_guid(b, d + off + i * 24);
                vc_sbuf_printf(b, " at 0x%llx", (unsigned long long) vc_le64(d + off + i * 24 + 16));
        }
        return 0;
}

static void decode_spec_id(const vc_event *ev, vc_event_content *c, vc_sbuf *b) {
        const uint8_t *d = ev->data;
        size_t n = ev->data_size;
        c->kind = VC_CONTENT_SPEC_ID;
        vc_sbuf_printf(b, "Spec ID Event03");
        if (n < 28)
                return;
        uint32_t na = vc_le32(d + 24);
        vc_sbuf_printf(b, ": platform class %u, spec %u.%u errata %u, uintn size %u, algorithms", vc_le32(d + 16),
                       d[21], d[20], d[22], d[23]);
        for (uint32_t i = 0; i < na && vc_have(n, 28 + 4 * (size_t) i, 4); i++) {
                uint16_t alg = vc_le16(d + 28 + 4 * i), size = vc_le16(d + 30 + 4 * i);
                const vc_alg_info *a = vc_alg_lookup(alg);
                if (a)
                        vc_sbuf_printf(b, " %s", a->name);
                else
                        vc_sbuf_printf(b, " 0x%04x", alg);
                vc_sbuf_printf(b, "(%u)", size);
        }
}

static void decode_no_action(const vc_event *ev, vc_event_content *c, vc_sbuf *b) {
        const uint8_t *d = ev->data;
        size_t n = ev->data_size, sl;
        /* PFP 1.05 10.4.5.3: TCG_EfiStartupLocalityEvent */
        if (n == 17 && memcmp(d, "StartupLocality\0", 16) == 0) {
                c->kind = VC_CONTENT_STARTUP_LOCALITY;
                c->locality = d[16];
                vc_sbuf_printf(b, "StartupLocality: %u", d[16]);
                return;
        }
        if (n >= 16 && memcmp(d, "Spec ID Event03\0", 16) == 0) {
                decode_spec_id(ev, c, b);
                return;
        }
        /* Other signatures ("SP800-155 Event3", "NvIndexInstance", vendor): NUL-terminated
         * ASCII signature of at most 16 bytes, then binary content. */
        size_t sig = strnlen((const char *) d, n < 16 ? n : 16);
        if (sig > 0 && is_ascii_text(d, sig, &sl)) {
                c->kind = VC_CONTENT_NO_ACTION;
                text_escaped(b, d, sl);
                size_t rest = n > 16 ? 16 : n;
                if (n > rest) {
                        vc_sbuf_printf(b, ": ");
                        text_hex_capped(b, d + rest, n - rest);
                }
                return;
        }
        text_hex_capped(b, d, n);
}

static int set_string(vc_event_content *c, const uint8_t *s, size_t n, vc_sbuf *b) {
        c->kind = VC_CONTENT_STRING;
        c->string = strndup((const char *) s, n);
        if (!c->string)
                return -ENOMEM;
        text_escaped(b, s, n);
        return 0;
}

static int set_utf16(vc_event_content *c, const uint8_t *s, size_t chars, vc_sbuf *b) {
        c->kind = VC_CONTENT_UTF16;
        c->string = vc_utf16_to_utf8(s, chars);
        if (!c->string)
                return -ENOMEM;
        text_escaped(b, (const uint8_t *) c->string, strlen(c->string));
        return 0;
}

/* GRUB's EV_IPL strings are bytes as GRUB read them (its config file: UTF-8 in practice,
 * a menu entry may be in any language), never UCS-2: the string when it is UTF-8 text,
 * else the bytes escaped (and no string to match rules against). */
static int set_grub_string(vc_event_content *c, const uint8_t *d, size_t n, vc_sbuf *b) {
        size_t len;
        if (is_utf8_text(d, n, &len))
                return set_string(c, d, len, b);
        while (n > 0 && d[n - 1] == 0)
                n--;
        text_bytes_escaped(b, d, n);
        vc_sbuf_printf(b, " (not UTF-8 text)");
        return 0;
}

static bool is_grub_string(const uint8_t *d, size_t n) {
        static const char *const grub[] = { "grub_cmd: ", "kernel_cmdline: ", "module_cmdline: ",
                                            "grub_kernel_cmdline ", "grub_cmd " };
        for (size_t i = 0; i < ELEMENTSOF(grub); i++)
                if (has_prefix(d, n, grub[i]))
                        return true;
        return false;
}

static int decode_tagged(const vc_event *ev, vc_event_content *c, vc_sbuf *b, vc_error *err) {
        const uint8_t *d = ev->data;
        size_t sl;
        /* TCG_PCClientTaggedEvent: UINT32 id, UINT32 size, data (PFP 1.05 10.4.2.1) */
        if (ev->data_size < 8 || vc_le32(d + 4) != ev->data_size - 8u)
                return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                    "TCG_PCClientTaggedEvent size field does not match %u bytes of data",
                                    ev->data_size);
        c->kind = VC_CONTENT_TAGGED;
        c->tag_id = vc_le32(d);
        c->tag_data = d + 8;
        c->tag_size = ev->data_size - 8u;
        vc_sbuf_printf(b, "tag 0x%08x", c->tag_id);
        /* Linux EFI stub (drivers/firmware/efi/libstub/efistub.h) */
        if (c->tag_id == 0x8F3B22EC)
                vc_sbuf_printf(b, " (Linux initrd)");
        else if (c->tag_id == 0x8F3B22ED)
                vc_sbuf_printf(b, " (Linux LoadOptions)");
        vc_sbuf_printf(b, ": ");
        if (is_ascii_text(c->tag_data, c->tag_size, &sl))
                text_escaped(b, c->tag_data, sl);
        else
                text_hex_capped(b, c->tag_data, c->tag_size);
        return 0;
}

static int decode_by_type(const vc_event *ev, vc_event_content *c, vc_sbuf *b, vc_error *err) {
        const uint8_t *d = ev->data;
        size_t n = ev->data_size, len;

        switch (ev->type) {
        case EV_NO_ACTION:
                decode_no_action(ev, c, b);
                return 0;
        case EV_SEPARATOR:
                if (n == 0) {
                        /* what it measured, the digest check says (SeaBIOS: 0xFFFFFFFF) */
                        vc_sbuf_printf(b, "separator with no data");
                        return 0;
                }
                if (n == 4) {
                        c->kind = VC_CONTENT_SEPARATOR;
                        c->separator_value = vc_le32(d);
                        vc_sbuf_printf(b, "separator 0x%08x%s", c->separator_value,
                                       c->separator_value == 0xFFFFFFFF ? " (error)" : "");
                        return 0;
                }
                break;
        case EV_EFI_VARIABLE_DRIVER_CONFIG:
        case EV_EFI_VARIABLE_BOOT:
        case EV_EFI_VARIABLE_BOOT2:
        case EV_EFI_VARIABLE_AUTHORITY:
        case EV_EFI_SPDM_DEVICE_POLICY:
        case EV_EFI_SPDM_DEVICE_AUTHORITY:
                return decode_variable(ev, c, b, err);
        case EV_EFI_BOOT_SERVICES_APPLICATION:
        case EV_EFI_BOOT_SERVICES_DRIVER:
        case EV_EFI_RUNTIME_SERVICES_DRIVER:
                return decode_image(ev, c, b, err);
        case EV_EFI_PLATFORM_FIRMWARE_BLOB:
        case EV_EFI_SPDM_FIRMWARE_BLOB:
                if (ev->type == EV_EFI_PLATFORM_FIRMWARE_BLOB || n == 16)
                        return decode_blob(ev, c, b, false, err);
                break;
        case EV_EFI_PLATFORM_FIRMWARE_BLOB2:
                return decode_blob(ev, c, b, true, err);
        case EV_POST_CODE:
        case EV_S_CRTM_CONTENTS:
                /* either an ASCII description ("POST CODE", "ACPI DATA") or a firmware blob */
                if (is_ascii_text(d, n, &len))
                        return set_string(c, d, len, b);
                if (n == 16)
                        return decode_blob(ev, c, b, false, err);
                break;
        case EV_POST_CODE2:
                if (is_ascii_text(d, n, &len))
                        return set_string(c, d, len, b);
                return decode_blob(ev, c, b, true, err);
        case EV_EFI_GPT_EVENT:
        case EV_EFI_GPT_EVENT2:
                return decode_gpt(ev, c, b, err);
        case EV_EFI_HANDOFF_TABLES:
        case EV_EFI_HANDOFF_TABLES2:
                return decode_handoff(ev, c, b, ev->type == EV_EFI_HANDOFF_TABLES2, err);
        case EV_EVENT_TAG:
                return decode_tagged(ev, c, b, err);
        case EV_IPL:
                if (is_grub_string(d, n))
                        return set_grub_string(c, d, n, b);
                break;
        case EV_S_CRTM_VERSION:
                if (is_utf16_text(d, n, &len))
                        return set_utf16(c, d, len, b);
                if (n == 16) {
                        vc_sbuf_printf(b, "version ");
                        vc_sbuf_guid(b, d);
                        return 0;
                }
                break;
        default:
                break;
        }
        /* EV_EFI_ACTION, EV_ACTION, EV_IPL, EV_EFI_HCRTM_EVENT, EV_OMIT_BOOT_DEVICE_EVENTS and
         * anything else: a string if it is one (UTF-8, ASCII included, or UCS-2), else hex. */
        if (is_utf8_text(d, n, &len))
                return set_string(c, d, len, b);
        if (is_utf16_text(d, n, &len))
                return set_utf16(c, d, len, b);
        text_hex_capped(b, d, n);
        return 0;
}

void vc_event_content_done(vc_event_content *c) {
        if (!c)
                return;
        free(c->text);
        free(c->string);
        free(c->var_name);
        free(c->device_path);
        *c = (vc_event_content) { 0 };
}

int vc_event_decode(const vc_event *ev, vc_event_content *ret, vc_error *err) {
        vc_event_content c = { 0 };
        vc_sbuf b;
        int r = vc_sbuf_init(&b, TEXT_MAX);
        if (r < 0)
                return r;
        r = decode_by_type(ev, &c, &b, err);
        if (r == -ENOMEM) {
                free(b.s);
                vc_event_content_done(&c);
                return r;
        }
        if (r < 0) {
                /* Malformed content: keep the error, describe the bytes. */
                vc_event_content_done(&c);
                b.len = 0;
                b.error = 0;
                b.s[0] = '\0';
                vc_sbuf_printf(&b, "malformed: ");
                text_hex_capped(&b, ev->data, ev->data_size);
        }
        if (b.error) { /* over TEXT_MAX: cut (on a UTF-8 boundary), marked */
                b.error = 0;
                b.len = b.len > TEXT_MAX - 8 ? TEXT_MAX - 8 : b.len;
                while (b.len > 0 && ((unsigned char) b.s[b.len] & 0xc0) == 0x80)
                        b.len--;
                b.s[b.len] = '\0';
                vc_sbuf_printf(&b, "...");
        }
        c.text = vc_sbuf_take(&b);
        *ret = c;
        return r;
}
