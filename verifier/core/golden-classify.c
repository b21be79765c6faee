/* SPDX-License-Identifier: Apache-2.0 */
/* How golden rules read an event log: the class of an event (the rule that must explain
 * it), and the content those rules look at. Content (strings, variables) is used only when
 * the event's digest was verified against it; digests themselves (boot applications,
 * firmware blobs) are what was extended, and a quote covering the PCR vouches for them. */
#include "golden-classify.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "golden-internal.h"
#include "uefi.h"
#include "vc-util.h"

/* The rule that explains each class. The classes whose rule allows an event by its digest
 * alone (a list in the set's bank) name that list, its flag, the flag of the object that
 * holds it, and what such an event is, for findings. */
typedef struct class_info {
        const char *rule, *what;
        size_t object, has, list; /* offsetof(vc_golden, ...) */
} class_info;

#define G(field) offsetof(vc_golden, field)
#define RULE(r) { .rule = r }
#define BY_DIGEST(r, w, object_, has_, list_) \
        { .rule = r, .what = w, .object = G(object_), .has = G(has_), .list = G(list_) }

static const class_info classes[] = {
        [CLS_SEPARATOR] = RULE("structure.separators"),
        [CLS_CRTM_VERSION] = RULE("platform_firmware.s_crtm_versions"),
        [CLS_FIRMWARE] = BY_DIGEST("platform_firmware.firmware", "firmware measurement", has_firmware,
                                   has_firmware_digests, firmware_digests),
        [CLS_HANDOFF] = BY_DIGEST("platform_firmware.handoff_tables", "handoff table", has_firmware, has_handoff,
                                  handoff_tables),
        [CLS_CONFIGURATION] = BY_DIGEST("platform_firmware.configuration", "platform configuration", has_firmware,
                                        has_configuration, configuration),
        [CLS_SB_VARIABLE] = RULE("secure_boot"),
        [CLS_SB_AUTHORITY] = BY_DIGEST("secure_boot.authorities", "Secure Boot authority", has_secure_boot,
                                       has_authorities, authorities),
        [CLS_MOK] = BY_DIGEST("secure_boot.mok", "shim MOK variable", has_secure_boot, has_mok, mok),
        [CLS_BOOT_APP] = RULE("boot_chain.chains"),
        [CLS_GPT] = BY_DIGEST("boot_chain.gpt", "GPT", has_boot_chain, has_gpt, gpt),
        [CLS_ACTION] = RULE("structure.actions"),
        [CLS_CMDLINE] = RULE("kernel.cmdline"),
        [CLS_GRUB] = RULE("kernel.boot_commands"),
        [CLS_BOOT_FILE] = BY_DIGEST("kernel.boot_files", "boot file", has_kernel, has_boot_files, boot_files),
        [CLS_INITRD] = BY_DIGEST("kernel.initrd", "initrd", has_kernel, has_initrd, initrd),
        [CLS_LOAD_OPTIONS] = BY_DIGEST("kernel.load_options", "kernel load options", has_kernel, has_load_options,
                                       load_options),
        [CLS_UNKNOWN_TYPE] = RULE("structure.unknown_events"),
};

const char *vc_class_rule(vc_ev_class cls) {
        return cls < ELEMENTSOF(classes) && classes[cls].rule ? classes[cls].rule : "";
}

const char *vc_class_what(vc_ev_class cls) {
        return cls < ELEMENTSOF(classes) ? classes[cls].what : NULL;
}

const vc_dset *vc_class_digests(const vc_golden *g, vc_ev_class cls) {
        if (!vc_class_what(cls) || !*(const bool *) ((const char *) g + classes[cls].has))
                return NULL;
        return (const vc_dset *) ((const char *) g + classes[cls].list);
}

int vc_class_allow_digest(vc_golden *g, vc_ev_class cls, const uint8_t *d) {
        assert(vc_class_what(cls));
        *(bool *) ((char *) g + classes[cls].object) = true;
        *(bool *) ((char *) g + classes[cls].has) = true;
        return vc_dset_add((vc_dset *) ((char *) g + classes[cls].list), d);
}

const char *vc_index_word(vc_log_kind kind) {
        return kind == VC_LOG_CCEL ? "register" : "PCR";
}

/* Positions place vendor event pins (structure.vendor_events). */
bool vc_event_position(const vc_event *ev, uint32_t positions[VC_PCR_COUNT], uint32_t *ret) {
        if (ev->type == EV_NO_ACTION || ev->pcr >= VC_PCR_COUNT)
                return false;
        *ret = positions[ev->pcr]++;
        return true;
}

