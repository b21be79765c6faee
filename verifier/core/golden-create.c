/* SPDX-License-Identifier: Apache-2.0 */
/* Golden sets from event logs: the set that accepts exactly the platform that produced a
 * known-good log (vc_golden_create). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden-classify.h"
#include "golden-internal.h"
#include "golden-rules.h"
#include "hash.h"

static const uint8_t *bank_digest(const vc_event *ev, uint16_t bank) {
        const vc_event_digest *d = vc_event_find_digest(ev, bank);
        return d ? d->bytes : NULL;
}

/* The last file node of a boot application's device path ("...\EFI\BOOT\BOOTX64.EFI" ->
 * "BOOTX64.EFI"): a label for people. 0 (*ret NULL when there is none) or -ENOMEM. */
static int image_label(const vc_event *ev, char **ret) {
        vc_event_content c = { 0 };
        int r = vc_event_decode(ev, &c, NULL);
        *ret = NULL;
        if (r == -ENOMEM)
                return r;
        r = 0;
        if (c.device_path) {
                const char *p = c.device_path, *slash = strrchr(p, '\\');
                const char *label = slash ? slash + 1 : (strrchr(p, '/') ? strrchr(p, '/') + 1 : p);
                if (*label && !(*ret = strndup(label, 64)))
                        r = -ENOMEM;
        }
        vc_event_content_done(&c);
        return r;
}

static int create_err(vc_error *err, vc_log_kind kind, const vc_event *ev, const char *what) {
        return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index, "cannot create a golden set: %s %u %s: %s",
                            vc_index_word(kind), ev->pcr, vc_event_type_name(ev->type), what);
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
        if (!vc_separator_value(c, chk, &value))
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

int vc_golden_create(const vc_eventlog *log, const vc_event_check *checks, const vc_pcr_set *replayed,
                     const char *name, const char *description, vc_golden **ret, vc_error *err) {
        uint16_t bank = vc_pcr_set_find(replayed, VC_ALG_SHA256) ? VC_ALG_SHA256
                        : replayed->n_banks                        ? replayed->banks[0].alg
                                                                   : 0;
        vc_golden *g = NULL;
        vc_chain chain = { 0 };
        uint32_t positions[VC_PCR_COUNT] = { 0 };
        sep_state seps = { .uefi = log_is_uefi(log) };
        vc_hasher *hasher = NULL;
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
                vc_ev_class cls = vc_classify_event(log->kind, ev);
                uint32_t pos = 0;

                vc_event_position(ev, positions, &pos);
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
                r = vc_rule_content(ev, cls, &c);
                if (r < 0)
                        goto fail;
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
                        vc_sb_var v = vc_sb_variable(&c);
                        g->has_secure_boot = true;
                        if (v != SB_OTHER && (!verified || chk->measured != VC_MEASURED_EVENT_DATA)) {
                                r = create_err(err, log->kind, ev, "Secure Boot variable whose content is not verified");
                                break;
                        }
                        if (v == SB_SECUREBOOT) {
                                g->secure_boot_enabled = c.var_data_len == 1 && c.var_data[0] == 1;
                        } else if (v == SB_PK || v == SB_KEK || v == SB_DB) {
                                vc_sigvar_rule *rule = v == SB_PK ? &g->pk : v == SB_KEK ? &g->kek : &g->db;
                                vc_sig_entries e;
                                rule->present = rule->has_digests = rule->has_certificates = rule->has_hashes = true;
                                if ((r = vc_dset_add(&rule->digests, d)) < 0)
                                        break;
                                if (vc_sig_entries_of(&c, &hasher, &e) < 0) {
                                        r = create_err(err, log->kind, ev, "malformed EFI_SIGNATURE_LIST");
                                        break;
                                }
                                if ((r = vc_dset_union(&rule->certificates, &e.certs)) >= 0)
                                        r = vc_dset_union(&rule->hashes, &e.hashes);
                                vc_sig_entries_done(&e);
                        } else if (v == SB_DBX) {
                                vc_sig_entries e;
                                g->has_dbx_must_contain = true;
                                if (vc_sig_entries_of(&c, &hasher, &e) < 0) {
                                        r = create_err(err, log->kind, ev, "malformed EFI_SIGNATURE_LIST");
                                        break;
                                }
                                if ((r = vc_dset_union(&g->dbx_certificates, &e.certs)) >= 0)
                                        r = vc_dset_union(&g->dbx_hashes, &e.hashes);
                                vc_sig_entries_done(&e);
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
                        r = image_label(ev, &s->name);
                        if (r >= 0)
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
                                          (c.string && vc_grub_says_cmdline(c.string));
                        char *body = !verified ? NULL : cls == CLS_CMDLINE ? vc_cmdline_text(&c) : vc_grub_body(&c);
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
        vc_golden_rules_finish(g);
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
        vc_hasher_free(hasher);
        *ret = g;
        return 0;
fail:
        for (size_t s = 0; s < chain.n; s++) {
                free(chain.steps[s].name);
                vc_dset_done(&chain.steps[s].digests);
        }
        free(chain.steps);
        vc_hasher_free(hasher);
        vc_golden_free(g);
        if (r == -ENOMEM || r == -E2BIG)
                return vc_error_set(err, r, SIZE_MAX, -1, "cannot create a golden set: %s",
                                    r == -ENOMEM ? "out of memory" : "a list is over its limit");
        return r;
}
