/* SPDX-License-Identifier: Apache-2.0 */
/* The rules of a golden set as one table (golden/README.md documents the format).
 *
 * Most rules are lists of digests or strings that allow what they hold: their parse, output
 * and merge (the union) are one each, for every list. A rule object (platform_firmware,
 * secure_boot.pk, ...) is a table of such rules. The rules that need more (boot chains,
 * command lines, separators, vendor event pins, ...) are a kind of their own, with a
 * parse, an output and a merge written once, next to each other. */
#include "golden-rules.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden-internal.h"

/* JSON paths in error messages are built in fixed buffers; a path cut short is harmless. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

typedef enum rule_kind {
        R_DIGESTS = 0,      /* vc_dset of digests in the set's bank */
        R_FINGERPRINTS = 1, /* vc_dset of SHA-256 (certificates, EFI_CERT_SHA256 entries) */
        R_STRINGS = 2,      /* vc_sset */
        R_OBJECT = 3,       /* an object of rules (a table of its own) */
        R_SPECIAL = 4,      /* a kind of its own (rule_ops) */
} rule_kind;

/* A rule of a kind of its own; it works on the whole set. */
typedef struct rule_ops {
        json_type type;         /* its value's type, checked before parse (json_type_null: parse checks) */
        bool absent_too;        /* parse is called when the rule is absent too (present false) */
        /* v is its value (json-c's NULL for JSON null), path names it, obj_path the object
         * that holds it */
        int (*parse)(vc_gj_ctx *c, bool present, json_object *v, const char *path, const char *obj_path);
        /* the rule's JSON value, or NULL to leave it out */
        json_object *(*json)(const vc_golden *g);
        int (*merge)(vc_golden *g, const vc_golden *a, const vc_golden *b);
        void (*done)(vc_golden *g);   /* optional */
        void (*init)(vc_golden *g);   /* optional: sizes its lists */
} rule_ops;

typedef struct rule_spec rule_spec;

/* A rule of an object. Lists and objects are found at offsets from the object's base (the
 * set, or the vc_sigvar_rule of secure_boot.pk, .kek, .db). */
struct rule_spec {
        const char *key;
        rule_kind kind;
        size_t at;                /* lists: the list's offset in the base; R_OBJECT: its base's */
        size_t has;               /* offset of its bool (set when it parses; written only if set); NO_FLAG */
        const rule_spec *rules;   /* R_OBJECT: its rules */
        size_t n_rules;
        const rule_ops *ops;      /* R_SPECIAL; R_OBJECT: a merge of its own, if any */
};

/* The rule_ops of a kind of its own, from its functions NAME_parse, NAME_json and NAME_merge
 * (and, given, .done and .init: a kind that holds memory). */
#define KIND(name, type_, ...)                                                                            \
        static const rule_ops name##_ops = { .type = type_, .parse = name##_parse, .json = name##_json, \
                                             .merge = name##_merge, __VA_ARGS__ }

#define NO_FLAG SIZE_MAX

static void *member(void *base, size_t off) {
        return (char *) base + off;
}

static const void *cmember(const void *base, size_t off) {
        return (const char *) base + off;
}

static bool flag(const void *base, size_t off) {
        return off == NO_FLAG || *(const bool *) cmember(base, off);
}

static void set_flag(void *base, size_t off, bool v) {
        if (off != NO_FLAG)
                *(bool *) member(base, off) = v;
}

/* ---------------- merge helpers ---------------- */

static int union2(vc_dset *dst, const vc_dset *a, const vc_dset *b) {
        int r = vc_dset_union(dst, a);
        return r < 0 ? r : vc_dset_union(dst, b);
}

static int sunion2(vc_sset *dst, const vc_sset *a, const vc_sset *b) {
        int r = vc_sset_union(dst, a);
        return r < 0 ? r : vc_sset_union(dst, b);
}

/* The array of n entries (item(g, i) each); none: left out. */
static json_object *array_of(const vc_golden *g, size_t n, json_object *(*item)(const vc_golden *g, size_t i)) {
        json_object *a = n ? json_object_new_array() : NULL;
        for (size_t i = 0; a && i < n; i++)
                json_object_array_add(a, item(g, i));
        return a;
}

/* ---------------- rules.pcr_values ---------------- */

static int pcr_values_parse_bank(vc_gj_ctx *c, const char *bank, json_object *pcrs, const char *path) {
        vc_golden *g = c->g;
        char p[VC_GJ_PATH];
        int r;
        snprintf(p, sizeof(p), "%s.%s", path, bank);
        const vc_alg_info *a = vc_alg_by_name(bank);
        if (!a)
                return vc_gj_error(c, p, "unknown bank (expected sha1, sha256, sha384, sha512 or sm3_256)");
        /* Only the set's bank is quoted for it: a pin in another bank would be checked
         * against values no quote covers. */
        if (a->alg != g->bank)
                return vc_gj_error(c, p, "a pinned value must be in the set's bank (%s)", vc_alg_lookup(g->bank)->name);
        int bi = vc_alg_index(a->alg);
        if ((r = vc_gj_want_type(c, pcrs, json_type_object, p)) < 0)
                return r;
        json_object_object_foreach(pcrs, key, list) {
                char pp[VC_GJ_PATH + 88];
                unsigned pcr = 0;
                snprintf(pp, sizeof(pp), "%s.%s", p, key);
                if ((r = vc_gj_pcr_key(c, key, pp, &pcr)) < 0)
                        return r;
                if (!(g->pcrs & (1u << pcr)))
                        return vc_gj_error(c, pp, "PCR %u is pinned but not in $.pcrs: the quote would not cover it",
                                           pcr);
                if ((r = vc_gj_hex_list(c, list, pp, &g->pcr_values[bi][pcr])) < 0)
                        return r;
                if (g->pcr_values[bi][pcr].n == 0)
                        return vc_gj_error(c, pp, "no allowed value: an empty list would reject every log");
                g->pcr_values_mask[bi] |= 1u << pcr;
        }
        return 0;
}

