/* SPDX-License-Identifier: Apache-2.0 */
/* Golden sets from event logs (create) and against event logs (evaluate, cached).
 *
 * Every extended event in a PCR the set evaluates must be explained by a rule: its class
 * (below) has a rule that allows it, or its PCR has an exact-value rule. Anything else is
 * a finding (default deny). Content (strings, variables) is used only when the event's
 * digest was verified against it; digests themselves (boot applications, firmware blobs)
 * are what was extended, and a quote covering the PCR vouches for them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden-internal.h"
#include "golden.h"
#include "hash.h"
#include "uefi.h"

typedef enum ev_class {
        CLS_IGNORED = 0,
        CLS_SEPARATOR,
        CLS_CRTM_VERSION,
        CLS_FIRMWARE,
        CLS_HANDOFF,
        CLS_CONFIGURATION,
        CLS_SB_VARIABLE,
        CLS_SB_AUTHORITY,
        CLS_MOK,
        CLS_BOOT_APP,
        CLS_GPT,
        CLS_ACTION,
        CLS_CMDLINE,
        CLS_GRUB,
        CLS_BOOT_FILE,
        CLS_INITRD,
        CLS_LOAD_OPTIONS,
        CLS_UNKNOWN_TYPE,
} ev_class;

static const char *const class_rule[] = {
        [CLS_SEPARATOR] = "structure.separators",
        [CLS_CRTM_VERSION] = "platform_firmware.s_crtm_versions",
        [CLS_FIRMWARE] = "platform_firmware.firmware",
        [CLS_HANDOFF] = "platform_firmware.handoff_tables",
        [CLS_CONFIGURATION] = "platform_firmware.configuration",
        [CLS_SB_VARIABLE] = "secure_boot",
        [CLS_SB_AUTHORITY] = "secure_boot.authorities",
        [CLS_MOK] = "secure_boot.mok",
        [CLS_BOOT_APP] = "boot_chain.chains",
        [CLS_GPT] = "boot_chain.gpt",
        [CLS_ACTION] = "structure.actions",
        [CLS_CMDLINE] = "kernel.cmdline",
        [CLS_GRUB] = "kernel.boot_commands",
        [CLS_BOOT_FILE] = "kernel.boot_files",
        [CLS_INITRD] = "kernel.initrd",
        [CLS_LOAD_OPTIONS] = "kernel.load_options",
        [CLS_UNKNOWN_TYPE] = "structure.unknown_events",
};

static const char *const grub_cmdline_prefix = "kernel_cmdline: ";

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

/* The body of a verified GRUB string; malloc'ed. */
static char *grub_body(const vc_event_content *c) {
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

/* Where a PCR's measurements are in a log of this kind: the PCR, or the CCEL register
 * that gathers it (UEFI 2.10 38.4.1; PCR 0's firmware measurements go to RTMR0 in TDVF,
 * which writes the Spec ID event there too), for findings about a missing measurement. */
static uint32_t usual_index(vc_log_kind kind, uint32_t pcr) {
        if (kind != VC_LOG_CCEL)
                return pcr;
        return pcr <= 1 || pcr == 7 ? 1 : pcr <= 6 ? 2 : pcr <= 15 ? 3 : pcr;
}

/* By type. The type is not measured, so a relabelled event is caught by the rules: a
 * separator relabelled as anything else leaves its PCR without the separator the set
 * requires, and its digest must then be allowed by the rule of its new class; anything
 * relabelled as a separator must carry verified separator data. */
static ev_class classify(vc_log_kind kind, const vc_event *e) {
        if (e->type == EV_NO_ACTION || e->pcr == VC_PCR_NONE)
                return CLS_IGNORED;
        vc_event shifted = *e;
        const vc_event *ev = &shifted;
        shifted.pcr = class_pcr(kind, e->pcr);
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
                return ev->pcr == 7 ? CLS_SB_VARIABLE : CLS_CONFIGURATION;
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
                if (ev->pcr == 14)
                        return CLS_MOK; /* shim: MokList, MokListX, SbatLevel... */
                if (grub_prefix_len(s, n))
                        return CLS_GRUB;
                /* systemd-stub (PCR 12) and systemd-boot (PCR 8): UTF-16 command line */
                if ((ev->pcr == 12 || ev->pcr == 8) && n >= 4 && n % 2 == 0 && ev->data[1] == 0)
                        return CLS_CMDLINE;
                return CLS_BOOT_FILE;
        }
        case EV_EVENT_TAG:
                if (ev->pcr < 8)
                        return CLS_CONFIGURATION;
                if (ev->data_size >= 8 && vc_le32(ev->data) == 0x8F3B22EC)
                        return CLS_INITRD;
                if (ev->data_size >= 8 && vc_le32(ev->data) == 0x8F3B22ED)
                        return CLS_LOAD_OPTIONS;
                return CLS_BOOT_FILE;
        case EV_COMPACT_HASH:
        case EV_IPL_PARTITION_DATA:
                return ev->pcr < 8 ? CLS_CONFIGURATION : CLS_BOOT_FILE;
        default:
                return CLS_UNKNOWN_TYPE;
        }
}

/* The command line of a systemd CLS_CMDLINE event whose content is verified; malloc'ed. */
static char *cmdline_text(const vc_event *ev, const vc_event_content *c) {
        if (c->kind == VC_CONTENT_UTF16 && c->string)
                return strdup(c->string);
        return NULL;
}

static const uint8_t *bank_digest(const vc_event *ev, uint16_t bank) {
        const vc_event_digest *d = vc_event_find_digest(ev, bank);
        return d ? d->bytes : NULL;
}

/* The last file node of a device path text ("...\EFI\BOOT\BOOTX64.EFI" -> "BOOTX64.EFI"). */
static char *image_label(const vc_event_content *c) {
        if (!c->device_path)
                return NULL;
        const char *p = c->device_path, *slash = strrchr(p, '\\');
        const char *label = slash ? slash + 1 : (strrchr(p, '/') ? strrchr(p, '/') + 1 : p);
        return *label ? strndup(label, 64) : NULL;
}

typedef enum sb_var {
        SB_OTHER = 0,
        SB_SECUREBOOT,
        SB_PK,
        SB_KEK,
        SB_DB,
        SB_DBX,
} sb_var;

