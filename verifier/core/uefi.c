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

/* The nodes shown by name, with the shortest body each needs (UEFI 2.10, 10.3.2-10.3.6);
 * any other node, or one shorter than that, is shown as Path(type,subtype,hex). */
static const struct {
        uint8_t type, sub, min;
} named_nodes[] = {
        { 1, 0x01, 2 },  /* PCI */
        { 1, 0x03, 20 }, /* memory mapped */
        { 1, 0x04, 16 }, /* vendor hardware */
        { 2, 0x01, 8 },  /* ACPI */
        { 3, 0x01, 4 },  /* ATAPI */
        { 3, 0x02, 4 },  /* SCSI */
        { 3, 0x05, 2 },  /* USB */
        { 3, 0x0b, 33 }, /* MAC */
        { 3, 0x0c, 15 }, /* IPv4 */
        { 3, 0x0d, 36 }, /* IPv6 */
        { 3, 0x10, 16 }, /* vendor messaging */
        { 3, 0x12, 6 },  /* SATA */
        { 3, 0x17, 12 }, /* NVMe namespace */
        { 3, 0x18, 0 },  /* URI */
        { 3, 0x1d, 1 },  /* eMMC */
        { 4, 0x01, 38 }, /* hard drive */
        { 4, 0x02, 20 }, /* CD-ROM */
        { 4, 0x03, 16 }, /* vendor media */
        { 4, 0x04, 0 },  /* file path */
        { 4, 0x05, 16 }, /* media protocol */
        { 4, 0x06, 16 }, /* PIWG firmware file */
        { 4, 0x07, 16 }, /* PIWG firmware volume */
        { 4, 0x08, 20 }, /* relative offset range */
        { 5, 0x01, 4 },  /* BIOS boot specification */
};

static bool named(uint8_t type, uint8_t sub, size_t n) {
        for (size_t i = 0; i < ELEMENTSOF(named_nodes); i++)
                if (named_nodes[i].type == type && named_nodes[i].sub == sub)
                        return n >= named_nodes[i].min;
        return false;
}

/* A node named by its GUID, with the data after it in hex (vendor nodes) or none. */
static void guid_text(vc_sbuf *b, const char *name, const uint8_t *p, size_t n) {
        vc_sbuf_printf(b, "%s(", name);
        vc_sbuf_guid(b, p);
        if (n > 16) {
                vc_sbuf_printf(b, ",");
                vc_sbuf_hex(b, p + 16, n - 16);
        }
        vc_sbuf_printf(b, ")");
}

/* Type 1, hardware (10.3.2). */
static void hardware_text(vc_sbuf *b, uint8_t sub, const uint8_t *p, size_t n) {
        if (sub == 0x01)
                vc_sbuf_printf(b, "Pci(0x%x,0x%x)", p[1], p[0]);
        else if (sub == 0x03)
                vc_sbuf_printf(b, "MemoryMapped(0x%x,0x%llx,0x%llx)", vc_le32(p), (unsigned long long) vc_le64(p + 4),
                               (unsigned long long) vc_le64(p + 12));
        else
                guid_text(b, "VenHw", p, n);
}

/* Type 2, ACPI (10.3.3). */
static void acpi_text(vc_sbuf *b, const uint8_t *p) {
        uint32_t hid = vc_le32(p), uid = vc_le32(p + 4);
        if (hid == 0x0a0341d0)
                vc_sbuf_printf(b, "PciRoot(0x%x)", uid);
        else if (hid == 0x0a0841d0)
                vc_sbuf_printf(b, "PcieRoot(0x%x)", uid);
        else
                vc_sbuf_printf(b, "Acpi(0x%08x,0x%x)", hid, uid);
}