static int pcr_values_parse(vc_gj_ctx *c, bool present, json_object *v, const char *path, const char *obj_path) {
        int r;
        if (json_object_object_length(v) == 0)
                return vc_gj_error(c, path, "empty rule: a rule that checks nothing is not allowed");
        json_object_object_foreach(v, bank, pcrs)
                if ((r = pcr_values_parse_bank(c, bank, pcrs, path)) < 0)
                        return r;
        return 0;
}

static json_object *pcr_values_json(const vc_golden *g) {
        json_object *o = json_object_new_object();
        for (int b = 0; o && b < VC_NUM_ALGS; b++) {
                if (!g->pcr_values_mask[b])
                        continue;
                json_object *bank = json_object_new_object();
                for (unsigned p = 0; bank && p < VC_PCR_COUNT; p++) {
                        char key[8];
                        if (!(g->pcr_values_mask[b] & (1u << p)))
                                continue;
                        snprintf(key, sizeof(key), "%u", p);
                        json_object_object_add(bank, key, vc_gj_hex_array(&g->pcr_values[b][p]));
                }
                json_object_object_add(o, vc_alg_at(b)->name, bank);
        }
        return o;
}

/* Exact PCR values constrain a PCR only if both sets constrain it. */
static int pcr_values_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        for (int bi = 0; bi < VC_NUM_ALGS; bi++) {
                g->pcr_values_mask[bi] = a->pcr_values_mask[bi] & b->pcr_values_mask[bi];
                for (unsigned p = 0; p < VC_PCR_COUNT; p++) {
                        int r = 0;
                        if (g->pcr_values_mask[bi] & (1u << p))
                                r = union2(&g->pcr_values[bi][p], &a->pcr_values[bi][p], &b->pcr_values[bi][p]);
                        if (r < 0)
                                return r;
                }
                if (g->pcr_values_mask[bi])
                        g->has_pcr_values = true;
        }
        return 0;
}

static void pcr_values_done(vc_golden *g) {
        for (int b = 0; b < VC_NUM_ALGS; b++)
                for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                        vc_dset_done(&g->pcr_values[b][p]);
}

static void pcr_values_init(vc_golden *g) {
        for (int b = 0; b < VC_NUM_ALGS; b++)
                for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                        g->pcr_values[b][p].size = vc_alg_at(b)->size;
}

KIND(pcr_values, json_type_object, .done = pcr_values_done, .init = pcr_values_init);

/* ---------------- rules.secure_boot.enabled, .required, .dbx_must_contain ---------------- */

/* secure_boot_enabled: -1 not checked, 0 must be disabled, 1 must be enabled, 2 either ("any") */
static int enabled_parse(vc_gj_ctx *c, bool present, json_object *v, const char *path, const char *obj_path) {
        if (json_object_is_type(v, json_type_boolean))
                c->g->secure_boot_enabled = json_object_get_boolean(v) ? 1 : 0;
        else if (json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), "any") == 0)
                c->g->secure_boot_enabled = 2;
        else
                return vc_gj_error(c, path, "expected true, false or \"any\", got %s", vc_gj_type_word(v));
        return 0;
}

static json_object *enabled_json(const vc_golden *g) {
        if (g->secure_boot_enabled == 2)
                return json_object_new_string("any");
        return g->secure_boot_enabled >= 0 ? json_object_new_boolean(g->secure_boot_enabled) : NULL;
}

static int enabled_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        if (a->secure_boot_enabled < 0)
                g->secure_boot_enabled = b->secure_boot_enabled;
        else if (b->secure_boot_enabled < 0 || a->secure_boot_enabled == b->secure_boot_enabled)
                g->secure_boot_enabled = a->secure_boot_enabled;
        else
                g->secure_boot_enabled = 2; /* one requires on, the other off: either */
        return 0;
}

KIND(enabled, json_type_null); /* (a boolean or "any": enabled_parse checks) */

static int required_parse(vc_gj_ctx *c, bool present, json_object *v, const char *path, const char *obj_path) {
        c->g->sb_required = json_object_get_boolean(v);
        return 0;
}

static json_object *required_json(const vc_golden *g) {
        return g->sb_required ? NULL : json_object_new_boolean(false);
}

/* The variables must be measured only if both platforms measure them. */
static int required_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        g->sb_required = a->has_secure_boot && b->has_secure_boot && a->sb_required && b->sb_required;
        return 0;
}

KIND(required, json_type_boolean);

/* dbx must contain what both require. */
static int dbx_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        int r;
        g->has_dbx_must_contain = a->has_dbx_must_contain || b->has_dbx_must_contain;
        if (a->has_dbx_must_contain && b->has_dbx_must_contain) {
                if ((r = vc_dset_intersect(&g->dbx_certificates, &a->dbx_certificates, &b->dbx_certificates)) < 0)
                        return r;
                return vc_dset_intersect(&g->dbx_hashes, &a->dbx_hashes, &b->dbx_hashes);
        }
        const vc_golden *s = a->has_dbx_must_contain ? a : b;
        if ((r = vc_dset_union(&g->dbx_certificates, &s->dbx_certificates)) < 0)
                return r;
        return vc_dset_union(&g->dbx_hashes, &s->dbx_hashes);
}