static sb_var sb_variable(const vc_event_content *c) {
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

static const char *const sb_names[] = { "variable", "SecureBoot", "PK", "KEK", "db", "dbx" };

/* Fingerprints of the X.509 certificates and SHA-256 entries of signature lists. */
typedef struct sig_entries {
        vc_dset certs, hashes;
        size_t other;           /* entries of other types (RSA2048, SHA1, X509_SHA256, ...) */
} sig_entries;

static int collect_sig(void *ud, vc_sig_kind kind, const uint8_t *owner, const uint8_t *data, size_t len) {
        sig_entries *e = ud;
        uint8_t fp[32];
        if (kind == VC_SIG_X509) {
                int r = vc_digest(VC_ALG_SHA256, data, len, fp);
                return r < 0 ? r : vc_dset_add(&e->certs, fp);
        }
        if (kind == VC_SIG_SHA256)
                return vc_dset_add(&e->hashes, data);
        e->other++;
        return 0;
}

static int sig_entries_of(const vc_event_content *c, sig_entries *e) {
        e->certs = (vc_dset) { .size = 32 };
        e->hashes = (vc_dset) { .size = 32 };
        e->other = 0;
        int r = vc_siglist_foreach(c->var_data, (size_t) c->var_data_len, collect_sig, e);
        vc_dset_finish(&e->certs);
        vc_dset_finish(&e->hashes);
        if (r < 0) {
                vc_dset_done(&e->certs);
                vc_dset_done(&e->hashes);
        }
        return r;
}

/* ---------------- create ---------------- */

static const char *index_word(vc_log_kind kind) {
        return kind == VC_LOG_CCEL ? "register" : "PCR";
}

static int create_err(vc_error *err, vc_log_kind kind, const vc_event *ev, const char *what) {
        return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index, "cannot create a golden set: %s %u %s: %s",
                            index_word(kind), ev->pcr, vc_event_type_name(ev->type), what);
}

/* The value a verified separator measured: its 4 bytes of data, or 0xFFFFFFFF for SeaBIOS's
 * separator with no data (the digest check says which). False when not verified. */
