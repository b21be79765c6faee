/* SPDX-License-Identifier: Apache-2.0 */
#include "eventlog.h"

#include <errno.h>
#include <string.h>

#include "hash.h"

static const struct {
        uint32_t type;
        const char *name;
} type_names[] = {
        { EV_PREBOOT_CERT, "EV_PREBOOT_CERT" },
        { EV_POST_CODE, "EV_POST_CODE" },
        { EV_UNUSED, "EV_UNUSED" },
        { EV_NO_ACTION, "EV_NO_ACTION" },
        { EV_SEPARATOR, "EV_SEPARATOR" },
        { EV_ACTION, "EV_ACTION" },
        { EV_EVENT_TAG, "EV_EVENT_TAG" },
        { EV_S_CRTM_CONTENTS, "EV_S_CRTM_CONTENTS" },
        { EV_S_CRTM_VERSION, "EV_S_CRTM_VERSION" },
        { EV_CPU_MICROCODE, "EV_CPU_MICROCODE" },
        { EV_PLATFORM_CONFIG_FLAGS, "EV_PLATFORM_CONFIG_FLAGS" },
        { EV_TABLE_OF_DEVICES, "EV_TABLE_OF_DEVICES" },
        { EV_COMPACT_HASH, "EV_COMPACT_HASH" },
        { EV_IPL, "EV_IPL" },
        { EV_IPL_PARTITION_DATA, "EV_IPL_PARTITION_DATA" },
        { EV_NONHOST_CODE, "EV_NONHOST_CODE" },
        { EV_NONHOST_CONFIG, "EV_NONHOST_CONFIG" },
        { EV_NONHOST_INFO, "EV_NONHOST_INFO" },
        { EV_OMIT_BOOT_DEVICE_EVENTS, "EV_OMIT_BOOT_DEVICE_EVENTS" },
        { EV_POST_CODE2, "EV_POST_CODE2" },
        { EV_EFI_EVENT_BASE, "EV_EFI_EVENT_BASE" },
        { EV_EFI_VARIABLE_DRIVER_CONFIG, "EV_EFI_VARIABLE_DRIVER_CONFIG" },
        { EV_EFI_VARIABLE_BOOT, "EV_EFI_VARIABLE_BOOT" },
        { EV_EFI_BOOT_SERVICES_APPLICATION, "EV_EFI_BOOT_SERVICES_APPLICATION" },
        { EV_EFI_BOOT_SERVICES_DRIVER, "EV_EFI_BOOT_SERVICES_DRIVER" },
        { EV_EFI_RUNTIME_SERVICES_DRIVER, "EV_EFI_RUNTIME_SERVICES_DRIVER" },
        { EV_EFI_GPT_EVENT, "EV_EFI_GPT_EVENT" },
        { EV_EFI_ACTION, "EV_EFI_ACTION" },
        { EV_EFI_PLATFORM_FIRMWARE_BLOB, "EV_EFI_PLATFORM_FIRMWARE_BLOB" },
        { EV_EFI_HANDOFF_TABLES, "EV_EFI_HANDOFF_TABLES" },
        { EV_EFI_PLATFORM_FIRMWARE_BLOB2, "EV_EFI_PLATFORM_FIRMWARE_BLOB2" },
        { EV_EFI_HANDOFF_TABLES2, "EV_EFI_HANDOFF_TABLES2" },
        { EV_EFI_VARIABLE_BOOT2, "EV_EFI_VARIABLE_BOOT2" },
        { EV_EFI_GPT_EVENT2, "EV_EFI_GPT_EVENT2" },
        { EV_EFI_HCRTM_EVENT, "EV_EFI_HCRTM_EVENT" },
        { EV_EFI_VARIABLE_AUTHORITY, "EV_EFI_VARIABLE_AUTHORITY" },
        { EV_EFI_SPDM_FIRMWARE_BLOB, "EV_EFI_SPDM_FIRMWARE_BLOB" },
        { EV_EFI_SPDM_FIRMWARE_CONFIG, "EV_EFI_SPDM_FIRMWARE_CONFIG" },
        { EV_EFI_SPDM_DEVICE_POLICY, "EV_EFI_SPDM_DEVICE_POLICY" },
        { EV_EFI_SPDM_DEVICE_AUTHORITY, "EV_EFI_SPDM_DEVICE_AUTHORITY" },
};

int vc_event_type_index(uint32_t type) {
        for (size_t i = 0; i < ELEMENTSOF(type_names); i++)
                if (type_names[i].type == type)
                        return (int) i;
        return -1;
}