static const rule_ops dbx_ops = { .merge = dbx_merge };

/* ---------------- rules.boot_chain.chains ---------------- */

static int chain_step_parse(vc_gj_ctx *c, json_object *step, const char *path, vc_chain_step *s) {
        static const char *const keys[] = { "name", "digests" };
        char p[VC_GJ_PATH + 88];
        json_object *name, *digests;
        const char *text;
        int r;
        s->digests.size = c->g->dsize;
        if ((r = vc_gj_check_keys(c, step, path, keys, ELEMENTSOF(keys), true)) < 0)
                return r;
        if (json_object_object_get_ex(step, "name", &name)) {
                snprintf(p, sizeof(p), "%s.name", path);
                if ((r = vc_gj_string(c, name, p, &text)) < 0)
                        return r;
                if (!(s->name = strdup(text)))
                        return -ENOMEM;
        }
        snprintf(p, sizeof(p), "%s.digests", path);
        if (!json_object_object_get_ex(step, "digests", &digests))
                return vc_gj_error(c, p, "missing: a boot chain step needs its allowed digests");
        if ((r = vc_gj_hex_list(c, digests, p, &s->digests)) < 0)
                return r;
        return s->digests.n == 0 ? vc_gj_error(c, p, "no allowed digest") : 0;
}

/* an empty chain allows exactly a boot with no boot application */
static int chain_parse(vc_gj_ctx *c, json_object *arr, const char *path, vc_chain *chain) {
        int r = vc_gj_want_array(c, arr, path);
        if (r < 0)
                return r;
        size_t n = json_object_array_length(arr);
        if (n > VC_GOLDEN_MAX_CHAIN_LEN)
                return vc_error_set(c->err, -E2BIG, SIZE_MAX, -1, "golden: %s: more than %u steps", path,
                                    VC_GOLDEN_MAX_CHAIN_LEN);
        chain->steps = calloc(n ? n : 1, sizeof(*chain->steps));
        if (!chain->steps)
                return -ENOMEM;
        chain->n = n;
        for (size_t i = 0; i < n; i++) {
                char p[VC_GJ_PATH];
                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                if ((r = chain_step_parse(c, json_object_array_get_idx(arr, i), p, &chain->steps[i])) < 0)
                        return r;
        }
        return 0;
}

