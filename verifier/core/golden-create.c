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
                /* at most 64 bytes, cut at a character's start, and only text the golden
                 * parser reads back (it is a label: a step without one is matched the same) */
                size_t n = strnlen(label, 64);
                while (n > 0 && ((uint8_t) label[n] & 0xc0) == 0x80)
                        n--;
                if (n > 0 && vc_golden_text_valid((const uint8_t *) label, n, false) && !(*ret = strndup(label, n)))
                        r = -ENOMEM;
        }
        vc_event_content_done(&c);
        return r;
}

/* The separators seen so far. */
typedef struct sep_state {
        bool uefi;              /* the log has UEFI events */
        bool error, other;      /* separators 0xFFFFFFFF seen, others seen */
        uint32_t seen;          /* PCRs with a separator */
} sep_state;

/* A set being made from a log. */
typedef struct cctx {
        vc_golden *g;
        const vc_eventlog *log;
        vc_error *err;
        vc_chain chain;                         /* the boot applications, one step each */
        uint32_t positions[VC_PCR_COUNT];       /* events extended per PCR (vendor event pins) */
        sep_state seps;
        vc_hasher *hasher;                      /* certificates' fingerprints; made when first needed */
} cctx;

static int create_err(cctx *cc, const vc_event *ev, const char *what) {
        return vc_error_set(cc->err, -EBADMSG, ev->offset, (long) ev->index, "cannot create a golden set: %s %u %s: %s",
                            vc_index_word(cc->log->kind), ev->pcr, vc_event_type_name(ev->type), what);
}

/* A log with an event of a UEFI type (PFP 1.05 10.4.1, EV_EFI_*); a legacy BIOS (SeaBIOS,
 * QEMU's default firmware) logs none. */
static bool log_is_uefi(const vc_eventlog *log) {
        for (size_t i = 0; i < log->n_events; i++)
                if (log->events[i].type >= EV_EFI_EVENT_BASE && vc_event_type_index(log->events[i].type) >= 0)
                        return true;
        return false;
}

/* PFP 1.05 10.4.1: a separator measures 0, or 0xFFFFFFFF when the firmware failed. A
 * legacy BIOS (SeaBIOS) measures every separator as 0xFFFFFFFF: there it is the platform's
 * normal, and the set says so (error_separators). UEFI firmware does so only on an error:
 * such a log is no reference. One separator per PCR. */
static int create_separator(cctx *cc, const vc_rule_event *x) {
        sep_state *st = &cc->seps;
        const vc_event *ev = x->ev;
        uint32_t value = 0;
        int r = 0;
        if (!vc_separator_value(&x->c, x->chk, &value))
                return create_err(cc, ev, "not a verified separator");
        if (value == 0xFFFFFFFF)
                st->error = true;
        else
                st->other = true;
        if (value == 0xFFFFFFFF && st->uefi)
                r = create_err(cc, ev,
                               "the error separator 0xFFFFFFFF in a UEFI log: the firmware reported an error (only a "
                               "legacy BIOS, such as SeaBIOS, measures it normally)");
        else if (st->error && st->other)
                r = create_err(cc, ev, "separators 0xFFFFFFFF and others in one legacy BIOS log");
        else if (st->seen & (1u << ev->pcr))
                r = create_err(cc, ev, "a second separator in this PCR (PFP 1.05 allows one)");
        st->seen |= 1u << ev->pcr;
        cc->g->separators |= 1u << ev->pcr;
        return r;
}

/* By its verified version string, or else by its digest among the firmware. */
static int create_crtm_version(cctx *cc, const vc_rule_event *x) {
        vc_golden *g = cc->g;
        g->has_firmware = true;
        if (x->verified && x->c.string) {
                g->has_crtm_versions = true;
                return vc_sset_add(&g->crtm_versions, x->c.string);
        }
        return vc_class_allow_digest(g, CLS_FIRMWARE, x->d);
}

/* The certificates and hashes of a variable's signature lists, added to the two lists. */
static int add_sig_entries(cctx *cc, const vc_rule_event *x, vc_dset *certs, vc_dset *hashes) {
        vc_sig_entries e;
        int r;
        if (vc_sig_entries_of(&x->c, &cc->hasher, &e) < 0)
                return create_err(cc, x->ev, "malformed EFI_SIGNATURE_LIST");
        if ((r = vc_dset_union(certs, &e.certs)) >= 0)
                r = vc_dset_union(hashes, &e.hashes);
        vc_sig_entries_done(&e);
        return r;
}

/* Secure Boot: whether it is on, PK, KEK and db as measured, what dbx revokes, and the
 * digests of other variables. */