void vc_rule_event_start(vc_rule_event *x, vc_log_kind kind, const vc_event *ev, const vc_event_check *chk,
                         uint16_t bank, uint32_t positions[VC_PCR_COUNT]) {
        const vc_event_digest *d = vc_event_find_digest(ev, bank);
        *x = (vc_rule_event) { .ev = ev, .chk = chk, .d = d ? d->bytes : NULL, .cls = vc_classify_event(kind, ev),
                               .verified = chk->status == VC_DIGEST_VERIFIED };
        vc_event_position(ev, positions, &x->pos);
}

/* The value a verified separator measured: its 4 bytes of data, or 0xFFFFFFFF for SeaBIOS's
 * separator with no data (the digest check says which). False when not verified. */
bool vc_separator_value(const vc_event_content *c, const vc_event_check *chk, uint32_t *ret) {
        if (chk->status != VC_DIGEST_VERIFIED)
                return false;
        if (chk->measured == VC_MEASURED_ERROR_SEPARATOR) {
                *ret = 0xFFFFFFFF;
                return true;
        }
        if (c->kind != VC_CONTENT_SEPARATOR)
                return false;
        *ret = c->separator_value;
        return true;
}

static const char grub_cmdline_prefix[] = "kernel_cmdline: ";

/* GRUB's EV_IPL strings: the digest covers only what follows the prefix, so the prefix
 * (command or command line) is not measured and cannot decide which rule applies: the
 * body must be allowed by kernel.boot_commands or kernel.cmdline, whatever the prefix. */
static size_t grub_prefix_len(const char *s, size_t n) {
        static const char *const prefixes[] = { "grub_cmd: ", "kernel_cmdline: ", "module_cmdline: ", "grub_cmd " };
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
                size_t pl = strlen(prefixes[i]);
                if (n >= pl && memcmp(s, prefixes[i], pl) == 0)
                        return pl;
        }
        return 0;
}

bool vc_grub_says_cmdline(const char *s) {
        return strncmp(s, grub_cmdline_prefix, strlen(grub_cmdline_prefix)) == 0;
}

/* The body of a verified GRUB string; malloc'ed. */
char *vc_grub_body(const vc_event_content *c) {
        if (c->kind != VC_CONTENT_STRING || !c->string)
                return NULL;
        size_t pl = grub_prefix_len(c->string, strlen(c->string));
        return pl ? strdup(c->string + pl) : NULL;
}

/* The PCR whose rules classify an event. A CCEL register gathers several PCRs'
 * measurements (UEFI 2.10 38.4.1: RTMR0 = PCRs 1 and 7, RTMR1 = 2-6, RTMR2 = 8-15): it is
 * classified as the PCR its type-specific rules look for (EFI variables of RTMR0 as PCR 7's
 * Secure Boot variables, RTMR2 as the boot loader's PCR 8; shim's MOK EV_IPL cannot be told
 * apart there and is a boot file). RTMR3 (the OS's) counts as a PCR above 8. */
static uint32_t class_pcr(vc_log_kind kind, uint32_t index) {
        static const uint32_t ccel[VC_CCEL_REGISTERS] = { 0, 7, 4, 8, 10 };
        if (kind != VC_LOG_CCEL)
                return index;
        return index < VC_CCEL_REGISTERS ? ccel[index] : index;
}

/* By type. The type is not measured, so a relabelled event is caught by the rules: a
 * separator relabelled as anything else leaves its PCR without the separator the set
 * requires, and its digest must then be allowed by the rule of its new class; anything
 * relabelled as a separator must carry verified separator data. */