static int chains_parse(vc_gj_ctx *c, bool present, json_object *v, const char *path, const char *obj_path) {
        vc_golden *g = c->g;
        size_t n = json_object_array_length(v);
        if (n > VC_GOLDEN_MAX_CHAINS)
                return vc_error_set(c->err, -E2BIG, SIZE_MAX, -1, "golden: %s: more than %u chains", path,
                                    VC_GOLDEN_MAX_CHAINS);
        if (n == 0)
                return vc_gj_error(c, path, "no chain: an empty list would reject every boot application");
        g->chains = calloc(n, sizeof(*g->chains));
        if (!g->chains)
                return -ENOMEM;
        g->n_chains = n;
        for (size_t i = 0; i < n; i++) {
                char p[VC_GJ_PATH + 88];
                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                int r = chain_parse(c, json_object_array_get_idx(v, i), p, &g->chains[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static json_object *chain_json(const vc_golden *g, size_t i) {
        const vc_chain *chain = &g->chains[i];
        json_object *a = json_object_new_array();
        for (size_t s = 0; a && s < chain->n; s++) {
                json_object *step = json_object_new_object();
                if (step && chain->steps[s].name)
                        json_object_object_add(step, "name", json_object_new_string(chain->steps[s].name));
                if (step)
                        json_object_object_add(step, "digests", vc_gj_hex_array(&chain->steps[s].digests));
                json_object_array_add(a, step);
        }
        return a;
}

static json_object *chains_json(const vc_golden *g) {
        return array_of(g, g->n_chains, chain_json);
}

static int chain_copy(vc_chain *dst, const vc_chain *src) {
        dst->steps = calloc(src->n ? src->n : 1, sizeof(*dst->steps));
        if (!dst->steps)
                return -ENOMEM;
        dst->n = src->n;
        for (size_t s = 0; s < src->n; s++) {
                if (src->steps[s].name && !(dst->steps[s].name = strdup(src->steps[s].name)))
                        return -ENOMEM;
                dst->steps[s].digests.size = src->steps[s].digests.size;
                int r = vc_dset_union(&dst->steps[s].digests, &src->steps[s].digests);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool chain_equal(const vc_chain *a, const vc_chain *b) {
        if (a->n != b->n)
                return false;
        for (size_t s = 0; s < a->n; s++) {
                const vc_dset *x = &a->steps[s].digests, *y = &b->steps[s].digests;
                if (x->n != y->n || memcmp(x->d, y->d, x->n * x->size) != 0)
                        return false;
        }
        return true;
}

/* Every chain of either set is kept as an alternative (identical ones once): merging
 * chains step by step would allow combinations no input allows (A's shim, B's grub). */
static int chains_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        size_t max = a->n_chains + b->n_chains;
        if (max == 0)
                return 0;
        if (max > VC_GOLDEN_MAX_CHAINS)
                return -E2BIG;
        g->chains = calloc(max, sizeof(*g->chains));
        if (!g->chains)
                return -ENOMEM;
        const vc_golden *src[2] = { a, b };
        for (int k = 0; k < 2; k++)
                for (size_t i = 0; i < src[k]->n_chains; i++) {
                        bool dup = false;
                        for (size_t j = 0; j < g->n_chains; j++)
                                dup |= chain_equal(&g->chains[j], &src[k]->chains[i]);
                        if (dup)
                                continue;
                        int r = chain_copy(&g->chains[g->n_chains++], &src[k]->chains[i]);
                        if (r < 0)
                                return r;
                }
        return 0;
}

static void chains_done(vc_golden *g) {
        for (size_t c = 0; c < g->n_chains; c++) {
                for (size_t s = 0; s < g->chains[c].n; s++) {
                        free(g->chains[c].steps[s].name);
                        vc_dset_done(&g->chains[c].steps[s].digests);
                }
                free(g->chains[c].steps);
        }
        free(g->chains);
}

KIND(chains, json_type_array, .done = chains_done);

/* ---------------- rules.kernel.cmdline ---------------- */

/* Appends a command line rule (room for it is there): 0, -ENOMEM, or -EBADMSG when a
 * regex does not compile. */
static int cmdline_push(vc_golden *g, bool is_regex, const char *text) {
        vc_string_rule *rule = &g->cmdline[g->n_cmdline];
        rule->text = strdup(text);
        if (!rule->text)
                return -ENOMEM;
        g->n_cmdline++;
        if (!is_regex)
                return 0;
        rule->is_regex = true;
        int r = vc_golden_compile_regex(rule);
        if (r < 0)
                rule->is_regex = false; /* nothing compiled to free */
        return r;
}

/* {"exact": "..."} or {"regex": "..."} */
static int cmdline_parse_one(vc_gj_ctx *c, json_object *e, const char *path) {
        static const char *const keys[] = { "exact", "regex" };
        char p[VC_GJ_PATH + 188];
        json_object *v;
        const char *s;
        int r = vc_gj_check_keys(c, e, path, keys, ELEMENTSOF(keys), true);
        if (r < 0)
                return r;
        if (json_object_object_length(e) != 1)
                return vc_gj_error(c, path, "exactly one of \"exact\" or \"regex\"");
        bool is_regex = !json_object_object_get_ex(e, "exact", &v);
        if (is_regex)
                json_object_object_get_ex(e, "regex", &v);
        snprintf(p, sizeof(p), "%s.%s", path, is_regex ? "regex" : "exact");
        if ((r = vc_gj_string(c, v, p, &s)) < 0)
                return r;
        r = cmdline_push(c->g, is_regex, s);
        return r == -EBADMSG ? vc_gj_error(c, p, "invalid POSIX extended regex") : r;
}

static int cmdline_parse(vc_gj_ctx *c, bool present, json_object *v, const char *path, const char *obj_path) {
        size_t n = json_object_array_length(v);
        if (n == 0)
                return vc_gj_error(c, path, "no allowed command line");
        c->g->cmdline = calloc(n, sizeof(*c->g->cmdline));
        if (!c->g->cmdline)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char p[VC_GJ_PATH + 88];
                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                int r = cmdline_parse_one(c, json_object_array_get_idx(v, i), p);
                if (r < 0)
                        return r;
        }
        return 0;
}

static json_object *cmdline_one_json(const vc_golden *g, size_t i) {
        json_object *e = json_object_new_object();
        if (e)
                json_object_object_add(e, g->cmdline[i].is_regex ? "regex" : "exact",
                                       json_object_new_string(g->cmdline[i].text));
        return e;
}

static json_object *cmdline_json(const vc_golden *g) {
        return array_of(g, g->n_cmdline, cmdline_one_json);
}

static bool cmdline_has(const vc_golden *g, const vc_string_rule *rule) {
        for (size_t i = 0; i < g->n_cmdline; i++)
                if (g->cmdline[i].is_regex == rule->is_regex && strcmp(g->cmdline[i].text, rule->text) == 0)
                        return true;
        return false;
}

/* Either set's command lines (the same rule once). */
static int cmdline_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        size_t n = a->n_cmdline + b->n_cmdline;
        if (n && !(g->cmdline = calloc(n, sizeof(*g->cmdline))))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const vc_string_rule *rule = i < a->n_cmdline ? &a->cmdline[i] : &b->cmdline[i - a->n_cmdline];
                /* (a regex that compiled once fails now only for want of memory) */
                int r = cmdline_has(g, rule) ? 0 : cmdline_push(g, rule->is_regex, rule->text);
                if (r < 0)
                        return r == -EBADMSG ? -ENOMEM : r;
        }
        return 0;
}

static void cmdline_done(vc_golden *g) {
        for (size_t i = 0; i < g->n_cmdline; i++) {
                free(g->cmdline[i].text);
                if (g->cmdline[i].is_regex)
                        regfree(&g->cmdline[i].re);
        }
        free(g->cmdline);
}

KIND(cmdline, json_type_array, .done = cmdline_done);

/* ---------------- rules.structure ---------------- */

static int separators_parse(vc_gj_ctx *c, bool present, json_object *v, const char *path, const char *obj_path) {
        return vc_gj_pcr_list(c, v, path, 0, &c->g->separators);
}

static json_object *separators_json(const vc_golden *g) {
        return vc_gj_pcr_array(g->separators);
}

/* A separator is required only where both require it. */
static int separators_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        if (a->has_structure && b->has_structure)
                g->separators = a->separators & b->separators;
        else
                g->separators = a->has_structure ? a->separators : b->separators;
        return 0;
}

KIND(separators, json_type_array);

/* {"7": ["EV_EFI_ACTION", ...], ...}: the event types allowed after a PCR's separator */
static int after_separator_parse(vc_gj_ctx *c, bool present, json_object *v, const char *path, const char *obj_path) {
        int r;
        json_object_object_foreach(v, key, list) {
                char p[VC_GJ_PATH + 88];
                unsigned pcr = 0;
                snprintf(p, sizeof(p), "%s.%s", path, key);
                if ((r = vc_gj_pcr_key(c, key, p, &pcr)) < 0 || (r = vc_gj_want_array(c, list, p)) < 0)
                        return r;
                for (size_t i = 0; i < json_object_array_length(list); i++) {
                        char pp[VC_GJ_PATH + 188];
                        const char *s;
                        uint32_t type;
                        snprintf(pp, sizeof(pp), "%s[%zu]", p, i);
                        if ((r = vc_gj_string(c, json_object_array_get_idx(list, i), pp, &s)) < 0)
                                return r;
                        if (vc_event_type_from_name(s, &type) < 0)
                                return vc_gj_error(c, pp, "unknown event type \"%.64s\"", s);
                        c->g->after_separator[pcr] |= 1ull << vc_event_type_index(type);
                }
        }
        return 0;
}

static json_object *after_separator_json(const vc_golden *g) {
        json_object *m = json_object_new_object();
        for (unsigned p = 0; m && p < VC_PCR_COUNT; p++) {
                char key[8];
                if (!(g->separators & (1u << p)) && !g->after_separator[p])
                        continue;
                snprintf(key, sizeof(key), "%u", p);
                json_object *types = json_object_new_array();
                for (int t = 0; types && t < VC_EVENT_TYPES; t++)
                        if (g->after_separator[p] & (1ull << t))
                                json_object_array_add(types,
                                                      json_object_new_string(vc_event_type_name(vc_event_type_at(t))));
                json_object_object_add(m, key, types);
        }
        return m;
}

static int after_separator_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        g->has_after_separator = a->has_after_separator || b->has_after_separator;
        for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                g->after_separator[p] = a->after_separator[p] | b->after_separator[p];
        return 0;
}