static int create_sb_variable(cctx *cc, const vc_rule_event *x) {
        vc_golden *g = cc->g;
        vc_sb_var v = vc_sb_variable(&x->c);
        g->has_secure_boot = true;
        if (v != SB_OTHER && (!x->verified || x->chk->measured != VC_MEASURED_EVENT_DATA))
                return create_err(cc, x->ev, "Secure Boot variable whose content is not verified");
        if (v == SB_SECUREBOOT) {
                g->secure_boot_enabled = x->c.var_data_len == 1 && x->c.var_data[0] == 1;
                return 0;
        }
        if (v == SB_DBX) {
                g->has_dbx_must_contain = true;
                return add_sig_entries(cc, x, &g->dbx_certificates, &g->dbx_hashes);
        }
        if (v == SB_OTHER) {
                g->has_sb_variables = true;
                return vc_dset_add(&g->sb_variables, x->d);
        }
        vc_sigvar_rule *rule = v == SB_PK ? &g->pk : v == SB_KEK ? &g->kek : &g->db;
        rule->present = rule->has_digests = rule->has_certificates = rule->has_hashes = true;
        int r = vc_dset_add(&rule->digests, x->d);
        return r < 0 ? r : add_sig_entries(cc, x, &rule->certificates, &rule->hashes);
}

/* The next step of the set's boot chain. */
static int create_boot_app(cctx *cc, const vc_rule_event *x) {
        if (cc->chain.n >= VC_GOLDEN_MAX_CHAIN_LEN)
                return create_err(cc, x->ev, "more boot applications than a chain may hold");
        vc_chain_step *s = &cc->chain.steps[cc->chain.n++];
        s->digests.size = cc->g->dsize;
        cc->g->has_boot_chain = true;
        int r = image_label(x->ev, &s->name);
        return r < 0 ? r : vc_dset_add(&s->digests, x->d);
}

static int create_action(cctx *cc, const vc_rule_event *x) {
        if (!x->verified || !x->c.string)
                return create_err(cc, x->ev, "action string not verified");
        cc->g->has_actions = true;
        return vc_sset_add(&cc->g->actions, x->c.string);
}

/* An exact command line rule for body (taken over), unless there is one. */
static int add_cmdline(vc_golden *g, char *body) {
        for (size_t k = 0; k < g->n_cmdline; k++)
                if (strcmp(g->cmdline[k].text, body) == 0) {
                        free(body);
                        return 0;
                }
        vc_string_rule *nr = realloc(g->cmdline, (g->n_cmdline + 1) * sizeof(*nr));
        if (!nr) {
                free(body);
                return -ENOMEM;
        }
        g->cmdline = nr;
        g->cmdline[g->n_cmdline++] = (vc_string_rule) { .text = body };
        return 0;
}

/* A command line (systemd) or a GRUB string: a command line rule, or a boot command. */
static int create_boot_string(cctx *cc, const vc_rule_event *x) {
        vc_golden *g = cc->g;
        bool is_cmdline = x->cls == CLS_CMDLINE || (x->c.string && vc_grub_says_cmdline(x->c.string));
        char *body = !x->verified ? NULL : x->cls == CLS_CMDLINE ? vc_cmdline_text(&x->c) : vc_grub_body(&x->c);
        if (!body)
                /* GRUB's strings are bytes, UTF-8 in practice; a set holds text */
                return create_err(cc, x->ev,
                                  !x->verified ? "boot loader string not verified"
                                               : "boot loader string is not UTF-8 text: a golden set cannot hold it "
                                                 "byte for byte");
        g->has_kernel = true;
        if (is_cmdline)
                return add_cmdline(g, body);
        g->has_boot_commands = true;
        int r = vc_sset_add(&g->boot_commands, body);
        free(body);
        return r;
}

/* A vendor's event type: pinned exactly where it is, with its digest (the type is not
 * measured; the digest is what was extended). */
static int create_vendor_event(cctx *cc, const vc_rule_event *x) {
        vc_vendor_event ve = { .pcr = x->ev->pcr, .position = x->pos, .type = x->ev->type,
                               .after_separator = (cc->seps.seen & (1u << x->ev->pcr)) != 0 };
        memcpy(ve.digest, x->d, cc->g->dsize);
        cc->g->has_structure = true;
        return vc_vendor_events_add(cc->g, &ve);
}

/* The rule of the event's class, made to allow it. */
static int create_by_class(cctx *cc, const vc_rule_event *x) {
        switch (x->cls) {
        case CLS_SEPARATOR:
                return create_separator(cc, x);
        case CLS_CRTM_VERSION:
                return create_crtm_version(cc, x);
        case CLS_SB_VARIABLE:
                return create_sb_variable(cc, x);
        case CLS_BOOT_APP:
                return create_boot_app(cc, x);
        case CLS_ACTION:
                return create_action(cc, x);
        case CLS_CMDLINE:
        case CLS_GRUB:
                return create_boot_string(cc, x);
        case CLS_UNKNOWN_TYPE:
                return create_vendor_event(cc, x);
        case CLS_IGNORED:
                return 0;
        default:
                return vc_class_allow_digest(cc->g, x->cls, x->d);
        }
}