static bool separator_value(const vc_event_content *c, const vc_event_check *chk, uint32_t *ret) {
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

/* A log with an event of a UEFI type (PFP 1.05 10.4.1, EV_EFI_*); a legacy BIOS (SeaBIOS,
 * QEMU's default firmware) logs none. */
static bool log_is_uefi(const vc_eventlog *log) {
        for (size_t i = 0; i < log->n_events; i++)
                if (log->events[i].type >= EV_EFI_EVENT_BASE && vc_event_type_index(log->events[i].type) >= 0)
                        return true;
        return false;
}

typedef struct sep_state {
        bool uefi;              /* the log has UEFI events */
        bool error, other;      /* separators 0xFFFFFFFF seen, others seen */
        uint32_t seen;          /* PCRs with a separator */
} sep_state;

/* PFP 1.05 10.4.1: a separator measures 0, or 0xFFFFFFFF when the firmware failed. A
 * legacy BIOS (SeaBIOS) measures every separator as 0xFFFFFFFF: there it is the platform's
 * normal, and the set says so (error_separators). UEFI firmware does so only on an error:
 * such a log is no reference. One separator per PCR. */
static int create_separator(vc_golden *g, const vc_eventlog *log, const vc_event *ev, const vc_event_content *c,
                            const vc_event_check *chk, sep_state *st, vc_error *err) {
        uint32_t value = 0;
        int r = 0;
        if (!separator_value(c, chk, &value))
                return create_err(err, log->kind, ev, "not a verified separator");
        if (value == 0xFFFFFFFF)
                st->error = true;
        else
                st->other = true;
        if (value == 0xFFFFFFFF && st->uefi)
                r = create_err(err, log->kind, ev,
                               "the error separator 0xFFFFFFFF in a UEFI log: the firmware reported an error (only a "
                               "legacy BIOS, such as SeaBIOS, measures it normally)");
        else if (st->error && st->other)
                r = create_err(err, log->kind, ev, "separators 0xFFFFFFFF and others in one legacy BIOS log");
        else if (st->seen & (1u << ev->pcr))
                r = create_err(err, log->kind, ev, "a second separator in this PCR (PFP 1.05 allows one)");
        st->seen |= 1u << ev->pcr;
        g->separators |= 1u << ev->pcr;
        return r;
}

/* Where each event is among those extended into its PCR (vendor event pins). */
static bool next_position(const vc_event *ev, uint32_t positions[VC_PCR_COUNT], uint32_t *ret) {
        if (ev->type == EV_NO_ACTION || ev->pcr >= VC_PCR_COUNT)
                return false;
        *ret = positions[ev->pcr]++;
        return true;
}

int vc_golden_create(const vc_eventlog *log, const vc_event_check *checks, const vc_pcr_set *replayed,
                     const char *name, const char *description, vc_golden **ret, vc_error *err) {
        uint16_t bank = vc_pcr_set_find(replayed, VC_ALG_SHA256) ? VC_ALG_SHA256
                        : replayed->n_banks                        ? replayed->banks[0].alg
                                                                   : 0;
        vc_golden *g = NULL;
        vc_chain chain = { 0 };
        uint32_t positions[VC_PCR_COUNT] = { 0 };
        sep_state seps = { .uefi = log_is_uefi(log) };
        int r;

        vc_error_clear(err);
        if (!bank)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "cannot create a golden set: the log replays no bank");
        if ((r = vc_golden_new_empty(bank, &g)) < 0)
                goto fail;
        g->name = strdup(name ? name : "golden");
        if (!g->name || (description && !(g->description = strdup(description)))) {
                r = -ENOMEM;
                goto fail;
        }
        g->has_structure = true;
        g->has_after_separator = true;
        g->sb_required = true;
        g->unknown_events = VC_UNKNOWN_REJECT;
        chain.steps = calloc(VC_GOLDEN_MAX_CHAIN_LEN, sizeof(*chain.steps));
        if (!chain.steps) {
                r = -ENOMEM;
                goto fail;
        }

        for (size_t i = 0; i < log->n_events; i++) {
                const vc_event *ev = &log->events[i];
                const vc_event_check *chk = &checks[i];
                const uint8_t *d = bank_digest(ev, bank);
                vc_event_content c = { 0 };
                bool verified = chk->status == VC_DIGEST_VERIFIED;
                ev_class cls = classify(log->kind, ev);
                uint32_t pos = 0;

                next_position(ev, positions, &pos);
                if (cls == CLS_IGNORED || (i == 0 && log->format == VC_LOG_CRYPTO_AGILE) ||
                    (ev->pcr < VC_PCR_COUNT && (VC_GOLDEN_RESETTABLE_PCRS & (1u << ev->pcr))))
                        continue;
                if (!d) {
                        r = create_err(err, log->kind, ev, "no digest in the golden bank");
                        goto fail;
                }
                if (chk->status == VC_DIGEST_MISMATCH) {
                        r = create_err(err, log->kind, ev, "its digest does not match its content");
                        goto fail;
                }
                g->pcrs |= 1u << ev->pcr;
                if (seps.seen & (1u << ev->pcr) && cls != CLS_SEPARATOR) {
                        int ti = vc_event_type_index(ev->type);
                        if (ti >= 0)
                                g->after_separator[ev->pcr] |= 1ull << ti;
                }
                r = vc_event_decode(ev, &c, NULL);
                if (r == -ENOMEM)
                        goto fail;
                r = 0;
                switch (cls) {
                case CLS_SEPARATOR:
                        r = create_separator(g, log, ev, &c, chk, &seps, err);
                        break;
                case CLS_CRTM_VERSION:
                        g->has_firmware = true;
                        if (verified && c.string) {
                                g->has_crtm_versions = true;
                                r = vc_sset_add(&g->crtm_versions, c.string);
                        } else {
                                g->has_firmware_digests = true;
                                r = vc_dset_add(&g->firmware_digests, d);
                        }
                        break;
                case CLS_FIRMWARE:
                        g->has_firmware = g->has_firmware_digests = true;
                        r = vc_dset_add(&g->firmware_digests, d);
                        break;
                case CLS_HANDOFF:
                        g->has_firmware = g->has_handoff = true;
                        r = vc_dset_add(&g->handoff_tables, d);
                        break;
                case CLS_CONFIGURATION:
                        g->has_firmware = g->has_configuration = true;
                        r = vc_dset_add(&g->configuration, d);
                        break;
                case CLS_SB_VARIABLE: {
                        sb_var v = sb_variable(&c);
                        g->has_secure_boot = true;
                        if (v != SB_OTHER && (!verified || chk->measured != VC_MEASURED_EVENT_DATA)) {
                                r = create_err(err, log->kind, ev, "Secure Boot variable whose content is not verified");
                                break;
                        }
                        if (v == SB_SECUREBOOT) {
                                g->secure_boot_enabled = c.var_data_len == 1 && c.var_data[0] == 1;
                        } else if (v == SB_PK || v == SB_KEK || v == SB_DB) {
                                vc_sigvar_rule *rule = v == SB_PK ? &g->pk : v == SB_KEK ? &g->kek : &g->db;
                                sig_entries e;
                                rule->present = rule->has_digests = rule->has_certificates = rule->has_hashes = true;
                                if ((r = vc_dset_add(&rule->digests, d)) < 0)
                                        break;
                                if (sig_entries_of(&c, &e) < 0) {
                                        r = create_err(err, log->kind, ev, "malformed EFI_SIGNATURE_LIST");
                                        break;
                                }
                                if ((r = vc_dset_union(&rule->certificates, &e.certs)) >= 0)
                                        r = vc_dset_union(&rule->hashes, &e.hashes);
                                vc_dset_done(&e.certs);
                                vc_dset_done(&e.hashes);
                        } else if (v == SB_DBX) {
                                sig_entries e;
                                g->has_dbx_must_contain = true;
                                if (sig_entries_of(&c, &e) < 0) {
                                        r = create_err(err, log->kind, ev, "malformed EFI_SIGNATURE_LIST");
                                        break;
                                }
                                if ((r = vc_dset_union(&g->dbx_certificates, &e.certs)) >= 0)
                                        r = vc_dset_union(&g->dbx_hashes, &e.hashes);
                                vc_dset_done(&e.certs);
                                vc_dset_done(&e.hashes);
                        } else {
                                g->has_sb_variables = true;
                                r = vc_dset_add(&g->sb_variables, d);
                        }
                        break;
                }
                case CLS_SB_AUTHORITY:
                        g->has_secure_boot = g->has_authorities = true;
                        r = vc_dset_add(&g->authorities, d);
                        break;
                case CLS_MOK:
                        g->has_secure_boot = g->has_mok = true;
                        r = vc_dset_add(&g->mok, d);
                        break;
                case CLS_BOOT_APP: {
                        if (chain.n >= VC_GOLDEN_MAX_CHAIN_LEN) {
                                r = create_err(err, log->kind, ev, "more boot applications than a chain may hold");
                                break;
                        }
                        vc_chain_step *s = &chain.steps[chain.n++];
                        s->digests.size = g->dsize;
                        s->name = image_label(&c);
                        r = vc_dset_add(&s->digests, d);
                        g->has_boot_chain = true;
                        break;
                }
                case CLS_GPT:
                        g->has_boot_chain = g->has_gpt = true;
                        r = vc_dset_add(&g->gpt, d);
                        break;
                case CLS_ACTION:
                        if (!verified || !c.string) {
                                r = create_err(err, log->kind, ev, "action string not verified");
                                break;
                        }
                        g->has_actions = true;
                        r = vc_sset_add(&g->actions, c.string);
                        break;
                case CLS_CMDLINE:
                case CLS_GRUB: {
                        bool is_cmdline = cls == CLS_CMDLINE ||
                                          (c.string && strncmp(c.string, grub_cmdline_prefix, strlen(grub_cmdline_prefix)) == 0);
                        char *body = !verified ? NULL : cls == CLS_CMDLINE ? cmdline_text(ev, &c) : grub_body(&c);
                        if (!body) {
                                /* GRUB's strings are bytes, UTF-8 in practice; a set holds text */
                                r = create_err(err, log->kind, ev,
                                               !verified ? "boot loader string not verified"
                                                         : "boot loader string is not UTF-8 text: a golden set cannot "
                                                           "hold it byte for byte");
                                break;
                        }
                        g->has_kernel = true;
                        if (!is_cmdline) {
                                g->has_boot_commands = true;
                                r = vc_sset_add(&g->boot_commands, body);
                                free(body);
                                break;
                        }
                        bool dup = false;
                        for (size_t k = 0; k < g->n_cmdline; k++)
                                dup |= strcmp(g->cmdline[k].text, body) == 0;
                        if (dup) {
                                free(body);
                                break;
                        }
                        vc_string_rule *nr = realloc(g->cmdline, (g->n_cmdline + 1) * sizeof(*nr));
                        if (!nr) {
                                free(body);
                                r = -ENOMEM;
                                break;
                        }
                        g->cmdline = nr;
                        g->cmdline[g->n_cmdline++] = (vc_string_rule) { .text = body };
                        break;
                }
                case CLS_BOOT_FILE:
                        g->has_kernel = g->has_boot_files = true;
                        r = vc_dset_add(&g->boot_files, d);
                        break;
                case CLS_INITRD:
                        g->has_kernel = g->has_initrd = true;
                        r = vc_dset_add(&g->initrd, d);
                        break;
                case CLS_LOAD_OPTIONS:
                        g->has_kernel = g->has_load_options = true;
                        r = vc_dset_add(&g->load_options, d);
                        break;
                case CLS_UNKNOWN_TYPE: {
                        /* A vendor's event type: pinned exactly where it is, with its digest
                         * (the type is not measured; the digest is what was extended). */
                        vc_vendor_event ve = { .pcr = ev->pcr, .position = pos, .type = ev->type,
                                               .after_separator = (seps.seen & (1u << ev->pcr)) != 0 };
                        memcpy(ve.digest, d, g->dsize);
                        g->has_structure = true;
                        r = vc_vendor_events_add(g, &ve);
                        break;
                }
                case CLS_IGNORED:
                        break;
                }
                vc_event_content_done(&c);
                if (r < 0)
                        goto fail;
        }
        /* the log's boot applications are the set's one chain; a log with none gets the
         * empty chain, so that the set (and any merge of it) still says what ran */
        {
                g->has_boot_chain = true;
                g->chains = calloc(1, sizeof(*g->chains));
                if (!g->chains) {
                        r = -ENOMEM;
                        goto fail;
                }
                g->chains[0] = chain;
                g->n_chains = 1;
                chain = (vc_chain) { 0 };
        }
        vc_dset *sets[] = { &g->firmware_digests, &g->handoff_tables, &g->configuration, &g->pk.digests, &g->kek.digests,
                            &g->db.digests,       &g->authorities,    &g->sb_variables,  &g->mok,        &g->gpt,
                            &g->initrd,           &g->load_options,   &g->boot_files };
        for (size_t i = 0; i < ELEMENTSOF(sets); i++)
                vc_dset_finish(sets[i]);
        vc_sset_finish(&g->crtm_versions);
        vc_sset_finish(&g->boot_commands);
        vc_sset_finish(&g->actions);
        vc_vendor_events_finish(g);
        g->error_separators = seps.error;
        g->log_kind = log->kind;
        if (!g->pcrs) {
                r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "cannot create a golden set: the log extends no PCR");
                goto fail;
        }
        /* Always evaluated, whether this log extends them or not: the firmware's PCRs 0-7,
         * and those that shim, GRUB, the Linux EFI stub and systemd-stub extend before the OS
         * runs, from files an attacker with the boot partition may add (8, 9: commands,
         * files, initrd; 12: command line, credentials; 13: system extensions; 14: MOK). An
         * event there that this log did not have is not explained by the set, and a value
         * with no event (extended at run time) leaves the PCR unattested: both findings.
         * Not 10 (IMA), 11 and 15: the OS extends those at run time (systemd-pcrphase,
         * machine-id, file systems), outside the boot's event log. */
        g->pcrs |= log->kind == VC_LOG_CCEL ? VC_GOLDEN_CREATE_CCEL_REGISTERS : VC_GOLDEN_CREATE_PCRS;
        if ((r = vc_golden_seal(g)) < 0)
                goto fail;
        free(chain.steps);
        *ret = g;
        return 0;