vc_ev_class vc_classify_event(vc_log_kind kind, const vc_event *ev) {
        if (ev->type == EV_NO_ACTION || ev->pcr == VC_PCR_NONE)
                return CLS_IGNORED;
        uint32_t pcr = class_pcr(kind, ev->pcr);
        switch (ev->type) {
        case EV_SEPARATOR:
                return CLS_SEPARATOR;
        case EV_S_CRTM_VERSION:
                return CLS_CRTM_VERSION;
        case EV_S_CRTM_CONTENTS:
        case EV_EFI_PLATFORM_FIRMWARE_BLOB:
        case EV_EFI_PLATFORM_FIRMWARE_BLOB2:
        case EV_POST_CODE:
        case EV_POST_CODE2:
        case EV_EFI_HCRTM_EVENT:
        case EV_NONHOST_CODE:
        case EV_NONHOST_CONFIG:
        case EV_NONHOST_INFO:
        case EV_CPU_MICROCODE:
        case EV_EFI_SPDM_FIRMWARE_BLOB:
        case EV_EFI_SPDM_FIRMWARE_CONFIG:
        case EV_EFI_BOOT_SERVICES_DRIVER:
        case EV_EFI_RUNTIME_SERVICES_DRIVER:
                return CLS_FIRMWARE;
        case EV_EFI_HANDOFF_TABLES:
        case EV_EFI_HANDOFF_TABLES2:
                return CLS_HANDOFF;
        case EV_EFI_VARIABLE_BOOT:
        case EV_EFI_VARIABLE_BOOT2:
        case EV_PLATFORM_CONFIG_FLAGS:
        case EV_TABLE_OF_DEVICES:
        case EV_OMIT_BOOT_DEVICE_EVENTS:
                return CLS_CONFIGURATION;
        case EV_EFI_VARIABLE_DRIVER_CONFIG:
        case EV_EFI_SPDM_DEVICE_POLICY:
                return pcr == 7 ? CLS_SB_VARIABLE : CLS_CONFIGURATION;
        case EV_EFI_VARIABLE_AUTHORITY:
        case EV_EFI_SPDM_DEVICE_AUTHORITY:
                return CLS_SB_AUTHORITY;
        case EV_EFI_BOOT_SERVICES_APPLICATION:
                return CLS_BOOT_APP;
        case EV_EFI_GPT_EVENT:
        case EV_EFI_GPT_EVENT2:
                return CLS_GPT;
        case EV_EFI_ACTION:
        case EV_ACTION:
                return CLS_ACTION;
        case EV_IPL: {
                const char *s = (const char *) ev->data;
                size_t n = ev->data_size;
                if (pcr == 14)
                        return CLS_MOK; /* shim: MokList, MokListX, SbatLevel... */
                if (grub_prefix_len(s, n))
                        return CLS_GRUB;
                /* systemd-stub (PCR 12) and systemd-boot (PCR 8): UTF-16 command line */
                if ((pcr == 12 || pcr == 8) && n >= 4 && n % 2 == 0 && ev->data[1] == 0)
                        return CLS_CMDLINE;
                return CLS_BOOT_FILE;
        }
        case EV_EVENT_TAG:
                if (pcr < 8)
                        return CLS_CONFIGURATION;
                if (ev->data_size >= 8 && vc_le32(ev->data) == 0x8F3B22EC)
                        return CLS_INITRD;
                if (ev->data_size >= 8 && vc_le32(ev->data) == 0x8F3B22ED)
                        return CLS_LOAD_OPTIONS;
                return CLS_BOOT_FILE;
        case EV_COMPACT_HASH:
        case EV_IPL_PARTITION_DATA:
                return pcr < 8 ? CLS_CONFIGURATION : CLS_BOOT_FILE;
        default:
                return CLS_UNKNOWN_TYPE;
        }
}

/* The command line of a systemd CLS_CMDLINE event whose content is verified; malloc'ed. */
char *vc_cmdline_text(const vc_event_content *c) {
        if (c->kind == VC_CONTENT_UTF16 && c->string)
                return strdup(c->string);
        return NULL;
}

vc_sb_var vc_sb_variable(const vc_event_content *c) {
        if (c->kind != VC_CONTENT_VARIABLE || !c->var_name)
                return SB_OTHER;
        bool global = memcmp(c->var_guid, vc_guid_efi_global_variable, 16) == 0;
        bool secdb = memcmp(c->var_guid, vc_guid_image_security_database, 16) == 0;
        if (global && strcmp(c->var_name, "SecureBoot") == 0)
                return SB_SECUREBOOT;
        if (global && strcmp(c->var_name, "PK") == 0)
                return SB_PK;
        if (global && strcmp(c->var_name, "KEK") == 0)
                return SB_KEK;
        if (secdb && strcmp(c->var_name, "db") == 0)
                return SB_DB;
        if (secdb && strcmp(c->var_name, "dbx") == 0)
                return SB_DBX;
        return SB_OTHER;
}