uint32_t vc_event_type_at(int index) {
        return type_names[index].type;
}

int vc_event_type_from_name(const char *name, uint32_t *ret) {
        for (size_t i = 0; i < ELEMENTSOF(type_names); i++)
                if (strcmp(type_names[i].name, name) == 0) {
                        *ret = type_names[i].type;
                        return 0;
                }
        return -ENOENT;
}

const char *vc_event_type_name(uint32_t type) {
        int i = vc_event_type_index(type);
        return i < 0 ? "EV_UNKNOWN" : type_names[i].name;
}

const char *vc_log_kind_name(vc_log_kind kind) {
        return kind == VC_LOG_CCEL ? "ccel" : "tpm";
}

vc_eventlog *vc_eventlog_free(vc_eventlog *log) {
        if (!log)
                return NULL;
        free(log->buf);
        free(log->events);
        free(log);
        return NULL;
}

uint16_t vc_eventlog_digest_size(const vc_eventlog *log, uint16_t alg) {
        if (log->format == VC_LOG_SHA1_LEGACY)
                return alg == VC_ALG_SHA1 ? 20 : 0;
        for (uint32_t i = 0; i < log->spec.n_algs; i++)
                if (log->spec.algs[i].alg == alg)
                        return log->spec.algs[i].size;
        return 0;
}

const vc_event_digest *vc_event_find_digest(const vc_event *ev, uint16_t alg) {
        for (uint32_t i = 0; i < ev->n_digests; i++)
                if (ev->digests[i].alg == alg)
                        return &ev->digests[i];
        return NULL;
}

static int push_event(vc_eventlog *log, const vc_event *ev, vc_error *err) {
        if (log->n_events + (log->n_events ? log->index_base : 0) >= VC_EVENTLOG_MAX_EVENTS)
                return vc_error_set(err, -E2BIG, ev->offset, (long) ev->index,
                                    "more than %u events in the log", VC_EVENTLOG_MAX_EVENTS);
        if (log->n_events == log->cap_events) {
                size_t cap = log->cap_events ? log->cap_events * 2 : 64;
                vc_event *e = realloc(log->events, cap * sizeof(*e));
                if (!e)
                        return vc_error_set(err, -ENOMEM, ev->offset, (long) ev->index, "out of memory");
                log->events = e;
                log->cap_events = cap;
        }
        log->events[log->n_events++] = *ev;
        return 0;
}

static int check_pcr(vc_log_kind kind, uint32_t pcr, size_t off, long idx, vc_error *err) {
        if (kind == VC_LOG_CCEL) {
                /* UEFI 2.10 38.4.1: MR index 0 MRTD, 1-4 RTMR0-3 */
                if (pcr < VC_CCEL_REGISTERS)
                        return 0;
                return vc_error_set(err, -EBADMSG, off, idx,
                                    "register index %u out of range: a CCEL log has 0 (MRTD) and 1-4 (RTMR0-3)", pcr);
        }
        if (pcr < VC_PCR_COUNT || pcr == VC_PCR_NONE)
                return 0;
        return vc_error_set(err, -EBADMSG, off, idx, "PCR index %u out of range: expected 0-%u or 0xFFFFFFFF", pcr,
                            VC_PCR_COUNT - 1);
}

static int read_event_data(const uint8_t *buf, size_t len, size_t *off, vc_event *ev, vc_error *err) {
        if (!vc_have(len, *off, 4))
                return vc_error_set(err, -EBADMSG, *off, (long) ev->index,
                                    "truncated: event data size needs 4 bytes, %zu left", len - *off);
        uint32_t size = vc_le32(buf + *off);
        if (size > VC_EVENTLOG_MAX_EVENT_DATA)
                return vc_error_set(err, -E2BIG, *off, (long) ev->index,
                                    "event data size %u exceeds the limit of %u bytes", size,
                                    VC_EVENTLOG_MAX_EVENT_DATA);
        *off += 4;
        if (!vc_have(len, *off, size))
                return vc_error_set(err, -EBADMSG, *off, (long) ev->index,
                                    "truncated: event data size is %u bytes, only %zu left", size, len - *off);
        ev->data = buf + *off;
        ev->data_size = size;
        *off += size;
        return 0;
}

/* What both event formats start with, PCR index and event type (PFP 1.05, 10.2.1 and
 * 10.2.2), once the need bytes of what's header are known to be there. */