fail:
        for (size_t s = 0; s < chain.n; s++) {
                free(chain.steps[s].name);
                vc_dset_done(&chain.steps[s].digests);
        }
        free(chain.steps);
        vc_golden_free(g);
        if (r == -ENOMEM || r == -E2BIG)
                return vc_error_set(err, r, SIZE_MAX, -1, "cannot create a golden set: %s",
                                    r == -ENOMEM ? "out of memory" : "a list is over its limit");
        return r;
}

/* ---------------- evaluate ---------------- */

typedef struct ectx {
        const vc_golden *g;
        vc_evaluation *out;
        size_t cap;
        size_t omitted; /* findings past VC_EVAL_MAX_FINDINGS - 1 */
        bool summing;   /* the last finding, which counts them */
        int error;
} ectx;

/* s cut at VC_FINDING_TEXT_MAX bytes (on a UTF-8 character boundary, "..." appended). */
static char *finding_text(const char *s) {
        size_t n = strlen(s);
        if (n <= VC_FINDING_TEXT_MAX)
                return strdup(s);
        n = VC_FINDING_TEXT_MAX - 3;
        while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
                n--;
        char *t = malloc(n + 4);
        if (t) {
                memcpy(t, s, n);
                memcpy(t + n, "...", 4);
        }
        return t;
}

static void finding(ectx *e, const char *rule, int pcr, const vc_event *ev, const char *expected, const char *actual,
                    const char *fmt, ...) _printf_(7, 8);
static void finding(ectx *e, const char *rule, int pcr, const vc_event *ev, const char *expected, const char *actual,
                    const char *fmt, ...) {
        va_list ap;
        char line[1024], prefix[96] = "";
        if (e->error)
                return;
        if (e->out->n_findings >= VC_EVAL_MAX_FINDINGS - 1 && !e->summing) {
                e->omitted++;
                return;
        }
        if (e->out->n_findings == e->cap) {
                size_t cap = e->cap ? e->cap * 2 : 8;
                vc_finding *f = realloc(e->out->findings, cap * sizeof(*f));
                if (!f) {
                        e->error = -ENOMEM;
                        return;
                }
                e->out->findings = f;
                e->cap = cap;
        }
        if (ev)
                snprintf(prefix, sizeof(prefix), "%s %u event %u: ", index_word(e->g->log_kind), ev->pcr, ev->index);
        else if (pcr >= 0)
                snprintf(prefix, sizeof(prefix), "%s %d: ", index_word(e->g->log_kind), pcr);
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        vc_finding *f = &e->out->findings[e->out->n_findings];
        *f = (vc_finding) { .pcr = ev ? (int) ev->pcr : pcr, .event = ev ? (long) ev->index : -1,
                            .event_type = ev ? ev->type : 0 };
        snprintf(f->rule, sizeof(f->rule), "%s", rule);
        f->expected = finding_text(expected ? expected : "");
        f->actual = finding_text(actual ? actual : "");
        size_t n = strlen(prefix) + strlen(line) + 1;
        f->explanation = malloc(n);
        if (!f->expected || !f->actual || !f->explanation) {
                free(f->expected);
                free(f->actual);
                free(f->explanation);
                e->error = -ENOMEM;
                return;
        }
        snprintf(f->explanation, n, "%s%s", prefix, line);
        /* one line: control characters from measured strings become spaces */
        for (char *p = f->explanation; *p; p++)
                if ((unsigned char) *p < 0x20)
                        *p = ' ';
        e->out->n_findings++;
}

/* Checks a digest against a set: a finding naming both when it is not allowed. */
static void check_digest(ectx *e, const char *rule, const vc_event *ev, const vc_dset *allowed, const uint8_t *d,
                         const char *what) {
        char full[2 * VC_MAX_DIGEST + 1], sh[16];
        if (vc_dset_has(allowed, d))
                return;
        char *list = vc_dset_text(allowed, 8);
        vc_hex(d, allowed->size, full);
        vc_short_hex(d, allowed->size, sh);
        finding(e, rule, -1, ev, list, full, "%s %s %s is not allowed; allowed: %s", what,
                vc_alg_lookup(e->g->bank)->name, sh, list ? list : "?");
        free(list);
}

/* A vendor event pinned at its PCR and position, with its type and digest, and on the same
 * side of its PCR's separator (after: a separator was measured in that PCR before it). */
static bool vendor_pinned(const vc_golden *g, const vc_event *ev, uint32_t pos, const uint8_t *d, bool after) {
        size_t n;
        const vc_vendor_event *p = vc_vendor_events_at(g, ev->pcr, pos, &n);
        for (size_t i = 0; i < n; i++)
                if (p[i].type == ev->type && p[i].after_separator == after && memcmp(p[i].digest, d, g->dsize) == 0)
                        return true;
        return false;
}

