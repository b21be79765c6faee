/* SPDX-License-Identifier: Apache-2.0 */
/* TCG PC Client Platform Firmware Profile event log parsing (crypto-agile and legacy SHA-1
 * formats). Pure: bytes in, structs out; no I/O, no logging. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vc-util.h"

/* Caps on every peer-controlled size. Real logs are tens of KiB; these leave room for the
 * largest firmware while keeping a hostile log from exhausting memory. */
#define VC_EVENTLOG_MAX_SIZE (32u << 20)       /* whole log */
#define VC_EVENTLOG_MAX_EVENTS 65536u          /* events, header included */
#define VC_EVENTLOG_MAX_EVENT_DATA (1u << 20)  /* one event's data */
#define VC_EVENTLOG_MAX_ALGS 8u                /* algorithms in Spec ID / digests per event */
#define VC_EVENTLOG_MAX_DIGEST_SIZE 128u       /* a declared digest size we accept at all */
#define VC_PCR_COUNT 24u                       /* PCRs 0..23 (PC Client) */
#define VC_PCR_NONE 0xFFFFFFFFu                /* Windows boot configuration log entries: never extended */

/* Event types, TCG PC Client PFP 1.05 section 10.4.1. */
enum {
        EV_PREBOOT_CERT = 0x00000000,
        EV_POST_CODE = 0x00000001,
        EV_UNUSED = 0x00000002,
        EV_NO_ACTION = 0x00000003,
        EV_SEPARATOR = 0x00000004,
        EV_ACTION = 0x00000005,
        EV_EVENT_TAG = 0x00000006,
        EV_S_CRTM_CONTENTS = 0x00000007,
        EV_S_CRTM_VERSION = 0x00000008,
        EV_CPU_MICROCODE = 0x00000009,
        EV_PLATFORM_CONFIG_FLAGS = 0x0000000A,
        EV_TABLE_OF_DEVICES = 0x0000000B,
        EV_COMPACT_HASH = 0x0000000C,
        EV_IPL = 0x0000000D,
        EV_IPL_PARTITION_DATA = 0x0000000E,
        EV_NONHOST_CODE = 0x0000000F,
        EV_NONHOST_CONFIG = 0x00000010,
        EV_NONHOST_INFO = 0x00000011,
        EV_OMIT_BOOT_DEVICE_EVENTS = 0x00000012,
        EV_POST_CODE2 = 0x00000013,
        EV_EFI_EVENT_BASE = 0x80000000,
        EV_EFI_VARIABLE_DRIVER_CONFIG = 0x80000001,
        EV_EFI_VARIABLE_BOOT = 0x80000002,
        EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003,
        EV_EFI_BOOT_SERVICES_DRIVER = 0x80000004,
        EV_EFI_RUNTIME_SERVICES_DRIVER = 0x80000005,
        EV_EFI_GPT_EVENT = 0x80000006,
        EV_EFI_ACTION = 0x80000007,
        EV_EFI_PLATFORM_FIRMWARE_BLOB = 0x80000008,
        EV_EFI_HANDOFF_TABLES = 0x80000009,
        EV_EFI_PLATFORM_FIRMWARE_BLOB2 = 0x8000000A,
        EV_EFI_HANDOFF_TABLES2 = 0x8000000B,
        EV_EFI_VARIABLE_BOOT2 = 0x8000000C,
        EV_EFI_GPT_EVENT2 = 0x8000000D,
        EV_EFI_HCRTM_EVENT = 0x80000010,
        EV_EFI_VARIABLE_AUTHORITY = 0x800000E0,
        EV_EFI_SPDM_FIRMWARE_BLOB = 0x800000E1,
        EV_EFI_SPDM_FIRMWARE_CONFIG = 0x800000E2,
        EV_EFI_SPDM_DEVICE_POLICY = 0x800000E3,
        EV_EFI_SPDM_DEVICE_AUTHORITY = 0x800000E4,
};

/* "EV_EFI_ACTION"; "EV_UNKNOWN" for types not in the spec. */
const char *vc_event_type_name(uint32_t type);
/* Position 0..VC_EVENT_TYPES-1 of a spec type in a fixed table, or -1 for other types. */
int vc_event_type_index(uint32_t type);
uint32_t vc_event_type_at(int index);
#define VC_EVENT_TYPES 40
/* The type for "EV_EFI_ACTION"; -ENOENT when unknown. */
int vc_event_type_from_name(const char *name, uint32_t *ret);

typedef enum vc_log_format {
        VC_LOG_SHA1_LEGACY = 1,  /* TCG_PCR_EVENT throughout (TPM 1.2 style) */
        VC_LOG_CRYPTO_AGILE = 2, /* Spec ID Event03 header, then TCG_PCR_EVENT2 */
} vc_log_format;

/* What an event's index field names. A CCEL log (the ACPI "CC Event Log" of Intel TDX and
 * other confidential VMs; UEFI 2.10 section 38.4 EFI_CC_MEASUREMENT_PROTOCOL) has the
 * crypto-agile layout, but its index is a measurement register: 0 MRTD, 1-4 RTMR0-3,
 * each starting at zero (no locality); its Spec ID event is written with index 1 by
 * current TDX firmware (0 by early TDVF) and declares one bank, SHA-384 (TDX) or SM3. */
typedef enum vc_log_kind {
        VC_LOG_TPM = 0,          /* PCRs 0-23 (and 0xFFFFFFFF, never extended) */
        VC_LOG_CCEL = 1,         /* registers 0-4 */
} vc_log_kind;
#define VC_CCEL_REGISTERS 5u

