/* SPDX-License-Identifier: Apache-2.0 */
/* Event content: decoding of the event data defined by the TCG PC Client PFP 1.05
 * (section 10.4) and UEFI, and the check that an event's digests equal the hash of the
 * data the spec says was measured. Content is only to be believed when that check says
 * VERIFIED: the event type and data are not themselves measured. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "eventlog.h"
#include "hash.h"

typedef enum vc_digest_status {
        VC_DIGEST_NOT_CHECKED = 0,  /* the measured data is not in the log (a PE image, firmware volume) */
        VC_DIGEST_VERIFIED = 1,     /* every checked bank's digest equals the hash of the event's measured data */
        VC_DIGEST_MISMATCH = 2,     /* the spec defines the measured data and a bank's digest differs */
        VC_DIGEST_NOT_EXTENDED = 3, /* EV_NO_ACTION or PCR 0xFFFFFFFF: not extended, nothing to check */
} vc_digest_status;

/* Which bytes of the event data turned out to be the measured data. */
typedef enum vc_measured {
        VC_MEASURED_NONE = 0,
        VC_MEASURED_EVENT_DATA = 1,     /* the whole event data (UEFI_VARIABLE_DATA, GPT, strings) */
        VC_MEASURED_VARIABLE_DATA = 2,  /* only VariableData: name and GUID are NOT covered (EDK2 boot vars) */
        VC_MEASURED_STRING = 3,         /* a string without its trailing NUL / prefix (grub, shim) */
        VC_MEASURED_TRUNCATED = 4,      /* event data less one trailing byte (old shim) */
        VC_MEASURED_ERROR_SEPARATOR = 5, /* an EV_SEPARATOR with no data whose digest is of 0xFFFFFFFF:
                                          * SeaBIOS measures that value without logging it */
} vc_measured;

typedef struct vc_event_check {
        vc_digest_status status;
        vc_measured measured;
        uint32_t mismatch_mask;   /* bit i: ev->digests[i] differs from the hash of the measured data */
        uint32_t unchecked_mask;  /* bit i: ev->digests[i] has an algorithm this verifier cannot compute */
} vc_event_check;

const char *vc_digest_status_name(vc_digest_status s);

/* Checks ev's digests against its data. Returns 0 with *ret filled, or -EIO/-ENOMEM. */
int vc_event_check_digests(vc_hasher *h, const vc_event *ev, vc_event_check *ret);
/* The same for the digests of the banks in algs (bit vc_alg_index(alg) per bank) alone: the
 * others are neither hashed nor in any mask, and *ret says what the check of the chosen
 * banks says (NOT_CHECKED when ev carries none of them). VC_ALGS_ALL is
 * vc_event_check_digests(). A quote attests one bank; the digests of the others are not
 * attested and need not agree with it (see vc_golden_check_digests()). */
#define VC_ALGS_ALL UINT32_MAX
int vc_event_check_digests_in(vc_hasher *h, const vc_event *ev, uint32_t algs, vc_event_check *ret);

typedef enum vc_content_kind {
        VC_CONTENT_RAW = 0,          /* nothing decoded; text is a hex dump */
        VC_CONTENT_SPEC_ID,
        VC_CONTENT_STARTUP_LOCALITY,
        VC_CONTENT_NO_ACTION,        /* other EV_NO_ACTION: signature + data */
        VC_CONTENT_STRING,           /* ASCII/UTF-8 (EV_EFI_ACTION, EV_IPL from grub, EV_POST_CODE) */
        VC_CONTENT_UTF16,            /* UCS-2 string (EV_S_CRTM_VERSION, systemd EV_IPL) */
        VC_CONTENT_SEPARATOR,
        VC_CONTENT_VARIABLE,         /* UEFI_VARIABLE_DATA */
        VC_CONTENT_IMAGE,            /* UEFI_IMAGE_LOAD_EVENT */
        VC_CONTENT_BLOB,             /* UEFI_PLATFORM_FIRMWARE_BLOB(2) */
        VC_CONTENT_GPT,              /* UEFI_GPT_DATA */
        VC_CONTENT_HANDOFF_TABLES,   /* UEFI_HANDOFF_TABLE_POINTERS(2) */
        VC_CONTENT_TAGGED,           /* TCG_PCClientTaggedEvent */
} vc_content_kind;

typedef struct vc_event_content {
        vc_content_kind kind;
        char *text;                   /* one-line human description, always set; owned */
        /* VC_CONTENT_STRING / UTF16: the decoded string (UTF-8); owned */
        char *string;
        /* VC_CONTENT_VARIABLE */
        uint8_t var_guid[16];
        char *var_name;               /* UTF-8; owned */
        const uint8_t *var_data;      /* points into the event data */
        uint64_t var_data_len;
        /* VC_CONTENT_IMAGE */
        uint64_t image_location, image_length, image_link_time_address;
        char *device_path;            /* text form; owned; NULL if none */
        /* VC_CONTENT_BLOB */
        uint64_t blob_base, blob_length;
        /* VC_CONTENT_SEPARATOR */
        uint32_t separator_value;
        /* VC_CONTENT_TAGGED */
        uint32_t tag_id;
        const uint8_t *tag_data;
        uint32_t tag_size;
        /* VC_CONTENT_STARTUP_LOCALITY */
        uint8_t locality;
        /* VC_CONTENT_GPT / HANDOFF_TABLES */
        uint64_t count;
} vc_event_content;

/* Decodes ev's data according to its type. Malformed content is not an error of the log:
 * it returns -EBADMSG with err saying what is wrong, and *ret still holds a RAW hex text.
 * -ENOMEM on allocation failure. Release with vc_event_content_done(). */
int vc_event_decode(const vc_event *ev, vc_event_content *ret, vc_error *err);
void vc_event_content_done(vc_event_content *c);

/* Parses UEFI_VARIABLE_DATA (PFP 1.05 10.4.6 / UEFI): 0 or -EBADMSG. Pointers into data. */
int vc_parse_variable(const uint8_t *data, size_t len, const uint8_t **ret_guid, const uint8_t **ret_name,
                      uint64_t *ret_name_chars, const uint8_t **ret_vardata, uint64_t *ret_vardata_len);
