/* SPDX-License-Identifier: Apache-2.0 */
/* Golden sets against event logs (vc_golden_evaluate).
 *
 * Every extended event in a PCR the set evaluates must be explained by a rule: its class
 * (golden-classify.c) has a rule that allows it, or its PCR has an exact-value rule.
 * Anything else is a finding (default deny). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden-classify.h"
#include "golden-internal.h"
#include "hash.h"

/* Where a PCR's measurements are in a log of this kind: the PCR, or the CCEL register
 * that gathers it (UEFI 2.10 38.4.1; PCR 0's firmware measurements go to RTMR0 in TDVF,
 * which writes the Spec ID event there too), for findings about a missing measurement. */
static uint32_t usual_index(vc_log_kind kind, uint32_t pcr) {
        if (kind != VC_LOG_CCEL)
                return pcr;
        return pcr <= 1 || pcr == 7 ? 1 : pcr <= 6 ? 2 : pcr <= 15 ? 3 : pcr;
}

/* A boot application, in the order the log has them. */
typedef struct app_ev {
        const vc_event *ev;
        const uint8_t *d;
} app_ev;

/* An evaluation under way: its findings, and what the log has shown so far. */
typedef struct ectx {
        const vc_golden *g;
        vc_evaluation *out;
        size_t cap;
        size_t omitted;         /* findings past VC_EVAL_MAX_FINDINGS - 1 */
        bool summing;           /* the last finding, which counts them */
        int error;              /* could not evaluate (-ENOMEM) */
        vc_hasher *hasher;      /* certificates' fingerprints; made when first needed */

        uint32_t value_pcrs;                    /* PCRs an exact-value rule explains (pcr_values) */
        unsigned sep_count[VC_PCR_COUNT];       /* separators per PCR */
        uint32_t positions[VC_PCR_COUNT];       /* events extended per PCR (vendor event pins) */
        unsigned sb_seen[VC_SB_VARS];           /* Secure Boot variables measured */
        app_ev *apps;                           /* the boot applications */
        size_t n_apps;
} ectx;

/* Whether an exact-value rule explains the event's PCR (pcr_values). */
static bool by_value(const ectx *e, const vc_event *ev) {
        return e->value_pcrs & (1u << (ev->pcr & 31));
}

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
                snprintf(prefix, sizeof(prefix), "%s %u event %u: ", vc_index_word(e->g->log_kind), ev->pcr, ev->index);
        else if (pcr >= 0)
                snprintf(prefix, sizeof(prefix), "%s %d: ", vc_index_word(e->g->log_kind), pcr);
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

static void not_covered(ectx *e, const vc_event *ev, vc_ev_class cls) {
        finding(e, "coverage", -1, ev, vc_class_rule(cls), vc_event_type_name(ev->type),
                "%s is not covered by any rule of golden set %s (needs %s)", vc_event_type_name(ev->type),
                e->g->name, vc_class_rule(cls));
}