KIND(after_separator, json_type_object);

static int unknown_events_parse(vc_gj_ctx *c, bool present, json_object *v, const char *path, const char *obj_path) {
        const char *s;
        int r = vc_gj_string(c, v, path, &s);
        if (r < 0)
                return r;
        if (strcmp(s, "reject") == 0)
                c->g->unknown_events = VC_UNKNOWN_REJECT;
        else if (strcmp(s, "allow_listed") == 0)
                c->g->unknown_events = VC_UNKNOWN_ALLOW_LISTED;
        else
                return vc_gj_error(c, path, "expected \"reject\" or \"allow_listed\", got \"%.32s\"", s);
        return 0;
}

static json_object *unknown_events_json(const vc_golden *g) {
        return json_object_new_string(g->unknown_events == VC_UNKNOWN_ALLOW_LISTED ? "allow_listed" : "reject");
}

/* Unknown event types with allow-listed digests: the union of the lists. */
static int unknown_events_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        bool listed = a->unknown_events == VC_UNKNOWN_ALLOW_LISTED || b->unknown_events == VC_UNKNOWN_ALLOW_LISTED;
        g->unknown_events = listed ? VC_UNKNOWN_ALLOW_LISTED : VC_UNKNOWN_REJECT;
        return 0;
}

KIND(unknown_events, json_type_string);

/* (after unknown_events, which says whether there must be a list) */
static int unknown_digests_parse(vc_gj_ctx *c, bool present, json_object *v, const char *path, const char *obj_path) {
        int r = present ? vc_gj_hex_list(c, v, path, &c->g->unknown_digests) : 0;
        if (r < 0)
                return r;
        if ((c->g->unknown_events == VC_UNKNOWN_ALLOW_LISTED) != present)
                return vc_gj_error(c, obj_path,
                                   "\"unknown_events\": \"allow_listed\" and \"unknown_digests\" go together");
        return 0;
}

static json_object *unknown_digests_json(const vc_golden *g) {
        return g->unknown_events == VC_UNKNOWN_ALLOW_LISTED ? vc_gj_hex_array(&g->unknown_digests) : NULL;
}

static int unknown_digests_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        return union2(&g->unknown_digests, &a->unknown_digests, &b->unknown_digests);
}

static void unknown_digests_done(vc_golden *g) {
        vc_dset_done(&g->unknown_digests);
}

static void unknown_digests_init(vc_golden *g) {
        g->unknown_digests.size = g->dsize;
}

KIND(unknown_digests, json_type_array, .absent_too = true, .done = unknown_digests_done,
     .init = unknown_digests_init);

/* {"pcr": 0, "position": 5, "type": 1038, "digest": "<hex>", "after_separator": false}
 * (after_separator: optional, false by default) */