static int event_header(const uint8_t *buf, size_t len, size_t off, uint32_t index, size_t need, const char *what,
                        vc_event *ev, vc_error *err) {
        *ev = (vc_event) { .index = index, .offset = off };
        if (!vc_have(len, off, need))
                return vc_error_set(err, -EBADMSG, off, (long) index, "truncated: %s header needs %zu bytes, %zu left",
                                    what, need, len - off);
        ev->pcr = vc_le32(buf + off);
        ev->type = vc_le32(buf + off + 4);
        return 0;
}

/* TCG_PCR_EVENT: the first event of every log, and every event of a legacy log. */
static int parse_event1(const uint8_t *buf, size_t len, size_t *off, uint32_t index, vc_event *ev,
                        vc_error *err) {
        size_t start = *off;
        int r = event_header(buf, len, start, index, 28, "TCG_PCR_EVENT", ev, err);
        if (r < 0)
                return r;
        ev->n_digests = 1;
        ev->digests[0] = (vc_event_digest) { .alg = VC_ALG_SHA1, .size = 20, .bytes = buf + start + 8 };
        size_t o = start + 28;
        r = read_event_data(buf, len, &o, ev, err);
        if (r < 0)
                return r;
        ev->size = o - start;
        *off = o;
        return 0;
}

/* TCG_PCR_EVENT2, PFP 1.05 section 10.2.2. */
static int parse_event2(const vc_eventlog *log, const uint8_t *buf, size_t len, size_t *off, uint32_t index,
                        vc_event *ev, vc_error *err) {
        size_t o = *off;
        int r = event_header(buf, len, o, index, 12, "TCG_PCR_EVENT2", ev, err);
        if (r < 0)
                return r;
        uint32_t count = vc_le32(buf + o + 8);
        /* PFP 1.05 10.2.2: one digest per active bank. Some logs omit banks in some events;
         * such a bank cannot be replayed (replay drops it) but the event is well-formed. */
        if (count == 0 || count > log->spec.n_algs)
                return vc_error_set(err, count > VC_EVENTLOG_MAX_ALGS ? -E2BIG : -EBADMSG, o + 8, (long) index,
                                    "digest count %u, expected 1-%u (the algorithms of the Spec ID event)", count,
                                    log->spec.n_algs);
        o += 12;
        for (uint32_t i = 0; i < count; i++) {
                if (!vc_have(len, o, 2))
                        return vc_error_set(err, -EBADMSG, o, (long) index,
                                            "truncated: digest %u algorithm needs 2 bytes", i);
                uint16_t alg = vc_le16(buf + o);
                uint16_t size = vc_eventlog_digest_size(log, alg);
                if (size == 0)
                        return vc_error_set(err, -ENOTSUP, o, (long) index,
                                            "digest algorithm 0x%04x is not declared in the Spec ID event", alg);
                for (uint32_t j = 0; j < i; j++)
                        if (ev->digests[j].alg == alg)
                                return vc_error_set(err, -EBADMSG, o, (long) index,
                                                    "digest algorithm 0x%04x appears twice", alg);
                o += 2;
                if (!vc_have(len, o, size))
                        return vc_error_set(err, -EBADMSG, o, (long) index,
                                            "truncated: digest 0x%04x needs %u bytes, %zu left", alg, size,
                                            len - o);
                ev->digests[i] = (vc_event_digest) { .alg = alg, .size = size, .bytes = buf + o };
                o += size;
        }
        ev->n_digests = count;
        r = read_event_data(buf, len, &o, ev, err);
        if (r < 0)
                return r;
        ev->size = o - *off;
        *off = o;
        return 0;
}

static const char spec_id_sig[16] = "Spec ID Event03";

/* TCG_EfiSpecIDEvent, PFP 1.05 section 10.4.5.1. Digest sizes come from here; a known
 * algorithm must declare its real size, an unknown one is carried (and skipped in replay)
 * with the size declared, as the spec intends. */