/* A finding when the set pins another vendor event at this place (unless an allow-listed
 * digest explains this one); false when no pin is here. */
static bool vendor_pin_differs(ectx *e, const vc_event *ev, uint32_t pos, const uint8_t *d) {
        const vc_golden *g = e->g;
        size_t n;
        const vc_vendor_event *p = vc_vendor_events_at(g, ev->pcr, pos, &n);
        char full[2 * VC_MAX_DIGEST + 1], sh[16], want[16];
        if (!n)
                return false;
        if (g->unknown_events == VC_UNKNOWN_ALLOW_LISTED && vc_dset_has(&g->unknown_digests, d))
                return true;
        vc_hex(d, g->dsize, full);
        vc_short_hex(d, g->dsize, sh);
        vc_short_hex(p[0].digest, g->dsize, want);
        char expected[2 * VC_MAX_DIGEST + 32];
        snprintf(expected, sizeof(expected), "0x%08x %s", p[0].type, want);
        finding(e, "structure.vendor_events", -1, ev, expected, full,
                "vendor event 0x%08x %s %s (position %u) is not the one pinned here: 0x%08x %s", ev->type,
                vc_alg_lookup(g->bank)->name, sh, pos, p[0].type, want);
        return true;
}

static void not_covered(ectx *e, const vc_event *ev, ev_class cls) {
        finding(e, "coverage", -1, ev, class_rule[cls], vc_event_type_name(ev->type),
                "%s is not covered by any rule of golden set %s (needs %s)", vc_event_type_name(ev->type),
                e->g->name, class_rule[cls]);
}

static void check_sigvar(ectx *e, const vc_event *ev, const vc_event_content *c, const vc_sigvar_rule *rule,
                         const char *var, const uint8_t *d) {
        char rname[48];
        snprintf(rname, sizeof(rname), "secure_boot.%s", var);
        if (rule->has_digests)
                check_digest(e, rname, ev, &rule->digests, d, var);
        if (!rule->has_certificates && !rule->has_hashes)
                return;
        sig_entries s;
        if (sig_entries_of(c, &s) < 0) {
                finding(e, rname, -1, ev, "EFI_SIGNATURE_LISTs", "malformed", "%s holds a malformed EFI_SIGNATURE_LIST", var);
                return;
        }
        /* Firmware honours every entry type: one the rule cannot name is not allowed. */
        if (s.other)
                finding(e, rname, -1, ev, "X.509 and SHA-256 entries only", "other entry types",
                        "%s holds %zu entr%s of types the rule does not allow (RSA2048, SHA1, X509_SHA256, ...)", var,
                        s.other, s.other == 1 ? "y" : "ies");
        if (!rule->has_certificates && s.certs.n)
                finding(e, rname, -1, ev, "no certificate rule", "X.509 certificates",
                        "%s holds certificates but the rule lists none", var);
        if (!rule->has_hashes && s.hashes.n)
                finding(e, rname, -1, ev, "no hash rule", "SHA-256 entries", "%s holds hashes but the rule lists none", var);
        for (size_t i = 0; rule->has_certificates && i < s.certs.n; i++)
                if (!vc_dset_has(&rule->certificates, s.certs.d + 32 * i)) {
                        char full[65], sh[16];
                        char *list = vc_dset_text(&rule->certificates, 8);
                        vc_hex(s.certs.d + 32 * i, 32, full);
                        vc_short_hex(s.certs.d + 32 * i, 32, sh);
                        finding(e, rname, -1, ev, list, full,
                                "%s certificate sha256 %s is not allowed; allowed certificates: %s", var, sh, list ? list : "?");
                        free(list);
                }
        for (size_t i = 0; rule->has_hashes && i < s.hashes.n; i++)
                if (!vc_dset_has(&rule->hashes, s.hashes.d + 32 * i)) {
                        char full[65], sh[16];
                        vc_hex(s.hashes.d + 32 * i, 32, full);
                        vc_short_hex(s.hashes.d + 32 * i, 32, sh);
                        finding(e, rname, -1, ev, "an allowed hash entry", full, "%s hash entry %s is not allowed", var, sh);
                }
        vc_dset_done(&s.certs);
        vc_dset_done(&s.hashes);
}

static void check_dbx(ectx *e, const vc_event *ev, const vc_event_content *c) {
        sig_entries s;
        if (sig_entries_of(c, &s) < 0) {
                finding(e, "secure_boot.dbx_must_contain", -1, ev, "EFI_SIGNATURE_LISTs", "malformed",
                        "dbx holds a malformed EFI_SIGNATURE_LIST");
                return;
        }
        const vc_dset *req[2] = { &e->g->dbx_certificates, &e->g->dbx_hashes }, *have[2] = { &s.certs, &s.hashes };
        size_t missing = 0;
        char first[65] = "", sh[16] = "";
        for (int k = 0; k < 2; k++)
                for (size_t i = 0; i < req[k]->n; i++)
                        if (!vc_dset_has(have[k], req[k]->d + 32 * i)) {
                                if (!missing++) {
                                        vc_hex(req[k]->d + 32 * i, 32, first);
                                        vc_short_hex(req[k]->d + 32 * i, 32, sh);
                                }
                        }
        if (missing)
                finding(e, "secure_boot.dbx_must_contain", -1, ev, first, "absent",
                        "dbx lacks %zu required revocation%s, first %s", missing, missing == 1 ? "" : "s", sh);
        vc_dset_done(&s.certs);
        vc_dset_done(&s.hashes);
}

#define SEPARATOR_WBCL 0x4c434257u /* "WBCL" read little-endian (Windows, PCRs 12-14) */

/* PFP 1.05 10.4.1: a separator measures 0, or 0xFFFFFFFF when the firmware failed;
 * Windows uses "WBCL" in PCRs 12-14; a legacy BIOS (SeaBIOS) measures 0xFFFFFFFF always,
 * and a set created from such a platform says so (error_separators): then only that. */