static int vendor_event_parse(vc_gj_ctx *c, json_object *o, const char *path) {
        static const char *const keys[] = { "pcr", "position", "type", "digest", "after_separator" };
        json_object *v[ELEMENTSOF(keys)];
        bool has[ELEMENTSOF(keys)];
        vc_vendor_event e = { 0 };
        char p[VC_GJ_PATH + 88];
        unsigned pcr = 0;
        int r = vc_gj_check_keys(c, o, path, keys, ELEMENTSOF(keys), false);
        if (r < 0 || (r = vc_gj_fields(c, o, path, keys, ELEMENTSOF(keys), 0xf, v, has)) < 0)
                return r;
        snprintf(p, sizeof(p), "%s.pcr", path);
        if ((r = vc_gj_pcr_number(c, v[0], p, &pcr)) < 0)
                return r;
        /* like pcr_values: a pin must be on an evaluated PCR, or nothing would check it */
        if (!(c->g->pcrs & (1u << pcr)))
                return vc_gj_error(c, p, "PCR %u is not in $.pcrs", pcr);
        e.pcr = pcr;
        snprintf(p, sizeof(p), "%s.position", path);
        if ((r = vc_gj_want_type(c, v[1], json_type_int, p)) < 0)
                return r;
        int64_t pos = json_object_get_int64(v[1]);
        if (pos < 0 || pos >= VC_EVENTLOG_MAX_EVENTS)
                return vc_gj_error(c, p, "position %lld out of range 0-%u", (long long) pos,
                                   VC_EVENTLOG_MAX_EVENTS - 1);
        e.position = (uint32_t) pos;
        snprintf(p, sizeof(p), "%s.type", path);
        if ((r = vc_gj_want_type(c, v[2], json_type_int, p)) < 0)
                return r;
        int64_t type = json_object_get_int64(v[2]);
        if (type < 0 || type > UINT32_MAX)
                return vc_gj_error(c, p, "event type %lld out of range", (long long) type);
        /* (a pin applies only to an event no class rule takes: structure.unknown_events) */
        e.type = (uint32_t) type;
        snprintf(p, sizeof(p), "%s.digest", path);
        if ((r = vc_gj_hex_digest(c, v[3], p, e.digest)) < 0)
                return r;
        if (has[4]) {
                snprintf(p, sizeof(p), "%s.after_separator", path);
                if ((r = vc_gj_want_type(c, v[4], json_type_boolean, p)) < 0)
                        return r;
                e.after_separator = json_object_get_boolean(v[4]);
        }
        return vc_vendor_events_add(c->g, &e);
}

static int vendor_events_parse(vc_gj_ctx *c, bool present, json_object *v, const char *path, const char *obj_path) {
        int r;
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                char p[VC_GJ_PATH + 88];
                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                if ((r = vc_gj_want_type(c, json_object_array_get_idx(v, i), json_type_object, p)) < 0 ||
                    (r = vendor_event_parse(c, json_object_array_get_idx(v, i), p)) < 0)
                        return r;
        }
        vc_vendor_events_finish(c->g);
        return 0;
}

static json_object *vendor_event_json(const vc_golden *g, size_t i) {
        const vc_vendor_event *e = &g->vendor_events[i];
        json_object *o = json_object_new_object();
        char h[2 * VC_MAX_DIGEST + 1];
        if (!o)
                return NULL;
        vc_hex(e->digest, g->dsize, h);
        json_object_object_add(o, "pcr", json_object_new_int64(e->pcr));
        json_object_object_add(o, "position", json_object_new_int64(e->position));
        json_object_object_add(o, "type", json_object_new_int64(e->type));
        json_object_object_add(o, "digest", json_object_new_string(h));
        if (e->after_separator)
                json_object_object_add(o, "after_separator", json_object_new_boolean(true));
        return o;
}

static json_object *vendor_events_json(const vc_golden *g) {
        return array_of(g, g->n_vendor_events, vendor_event_json);
}

/* Vendor event pins: either input's, each where it was. */
static int vendor_events_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        for (size_t i = 0; i < a->n_vendor_events + b->n_vendor_events; i++) {
                const vc_vendor_event *e = i < a->n_vendor_events ? &a->vendor_events[i]
                                                                  : &b->vendor_events[i - a->n_vendor_events];
                int r = vc_vendor_events_add(g, e);
                if (r < 0)
                        return r;
        }
        vc_vendor_events_finish(g);
        return 0;
}

static void vendor_events_done(vc_golden *g) {
        free(g->vendor_events);
}

KIND(vendor_events, json_type_array, .done = vendor_events_done);

static int error_separators_parse(vc_gj_ctx *c, bool present, json_object *v, const char *path, const char *obj_path) {
        c->g->error_separators = json_object_get_boolean(v);
        return 0;
}

static json_object *error_separators_json(const vc_golden *g) {
        return g->error_separators ? json_object_new_boolean(true) : NULL;
}

/* (vc_golden_merge refuses sets that differ here) */
static int error_separators_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        g->error_separators = a->error_separators;
        return 0;
}

KIND(error_separators, json_type_boolean);

/* ---------------- the table ---------------- */

#define G(field) offsetof(vc_golden, field)
#define LIST_OF(k, kind_, type, list, has_) \
        { .key = k, .kind = kind_, .at = offsetof(type, list), .has = offsetof(type, has_) }
#define DIGESTS(k, list, has) LIST_OF(k, R_DIGESTS, vc_golden, list, has)
#define STRINGS(k, list, has) LIST_OF(k, R_STRINGS, vc_golden, list, has)
/* a kind of its own; with a flag, set when it parses, and written only when set */
#define SPECIAL(k, ops_) { .key = k, .kind = R_SPECIAL, .has = NO_FLAG, .ops = &ops_ }
#define SPECIAL_FLAGGED(k, ops_, has_) { .key = k, .kind = R_SPECIAL, .has = G(has_), .ops = &ops_ }
/* an object of the rules listed, held in the set itself */
#define RULES(...)                                            \
        .rules = (const rule_spec[]) { __VA_ARGS__ },         \
        .n_rules = sizeof((const rule_spec[]) { __VA_ARGS__ }) / sizeof(rule_spec)