static int parse_spec_id(const vc_event *ev, vc_log_kind kind, size_t buf_left, vc_spec_id *spec, size_t *ret_extra,
                         vc_error *err) {
        const uint8_t *d = ev->data;
        size_t n = ev->data_size, o = 16;
        size_t base = (size_t) ev->offset + 32;

        /* PFP 1.05 10.4.5.1: PCR 0. A CCEL log's is at register 1 (current TDX firmware)
         * or 0 (early TDVF). */
        if (kind == VC_LOG_TPM && ev->pcr != 0)
                return vc_error_set(err, -EBADMSG, ev->offset, 0,
                                    "Spec ID event in PCR %u, expected PCR 0 (a CCEL log must be read as one)", ev->pcr);
        if (kind == VC_LOG_CCEL && ev->pcr > 1)
                return vc_error_set(err, -EBADMSG, ev->offset, 0,
                                    "CCEL Spec ID event at register %u, expected 1 (or 0, early TDVF)", ev->pcr);
        if (!vc_have(n, o, 12))
                return vc_error_set(err, -EBADMSG, base + o, 0, "truncated Spec ID event: %zu bytes", n);
        *spec = (vc_spec_id) {
                .platform_class = vc_le32(d + 16),
                .version_minor = d[20],
                .version_major = d[21],
                .errata = d[22],
                .uintn_size = d[23],
                .n_algs = vc_le32(d + 24),
        };
        o = 28;
        if (spec->n_algs == 0)
                return vc_error_set(err, -EBADMSG, base + 24, 0, "Spec ID event declares no digest algorithm");
        if (spec->n_algs > VC_EVENTLOG_MAX_ALGS)
                return vc_error_set(err, -E2BIG, base + 24, 0,
                                    "Spec ID event declares %u algorithms, at most %u are accepted",
                                    spec->n_algs, VC_EVENTLOG_MAX_ALGS);
        for (uint32_t i = 0; i < spec->n_algs; i++) {
                if (!vc_have(n, o, 4))
                        return vc_error_set(err, -EBADMSG, base + o, 0, "truncated Spec ID algorithm %u", i);
                uint16_t alg = vc_le16(d + o), size = vc_le16(d + o + 2);
                const vc_alg_info *info = vc_alg_lookup(alg);
                if (info && info->size != size)
                        return vc_error_set(err, -EBADMSG, base + o + 2, 0,
                                            "Spec ID declares %s with digest size %u, expected %zu", info->name,
                                            size, info->size);
                if (size == 0 || size > VC_EVENTLOG_MAX_DIGEST_SIZE)
                        return vc_error_set(err, -EBADMSG, base + o + 2, 0,
                                            "Spec ID declares algorithm 0x%04x with digest size %u (1-%u allowed)",
                                            alg, size, VC_EVENTLOG_MAX_DIGEST_SIZE);
                for (uint32_t j = 0; j < i; j++)
                        if (spec->algs[j].alg == alg)
                                return vc_error_set(err, -EBADMSG, base + o, 0,
                                                    "Spec ID declares algorithm 0x%04x twice", alg);
                spec->algs[i] = (vc_spec_id_alg) { alg, size };
                o += 4;
        }
        /* A CC event log has one bank: SHA-384 (TDX: RTMRs are SHA-384) or SM3 (Hygon CSV). */
        if (kind == VC_LOG_CCEL &&
            (spec->n_algs != 1 || (spec->algs[0].alg != VC_ALG_SHA384 && spec->algs[0].alg != VC_ALG_SM3_256)))
                return vc_error_set(err, -EBADMSG, base + 24, 0,
                                    "CCEL Spec ID event declares %u algorithm%s (the first 0x%04x), expected SHA-384 "
                                    "or SM3 alone",
                                    spec->n_algs, spec->n_algs == 1 ? "" : "s", spec->algs[0].alg);
        if (!vc_have(n, o, 1))
                return vc_error_set(err, -EBADMSG, base + o, 0, "truncated Spec ID event: no vendorInfoSize");
        spec->vendor_info_size = d[o++];
        *ret_extra = 0;
        if (o == n && spec->vendor_info_size > 0) {
                /* eventSize stops right after vendorInfoSize: some writers (and tpm2-tools'
                 * reader, which takes the next event to start after vendorInfo) do not count
                 * vendorInfo in eventSize. Accept exactly that case. */
                if (buf_left < spec->vendor_info_size)
                        return vc_error_set(err, -EBADMSG, base + o, 0,
                                            "truncated Spec ID event: vendorInfoSize %u, %zu bytes left",
                                            spec->vendor_info_size, buf_left);
                spec->vendor_info = d + o;
                *ret_extra = spec->vendor_info_size;
                return 0;
        }
        if (!vc_have(n, o, spec->vendor_info_size))
                return vc_error_set(err, -EBADMSG, base + o, 0,
                                    "truncated Spec ID event: vendorInfoSize %u, %zu bytes left",
                                    spec->vendor_info_size, n - o);
        spec->vendor_info = d + o;
        o += spec->vendor_info_size;
        if (o != n)
                return vc_error_set(err, -EBADMSG, base + o, 0, "Spec ID event has %zu trailing bytes", n - o);
        return 0;
}

