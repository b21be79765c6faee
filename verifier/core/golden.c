/* SPDX-License-Identifier: Apache-2.0 */
/* Golden sets: their lifetime, the top of the JSON format (name, version, bank, $.pcrs;
 * the rules are golden-rules.c's table), and merging. The format is documented in
 * golden/README.md. */
#include "golden.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden-internal.h"
#include "golden-json.h"
#include "golden-rules.h"
#include "hash.h"

vc_golden *vc_golden_free(vc_golden *g) {
        if (!g)
                return NULL;
        free(g->name);
        free(g->description);
        vc_golden_rules_done(g);
        free(g);
        return NULL;
}

int vc_golden_new_empty(uint16_t bank, vc_golden **ret) {
        const vc_alg_info *a = vc_alg_lookup(bank);
        if (!a)
                return -ENOTSUP;
        vc_golden *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->bank = bank;
        g->dsize = a->size;
        g->secure_boot_enabled = -1;
        g->sb_required = true;
        g->version = 1;
        vc_golden_rules_init(g);
        *ret = g;
        return 0;
}

int vc_vendor_events_add(vc_golden *g, const vc_vendor_event *e) {
        if (g->n_vendor_events >= VC_GOLDEN_MAX_LIST)
                return -E2BIG;
        vc_vendor_event *n = realloc(g->vendor_events, (g->n_vendor_events + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        g->vendor_events = n;
        n[g->n_vendor_events] = (vc_vendor_event) { .pcr = e->pcr, .position = e->position, .type = e->type,
                                                    .after_separator = e->after_separator };
        memcpy(n[g->n_vendor_events].digest, e->digest, g->dsize);
        g->n_vendor_events++;
        return 0;
}

static int vendor_cmp(const void *x, const void *y) {
        const vc_vendor_event *a = x, *b = y;
        if (a->pcr != b->pcr)
                return a->pcr < b->pcr ? -1 : 1;
        if (a->position != b->position)
                return a->position < b->position ? -1 : 1;
        if (a->type != b->type)
                return a->type < b->type ? -1 : 1;
        if (a->after_separator != b->after_separator)
                return a->after_separator ? 1 : -1;
        return memcmp(a->digest, b->digest, sizeof(a->digest));
}

void vc_vendor_events_finish(vc_golden *g) {
        size_t n = 0;
        if (!g->n_vendor_events)
                return;
        qsort(g->vendor_events, g->n_vendor_events, sizeof(*g->vendor_events), vendor_cmp);
        for (size_t i = 0; i < g->n_vendor_events; i++)
                if (n == 0 || vendor_cmp(&g->vendor_events[n - 1], &g->vendor_events[i]) != 0)
                        g->vendor_events[n++] = g->vendor_events[i];
        g->n_vendor_events = n;
}

/* The pins are sorted by (pcr, position, ...) (vc_vendor_events_finish): a binary search for
 * the first at (pcr, position), so that a log of many unknown events against a set of many
 * pins costs O(events log pins), not O(events x pins). */
const vc_vendor_event *vc_vendor_events_at(const vc_golden *g, uint32_t pcr, uint32_t position, size_t *ret_n) {
        size_t lo = 0, hi = g->n_vendor_events, n = 0;
        uint64_t key = (uint64_t) pcr << 32 | position;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const vc_vendor_event *e = &g->vendor_events[mid];
                if (((uint64_t) e->pcr << 32 | e->position) < key)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        while (lo + n < g->n_vendor_events && g->vendor_events[lo + n].pcr == pcr &&
               g->vendor_events[lo + n].position == position)
                n++;
        *ret_n = n;
        return n ? &g->vendor_events[lo] : NULL;
}

/* ---------------- command line regexes ---------------- */

int vc_golden_compile_regex(vc_string_rule *rule) {
        /* POSIX ERE, compiled as written. It is not wrapped in "^(...)$": an expression
         * that closes the wrapper's group itself ("a)|(b") would leave each alternative
         * anchored at one end only. Anchoring is done at match time instead: the leftmost
         * longest match must cover the whole string (vc_golden_regex_whole). */
        return regcomp(&rule->re, rule->text, REG_EXTENDED) == 0 ? 0 : -EBADMSG;
}

bool vc_golden_regex_whole(const regex_t *re, const char *s) {
        regmatch_t m[1];
        return regexec(re, s, 1, m, 0) == 0 && m[0].rm_so == 0 && (size_t)m[0].rm_eo == strlen(s);
}

/* ---------------- which PCRs a rule needs ---------------- */

/* Evaluation looks only at events in $.pcrs. Events are classified by type, so most rules
 * can see events in any PCR; two classes are tied to a PCR by the classifier itself
 * (golden-classify.c): Secure Boot variables (EV_EFI_VARIABLE_DRIVER_CONFIG) only in
 * PCR 7, shim's MOK variables (EV_IPL) only in PCR 14. A rule on those without its PCR
 * would never see an event and so never fail: an error. Where a rule's measurements only
 * usually land in certain PCRs, vc_golden_lint warns. */
static int check_rule_pcrs(vc_gj_ctx *c) {
        const vc_golden *g = c->g;
        bool sb_variables = g->has_secure_boot && (g->secure_boot_enabled >= 0 || g->pk.present || g->kek.present ||
                                                   g->db.present || g->has_dbx_must_contain || g->has_sb_variables);
        if (g->log_kind == VC_LOG_CCEL) {
                /* registers: RTMR0 (1) holds what PCRs 1 and 7 would (UEFI 2.10 38.4.1); shim's
                 * MOK measurements land in RTMR2 among the boot loader's, as boot files */
                if (g->pcrs & ~((1u << VC_CCEL_REGISTERS) - 1))
                        return vc_gj_error(c, "$.pcrs", "a CCEL set evaluates registers 0-4 (MRTD, RTMR0-3)");
                if (sb_variables && !(g->pcrs & (1u << 1)))
                        return vc_gj_error(c, "$.rules.secure_boot",
                                           "checks the Secure Boot variables, measured in register 1 (RTMR0), which "
                                           "$.pcrs leaves out: the rule would never apply");
                if (g->has_mok)
                        return vc_gj_error(c, "$.rules.secure_boot.mok",
                                           "a CCEL log cannot tell shim's MOK measurements from the boot loader's "
                                           "(both in RTMR2): list their digests in kernel.boot_files");
                return 0;
        }
        if (sb_variables && !(g->pcrs & (1u << 7)))
                return vc_gj_error(c, "$.rules.secure_boot",
                                   "checks the Secure Boot variables, measured only in PCR 7, which $.pcrs leaves out: "
                                   "the rule would never apply");
        if (g->has_mok && !(g->pcrs & (1u << 14)))
                return vc_gj_error(c, "$.rules.secure_boot.mok",
                                   "checks shim's MOK variables, measured only in PCR 14, which $.pcrs leaves out: "
                                   "the rule would never apply");
        return 0;
}

size_t vc_golden_lint(const vc_golden *g, void (*warn)(const char *msg, void *userdata), void *userdata) {
        static const struct {
                const char *path, *what;
                uint32_t pcrs; /* where they usually are (TCG PC Client PFP, boot loaders) */
        } usual[] = {
                { "$.rules.platform_firmware.s_crtm_versions", "the CRTM version (PCR 0)", 1u << 0 },
                { "$.rules.platform_firmware.firmware", "firmware code (PCR 0; drivers and option ROMs PCR 2)",
                  (1u << 0) | (1u << 2) },
                { "$.rules.platform_firmware.handoff_tables", "the handoff tables (PCR 1)", 1u << 1 },
                { "$.rules.platform_firmware.configuration", "the platform configuration (PCRs 1, 3, 5, 6)",
                  (1u << 1) | (1u << 3) | (1u << 5) | (1u << 6) },
                { "$.rules.secure_boot.authorities", "the Secure Boot authorities (PCR 7)", 1u << 7 },
                { "$.rules.boot_chain", "the boot applications (PCR 4)", 1u << 4 },
                { "$.rules.boot_chain.gpt", "the GPT (PCR 5)", 1u << 5 },
                { "$.rules.kernel.cmdline", "the kernel command line (GRUB PCR 8, systemd-stub PCR 12)",
                  (1u << 8) | (1u << 12) },
                { "$.rules.kernel.boot_commands", "GRUB's commands (PCR 8)", 1u << 8 },
                { "$.rules.kernel.initrd", "the EFI stub's initrd (PCR 9)", 1u << 9 },
                { "$.rules.kernel.load_options", "the EFI stub's load options (PCR 9)", 1u << 9 },
                { "$.rules.kernel.boot_files", "boot loader files (PCRs 8-15; legacy BIOS IPL code PCR 4)",
                  0xff00u | (1u << 4) },
        };
        if (g->log_kind == VC_LOG_CCEL)
                return 0; /* registers gather several PCRs' measurements: no usual place to miss */
        const bool has[] = { g->has_crtm_versions, g->has_firmware_digests, g->has_handoff, g->has_configuration,
                             g->has_authorities, g->has_boot_chain, g->has_gpt, g->n_cmdline > 0,
                             g->has_boot_commands, g->has_initrd, g->has_load_options, g->has_boot_files };
        _Static_assert(sizeof(has) / sizeof(has[0]) == sizeof(usual) / sizeof(usual[0]), "one flag per rule");
        size_t n = 0;
        for (size_t i = 0; i < sizeof(usual) / sizeof(usual[0]); i++) {
                if (!has[i] || (g->pcrs & usual[i].pcrs))
                        continue;
                char msg[300];
                snprintf(msg, sizeof(msg),
                         "%s checks %s, which $.pcrs leaves out: unless this platform measures them elsewhere, "
                         "the rule sees nothing",
                         usual[i].path, usual[i].what);
                if (warn)
                        warn(msg, userdata);
                n++;
        }
        return n;
}

/* ---------------- parse ---------------- */

/* The set's identity: its name, and its bank (the set is made here, sized for it). */
static int parse_identity(vc_gj_ctx *c, json_object *name_v, json_object *bank_v) {
        static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
        const char *name, *bank;
        int r;
        if ((r = vc_gj_string(c, name_v, "$.name", &name)) < 0)
                return r;
        if (!name[0] || strlen(name) > 128 || strspn(name, name_chars) != strlen(name))
                return vc_gj_error(c, "$.name", "expected 1-128 characters of [A-Za-z0-9._-], got \"%.64s\"", name);
        if ((r = vc_gj_string(c, bank_v, "$.bank", &bank)) < 0)
                return r;
        const vc_alg_info *a = vc_alg_by_name(bank);
        if (!a)
                return vc_gj_error(c, "$.bank",
                                   "unknown bank \"%.32s\" (expected sha1, sha256, sha384, sha512 or sm3_256)", bank);
        if ((r = vc_golden_new_empty(a->alg, &c->g)) < 0)
                return r;
        c->g->name = strdup(name);
        return c->g->name ? 0 : -ENOMEM;
}

/* $.version, and the optional $.description and $.log */
static int parse_about(vc_gj_ctx *c, json_object *version_v, bool has_description, json_object *description_v,
                       bool has_log, json_object *log_v) {
        vc_golden *g = c->g;
        const char *s;
        int r;
        if ((r = vc_gj_want_type(c, version_v, json_type_int, "$.version")) < 0)
                return r;
        g->version = json_object_get_int64(version_v);
        if (g->version < 1 || g->version >= INT64_MAX)
                return vc_gj_error(c, "$.version", "expected an integer >= 1, got %lld", (long long) g->version);
        if (has_description) {
                if ((r = vc_gj_string(c, description_v, "$.description", &s)) < 0)
                        return r;
                if (!(g->description = strdup(s)))
                        return -ENOMEM;
        }
        if (!has_log)
                return 0;
        if ((r = vc_gj_string(c, log_v, "$.log", &s)) < 0)
                return r;
        if (strcmp(s, "tpm") == 0)
                g->log_kind = VC_LOG_TPM;
        else if (strcmp(s, "ccel") == 0)
                g->log_kind = VC_LOG_CCEL;
        else
                return vc_gj_error(c, "$.log", "expected \"tpm\" or \"ccel\", got \"%.32s\"", s);
        return 0;
}

static int parse_root(vc_gj_ctx *c, json_object *root) {
        enum { NAME, VERSION, DESCRIPTION, LOG, BANK, PCRS, RULES, N_KEYS };
        static const char *const keys[N_KEYS] = { "name", "version", "description", "log", "bank", "pcrs", "rules" };
        const uint32_t required = 1u << NAME | 1u << VERSION | 1u << BANK | 1u << PCRS | 1u << RULES;
        json_object *v[N_KEYS];
        bool has[N_KEYS];
        int r;
        if ((r = vc_gj_check_keys(c, root, "$", keys, N_KEYS, false)) < 0 ||
            (r = vc_gj_fields(c, root, "$", keys, N_KEYS, required, v, has)) < 0 ||
            (r = parse_identity(c, v[NAME], v[BANK])) < 0 ||
            (r = parse_about(c, v[VERSION], has[DESCRIPTION], v[DESCRIPTION], has[LOG], v[LOG])) < 0 ||
            (r = vc_gj_pcr_list(c, v[PCRS], "$.pcrs", VC_GOLDEN_RESETTABLE_PCRS, &c->g->pcrs)) < 0)
                return r;
        if (!c->g->pcrs)
                return vc_gj_error(c, "$.pcrs", "no PCR: a golden set that evaluates nothing is not allowed");
        if ((r = vc_golden_rules_parse(c, v[RULES])) < 0)
                return r;
        return check_rule_pcrs(c);
}

int vc_golden_parse(const char *json, size_t len, vc_golden **ret, vc_error *err) {
        vc_gj_ctx c = { .err = err };
        struct json_tokener *tok;
        json_object *root;
        int r;

        vc_error_clear(err);
        if (len > VC_GOLDEN_MAX_FILE)
                return vc_error_set(err, -E2BIG, SIZE_MAX, -1, "golden: file of %zu bytes exceeds %u bytes", len,
                                    VC_GOLDEN_MAX_FILE);
        tok = json_tokener_new_ex(VC_GOLDEN_MAX_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, json, (int) len);
        enum json_tokener_error je = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!root) {
                return vc_error_set(err, -EBADMSG, end, -1, "golden: not JSON: %s",
                                    je == json_tokener_continue ? "unexpected end of input"
                                                                : json_tokener_error_desc(je));
        }
        for (size_t i = end; i < len; i++)
                if (!strchr(" \t\r\n", json[i])) {
                        json_object_put(root);
                        return vc_error_set(err, -EBADMSG, i, -1, "golden: trailing data after the JSON object");
                }
        r = parse_root(&c, root);
        json_object_put(root);
        if (r == 0)
                r = vc_golden_seal(c.g);
        if (r < 0) {
                vc_golden_free(c.g);
                return r;
        }
        *ret = c.g;
        return 0;
}

int vc_golden_seal(vc_golden *g) {
        char *json = NULL;
        int r = vc_golden_to_json(g, &json);
        if (r < 0)
                return r;
        r = vc_digest(VC_ALG_SHA256, json, strlen(json), g->fingerprint);
        free(json);
        return r;
}

/* ---------------- output ---------------- */

int vc_golden_to_json(const vc_golden *g, char **ret) {
        json_object *root = json_object_new_object();
        if (!root)
                return -ENOMEM;
        json_object_object_add(root, "name", json_object_new_string(g->name ? g->name : ""));
        json_object_object_add(root, "version", json_object_new_int64(g->version));
        if (g->description)
                json_object_object_add(root, "description", json_object_new_string(g->description));
        if (g->log_kind == VC_LOG_CCEL)
                json_object_object_add(root, "log", json_object_new_string("ccel"));
        json_object_object_add(root, "bank", json_object_new_string(vc_alg_lookup(g->bank)->name));
        json_object_object_add(root, "pcrs", vc_gj_pcr_array(g->pcrs));
        json_object_object_add(root, "rules", vc_golden_rules_json(g));
        const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
        *ret = s ? strdup(s) : NULL;
        json_object_put(root);
        return *ret ? 0 : -ENOMEM;
}

/* ---------------- merge ---------------- */

/* Sets that cannot be one: different logs, banks or separator values. */
static int check_mergeable(const vc_golden *a, const vc_golden *b, vc_error *err) {
        if (a->log_kind != b->log_kind)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                    "golden merge: a set for %s logs and one for %s logs (PCRs and registers differ)",
                                    vc_log_kind_name(a->log_kind), vc_log_kind_name(b->log_kind));
        if (a->bank != b->bank)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "golden merge: banks differ (%s and %s)",
                                    vc_alg_lookup(a->bank)->name, vc_alg_lookup(b->bank)->name);
        /* Either separator value for every PCR would accept a mix neither platform measures. */
        if (a->error_separators != b->error_separators)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                    "golden merge: one set's platform measures error-value separators (0xFFFFFFFF, "
                                    "legacy BIOS) and the other's does not: keep them as two sets");
        return 0;
}

int vc_golden_merge(const vc_golden *a, const vc_golden *b, vc_golden **ret, vc_error *err) {
        vc_golden *g = NULL;
        int r;

        vc_error_clear(err);
        if ((r = check_mergeable(a, b, err)) < 0 || (r = vc_golden_new_empty(a->bank, &g)) < 0)
                return r;
        g->log_kind = a->log_kind;
        g->name = strdup(a->name);
        g->description = a->description ? strdup(a->description) : NULL;
        g->version = (a->version > b->version ? a->version : b->version) + 1;
        g->pcrs = a->pcrs | b->pcrs;
        if (!g->name || (a->description && !g->description))
                r = -ENOMEM;
        else if ((r = vc_golden_rules_merge(g, a, b)) >= 0)
                r = vc_golden_seal(g);
        if (r < 0) {
                vc_golden_free(g);
                return r == -E2BIG ? vc_error_set(err, r, SIZE_MAX, -1, "golden merge: more than %u boot chains",
                                                  VC_GOLDEN_MAX_CHAINS)
                                   : r;
        }
        *ret = g;
        return 0;
}
