/* SPDX-License-Identifier: Apache-2.0 */
#include "uefi.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vc-util.h"

const uint8_t vc_guid_efi_global_variable[16] = { 0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                                  0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c };
const uint8_t vc_guid_image_security_database[16] = { 0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45,
                                                      0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f };

void vc_guid_to_string(const uint8_t g[16], char out[VC_GUID_STR_LEN]) {
        snprintf(out, VC_GUID_STR_LEN, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", vc_le32(g),
                 vc_le16(g + 4), vc_le16(g + 6), g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

int vc_guid_from_string(const char *s, uint8_t out[16]) {
        uint8_t raw[16];
        if (strlen(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
                return -EBADMSG;
        char hex[33];
        size_t n = 0;
        for (size_t i = 0; i < 36; i++)
                if (s[i] != '-')
                        hex[n++] = s[i];
        if (n != 32)
                return -EBADMSG;
        if (vc_unhex(hex, 32, raw, 16) != 16)
                return -EBADMSG;
        /* data1..data3 are stored little-endian. */
        out[0] = raw[3], out[1] = raw[2], out[2] = raw[1], out[3] = raw[0];
        out[4] = raw[5], out[5] = raw[4], out[6] = raw[7], out[7] = raw[6];
        memcpy(out + 8, raw + 8, 8);
        return 0;
}

static size_t put_utf8(char *o, uint32_t cp) {
        if (cp < 0x80) {
                o[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (char) (0xc0 | (cp >> 6));
                o[1] = (char) (0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (char) (0xe0 | (cp >> 12));
                o[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
                o[2] = (char) (0x80 | (cp & 0x3f));
                return 3;
        }
        o[0] = (char) (0xf0 | (cp >> 18));
        o[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
        o[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
        o[3] = (char) (0x80 | (cp & 0x3f));
        return 4;
}

char *vc_utf16_to_utf8(const uint8_t *data, size_t n_chars) {
        /* Each code unit yields at most 3 bytes (a surrogate pair: 4 bytes for 2 units). */
        char *out = malloc(n_chars * 3 + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n_chars; i++) {
                uint32_t cu = vc_le16(data + 2 * i);
                if (cu == 0)
                        break;
                if (cu >= 0xd800 && cu < 0xdc00 && i + 1 < n_chars) {
                        uint32_t lo = vc_le16(data + 2 * i + 2);
                        if (lo >= 0xdc00 && lo < 0xe000) {
                                o += put_utf8(o, 0x10000 + ((cu - 0xd800) << 10) + (lo - 0xdc00));
                                i++;
                                continue;
                        }
                }
                /* unpaired surrogates and control characters (C0, DEL, C1) never reach
                 * the text people and JSON see */
                if ((cu >= 0xd800 && cu < 0xe000) || cu < 0x20 || (cu >= 0x7f && cu < 0xa0))
                        cu = 0xfffd;
                o += put_utf8(o, cu);
        }
        *o = '\0';
        return out;
}

void vc_sbuf_guid(vc_sbuf *b, const uint8_t *g) {
        char s[VC_GUID_STR_LEN];
        vc_guid_to_string(g, s);
        vc_sbuf_printf(b, "%s", s);
}

void vc_sbuf_utf16(vc_sbuf *b, const uint8_t *p, size_t n_chars) {
        char *s = vc_utf16_to_utf8(p, n_chars);
        if (!s) {
                b->error = -ENOMEM;
                return;
        }
        vc_sbuf_printf(b, "%s", s);
        free(s);
}

/* Printable ASCII as is, anything else as \xNN: device paths are not measured text. */
static void sbuf_ascii(vc_sbuf *b, const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (p[i] >= 0x20 && p[i] < 0x7f)
                        vc_sbuf_printf(b, "%c", p[i]);
                else
                        vc_sbuf_printf(b, "\\x%02x", p[i]);
}

/* Vendor-defined nodes of any type: the vendor's GUID, then its data in hex. */
static bool vendor_text(vc_sbuf *b, const char *name, const uint8_t *p, size_t n) {
        if (n < 16)
                return false;
        vc_sbuf_printf(b, "%s(", name);
        vc_sbuf_guid(b, p);
        if (n > 16) {
                vc_sbuf_printf(b, ",");
                vc_sbuf_hex(b, p + 16, n - 16);
        }
        vc_sbuf_printf(b, ")");
        return true;
}

/* The text of a node of type 1, hardware (UEFI 2.10, 10.3.2); false when not known. */
static bool hardware_text(vc_sbuf *b, uint8_t sub, const uint8_t *p, size_t n) {
        switch (sub) {
        case 0x01: /* PCI */
                if (n < 2)
                        return false;
                vc_sbuf_printf(b, "Pci(0x%x,0x%x)", p[1], p[0]);
                return true;
        case 0x03: /* Memory mapped */
                if (n < 20)
                        return false;
                vc_sbuf_printf(b, "MemoryMapped(0x%x,0x%llx,0x%llx)", vc_le32(p), (unsigned long long) vc_le64(p + 4),
                               (unsigned long long) vc_le64(p + 12));
                return true;
        case 0x04:
                return vendor_text(b, "VenHw", p, n);
        }
        return false;
}

/* Type 2, ACPI (10.3.3). */
static bool acpi_text(vc_sbuf *b, uint8_t sub, const uint8_t *p, size_t n) {
        if (sub != 0x01 || n < 8)
                return false;
        uint32_t hid = vc_le32(p), uid = vc_le32(p + 4);
        if (hid == 0x0a0341d0)
                vc_sbuf_printf(b, "PciRoot(0x%x)", uid);
        else if (hid == 0x0a0841d0)
                vc_sbuf_printf(b, "PcieRoot(0x%x)", uid);
        else
                vc_sbuf_printf(b, "Acpi(0x%08x,0x%x)", hid, uid);
        return true;
}

/* Type 3, messaging (10.3.4). */
static bool messaging_text(vc_sbuf *b, uint8_t sub, const uint8_t *p, size_t n) {
        switch (sub) {
        case 0x01: /* ATAPI */
                if (n < 4)
                        return false;
                vc_sbuf_printf(b, "Ata(%u,%u,%u)", p[0], p[1], vc_le16(p + 2));
                return true;
        case 0x02: /* SCSI */
                if (n < 4)
                        return false;
                vc_sbuf_printf(b, "Scsi(0x%x,0x%x)", vc_le16(p), vc_le16(p + 2));
                return true;
        case 0x05: /* USB */
                if (n < 2)
                        return false;
                vc_sbuf_printf(b, "USB(0x%x,0x%x)", p[0], p[1]);
                return true;
        case 0x0b: /* MAC */
                if (n < 33)
                        return false;
                vc_sbuf_printf(b, "MAC(");
                vc_sbuf_hex(b, p, 6);
                vc_sbuf_printf(b, ",0x%x)", p[32]);
                return true;
        case 0x0c: /* IPv4 */
                if (n < 15)
                        return false;
                vc_sbuf_printf(b, "IPv4(%u.%u.%u.%u)", p[4], p[5], p[6], p[7]);
                return true;
        case 0x0d: /* IPv6 */
                if (n < 36)
                        return false;
                vc_sbuf_printf(b, "IPv6(");
                vc_sbuf_hex(b, p + 16, 16);
                vc_sbuf_printf(b, ")");
                return true;
        case 0x10:
                return vendor_text(b, "VenMsg", p, n);
        case 0x12: /* SATA */
                if (n < 6)
                        return false;
                vc_sbuf_printf(b, "Sata(0x%x,0x%x,0x%x)", vc_le16(p), vc_le16(p + 2), vc_le16(p + 4));
                return true;
        case 0x17: /* NVMe namespace */
                if (n < 12)
                        return false;
                vc_sbuf_printf(b, "NVMe(0x%x,", vc_le32(p));
                for (size_t i = 0; i < 8; i++)
                        vc_sbuf_printf(b, "%s%02X", i ? "-" : "", p[4 + i]);
                vc_sbuf_printf(b, ")");
                return true;
        case 0x18: /* URI */
                vc_sbuf_printf(b, "Uri(");
                sbuf_ascii(b, p, n);
                vc_sbuf_printf(b, ")");
                return true;
        case 0x1d: /* eMMC */
                if (n < 1)
                        return false;
                vc_sbuf_printf(b, "eMMC(0x%x)", p[0]);
                return true;
        }
        return false;
}

/* Hard drive (10.3.5.1): partition number, signature, start and size in sectors. */
static bool hard_drive_text(vc_sbuf *b, const uint8_t *p, size_t n) {
        if (n < 38)
                return false;
        uint8_t sigtype = p[37];
        vc_sbuf_printf(b, "HD(%u,", vc_le32(p));
        if (sigtype == 2) {
                vc_sbuf_printf(b, "GPT,");
                vc_sbuf_guid(b, p + 20);
        } else if (sigtype == 1) {
                vc_sbuf_printf(b, "MBR,0x%08x", vc_le32(p + 20));
        } else {
                vc_sbuf_printf(b, "%u,0", sigtype);
        }
        vc_sbuf_printf(b, ",0x%llx,0x%llx)", (unsigned long long) vc_le64(p + 4), (unsigned long long) vc_le64(p + 12));
        return true;
}

/* A node named by its GUID alone. */
static bool guid_text(vc_sbuf *b, const char *name, const uint8_t *p, size_t n) {
        if (n < 16)
                return false;
        vc_sbuf_printf(b, "%s(", name);
        vc_sbuf_guid(b, p);
        vc_sbuf_printf(b, ")");
        return true;
}

/* Type 4, media (10.3.5). */
static bool media_text(vc_sbuf *b, uint8_t sub, const uint8_t *p, size_t n) {
        switch (sub) {
        case 0x01:
                return hard_drive_text(b, p, n);
        case 0x02: /* CD-ROM */
                if (n < 20)
                        return false;
                vc_sbuf_printf(b, "CDROM(0x%x,0x%llx,0x%llx)", vc_le32(p), (unsigned long long) vc_le64(p + 4),
                               (unsigned long long) vc_le64(p + 12));
                return true;
        case 0x03:
                return vendor_text(b, "VenMedia", p, n);
        case 0x04: /* File path: UCS-2, NUL-terminated */
                vc_sbuf_utf16(b, p, n / 2);
                return true;
        case 0x05: /* Media protocol */
                return guid_text(b, "Media", p, n);
        case 0x06: /* PIWG firmware file */
                return guid_text(b, "FvFile", p, n);
        case 0x07: /* PIWG firmware volume */
                return guid_text(b, "Fv", p, n);
        case 0x08: /* Relative offset range */
                if (n < 20)
                        return false;
                vc_sbuf_printf(b, "Offset(0x%llx,0x%llx)", (unsigned long long) vc_le64(p + 4),
                               (unsigned long long) vc_le64(p + 12));
                return true;
        }
        return false;
}

/* Type 5, BIOS boot specification (10.3.6). */
static bool bbs_text(vc_sbuf *b, uint8_t sub, const uint8_t *p, size_t n) {
        if (sub != 0x01 || n < 4)
                return false;
        vc_sbuf_printf(b, "BBS(0x%x,", vc_le16(p));
        sbuf_ascii(b, p + 4, strnlen((const char *) p + 4, n - 4));
        vc_sbuf_printf(b, ")");
        return true;
}

/* One node's text; `p` is the node body (after the 4-byte header), `n` its length.
 * Node formats: UEFI 2.10 sections 10.3 and 10.6.1; a node not known (or too short for
 * its type) as Path(type,subtype,hex). */
static void node_text(vc_sbuf *b, uint8_t type, uint8_t sub, const uint8_t *p, size_t n) {
        static bool (*const by_type[])(vc_sbuf *, uint8_t, const uint8_t *, size_t) = {
                [1] = hardware_text, [2] = acpi_text, [3] = messaging_text, [4] = media_text, [5] = bbs_text,
        };
        if (type < ELEMENTSOF(by_type) && by_type[type] && by_type[type](b, sub, p, n))
                return;
        vc_sbuf_printf(b, "Path(%u,%u", type, sub);
        if (n) {
                vc_sbuf_printf(b, ",");
                vc_sbuf_hex(b, p, n);
        }
        vc_sbuf_printf(b, ")");
}

int vc_devpath_to_text(const uint8_t *data, size_t len, char **ret) {
        vc_sbuf b;
        size_t off = 0;
        unsigned nodes = 0;
        int r = vc_sbuf_init(&b, VC_DEVPATH_MAX_TEXT);
        if (r < 0)
                return r;
        while (off < len) {
                if (!vc_have(len, off, 4)) {
                        r = -EBADMSG;
                        break;
                }
                uint8_t type = data[off], sub = data[off + 1];
                uint16_t nlen = vc_le16(data + off + 2);
                if (nlen < 4 || !vc_have(len, off, nlen)) {
                        r = -EBADMSG;
                        break;
                }
                if (type == 0x7f && sub == 0xff) /* end of entire device path */
                        break;
                if (++nodes > VC_DEVPATH_MAX_NODES) {
                        r = -E2BIG;
                        break;
                }
                if (type == 0x7f) { /* end of this instance: another follows */
                        vc_sbuf_printf(&b, ",");
                } else {
                        if (b.len > 0 && b.s[b.len - 1] != ',')
                                vc_sbuf_printf(&b, "/");
                        node_text(&b, type, sub, data + off + 4, nlen - 4u);
                }
                off += nlen;
        }
        if (r == 0 && b.error)
                r = b.error;
        if (r < 0) {
                free(b.s);
                return r;
        }
        *ret = vc_sbuf_take(&b);
        return 0;
}

static const uint8_t guid_cert_x509[16] = { 0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a,
                                            0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72 };
static const uint8_t guid_cert_sha256[16] = { 0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40,
                                              0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28 };

int vc_siglist_foreach(const uint8_t *d, size_t n, vc_sig_cb cb, void *userdata) {
        size_t off = 0;
        while (off < n) {
                if (!vc_have(n, off, 28))
                        return -EBADMSG;
                uint32_t lsize = vc_le32(d + off + 16), hsize = vc_le32(d + off + 20), ssize = vc_le32(d + off + 24);
                if (lsize < 28 || !vc_have(n, off, lsize) || hsize > lsize - 28 || ssize <= 16 ||
                    (lsize - 28 - hsize) % ssize != 0)
                        return -EBADMSG;
                vc_sig_kind kind = memcmp(d + off, guid_cert_x509, 16) == 0     ? VC_SIG_X509
                                   : memcmp(d + off, guid_cert_sha256, 16) == 0 ? VC_SIG_SHA256
                                                                                : VC_SIG_OTHER;
                if (kind == VC_SIG_SHA256 && ssize != 16 + 32)
                        return -EBADMSG;
                for (size_t e = off + 28 + hsize; e < off + lsize; e += ssize) {
                        int r = cb(userdata, kind, d + e, d + e + 16, ssize - 16);
                        if (r < 0)
                                return r;
                }
                off += lsize;
        }
        return 0;
}