/* Type 3, messaging (10.3.4). */
static void messaging_text(vc_sbuf *b, uint8_t sub, const uint8_t *p, size_t n) {
        switch (sub) {
        case 0x01:
                vc_sbuf_printf(b, "Ata(%u,%u,%u)", p[0], p[1], vc_le16(p + 2));
                break;
        case 0x02:
                vc_sbuf_printf(b, "Scsi(0x%x,0x%x)", vc_le16(p), vc_le16(p + 2));
                break;
        case 0x05:
                vc_sbuf_printf(b, "USB(0x%x,0x%x)", p[0], p[1]);
                break;
        case 0x0b:
                vc_sbuf_printf(b, "MAC(");
                vc_sbuf_hex(b, p, 6);
                vc_sbuf_printf(b, ",0x%x)", p[32]);
                break;
        case 0x0c:
                vc_sbuf_printf(b, "IPv4(%u.%u.%u.%u)", p[4], p[5], p[6], p[7]);
                break;
        case 0x0d:
                vc_sbuf_printf(b, "IPv6(");
                vc_sbuf_hex(b, p + 16, 16);
                vc_sbuf_printf(b, ")");
                break;
        case 0x10:
                guid_text(b, "VenMsg", p, n);
                break;
        case 0x12:
                vc_sbuf_printf(b, "Sata(0x%x,0x%x,0x%x)", vc_le16(p), vc_le16(p + 2), vc_le16(p + 4));
                break;
        case 0x17:
                vc_sbuf_printf(b, "NVMe(0x%x,", vc_le32(p));
                for (size_t i = 0; i < 8; i++)
                        vc_sbuf_printf(b, "%s%02X", i ? "-" : "", p[4 + i]);
                vc_sbuf_printf(b, ")");
                break;
        case 0x18:
                vc_sbuf_printf(b, "Uri(");
                sbuf_ascii(b, p, n);
                vc_sbuf_printf(b, ")");
                break;
        default: /* 0x1d */
                vc_sbuf_printf(b, "eMMC(0x%x)", p[0]);
        }
}

/* Type 4, media (10.3.5). */
static void media_text(vc_sbuf *b, uint8_t sub, const uint8_t *p, size_t n) {
        switch (sub) {
        case 0x01: /* partition number, signature, start and size in sectors */
                vc_sbuf_printf(b, "HD(%u,", vc_le32(p));
                if (p[37] == 2) {
                        vc_sbuf_printf(b, "GPT,");
                        vc_sbuf_guid(b, p + 20);
                } else if (p[37] == 1) {
                        vc_sbuf_printf(b, "MBR,0x%08x", vc_le32(p + 20));
                } else {
                        vc_sbuf_printf(b, "%u,0", p[37]);
                }
                vc_sbuf_printf(b, ",0x%llx,0x%llx)", (unsigned long long) vc_le64(p + 4),
                               (unsigned long long) vc_le64(p + 12));
                break;
        case 0x02:
                vc_sbuf_printf(b, "CDROM(0x%x,0x%llx,0x%llx)", vc_le32(p), (unsigned long long) vc_le64(p + 4),
                               (unsigned long long) vc_le64(p + 12));
                break;
        case 0x03:
                guid_text(b, "VenMedia", p, n);
                break;
        case 0x04: /* UCS-2, NUL-terminated */
                vc_sbuf_utf16(b, p, n / 2);
                break;
        case 0x05:
        case 0x06:
        case 0x07: /* the GUID alone */
                guid_text(b, sub == 5 ? "Media" : sub == 6 ? "FvFile" : "Fv", p, 16);
                break;
        default: /* 0x08 */
                vc_sbuf_printf(b, "Offset(0x%llx,0x%llx)", (unsigned long long) vc_le64(p + 4),
                               (unsigned long long) vc_le64(p + 12));
        }
}

/* One node's text; `p` is the node body (after the 4-byte header), `n` its length.
 * Node formats: UEFI 2.10 sections 10.3 and 10.6.1. */
static void node_text(vc_sbuf *b, uint8_t type, uint8_t sub, const uint8_t *p, size_t n) {
        if (!named(type, sub, n)) {
                vc_sbuf_printf(b, "Path(%u,%u", type, sub);
                if (n) {
                        vc_sbuf_printf(b, ",");
                        vc_sbuf_hex(b, p, n);
                }
                vc_sbuf_printf(b, ")");
                return;
        }
        switch (type) {
        case 1:
                hardware_text(b, sub, p, n);
                break;
        case 2:
                acpi_text(b, p);
                break;
        case 3:
                messaging_text(b, sub, p, n);
                break;
        case 4:
                media_text(b, sub, p, n);
                break;
        default: /* 5: BIOS boot specification (10.3.6) */
                vc_sbuf_printf(b, "BBS(0x%x,", vc_le16(p));
                sbuf_ascii(b, p + 4, strnlen((const char *) p + 4, n - 4));
                vc_sbuf_printf(b, ")");
        }
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