#define OBJECT(k, has_, ...) { .key = k, .kind = R_OBJECT, .at = 0, .has = G(has_), RULES(__VA_ARGS__) }

/* secure_boot.pk, .kek, .db: a vc_sigvar_rule */
static const rule_spec sigvar_rules[] = {
        LIST_OF("digests", R_DIGESTS, vc_sigvar_rule, digests, has_digests),
        LIST_OF("certificates", R_FINGERPRINTS, vc_sigvar_rule, certificates, has_certificates),
        LIST_OF("hashes", R_FINGERPRINTS, vc_sigvar_rule, hashes, has_hashes),
};
#define SIGVAR(k, var)                                                                       \
        { .key = k, .kind = R_OBJECT, .at = G(var), .has = G(var.present), .rules = sigvar_rules, \
          .n_rules = ELEMENTSOF(sigvar_rules) }

/* $.rules, in the order they are written (golden/README.md says what each allows) */
static const rule_spec top_rules[] = {
        SPECIAL_FLAGGED("pcr_values", pcr_values_ops, has_pcr_values),
        OBJECT("platform_firmware", has_firmware, /* the firmware's own measurements (PCRs 0-7) */
               STRINGS("s_crtm_versions", crtm_versions, has_crtm_versions),
               DIGESTS("firmware", firmware_digests, has_firmware_digests),
               DIGESTS("handoff_tables", handoff_tables, has_handoff),
               DIGESTS("configuration", configuration, has_configuration)),
        OBJECT("secure_boot", has_secure_boot, /* its configuration (PCR 7), shim's MOK variables (PCR 14) */
               SPECIAL("enabled", enabled_ops), SPECIAL("required", required_ops),
               SIGVAR("pk", pk), SIGVAR("kek", kek), SIGVAR("db", db),
               /* both lists written, whether they hold anything or not; a merge of its own */
               { .key = "dbx_must_contain", .kind = R_OBJECT, .has = G(has_dbx_must_contain), .ops = &dbx_ops,
                 RULES({ .key = "certificates", .kind = R_FINGERPRINTS, .at = G(dbx_certificates), .has = NO_FLAG },
                       { .key = "hashes", .kind = R_FINGERPRINTS, .at = G(dbx_hashes), .has = NO_FLAG }) },
               DIGESTS("authorities", authorities, has_authorities),
               DIGESTS("variables", sb_variables, has_sb_variables),
               DIGESTS("mok", mok, has_mok)),
        OBJECT("boot_chain", has_boot_chain, /* the boot applications in order (PCR 4), the GPT (PCR 5) */
               SPECIAL("chains", chains_ops),
               DIGESTS("gpt", gpt, has_gpt)),
        OBJECT("kernel", has_kernel, /* what the boot loader and the EFI stub hand it (PCRs 8, 9, 12) */
               SPECIAL("cmdline", cmdline_ops),
               DIGESTS("initrd", initrd, has_initrd),
               DIGESTS("load_options", load_options, has_load_options),
               STRINGS("boot_commands", boot_commands, has_boot_commands),
               DIGESTS("boot_files", boot_files, has_boot_files)),
        OBJECT("structure", has_structure, /* the log's shape: separators, actions, unknown events */
               SPECIAL("separators", separators_ops),
               SPECIAL_FLAGGED("after_separator", after_separator_ops, has_after_separator),
               STRINGS("actions", actions, has_actions),
               SPECIAL("unknown_events", unknown_events_ops),
               SPECIAL("unknown_digests", unknown_digests_ops),
               SPECIAL("vendor_events", vendor_events_ops),
               SPECIAL("error_separators", error_separators_ops)),
};

/* ---------------- walking the table ---------------- */

static int parse_object(vc_gj_ctx *c, const rule_spec rules[], size_t n, json_object *o, const char *path,
                        void *base);

/* A kind of its own, after its value's type is checked; sets its flag, if any, when it parses. */
static int parse_special(vc_gj_ctx *c, const rule_spec *ru, bool present, json_object *v, const char *path,
                         const char *obj_path) {
        const rule_ops *ops = ru->ops;
        int r = 0;
        if (present && ops->type == json_type_array)
                r = vc_gj_want_array(c, v, path);
        else if (present && ops->type != json_type_null)
                r = vc_gj_want_type(c, v, ops->type, path);
        if (r == 0)
                r = ops->parse(c, present, v, path, obj_path);
        if (r == 0 && present)
                set_flag(c->g, ru->has, true);
        return r;
}

/* A list or an object of rules, which sets its flag when it parses. */
static int parse_rule(vc_gj_ctx *c, const rule_spec *ru, json_object *v, const char *path, void *base) {
        int r;
        if (ru->kind == R_OBJECT)
                r = parse_object(c, ru->rules, ru->n_rules, v, path, member(base, ru->at));
        else if (ru->kind == R_STRINGS)
                r = vc_gj_string_list(c, v, path, member(base, ru->at));
        else
                r = vc_gj_hex_list(c, v, path, member(base, ru->at));
        if (r == 0)
                set_flag(base, ru->has, true);
        return r;
}