const char *vc_sb_name(vc_sb_var v) {
        static const char *const names[VC_SB_VARS] = { "variable", "SecureBoot", "PK", "KEK", "db", "dbx" };
        return v < VC_SB_VARS ? names[v] : names[SB_OTHER];
}

void vc_sig_entries_done(vc_sig_entries *e) {
        vc_dset_done(&e->certs);
        vc_dset_done(&e->hashes);
}

typedef struct sig_collect {
        vc_sig_entries *e;
        vc_hasher **hasher;
} sig_collect;

static int collect_sig(void *ud, vc_sig_kind kind, const uint8_t *owner, const uint8_t *data, size_t len) {
        sig_collect *sc = ud;
        uint8_t fp[32];
        if (kind == VC_SIG_X509) {
                int r = *sc->hasher ? 0 : vc_hasher_new(sc->hasher);
                if (r >= 0)
                        r = vc_hasher_digest(*sc->hasher, VC_ALG_SHA256, data, len, fp);
                return r < 0 ? r : vc_dset_add(&sc->e->certs, fp);
        }
        if (kind == VC_SIG_SHA256)
                return vc_dset_add(&sc->e->hashes, data);
        sc->e->other++;
        return 0;
}

int vc_sig_entries_of(const vc_event_content *c, vc_hasher **hasher, vc_sig_entries *e) {
        sig_collect sc = { .e = e, .hasher = hasher };
        e->certs = (vc_dset) { .size = 32 };
        e->hashes = (vc_dset) { .size = 32 };
        e->other = 0;
        int r = vc_siglist_foreach(c->var_data, (size_t) c->var_data_len, collect_sig, &sc);
        vc_dset_finish(&e->certs);
        vc_dset_finish(&e->hashes);
        if (r < 0)
                vc_sig_entries_done(e);
        return r;
}

/* Log strings as vc_event_decode() reads them: UTF-8 text without its trailing NULs. */
static bool log_text(const vc_event *ev, size_t *ret_len) {
        size_t len = ev->data_size;
        while (len > 0 && ev->data[len - 1] == 0)
                len--;
        if (len == 0 || !vc_golden_text_valid(ev->data, len, false))
                return false;
        *ret_len = len;
        return true;
}

static int read_variable(const vc_event *ev, vc_event_content *c) {
        const uint8_t *guid, *name;
        uint64_t chars;
        if (vc_parse_variable(ev->data, ev->data_size, &guid, &name, &chars, &c->var_data, &c->var_data_len) < 0) {
                c->var_data = NULL;
                c->var_data_len = 0;
                return 0; /* malformed: no content */
        }
        c->kind = VC_CONTENT_VARIABLE;
        memcpy(c->var_guid, guid, 16);
        c->var_name = vc_utf16_to_utf8(name, (size_t) chars);
        return c->var_name ? 0 : -ENOMEM;
}

/* Malformed content is no error here: the rules find it has no string or variable. */
static int decode_whole(const vc_event *ev, vc_event_content *ret) {
        int r = vc_event_decode(ev, ret, NULL);
        return r == -ENOMEM ? r : 0;
}

/* The text vc_event_decode() writes for every event (escaped character by character) costs
 * more than all the rules of an evaluation together, and rules do not read it; the content
 * they read is simple to take from the data in the common cases, and is decoded the same
 * way there (a string only when the data is text, a variable only when it parses). Other
 * cases (UTF-16 strings, the S-CRTM version) are left to vc_event_decode(). */
int vc_rule_content(const vc_event *ev, vc_ev_class cls, vc_event_content *ret) {
        vc_event_content c = { 0 };
        size_t len;
        int r;

        switch (cls) {
        case CLS_SEPARATOR:
                if (ev->data_size == 4) {
                        c.kind = VC_CONTENT_SEPARATOR;
                        c.separator_value = vc_le32(ev->data);
                }
                break;
        case CLS_SB_VARIABLE:
                r = read_variable(ev, &c);
                if (r < 0) {
                        vc_event_content_done(&c);
                        return r;
                }
                break;
        case CLS_ACTION:
        case CLS_GRUB:
        case CLS_CMDLINE:
                if (!log_text(ev, &len))
                        return decode_whole(ev, ret);
                c.kind = VC_CONTENT_STRING;
                c.string = strndup((const char *) ev->data, len);
                if (!c.string)
                        return -ENOMEM;
                break;
        case CLS_CRTM_VERSION:
                return decode_whole(ev, ret);
        default:
                break;
        }
        *ret = c;
        return 0;
}