/* One event of the log: its PCR, the types after its separator, and its class's rule. */
static int create_from_event(cctx *cc, size_t i, const vc_event_check *chk) {
        const vc_eventlog *log = cc->log;
        vc_golden *g = cc->g;
        const vc_event *ev = &log->events[i];
        vc_rule_event x;

        vc_rule_event_start(&x, log->kind, ev, chk, g->bank, cc->positions);
        if (x.cls == CLS_IGNORED || (i == 0 && log->format == VC_LOG_CRYPTO_AGILE) ||
            (ev->pcr < VC_PCR_COUNT && (VC_GOLDEN_RESETTABLE_PCRS & (1u << ev->pcr))))
                return 0;
        if (!x.d)
                return create_err(cc, ev, "no digest in the golden bank");
        if (chk->status == VC_DIGEST_MISMATCH)
                return create_err(cc, ev, "its digest does not match its content");
        g->pcrs |= 1u << ev->pcr;
        if (cc->seps.seen & (1u << ev->pcr) && x.cls != CLS_SEPARATOR) {
                int ti = vc_event_type_index(ev->type);
                if (ti >= 0)
                        g->after_separator[ev->pcr] |= 1ull << ti;
        }
        int r = vc_rule_content(ev, x.cls, &x.c);
        if (r < 0)
                return r;
        r = create_by_class(cc, &x);
        vc_event_content_done(&x.c);
        return r;
}

/* The set, once every event is in: its one boot chain, its lists sorted, the PCRs it
 * always evaluates, sealed. */
static int create_finish(cctx *cc) {
        vc_golden *g = cc->g;
        /* the log's boot applications are the set's one chain; a log with none gets the
         * empty chain, so that the set (and any merge of it) still says what ran */
        g->has_boot_chain = true;
        g->chains = calloc(1, sizeof(*g->chains));
        if (!g->chains)
                return -ENOMEM;
        g->chains[0] = cc->chain;
        g->n_chains = 1;
        cc->chain = (vc_chain) { 0 };
        vc_golden_rules_finish(g);
        vc_vendor_events_finish(g);
        g->error_separators = cc->seps.error;
        g->log_kind = cc->log->kind;
        if (!g->pcrs)
                return vc_error_set(cc->err, -EBADMSG, SIZE_MAX, -1,
                                    "cannot create a golden set: the log extends no PCR");
        /* Always evaluated, whether this log extends them or not: the firmware's PCRs 0-7,
         * and those that shim, GRUB, the Linux EFI stub and systemd-stub extend before the OS
         * runs, from files an attacker with the boot partition may add (8, 9: commands,
         * files, initrd; 12: command line, credentials; 13: system extensions; 14: MOK). An
         * event there that this log did not have is not explained by the set, and a value
         * with no event (extended at run time) leaves the PCR unattested: both findings.
         * Not 10 (IMA), 11 and 15: the OS extends those at run time (systemd-pcrphase,
         * machine-id, file systems), outside the boot's event log. */
        g->pcrs |= cc->log->kind == VC_LOG_CCEL ? VC_GOLDEN_CREATE_CCEL_REGISTERS : VC_GOLDEN_CREATE_PCRS;
        return vc_golden_seal(g);
}

/* A set of the bank (none yet), named, with the rules every created set has. */
static int create_start(cctx *cc, uint16_t bank, const char *name, const char *description) {
        int r = vc_golden_new_empty(bank, &cc->g);
        if (r < 0)
                return r;
        vc_golden *g = cc->g;
        g->name = strdup(name ? name : "golden");
        if (!g->name || (description && !(g->description = strdup(description))))
                return -ENOMEM;
        g->has_structure = true;
        g->has_after_separator = true;
        g->sb_required = true;
        g->unknown_events = VC_UNKNOWN_REJECT;
        cc->chain.steps = calloc(VC_GOLDEN_MAX_CHAIN_LEN, sizeof(*cc->chain.steps));
        return cc->chain.steps ? 0 : -ENOMEM;
}

int vc_golden_create(const vc_eventlog *log, const vc_event_check *checks, const vc_pcr_set *replayed,
                     const char *name, const char *description, vc_golden **ret, vc_error *err) {
        uint16_t bank = vc_pcr_set_find(replayed, VC_ALG_SHA256) ? VC_ALG_SHA256
                        : replayed->n_banks                        ? replayed->banks[0].alg
                                                                   : 0;
        cctx cc = { .log = log, .err = err, .seps = { .uefi = log_is_uefi(log) } };
        int r;

        vc_error_clear(err);
        if (!bank)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "cannot create a golden set: the log replays no bank");
        r = create_start(&cc, bank, name, description);
        for (size_t i = 0; r >= 0 && i < log->n_events; i++)
                r = create_from_event(&cc, i, &checks[i]);
        if (r >= 0)
                r = create_finish(&cc);
        for (size_t s = 0; s < cc.chain.n; s++) {
                free(cc.chain.steps[s].name);
                vc_dset_done(&cc.chain.steps[s].digests);
        }
        free(cc.chain.steps);
        vc_hasher_free(cc.hasher);
        if (r >= 0) {
                *ret = cc.g;
                return 0;
        }
        vc_golden_free(cc.g);
        if (r == -ENOMEM || r == -E2BIG)
                return vc_error_set(err, r, SIZE_MAX, -1, "cannot create a golden set: %s",
                                    r == -ENOMEM ? "out of memory" : "a list is over its limit");
        return r;
}
