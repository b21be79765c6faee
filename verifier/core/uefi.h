/* SPDX-License-Identifier: Apache-2.0 */
/* UEFI structures that appear in event logs: GUIDs, UCS-2 strings, device paths. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VC_GUID_STR_LEN 37 /* "8be4df61-93ca-11d2-aa0d-00e098032b8c" + NUL */
#define VC_DEVPATH_MAX_NODES 64u
#define VC_DEVPATH_MAX_TEXT 4096u

/* EFI_GUID as text; the first three fields are little-endian (UEFI 2.10, Appendix A). */
void vc_guid_to_string(const uint8_t guid[16], char out[VC_GUID_STR_LEN]);
/* Parses the text form; 0 or -EBADMSG. */
int vc_guid_from_string(const char *s, uint8_t out[16]);

/* UCS-2/UTF-16LE (n_chars code units, stops at the first NUL) to a newly allocated UTF-8
 * string. Unpaired surrogates become U+FFFD. NULL on ENOMEM. */
char *vc_utf16_to_utf8(const uint8_t *data, size_t n_chars);

/* UEFI device path (UEFI 2.10, section 10) to its text form ("PciRoot(0x0)/Pci(0x1,0x1)/
 * HD(1,GPT,...)/\EFI\BOOT\BOOTX64.EFI"); node types it does not know are written in the
 * generic Path(type,subtype,hex) form. Bounded: at most VC_DEVPATH_MAX_NODES nodes.
 * Returns 0 with *ret allocated, -EBADMSG on a malformed node (a length shorter than 4 or
 * past the end), -E2BIG, -ENOMEM. */
int vc_devpath_to_text(const uint8_t *data, size_t len, char **ret);

#include "vc-util.h"
/* Append helpers for text built with vc_sbuf. */
void vc_sbuf_guid(vc_sbuf *b, const uint8_t *guid);
void vc_sbuf_utf16(vc_sbuf *b, const uint8_t *data, size_t n_chars);

/* Well-known variable GUIDs. */
extern const uint8_t vc_guid_efi_global_variable[16];   /* 8be4df61-93ca-11d2-aa0d-00e098032b8c */
extern const uint8_t vc_guid_image_security_database[16]; /* d719b2cb-3d3a-4596-a3bc-dad00e67656f */

/* EFI_SIGNATURE_LIST (UEFI 2.10, 32.4.1) entries, as found in PK, KEK, db, dbx. */
typedef enum vc_sig_kind {
        VC_SIG_X509 = 0,     /* EFI_CERT_X509_GUID: DER certificate */
        VC_SIG_SHA256 = 1,   /* EFI_CERT_SHA256_GUID: 32-byte hash */
        VC_SIG_OTHER = 2,
} vc_sig_kind;

typedef int (*vc_sig_cb)(void *userdata, vc_sig_kind kind, const uint8_t *owner, const uint8_t *data, size_t len);

/* Calls cb for every entry of every list; stops at a negative return of cb. Returns 0,
 * cb's error, or -EBADMSG for a malformed list (sizes inconsistent or past the end). */
int vc_siglist_foreach(const uint8_t *data, size_t len, vc_sig_cb cb, void *userdata);