static void check_separator(ectx *e, const vc_event *ev, const vc_event_content *c, const vc_event_check *chk,
                            unsigned count, bool by_value) {
        const vc_golden *g = e->g;
        const char *text = c->text ? c->text : "?";
        uint32_t value = 0;
        if (!separator_value(c, chk, &value)) {
                finding(e, "structure.separators", -1, ev, "a verified separator", text, "not a verified separator (%s)",
                        text);
                return;
        }
        if (chk->measured == VC_MEASURED_ERROR_SEPARATOR)
                text = "separator 0xffffffff (not logged)";
        bool is_error = value == 0xFFFFFFFF;
        if (is_error && !g->error_separators) {
                finding(e, "structure.separators", -1, ev, "a separator, not 0xFFFFFFFF", text,
                        "the error separator 0xFFFFFFFF: UEFI firmware measures it when it failed (a legacy BIOS "
                        "platform, SeaBIOS, needs a set created from its own log: error_separators)");
                return;
        }
        if (!is_error && g->error_separators) {
                finding(e, "structure.error_separators", -1, ev, "separator 0xffffffff", text,
                        "separator %s differs from this platform's: golden set %s says it measures every separator as "
                        "0xFFFFFFFF (legacy BIOS)", text, g->name);
                return;
        }
        /* In a PCR the set requires no separator in, only what a separator measures (0, or
         * "WBCL"; the error value on an error_separators platform), once, is one: the type
         * is not measured, so any other 4-byte measurement could be labelled a separator. */
        if (!(g->separators & (1u << ev->pcr)) && !by_value &&
            (count > 1 || (!is_error && value != 0 && value != SEPARATOR_WBCL)))
                not_covered(e, ev, CLS_SEPARATOR);
}

typedef struct app_ev {
        const vc_event *ev;
        const uint8_t *d;
} app_ev;

static void check_boot_chain(ectx *e, const app_ev *apps, size_t n) {
        const vc_golden *g = e->g;
        size_t best = 0, best_len = 0;
        if (!g->n_chains) {
                for (size_t i = 0; i < n; i++)
                        not_covered(e, apps[i].ev, CLS_BOOT_APP);
                return;
        }
        for (size_t c = 0; c < g->n_chains; c++) {
                const vc_chain *ch = &g->chains[c];
                size_t k = 0;
                while (k < n && k < ch->n && vc_dset_has(&ch->steps[k].digests, apps[k].d))
                        k++;
                if (k == n && k == ch->n)
                        return; /* this chain allows the whole sequence */
                if (k > best_len || c == 0)
                        best = c, best_len = k;
        }
        const vc_chain *ch = &g->chains[best];
        size_t k = best_len;
        char full[2 * VC_MAX_DIGEST + 1], sh[16];
        if (k < n && k < ch->n) {
                const vc_chain_step *s = &ch->steps[k];
                char *list = vc_dset_text(&s->digests, 8);
                vc_hex(apps[k].d, g->dsize, full);
                vc_short_hex(apps[k].d, g->dsize, sh);
                finding(e, "boot_chain.chains", -1, apps[k].ev, list, full,
                        "boot application %s %s is not an allowed %s; allowed: %s", vc_alg_lookup(g->bank)->name, sh,
                        s->name ? s->name : "boot application", list ? list : "?");
                free(list);
        } else if (k < n) {
                vc_hex(apps[k].d, g->dsize, full);
                vc_short_hex(apps[k].d, g->dsize, sh);
                finding(e, "boot_chain.chains", -1, apps[k].ev, "end of the boot chain", full,
                        "boot application %s %s runs after the allowed chain of %zu ended", vc_alg_lookup(g->bank)->name,
                        sh, ch->n);
        } else {
                const vc_chain_step *s = &ch->steps[k];
                char *list = vc_dset_text(&s->digests, 8);
                finding(e, "boot_chain.chains", (int) usual_index(g->log_kind, 4), NULL, list, "end of log",
                        "boot chain ended after %zu application%s; expected %s next (allowed: %s)", n, n == 1 ? "" : "s",
                        s->name ? s->name : "another boot application", list ? list : "?");
                free(list);
        }
}

static bool cmdline_allowed(const vc_golden *g, const char *s) {
        for (size_t i = 0; i < g->n_cmdline; i++) {
                if (g->cmdline[i].is_regex ? vc_golden_regex_whole(&g->cmdline[i].re, s)
                                           : strcmp(g->cmdline[i].text, s) == 0)
                        return true;
        }
        return false;
}

static char *cmdline_rules_text(const vc_golden *g) {
        vc_sbuf b;
        if (vc_sbuf_init(&b, 2048) < 0)
                return NULL;
        for (size_t i = 0; i < g->n_cmdline && i < 4; i++)
                vc_sbuf_printf(&b, "%s%s\"%.200s\"", i ? ", " : "", g->cmdline[i].is_regex ? "regex " : "",
                               g->cmdline[i].text);
        if (g->n_cmdline > 4)
                vc_sbuf_printf(&b, " and %zu more", g->n_cmdline - 4);
        return vc_sbuf_take(&b);
}

void vc_evaluation_done(vc_evaluation *ev) {
        if (!ev)
                return;
        for (size_t i = 0; i < ev->n_findings; i++) {
                free(ev->findings[i].expected);
                free(ev->findings[i].actual);
                free(ev->findings[i].explanation);
        }
        free(ev->findings);
        *ev = (vc_evaluation) { 0 };
}