static void check_sigvar(ectx *e, const vc_event *ev, const vc_event_content *c, const vc_sigvar_rule *rule,
                         const char *var, const uint8_t *d) {
        char rname[48];
        snprintf(rname, sizeof(rname), "secure_boot.%s", var);
        if (rule->has_digests)
                check_digest(e, rname, ev, &rule->digests, d, var);
        if (!rule->has_certificates && !rule->has_hashes)
                return;
        vc_sig_entries s;
        if (vc_sig_entries_of(c, &e->hasher, &s) < 0) {
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
        vc_sig_entries_done(&s);
}

static void check_dbx(ectx *e, const vc_event *ev, const vc_event_content *c) {
        vc_sig_entries s;
        if (vc_sig_entries_of(c, &e->hasher, &s) < 0) {
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
        vc_sig_entries_done(&s);
}

#define SEPARATOR_WBCL 0x4c434257u /* "WBCL" read little-endian (Windows, PCRs 12-14) */

/* PFP 1.05 10.4.1: a separator measures 0, or 0xFFFFFFFF when the firmware failed;
 * Windows uses "WBCL" in PCRs 12-14; a legacy BIOS (SeaBIOS) measures 0xFFFFFFFF always,
 * and a set created from such a platform says so (error_separators): then only that. */
static void check_separator(ectx *e, const vc_event *ev, const vc_event_content *c, const vc_event_check *chk,
                            unsigned count, bool explained) {
        const vc_golden *g = e->g;
        uint32_t value = 0;
        bool verified = vc_separator_value(c, chk, &value);
        bool is_error = verified && value == 0xFFFFFFFF;
        if (verified && is_error == g->error_separators) {
                /* In a PCR the set requires no separator in, only what a separator measures
                 * (0, or "WBCL"; the error value on an error_separators platform), once, is
                 * one: the type is not measured, so any other 4-byte measurement could be
                 * labelled a separator. */
                if (!(g->separators & (1u << ev->pcr)) && !explained &&
                    (count > 1 || (!is_error && value != 0 && value != SEPARATOR_WBCL)))
                        not_covered(e, ev, CLS_SEPARATOR);
                return;
        }
        /* a finding, which quotes the separator as the event decoder describes it */
        vc_event_content full = { 0 };
        if (vc_event_decode(ev, &full, NULL) == -ENOMEM) {
                e->error = -ENOMEM;
                return;
        }
        const char *text = full.text ? full.text : "?";
        if (!verified)
                finding(e, "structure.separators", -1, ev, "a verified separator", text, "not a verified separator (%s)",
                        text);
        else {
                if (chk->measured == VC_MEASURED_ERROR_SEPARATOR)
                        text = "separator 0xffffffff (not logged)";
                if (is_error)
                        finding(e, "structure.separators", -1, ev, "a separator, not 0xFFFFFFFF", text,
                                "the error separator 0xFFFFFFFF: UEFI firmware measures it when it failed (a legacy "
                                "BIOS platform, SeaBIOS, needs a set created from its own log: error_separators)");
                else
                        finding(e, "structure.error_separators", -1, ev, "separator 0xffffffff", text,
                                "separator %s differs from this platform's: golden set %s says it measures every "
                                "separator as 0xFFFFFFFF (legacy BIOS)", text, g->name);
        }
        vc_event_content_done(&full);
}

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

/* A replayed PCR value its exact-value rule does not allow (or no value). */
static void pcr_value_finding(ectx *e, const vc_alg_info *a, unsigned p, const vc_dset *allowed,
                              const vc_pcr_bank *rb) {
        char *list = vc_dset_text(allowed, 8);
        if (!rb || !(rb->mask & (1u << p))) {
                finding(e, "pcr_values", (int) p, NULL, list, "not extended",
                        "%s PCR %u is not extended by the log; allowed: %s", a->name, p, list ? list : "?");
        } else {
                char full[2 * VC_MAX_DIGEST + 1], sh[16];
                vc_hex(rb->values[p], a->size, full);
                vc_short_hex(rb->values[p], a->size, sh);
                finding(e, "pcr_values", (int) p, NULL, list, full, "%s value %s is not allowed; allowed: %s", a->name,
                        sh, list ? list : "?");
        }
        free(list);
}

/* Exact PCR values (rules.pcr_values); the PCRs they explain. */
static uint32_t check_pcr_values(ectx *e, const vc_pcr_set *replayed) {
        const vc_golden *g = e->g;
        uint32_t pcrs = 0;
        for (int b = 0; b < VC_NUM_ALGS; b++) {
                const vc_alg_info *a = vc_alg_at(b);
                const vc_pcr_bank *rb = g->pcr_values_mask[b] ? vc_pcr_set_find(replayed, a->alg) : NULL;
                pcrs |= g->pcr_values_mask[b];
                for (unsigned p = 0; p < VC_PCR_COUNT; p++) {
                        const vc_dset *allowed = &g->pcr_values[b][p];
                        if (!(g->pcr_values_mask[b] & (1u << p)))
                                continue;
                        if (!rb || !(rb->mask & (1u << p)) || !vc_dset_has(allowed, rb->values[p]))
                                pcr_value_finding(e, a, p, allowed, rb);
                }
        }
        return pcrs;
}

/* S-CRTM version: by its verified version string, or by its digest among the firmware. */
static void check_crtm_version(ectx *e, const vc_rule_event *x) {
        const vc_golden *g = e->g;
        const char *version = x->c.string;
        bool by_string = g->has_crtm_versions && x->verified && version;
        if ((by_string && vc_sset_has(&g->crtm_versions, version)) ||
            (g->has_firmware_digests && vc_dset_has(&g->firmware_digests, x->d)))
                return;
        if (!g->has_crtm_versions && !g->has_firmware_digests) {
                if (!by_value(e, x->ev))
                        not_covered(e, x->ev, x->cls);
        } else if (by_string) {
                const char *first = g->crtm_versions.n ? g->crtm_versions.s[0] : "";
                finding(e, vc_class_rule(x->cls), -1, x->ev, first, version,
                        "S-CRTM version \"%.100s\" is not allowed%s%.100s%s", version,
                        g->crtm_versions.n ? "; allowed: \"" : "", first, g->crtm_versions.n ? "\"" : "");
        } else {
                check_digest(e, "platform_firmware.firmware", x->ev, &g->firmware_digests, x->d, "S-CRTM version");
        }
}

/* Classes whose rule allows an event by its digest alone. */
static void check_by_digest(ectx *e, const vc_rule_event *x) {
        const vc_dset *set = vc_class_digests(e->g, x->cls);
        if (set)
                check_digest(e, vc_class_rule(x->cls), x->ev, set, x->d, vc_class_what(x->cls));
        else if (!by_value(e, x->ev))
                not_covered(e, x->ev, x->cls);
}

/* Whether the set has a rule for a Secure Boot variable. */
static bool sb_has_rule(const vc_golden *g, vc_sb_var v) {
        switch (v) {
        case SB_SECUREBOOT:
                return g->secure_boot_enabled >= 0;
        case SB_PK:
                return g->pk.present;
        case SB_KEK:
                return g->kek.present;
        case SB_DB:
                return g->db.present;
        case SB_DBX:
                return g->has_dbx_must_contain;
        default:
                return g->has_sb_variables;
        }
}

/* Secure Boot variables (PCR 7): each known one once, with verified content its rule allows. */
static void check_sb_variable(ectx *e, const vc_rule_event *x) {
        const vc_golden *g = e->g;
        const vc_event_content *c = &x->c;
        vc_sb_var v = vc_sb_variable(c);
        e->sb_seen[v]++;
        if (v != SB_OTHER && e->sb_seen[v] > 1)
                finding(e, "secure_boot", -1, x->ev, "measured once", "measured again", "%s is measured more than once",
                        vc_sb_name(v));
        if (!sb_has_rule(g, v)) {
                if (!by_value(e, x->ev))
                        not_covered(e, x->ev, x->cls);
                return;
        }
        if (v != SB_OTHER && !(x->verified && x->chk->measured == VC_MEASURED_EVENT_DATA)) {
                finding(e, "secure_boot", -1, x->ev, "verified variable content", "not verified",
                        "%s content is not covered by its digest", vc_sb_name(v));
                return;
        }
        if (v == SB_SECUREBOOT) {
                bool on = c->var_data_len == 1 && c->var_data[0] == 1;
                const char *want = g->secure_boot_enabled ? "enabled" : "disabled", *is = on ? "enabled" : "disabled";
                if (g->secure_boot_enabled != 2 && on != (g->secure_boot_enabled == 1))
                        finding(e, "secure_boot.enabled", -1, x->ev, want, is, "Secure Boot is %s; expected %s", is, want);
        } else if (v == SB_PK || v == SB_KEK || v == SB_DB) {
                check_sigvar(e, x->ev, c, v == SB_PK ? &g->pk : v == SB_KEK ? &g->kek : &g->db, vc_sb_name(v), x->d);
        } else if (v == SB_DBX) {
                check_dbx(e, x->ev, c);
        } else {
                check_digest(e, "secure_boot.variables", x->ev, &g->sb_variables, x->d,
                             c->var_name ? c->var_name : "variable");
        }
}

static void check_action(ectx *e, const vc_rule_event *x) {
        const vc_golden *g = e->g;
        const char *s = x->c.string;
        if (!g->has_actions) {
                if (!by_value(e, x->ev))
                        not_covered(e, x->ev, x->cls);
        } else if (!x->verified || !s) {
                finding(e, vc_class_rule(x->cls), -1, x->ev, "a verified action string", "not verified",
                        "EFI action content is not verified");
        } else if (!vc_sset_has(&g->actions, s)) {
                finding(e, vc_class_rule(x->cls), -1, x->ev, "an allowed action", s, "EFI action \"%.200s\" is not allowed",
                        s);
        }
}

/* A command line (systemd-stub, systemd-boot) or a GRUB string: its verified body must be
 * an allowed command (GRUB) or command line, whatever GRUB's prefix says (not measured). */
static void check_boot_string(ectx *e, const vc_rule_event *x) {
        const vc_golden *g = e->g;
        bool grub = x->cls == CLS_GRUB;
        if (!g->n_cmdline && !(grub && g->has_boot_commands)) {
                if (!by_value(e, x->ev))
                        not_covered(e, x->ev, x->cls);
                return;
        }
        char *body = !x->verified ? NULL : grub ? vc_grub_body(&x->c) : vc_cmdline_text(&x->c);
        if (!body) {
                finding(e, vc_class_rule(x->cls), -1, x->ev, "verified content", "not verified", "%s content is not verified",
                        grub ? "boot loader string" : "kernel command line");
        } else if (!(grub && vc_sset_has(&g->boot_commands, body)) && !cmdline_allowed(g, body)) {
                bool says_cmdline = !grub || vc_grub_says_cmdline(x->c.string);
                char *rules = cmdline_rules_text(g);
                finding(e, says_cmdline ? "kernel.cmdline" : "kernel.boot_commands", -1, x->ev,
                        says_cmdline ? (rules ? rules : "") : "an allowed boot loader command", body,
                        "%s \"%.300s\" is not allowed%s%s", says_cmdline ? "kernel command line" : "boot loader command",
                        body, says_cmdline ? "; allowed: " : "", says_cmdline && rules ? rules : "");
                free(rules);
        }
        free(body);
}

/* The type is not measured: an unknown type is no reason to let an event through; only a
 * pin (where it is, with its digest) or an allow-listed digest is. */
static void check_unknown_event(ectx *e, const vc_rule_event *x, bool pinned) {
        const vc_golden *g = e->g;
        if (pinned || vendor_pin_differs(e, x->ev, x->pos, x->d))
                return;
        if (g->unknown_events == VC_UNKNOWN_REJECT)
                finding(e, vc_class_rule(x->cls), -1, x->ev, "a known event type", vc_event_type_name(x->ev->type),
                        "event type 0x%08x is not defined by the TCG PC Client spec", x->ev->type);
        else
                check_digest(e, "structure.unknown_digests", x->ev, &g->unknown_digests, x->d, "event of unknown type");
}

/* Events after a separator: only the types the set allows there (and a vendor event pinned
 * where it is). */
static void check_after_separator(ectx *e, const vc_rule_event *x, bool pinned) {
        const vc_event *ev = x->ev;
        if (!e->g->has_after_separator || !e->sep_count[ev->pcr] || x->cls == CLS_SEPARATOR || pinned)
                return;
        int ti = vc_event_type_index(ev->type);
        if (ti < 0 || !(e->g->after_separator[ev->pcr] & (1ull << ti)))
                finding(e, "structure.after_separator", -1, ev, "no such event after the separator",
                        vc_event_type_name(ev->type), "%s after PCR %u's separator is not allowed",
                        vc_event_type_name(ev->type), ev->pcr);
}

/* The rule of the event's class, on what it reads of the event. */
static void check_by_class(ectx *e, vc_rule_event *x, bool pinned) {
        const vc_event *ev = x->ev;
        switch (x->cls) {
        case CLS_SEPARATOR:
                e->sep_count[ev->pcr]++;
                check_separator(e, ev, &x->c, x->chk, e->sep_count[ev->pcr], by_value(e, x->ev));
                break;
        case CLS_CRTM_VERSION:
                check_crtm_version(e, x);
                break;
        case CLS_SB_VARIABLE:
                check_sb_variable(e, x);
                break;
        case CLS_BOOT_APP:
                /* Without a chain rule, an application is explained only by a pin of its own
                 * PCR; one anywhere else (its type is not measured: any event can be labelled
                 * so) goes to the chain check and is not covered. */
                if (e->g->has_boot_chain || !by_value(e, x->ev))
                        e->apps[e->n_apps++] = (app_ev) { ev, x->d };
                break;
        case CLS_ACTION:
                check_action(e, x);
                break;
        case CLS_CMDLINE:
        case CLS_GRUB:
                check_boot_string(e, x);
                break;
        case CLS_UNKNOWN_TYPE:
                check_unknown_event(e, x, pinned);
                break;
        case CLS_IGNORED:
                break;
        default:
                check_by_digest(e, x);
                break;
        }
}

/* One event of the log, in a PCR the set evaluates: in the bank, as its digest says, and
 * explained by its class's rule. */
static void check_event(ectx *e, vc_log_kind kind, const vc_event *ev, const vc_event_check *chk) {
        const vc_golden *g = e->g;
        vc_rule_event x;

        vc_rule_event_start(&x, kind, ev, chk, g->bank, e->positions);
        if (ev->type == EV_NO_ACTION || ev->pcr == VC_PCR_NONE || !(g->pcrs & (1u << ev->pcr)))
                return;
        if (!x.d) {
                finding(e, "bank", -1, ev, vc_alg_lookup(g->bank)->name, "absent", "event has no %s digest",
                        vc_alg_lookup(g->bank)->name);
                return;
        }
        if (chk->status == VC_DIGEST_MISMATCH) {
                finding(e, "digest", -1, ev, "digest of the event data", "different",
                        "%s content does not match its digest: not to be believed", vc_event_type_name(ev->type));
                return;
        }
        bool pinned = x.cls == CLS_UNKNOWN_TYPE && vendor_pinned(g, ev, x.pos, x.d, e->sep_count[ev->pcr] != 0);
        check_after_separator(e, &x, pinned);
        int r = vc_rule_content(ev, x.cls, &x.c);
        if (r < 0) {
                e->error = r;
                return;
        }
        check_by_class(e, &x, pinned);
        vc_event_content_done(&x.c);
}

/* What must be in the log, once it is all read: the boot chain, one separator per PCR that
 * requires it, the Secure Boot variables that have rules. */
static void check_whole_log(ectx *e) {
        const vc_golden *g = e->g;
        /* A log with no boot application matches only an empty chain (`[]`, what create
         * writes for such a log): a set that lists chains is not passed by leaving the boot
         * applications out. With no chains, only the applications are checked. */
        if (!e->error && (e->n_apps || g->n_chains))
                check_boot_chain(e, e->apps, e->n_apps);
        for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                if (g->separators & (1u << p) && e->sep_count[p] != 1)
                        finding(e, "structure.separators", (int) p, NULL, "one separator",
                                e->sep_count[p] ? "several" : "none", "PCR %u has %u separators; expected exactly one",
                                p, e->sep_count[p]);
        if (g->has_secure_boot && g->sb_required && g->secure_boot_enabled >= 0 && g->secure_boot_enabled != 2 &&
            !e->sb_seen[SB_SECUREBOOT])
                finding(e, "secure_boot.enabled", (int) usual_index(g->log_kind, 7), NULL, "a SecureBoot measurement",
                        "none", "the SecureBoot variable is not measured");
        static const struct {
                vc_sb_var v;
                const char *rule;
        } req[] = { { SB_PK, "secure_boot.pk" },
                    { SB_KEK, "secure_boot.kek" },
                    { SB_DB, "secure_boot.db" },
                    { SB_DBX, "secure_boot.dbx_must_contain" } };
        for (size_t i = 0; i < ELEMENTSOF(req); i++)
                if (g->sb_required && sb_has_rule(g, req[i].v) && !e->sb_seen[req[i].v])
                        finding(e, req[i].rule, (int) usual_index(g->log_kind, 7), NULL, "a measurement", "none",
                                "%s is not measured", vc_sb_name(req[i].v));
}

uint32_t vc_golden_banks(const vc_golden *g) {
        uint32_t banks = 0;
        int b = vc_alg_index(g->bank);
        if (b >= 0)
                banks |= 1u << b;
        for (int i = 0; i < VC_NUM_ALGS; i++)
                if (g->pcr_values_mask[i])
                        banks |= 1u << i;
        return banks;
}

/* The banks whose digests of an event in this PCR the set relies on: its own bank for the
 * PCRs it evaluates, and the bank of every pcr_values rule on this PCR (that rule reads the
 * bank's replayed value, which means something only when its digests are those of the
 * events' data, bound to the quoted bank through the data). */
static uint32_t banks_for_pcr(const vc_golden *g, int b, uint32_t pcr) {
        uint32_t banks = b >= 0 && (g->pcrs & (1u << pcr)) ? 1u << b : 0;
        for (int i = 0; i < VC_NUM_ALGS; i++)
                if (g->pcr_values_mask[i] & (1u << pcr))
                        banks |= 1u << i;
        return banks;
}

int vc_golden_check_digests(vc_hasher *h, const vc_golden *g, const vc_eventlog *log, vc_event_check *checks) {
        int b = vc_alg_index(g->bank);
        for (size_t i = 0; i < log->n_events; i++) {
                const vc_event *ev = &log->events[i];
                uint32_t banks = ev->pcr < VC_PCR_COUNT ? banks_for_pcr(g, b, ev->pcr) : 0;
                /* check_event() reads the checks of these events alone */
                if (g->log_kind != log->kind || !banks) {
                        checks[i] = (vc_event_check) { 0 };
                        continue;
                }
                int r = vc_event_check_digests_in(h, ev, banks, &checks[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int vc_golden_evaluate(const vc_golden *g, const vc_eventlog *log, const vc_event_check *checks,
                       const vc_pcr_set *replayed, uint32_t attested, vc_evaluation *ret) {
        vc_evaluation out = { 0 };
        ectx e = { .g = g, .out = &out };

        e.apps = calloc(log->n_events ? log->n_events : 1, sizeof(*e.apps));
        if (!e.apps)
                return -ENOMEM;
        /* PCRs and CCEL registers are different things: a set judges only its kind of log. */
        if (g->log_kind != log->kind) {
                finding(&e, "log", -1, NULL, vc_log_kind_name(g->log_kind), vc_log_kind_name(log->kind),
                        "golden set %s is for %s logs; this is a %s log", g->name,
                        g->log_kind == VC_LOG_CCEL ? "CCEL" : "TPM", log->kind == VC_LOG_CCEL ? "CCEL" : "TPM");
        } else {
                e.value_pcrs = check_pcr_values(&e, replayed);
                /* The set's PCRs must be covered by the quote, or their events mean nothing. */
                for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                        if ((g->pcrs & (1u << p)) && !(attested & (1u << p)))
                                finding(&e, "attestation", (int) p, NULL, "quoted", "not quoted",
                                        "PCR %u is evaluated by golden set %s but not covered by the quote", p, g->name);
                for (size_t i = 0; i < log->n_events && !e.error; i++)
                        check_event(&e, log->kind, &log->events[i], &checks[i]);
                check_whole_log(&e);
        }
        if (e.omitted) {
                e.summing = true;
                finding(&e, "findings", -1, NULL, "", "", "%zu more finding%s not listed (the first %zu are)", e.omitted,
                        e.omitted == 1 ? "" : "s", out.n_findings);
        }
        free(e.apps);
        vc_hasher_free(e.hasher);
        if (e.error) {
                vc_evaluation_done(&out);
                return e.error;
        }
        out.trust = out.n_findings == 0 ? VC_TRUST_TRUSTED : VC_TRUST_UNTRUSTED;
        *ret = out;
        return 0;
}