/* How to read a log. A TPM log whose Spec ID event is not at PCR 0 is refused unless it
 * is read as CCEL; VC_READ_AUTO reads a log as CCEL when its Spec ID event has index 1
 * (what no TPM log has), else as a TPM log (early CCEL logs, index 0, need VC_READ_CCEL). */
typedef enum vc_log_read {
        VC_READ_TPM = 0,
        VC_READ_CCEL = 1,
        VC_READ_AUTO = 2,
} vc_log_read;

/* "tpm" / "ccel" */
const char *vc_log_kind_name(vc_log_kind kind);

typedef struct vc_event_digest {
        uint16_t alg;          /* TPM_ALG_ID */
        uint16_t size;         /* from the Spec ID event (or 20 for legacy SHA-1) */
        const uint8_t *bytes;  /* points into the log's buffer */
} vc_event_digest;

typedef struct vc_event {
        uint32_t index;        /* position in the log; 0 is the first (header) event */
        size_t offset;         /* byte offset of the event in the log */
        size_t size;           /* bytes the event occupies */
        uint32_t pcr;
        uint32_t type;
        uint32_t n_digests;
        vc_event_digest digests[VC_EVENTLOG_MAX_ALGS];
        const uint8_t *data;   /* event data, points into the log's buffer */
        uint32_t data_size;
} vc_event;

typedef struct vc_spec_id_alg {
        uint16_t alg;
        uint16_t size;
} vc_spec_id_alg;

/* TCG_EfiSpecIDEvent, PFP 1.05 section 10.4.5.1. */
typedef struct vc_spec_id {
        uint32_t platform_class;
        uint8_t version_minor, version_major, errata, uintn_size;
        uint32_t n_algs;
        vc_spec_id_alg algs[VC_EVENTLOG_MAX_ALGS];
        uint8_t vendor_info_size;
        const uint8_t *vendor_info;
} vc_spec_id;

typedef struct vc_eventlog {
        vc_log_format format;
        vc_log_kind kind;
        vc_spec_id spec;       /* crypto-agile only */
        uint8_t *buf;          /* owned copy of the log bytes */
        size_t len;
        vc_event *events;      /* events[0] is the first event (the Spec ID event if crypto-agile) */
        size_t n_events;
        size_t cap_events;
        size_t index_base;     /* 0; for vc_eventlog_parse_tail(): the whole-log index of events[1], minus 1 */
        size_t padding;        /* bytes after the last event: all 0xFF or all 0x00 (padding_byte) */
        uint8_t padding_byte;
} vc_eventlog;

/* Parses a whole TPM event log. Copies buf; the result owns its memory.
 * Padding: a copy of the firmware's log area (TPM or CCEL) is followed by 0xFF or 0x00
 * bytes up to the area's size. Bytes after the last complete event that are all 0xFF or
 * all 0x00 are accepted as padding (log->padding; events[] and the replay ignore them);
 * anything else there is an error at its offset. (A legacy SHA-1 event of 32 zero bytes
 * at the end is indistinguishable from zero padding and read as padding: a PCR 0 extend
 * of a zero digest that the log then omits cannot match a quote.)
 * Errors (err says offset, event index, what was wrong):
 *   -EBADMSG malformed or truncated, -E2BIG a cap exceeded, -ENOTSUP a digest algorithm
 *   not declared in the Spec ID event, -ENOMEM. */
int vc_eventlog_parse(const uint8_t *buf, size_t len, vc_eventlog **ret, vc_error *err);
/* Same, read as told (vc_eventlog_parse is VC_READ_TPM); log->kind says how it was read. */
int vc_eventlog_parse_as(const uint8_t *buf, size_t len, vc_log_read how, vc_eventlog **ret, vc_error *err);

/* Parses more events appended to an already parsed log (same boot, later read of the
 * same securityfs file from where the last one ended). The result is what parsing the
 * whole bytes would give: a padding the log ended with is parsed again with the new bytes
 * (it stays padding only if the new bytes are the same padding byte). On error the log
 * is unchanged. */
int vc_eventlog_append(vc_eventlog *log, const uint8_t *buf, size_t len, vc_error *err);

/* Parses events appended to a log the caller no longer holds whole: head is that log's
 * first event (its bytes as they were, events[0].size of them: the Spec ID event of a
 * crypto-agile log, which gives the digest sizes), buf the bytes that follow the first
 * base_offset bytes of the log, where event base_index starts. The result holds the head
 * as events[0] and the appended events after it, each with its index and offset in the
 * whole log, as vc_eventlog_parse() of the whole log would give them; errors give those
 * too. The same caps apply to the whole log (base_offset + len bytes, base_index + new
 * events). -EINVAL when head is not one whole, valid first event or base_* cannot hold it. */
int vc_eventlog_parse_tail(const uint8_t *head, size_t head_len, size_t base_offset, size_t base_index,
                           const uint8_t *buf, size_t len, vc_eventlog **ret, vc_error *err);

vc_eventlog *vc_eventlog_free(vc_eventlog *log);

/* The Spec ID's declared size for alg, or 0 when not declared. */
uint16_t vc_eventlog_digest_size(const vc_eventlog *log, uint16_t alg);
/* The digest of ev for alg, or NULL when the event carries none. */
const vc_event_digest *vc_event_find_digest(const vc_event *ev, uint16_t alg);