/* Every key must be a rule of the object; an empty object checks nothing and is an error. */
static int parse_object(vc_gj_ctx *c, const rule_spec rules[], size_t n, json_object *o, const char *path,
                        void *base) {
        const char *keys[16] = { NULL };
        int r;
        assert(n <= ELEMENTSOF(keys));
        for (size_t i = 0; i < n; i++)
                keys[i] = rules[i].key;
        if ((r = vc_gj_check_keys(c, o, path, keys, n, true)) < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char p[VC_GJ_PATH];
                json_object *v = NULL;
                bool present = json_object_object_get_ex(o, rules[i].key, &v);
                snprintf(p, sizeof(p), "%s.%s", path, rules[i].key);
                r = 0;
                if (rules[i].kind == R_SPECIAL && (present || rules[i].ops->absent_too))
                        r = parse_special(c, &rules[i], present, v, p, path);
                else if (rules[i].kind != R_SPECIAL && present)
                        r = parse_rule(c, &rules[i], v, p, base);
                if (r < 0)
                        return r;
        }
        return 0;
}

int vc_golden_rules_parse(vc_gj_ctx *c, json_object *rules) {
        return parse_object(c, top_rules, ELEMENTSOF(top_rules), rules, "$.rules", c->g);
}

/* The rules that are there, in table order; kinds of their own say themselves. */
static json_object *object_json(const vc_golden *g, const rule_spec rules[], size_t n, const void *base) {
        json_object *o = json_object_new_object();
        for (size_t i = 0; o && i < n; i++) {
                const rule_spec *ru = &rules[i];
                json_object *v;
                if (!flag(base, ru->has))
                        continue;
                if (ru->kind == R_SPECIAL)
                        v = ru->ops->json(g);
                else if (ru->kind == R_OBJECT)
                        v = object_json(g, ru->rules, ru->n_rules, cmember(base, ru->at));
                else if (ru->kind == R_STRINGS)
                        v = vc_gj_string_array(cmember(base, ru->at));
                else
                        v = vc_gj_hex_array(cmember(base, ru->at));
                if (v)
                        json_object_object_add(o, ru->key, v);
        }
        return o;
}

json_object *vc_golden_rules_json(const vc_golden *g) {
        return object_json(g, top_rules, ELEMENTSOF(top_rules), g);
}

/* Rules allow what either set allows: a list is the union of both, and is there when it is
 * in either. dst, a and b are the object's bases in the three sets g, ga and gb. */
static int merge_object(const rule_spec rules[], size_t n, void *dst, const void *a, const void *b, vc_golden *g,
                        const vc_golden *ga, const vc_golden *gb) {
        for (size_t i = 0; i < n; i++) {
                const rule_spec *ru = &rules[i];
                int r;
                if (ru->ops)
                        r = ru->ops->merge(g, ga, gb);
                else if (ru->kind == R_OBJECT)
                        r = merge_object(ru->rules, ru->n_rules, member(dst, ru->at), cmember(a, ru->at),
                                         cmember(b, ru->at), g, ga, gb);
                else if (ru->kind == R_STRINGS)
                        r = sunion2(member(dst, ru->at), cmember(a, ru->at), cmember(b, ru->at));
                else
                        r = union2(member(dst, ru->at), cmember(a, ru->at), cmember(b, ru->at));
                if (r < 0)
                        return r;
                if (!ru->ops)
                        set_flag(dst, ru->has, flag(a, ru->has) || flag(b, ru->has));
        }
        return 0;
}

int vc_golden_rules_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        return merge_object(top_rules, ELEMENTSOF(top_rules), g, a, b, g, a, b);
}

/* What each list of the rules, and each kind of its own, is to do. */
typedef enum list_op {
        OP_INIT = 0,   /* size the digest lists */
        OP_FINISH = 1, /* sort */
        OP_DONE = 2,   /* free */
} list_op;

static void special_op(const rule_ops *ops, vc_golden *g, list_op op) {
        if (op == OP_INIT && ops->init)
                ops->init(g);
        else if (op == OP_DONE && ops->done)
                ops->done(g);
}

static void dset_op(const rule_spec *ru, vc_dset *list, const vc_golden *g, list_op op) {
        if (op == OP_INIT)
                list->size = ru->kind == R_DIGESTS ? g->dsize : 32;
        else if (op == OP_FINISH)
                vc_dset_finish(list);
        else
                vc_dset_done(list);
}

static void walk_lists(const rule_spec rules[], size_t n, void *base, vc_golden *g, list_op op) {
        for (size_t i = 0; i < n; i++) {
                const rule_spec *ru = &rules[i];
                if (ru->kind == R_OBJECT)
                        walk_lists(ru->rules, ru->n_rules, member(base, ru->at), g, op);
                else if (ru->kind == R_SPECIAL)
                        special_op(ru->ops, g, op);
                else if (ru->kind != R_STRINGS)
                        dset_op(ru, member(base, ru->at), g, op);
                else if (op == OP_FINISH)
                        vc_sset_finish(member(base, ru->at));
                else if (op == OP_DONE)
                        vc_sset_done(member(base, ru->at));
        }
}

void vc_golden_rules_init(vc_golden *g) {
        walk_lists(top_rules, ELEMENTSOF(top_rules), g, g, OP_INIT);
}

void vc_golden_rules_finish(vc_golden *g) {
        walk_lists(top_rules, ELEMENTSOF(top_rules), g, g, OP_FINISH);
}

void vc_golden_rules_done(vc_golden *g) {
        walk_lists(top_rules, ELEMENTSOF(top_rules), g, g, OP_DONE);
}