int vc_golden_evaluate(const vc_golden *g, const vc_eventlog *log, const vc_event_check *checks,
                       const vc_pcr_set *replayed, uint32_t attested, vc_evaluation *ret) {
        vc_evaluation out = { 0 };
        ectx e = { .g = g, .out = &out };
        app_ev *apps = NULL;
        size_t n_apps = 0;
        unsigned sep_count[VC_PCR_COUNT] = { 0 };
        uint32_t positions[VC_PCR_COUNT] = { 0 };
        unsigned sb_seen[6] = { 0 };
        uint32_t pcr_value_rules = 0;
        int r;

        apps = calloc(log->n_events ? log->n_events : 1, sizeof(*apps));
        if (!apps)
                return -ENOMEM;
        /* PCRs and CCEL registers are different things: a set judges only its kind of log. */
        if (g->log_kind != log->kind) {
                finding(&e, "log", -1, NULL, vc_log_kind_name(g->log_kind), vc_log_kind_name(log->kind),
                        "golden set %s is for %s logs; this is a %s log", g->name,
                        g->log_kind == VC_LOG_CCEL ? "CCEL" : "TPM", log->kind == VC_LOG_CCEL ? "CCEL" : "TPM");
                goto done;
        }

        /* Exact PCR values. */
        for (int b = 0; b < VC_NUM_ALGS; b++) {
                if (!g->pcr_values_mask[b])
                        continue;
                const vc_alg_info *a = vc_alg_at(b);
                const vc_pcr_bank *rb = vc_pcr_set_find(replayed, a->alg);
                pcr_value_rules |= g->pcr_values_mask[b];
                for (unsigned p = 0; p < VC_PCR_COUNT; p++) {
                        if (!(g->pcr_values_mask[b] & (1u << p)))
                                continue;
                        char *list = vc_dset_text(&g->pcr_values[b][p], 8);
                        if (!rb || !(rb->mask & (1u << p))) {
                                finding(&e, "pcr_values", (int) p, NULL, list, "not extended",
                                        "%s PCR %u is not extended by the log; allowed: %s", a->name, p, list ? list : "?");
                        } else if (!vc_dset_has(&g->pcr_values[b][p], rb->values[p])) {
                                char full[2 * VC_MAX_DIGEST + 1], sh[16];
                                vc_hex(rb->values[p], a->size, full);
                                vc_short_hex(rb->values[p], a->size, sh);
                                finding(&e, "pcr_values", (int) p, NULL, list, full, "%s value %s is not allowed; allowed: %s",
                                        a->name, sh, list ? list : "?");
                        }
                        free(list);
                }
        }
        /* The set's PCRs must be covered by the quote, or their events mean nothing. */
        for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                if ((g->pcrs & (1u << p)) && !(attested & (1u << p)))
                        finding(&e, "attestation", (int) p, NULL, "quoted", "not quoted",
                                "PCR %u is evaluated by golden set %s but not covered by the quote", p, g->name);

        for (size_t i = 0; i < log->n_events && !e.error; i++) {
                const vc_event *ev = &log->events[i];
                const vc_event_check *chk = &checks[i];
                const vc_event_digest *dg = vc_event_find_digest(ev, g->bank);
                bool verified = chk->status == VC_DIGEST_VERIFIED;
                bool by_value = pcr_value_rules & (1u << (ev->pcr & 31));
                vc_event_content c = { 0 };
                uint32_t pos = 0;

                next_position(ev, positions, &pos);

                if (ev->type == EV_NO_ACTION || ev->pcr == VC_PCR_NONE || !(g->pcrs & (1u << ev->pcr)))
                        continue;
                if (!dg) {
                        finding(&e, "bank", -1, ev, vc_alg_lookup(g->bank)->name, "absent", "event has no %s digest",
                                vc_alg_lookup(g->bank)->name);
                        continue;
                }
                if (chk->status == VC_DIGEST_MISMATCH) {
                        finding(&e, "digest", -1, ev, "digest of the event data", "different",
                                "%s content does not match its digest: not to be believed", vc_event_type_name(ev->type));
                        continue;
                }
                ev_class cls = classify(log->kind, ev);
                const uint8_t *d = dg->bytes;

                bool pinned = cls == CLS_UNKNOWN_TYPE && vendor_pinned(g, ev, pos, d, sep_count[ev->pcr] != 0);
                /* Events after a separator: only the types the set allows there (and a
                 * vendor event pinned where it is). */
                if (g->has_after_separator && sep_count[ev->pcr] && cls != CLS_SEPARATOR && !pinned) {
                        int ti = vc_event_type_index(ev->type);
                        if (ti < 0 || !(g->after_separator[ev->pcr] & (1ull << ti)))
                                finding(&e, "structure.after_separator", -1, ev, "no such event after the separator",
                                        vc_event_type_name(ev->type), "%s after PCR %u's separator is not allowed",
                                        vc_event_type_name(ev->type), ev->pcr);
                }
                r = vc_event_decode(ev, &c, NULL);
                if (r == -ENOMEM) {
                        e.error = r;
                        break;
                }
                switch (cls) {
                case CLS_SEPARATOR:
                        sep_count[ev->pcr]++;
                        check_separator(&e, ev, &c, chk, sep_count[ev->pcr], by_value);
                        break;
                case CLS_CRTM_VERSION: {
                        /* by its verified version string, or by its digest among the firmware */
                        bool by_string = g->has_crtm_versions && verified && c.string;
                        if ((by_string && vc_sset_has(&g->crtm_versions, c.string)) ||
                            (g->has_firmware_digests && vc_dset_has(&g->firmware_digests, d)))
                                break;
                        if (!g->has_crtm_versions && !g->has_firmware_digests) {
                                if (!by_value)
                                        not_covered(&e, ev, cls);
                        } else if (by_string) {
                                finding(&e, class_rule[cls], -1, ev, g->crtm_versions.n ? g->crtm_versions.s[0] : "",
                                        c.string, "S-CRTM version \"%.100s\" is not allowed%s%.100s%s", c.string,
                                        g->crtm_versions.n ? "; allowed: \"" : "",
                                        g->crtm_versions.n ? g->crtm_versions.s[0] : "", g->crtm_versions.n ? "\"" : "");
                        } else {
                                check_digest(&e, "platform_firmware.firmware", ev, &g->firmware_digests, d,
                                             "S-CRTM version");
                        }
                        break;
                }
                case CLS_FIRMWARE:
                case CLS_HANDOFF:
                case CLS_CONFIGURATION:
                case CLS_SB_AUTHORITY:
                case CLS_MOK:
                case CLS_GPT:
                case CLS_BOOT_FILE:
                case CLS_INITRD:
                case CLS_LOAD_OPTIONS: {
                        static const char *const what[] = {
                                [CLS_FIRMWARE] = "firmware measurement", [CLS_HANDOFF] = "handoff table",
                                [CLS_CONFIGURATION] = "platform configuration", [CLS_SB_AUTHORITY] = "Secure Boot authority",
                                [CLS_MOK] = "shim MOK variable", [CLS_GPT] = "GPT",
                                [CLS_BOOT_FILE] = "boot file", [CLS_INITRD] = "initrd", [CLS_LOAD_OPTIONS] = "kernel load options",
                        };
                        const vc_dset *set = cls == CLS_FIRMWARE        ? (g->has_firmware_digests ? &g->firmware_digests : NULL)
                                             : cls == CLS_HANDOFF       ? (g->has_handoff ? &g->handoff_tables : NULL)
                                             : cls == CLS_CONFIGURATION ? (g->has_configuration ? &g->configuration : NULL)
                                             : cls == CLS_SB_AUTHORITY  ? (g->has_authorities ? &g->authorities : NULL)
                                             : cls == CLS_MOK           ? (g->has_mok ? &g->mok : NULL)
                                             : cls == CLS_GPT           ? (g->has_gpt ? &g->gpt : NULL)
                                             : cls == CLS_BOOT_FILE     ? (g->has_boot_files ? &g->boot_files : NULL)
                                             : cls == CLS_INITRD        ? (g->has_initrd ? &g->initrd : NULL)
                                                                        : (g->has_load_options ? &g->load_options : NULL);
                        if (set)
                                check_digest(&e, class_rule[cls], ev, set, d, what[cls]);
                        else if (!by_value)
                                not_covered(&e, ev, cls);
                        break;
                }
                case CLS_SB_VARIABLE: {
                        sb_var v = sb_variable(&c);
                        bool content_ok = verified && chk->measured == VC_MEASURED_EVENT_DATA;
                        sb_seen[v]++;
                        if (v != SB_OTHER && sb_seen[v] > 1)
                                finding(&e, "secure_boot", -1, ev, "measured once", "measured again",
                                        "%s is measured more than once", sb_names[v]);
                        bool has_rule = v == SB_SECUREBOOT ? g->secure_boot_enabled >= 0
                                        : v == SB_PK       ? g->pk.present
                                        : v == SB_KEK      ? g->kek.present
                                        : v == SB_DB       ? g->db.present
                                        : v == SB_DBX      ? g->has_dbx_must_contain
                                                           : g->has_sb_variables;
                        if (!has_rule) {
                                if (!by_value)
                                        not_covered(&e, ev, cls);
                                break;
                        }
                        if (v != SB_OTHER && !content_ok) {
                                finding(&e, "secure_boot", -1, ev, "verified variable content", "not verified",
                                        "%s content is not covered by its digest", sb_names[v]);
                                break;
                        }
                        if (v == SB_SECUREBOOT) {
                                bool on = c.var_data_len == 1 && c.var_data[0] == 1;
                                if (g->secure_boot_enabled != 2 && on != (g->secure_boot_enabled == 1))
                                        finding(&e, "secure_boot.enabled", -1, ev, g->secure_boot_enabled ? "enabled" : "disabled",
                                                on ? "enabled" : "disabled", "Secure Boot is %s; expected %s",
                                                on ? "enabled" : "disabled", g->secure_boot_enabled ? "enabled" : "disabled");
                        } else if (v == SB_PK || v == SB_KEK || v == SB_DB) {
                                check_sigvar(&e, ev, &c, v == SB_PK ? &g->pk : v == SB_KEK ? &g->kek : &g->db, sb_names[v], d);
                        } else if (v == SB_DBX) {
                                check_dbx(&e, ev, &c);
                        } else {
                                check_digest(&e, "secure_boot.variables", ev, &g->sb_variables, d,
                                             c.var_name ? c.var_name : "variable");
                        }
                        break;
                }
                case CLS_BOOT_APP:
                        /* Without a chain rule, an application is explained only by a pin of
                         * its own PCR; one anywhere else (its type is not measured: any event
                         * can be labelled so) goes to the chain check and is not covered. */
                        if (g->has_boot_chain || !by_value)
                                apps[n_apps++] = (app_ev) { ev, d };
                        break;
                case CLS_ACTION:
                        if (!g->has_actions) {
                                if (!by_value)
                                        not_covered(&e, ev, cls);
                        } else if (!verified || !c.string) {
                                finding(&e, class_rule[cls], -1, ev, "a verified action string", "not verified",
                                        "EFI action content is not verified");
                        } else if (!vc_sset_has(&g->actions, c.string)) {
                                finding(&e, class_rule[cls], -1, ev, "an allowed action", c.string,
                                        "EFI action \"%.200s\" is not allowed", c.string);
                        }
                        break;
                case CLS_CMDLINE:
                case CLS_GRUB: {
                        bool grub = cls == CLS_GRUB;
                        if (!g->n_cmdline && !(grub && g->has_boot_commands)) {
                                if (!by_value)
                                        not_covered(&e, ev, cls);
                                break;
                        }
                        char *body = !verified ? NULL : grub ? grub_body(&c) : cmdline_text(ev, &c);
                        if (!body) {
                                finding(&e, class_rule[cls], -1, ev, "verified content", "not verified",
                                        "%s content is not verified", grub ? "boot loader string" : "kernel command line");
                        } else if (!(grub && vc_sset_has(&g->boot_commands, body)) && !cmdline_allowed(g, body)) {
                                bool says_cmdline = !grub || strncmp(c.string, grub_cmdline_prefix,
                                                                     strlen(grub_cmdline_prefix)) == 0;
                                char *rules = cmdline_rules_text(g);
                                finding(&e, says_cmdline ? "kernel.cmdline" : "kernel.boot_commands", -1, ev,
                                        says_cmdline ? (rules ? rules : "") : "an allowed boot loader command", body,
                                        "%s \"%.300s\" is not allowed%s%s",
                                        says_cmdline ? "kernel command line" : "boot loader command", body,
                                        says_cmdline ? "; allowed: " : "", says_cmdline && rules ? rules : "");
                                free(rules);
                        }
                        free(body);
                        break;
                }
                case CLS_UNKNOWN_TYPE:
                        /* The type is not measured: an unknown type is no reason to let an
                         * event through; only a pin (where it is, with its digest) or an
                         * allow-listed digest is. */
                        if (pinned)
                                break;
                        if (vendor_pin_differs(&e, ev, pos, d))
                                break;
                        if (g->unknown_events == VC_UNKNOWN_REJECT)
                                finding(&e, class_rule[cls], -1, ev, "a known event type", vc_event_type_name(ev->type),
                                        "event type 0x%08x is not defined by the TCG PC Client spec", ev->type);
                        else
                                check_digest(&e, "structure.unknown_digests", ev, &g->unknown_digests, d,
                                             "event of unknown type");
                        break;
                case CLS_IGNORED:
                        break;
                }
                vc_event_content_done(&c);
        }

        /* A log with no boot application matches only an empty chain (`[]`, what create
         * writes for such a log): a set that lists chains is not passed by leaving the
         * boot applications out. With no chains, only the applications are checked. */
        if (!e.error && (n_apps || g->n_chains))
                check_boot_chain(&e, apps, n_apps);
        for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                if (g->separators & (1u << p) && sep_count[p] != 1)
                        finding(&e, "structure.separators", (int) p, NULL, "one separator",
                                sep_count[p] ? "several" : "none", "PCR %u has %u separators; expected exactly one", p,
                                sep_count[p]);
        if (g->has_secure_boot && g->sb_required && g->secure_boot_enabled >= 0 && g->secure_boot_enabled != 2 &&
            !sb_seen[SB_SECUREBOOT])
                finding(&e, "secure_boot.enabled", (int) usual_index(g->log_kind, 7), NULL, "a SecureBoot measurement", "none",
                        "the SecureBoot variable is not measured");
        const struct {
                bool need;
                sb_var v;
                const char *rule;
        } req[] = { { g->pk.present, SB_PK, "secure_boot.pk" },
                    { g->kek.present, SB_KEK, "secure_boot.kek" },
                    { g->db.present, SB_DB, "secure_boot.db" },
                    { g->has_dbx_must_contain, SB_DBX, "secure_boot.dbx_must_contain" } };
        for (size_t i = 0; i < ELEMENTSOF(req); i++)
                if (g->sb_required && req[i].need && !sb_seen[req[i].v])
                        finding(&e, req[i].rule, (int) usual_index(g->log_kind, 7), NULL, "a measurement", "none",
                                "%s is not measured", sb_names[req[i].v]);

done:
        if (e.omitted) {
                e.summing = true;
                finding(&e, "findings", -1, NULL, "", "", "%zu more finding%s not listed (the first %zu are)", e.omitted,
                        e.omitted == 1 ? "" : "s", out.n_findings);
        }
        free(apps);
        if (e.error) {
                vc_evaluation_done(&out);
                return e.error;
        }
        out.trust = out.n_findings == 0 ? VC_TRUST_TRUSTED : VC_TRUST_UNTRUSTED;
        *ret = out;
        return 0;
}