/* Where trailing padding would start: the longest run of 0xFF or of 0x00 bytes that ends
 * the buffer, from off on; len when the buffer ends in anything else. Computed once per
 * parse, so a hostile run of zeros costs one pass. (TDVF fills the CCEL log area with
 * 0xFF before the first event: OvmfPkg/Tcg/TdTcg2Dxe SetupCcEventLog.) */
static size_t padding_start(const uint8_t *buf, size_t off, size_t len) {
        if (off >= len || (buf[len - 1] != 0x00 && buf[len - 1] != 0xFF))
                return len;
        size_t p = len - 1;
        while (p > off && buf[p - 1] == buf[len - 1])
                p--;
        return p;
}

/* Parses events from log->buf starting at off. Bytes after the last complete event that
 * are all 0xFF or all 0x00 are padding (a copy of the firmware's log area). */
static int parse_events(vc_eventlog *log, size_t off, vc_error *err) {
        size_t pad = padding_start(log->buf, off, log->len);
        log->padding = 0;
        log->padding_byte = 0;
        while (off < log->len) {
                if (off >= pad) {
                        log->padding = log->len - off;
                        log->padding_byte = log->buf[off];
                        break;
                }
                vc_event ev;
                uint32_t index = (uint32_t) (log->n_events + log->index_base);
                int r;

                if (log->format == VC_LOG_CRYPTO_AGILE)
                        r = parse_event2(log, log->buf, log->len, &off, index, &ev, err);
                else
                        r = parse_event1(log->buf, log->len, &off, index, &ev, err);
                if (r < 0)
                        return r;
                r = check_pcr(log->kind, ev.pcr, ev.offset, (long) index, err);
                if (r < 0)
                        return r;
                r = push_event(log, &ev, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool is_spec_id(const vc_event *first) {
        return first->type == EV_NO_ACTION && first->data_size >= 16 && memcmp(first->data, spec_id_sig, 16) == 0;
}

/* Parses buf (the log, or a head and a tail: index_base set) into a new log, read as how
 * says: VC_READ_AUTO reads a log whose Spec ID event has index 1 as CCEL. */
static int parse_log(const uint8_t *buf, size_t len, vc_log_read how, size_t index_base, vc_eventlog **ret,
                     vc_error *err) {
        vc_eventlog *log;
        vc_event first;
        size_t off = 0;
        int r;

        vc_error_clear(err);
        if (len == 0)
                return vc_error_set(err, -EBADMSG, 0, -1, "empty event log");
        if (len > VC_EVENTLOG_MAX_SIZE)
                return vc_error_set(err, -E2BIG, SIZE_MAX, -1, "event log of %zu bytes exceeds the limit of %u bytes",
                                    len, VC_EVENTLOG_MAX_SIZE);
        log = calloc(1, sizeof(*log));
        if (!log)
                return -ENOMEM;
        log->buf = malloc(len);
        if (!log->buf) {
                vc_eventlog_free(log);
                return -ENOMEM;
        }
        memcpy(log->buf, buf, len);
        log->len = len;
        log->index_base = index_base;

        r = parse_event1(log->buf, len, &off, 0, &first, err);
        if (r < 0)
                goto fail;
        log->kind = how == VC_READ_CCEL || (how == VC_READ_AUTO && is_spec_id(&first) && first.pcr == 1) ? VC_LOG_CCEL
                                                                                                           : VC_LOG_TPM;
        if (is_spec_id(&first)) {
                size_t extra;
                log->format = VC_LOG_CRYPTO_AGILE;
                r = parse_spec_id(&first, log->kind, len - off, &log->spec, &extra, err);
                if (r < 0)
                        goto fail;
                first.size += extra;
                off += extra;
        } else if (log->kind == VC_LOG_CCEL) {
                r = vc_error_set(err, -EBADMSG, 0, 0, "a CCEL log starts with a Spec ID event (crypto-agile layout)");
                goto fail;
        } else {
                log->format = VC_LOG_SHA1_LEGACY;
                r = check_pcr(log->kind, first.pcr, 0, 0, err);
                if (r < 0)
                        goto fail;
        }
        r = push_event(log, &first, err);
        if (r < 0)
                goto fail;
        r = parse_events(log, off, err);
        if (r < 0)
                goto fail;
        *ret = log;
        return 0;
fail:
        vc_eventlog_free(log);
        return r;
}

int vc_eventlog_parse(const uint8_t *buf, size_t len, vc_eventlog **ret, vc_error *err) {
        return parse_log(buf, len, VC_READ_TPM, 0, ret, err);
}

int vc_eventlog_parse_as(const uint8_t *buf, size_t len, vc_log_read how, vc_eventlog **ret, vc_error *err) {
        if (how != VC_READ_TPM && how != VC_READ_CCEL && how != VC_READ_AUTO)
                return -EINVAL;
        return parse_log(buf, len, how, 0, ret, err);
}

int vc_eventlog_parse_tail(const uint8_t *head, size_t head_len, size_t base_offset, size_t base_index,
                           const uint8_t *buf, size_t len, vc_eventlog **ret, vc_error *err) {
        vc_eventlog *log = NULL;
        vc_error e;
        vc_error_clear(err);
        if (!head || head_len == 0 || base_offset < head_len || base_index < 1 ||
            base_index > VC_EVENTLOG_MAX_EVENTS || base_offset > VC_EVENTLOG_MAX_SIZE)
                return -EINVAL;
        if (len > VC_EVENTLOG_MAX_SIZE - base_offset)
                return vc_error_set(err, -E2BIG, base_offset, -1,
                                    "event log would grow to %zu bytes, over the limit of %u bytes", base_offset + len,
                                    VC_EVENTLOG_MAX_SIZE);
        uint8_t *b = malloc(head_len + len);
        if (!b)
                return -ENOMEM;
        memcpy(b, head, head_len);
        if (len)
                memcpy(b + head_len, buf, len);
        /* events[1] is event base_index of the whole log: indices (and the events cap)
         * count from there; offsets are moved to the whole log's after the parse */
        int r = parse_log(b, head_len + len, VC_READ_TPM, base_index - 1, &log, &e);
        free(b);
        size_t shift = base_offset - head_len;
        if (r < 0) {
                if (r == -ENOMEM)
                        return r;
                if (e.event == 0 || (e.offset != SIZE_MAX && e.offset < head_len))
                        return -EINVAL; /* the head itself does not parse: the caller's bytes */
                if (e.offset != SIZE_MAX)
                        e.offset += shift;
                if (err)
                        *err = e;
                return r;
        }
        if (log->events[0].size != head_len) {
                /* the head was not exactly one first event: what follows would be misread */
                vc_eventlog_free(log);
                return -EINVAL;
        }
        for (size_t i = 1; i < log->n_events; i++)
                log->events[i].offset += shift;
        *ret = log;
        return 0;
}

/* Re-points every event's data and digests after the buffer moved. */
static void rebase(vc_eventlog *log, uintptr_t old) {
        if (old == (uintptr_t) log->buf)
                return;
        for (size_t i = 0; i < log->n_events; i++) {
                vc_event *ev = &log->events[i];
                ev->data = log->buf + ((uintptr_t) ev->data - old);
                for (uint32_t j = 0; j < ev->n_digests; j++)
                        ev->digests[j].bytes = log->buf + ((uintptr_t) ev->digests[j].bytes - old);
        }
        if (log->spec.vendor_info)
                log->spec.vendor_info = log->buf + ((uintptr_t) log->spec.vendor_info - old);
}

int vc_eventlog_append(vc_eventlog *log, const uint8_t *buf, size_t len, vc_error *err) {
        vc_error_clear(err);
        if (len == 0)
                return 0;
        if (len > VC_EVENTLOG_MAX_SIZE - log->len)
                return vc_error_set(err, -E2BIG, log->len, -1,
                                    "event log would grow to %zu bytes, over the limit of %u bytes", log->len + len,
                                    VC_EVENTLOG_MAX_SIZE);
        /* Kept as an integer: the old pointer must not be used after a successful realloc. */
        uintptr_t old = (uintptr_t) log->buf;
        uint8_t *nb = realloc(log->buf, log->len + len);
        if (!nb)
                return -ENOMEM;
        log->buf = nb;
        rebase(log, old);
        size_t old_len = log->len, old_n = log->n_events, old_pad = log->padding;
        uint8_t old_pad_byte = log->padding_byte;
        memcpy(log->buf + old_len, buf, len);
        log->len = old_len + len;
        /* a padding the log ended with is read again with what follows it */
        int r = parse_events(log, old_len - old_pad, err);
        if (r < 0) {
                log->len = old_len;
                log->n_events = old_n;
                log->padding = old_pad;
                log->padding_byte = old_pad_byte;
        }
        return r;
}
