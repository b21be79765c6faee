/* SPDX-License-Identifier: Apache-2.0 */
/* Golden sets: the JSON format (parse with every error named by its JSON path, stable
 * output), and merging. The format is documented in golden/README.md. */
#include "golden.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden-internal.h"
#include "hash.h"

/* JSON paths in error messages are built in fixed buffers; a path cut short is harmless. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static void sigvar_done(vc_sigvar_rule *r) {
        vc_dset_done(&r->digests);
        vc_dset_done(&r->certificates);
        vc_dset_done(&r->hashes);
}

vc_golden *vc_golden_free(vc_golden *g) {
        if (!g)
                return NULL;
        free(g->name);
        free(g->description);
        for (int b = 0; b < VC_NUM_ALGS; b++)
                for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                        vc_dset_done(&g->pcr_values[b][p]);
        vc_sset_done(&g->crtm_versions);
        vc_dset_done(&g->firmware_digests);
        vc_dset_done(&g->handoff_tables);
        vc_dset_done(&g->configuration);
        sigvar_done(&g->pk);
        sigvar_done(&g->kek);
        sigvar_done(&g->db);
        vc_dset_done(&g->dbx_certificates);
        vc_dset_done(&g->dbx_hashes);
        vc_dset_done(&g->authorities);
        vc_dset_done(&g->sb_variables);
        vc_dset_done(&g->mok);
        for (size_t c = 0; c < g->n_chains; c++) {
                for (size_t s = 0; s < g->chains[c].n; s++) {
                        free(g->chains[c].steps[s].name);
                        vc_dset_done(&g->chains[c].steps[s].digests);
                }
                free(g->chains[c].steps);
        }
        free(g->chains);
        vc_dset_done(&g->gpt);
        for (size_t i = 0; i < g->n_cmdline; i++) {
                free(g->cmdline[i].text);
                if (g->cmdline[i].is_regex)
                        regfree(&g->cmdline[i].re);
        }
        free(g->cmdline);
        vc_dset_done(&g->initrd);
        vc_dset_done(&g->load_options);
        vc_dset_done(&g->boot_files);
        vc_sset_done(&g->boot_commands);
        vc_sset_done(&g->actions);
        vc_dset_done(&g->unknown_digests);
        free(g->vendor_events);
        free(g);
        return NULL;
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

/* Sizes of every digest set follow the golden bank. */
static void init_sizes(vc_golden *g) {
        size_t n = g->dsize;
        vc_dset *sets[] = { &g->firmware_digests, &g->handoff_tables, &g->configuration, &g->pk.digests,
                            &g->kek.digests,      &g->db.digests,      &g->authorities,   &g->sb_variables,
                            &g->mok,              &g->gpt,             &g->initrd,        &g->load_options,
                            &g->boot_files,       &g->unknown_digests };
        for (size_t i = 0; i < ELEMENTSOF(sets); i++)
                sets[i]->size = n;
        vc_dset *fp[] = { &g->pk.certificates, &g->pk.hashes, &g->kek.certificates, &g->kek.hashes,
                          &g->db.certificates, &g->db.hashes, &g->dbx_certificates, &g->dbx_hashes };
        for (size_t i = 0; i < ELEMENTSOF(fp); i++)
                fp[i]->size = 32;
        for (int b = 0; b < VC_NUM_ALGS; b++)
                for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                        g->pcr_values[b][p].size = vc_alg_at(b)->size;
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
        init_sizes(g);
        *ret = g;
        return 0;
}

/* ---------------- parsing ---------------- */

typedef struct pctx {
        vc_error *err;
        vc_golden *g;
} pctx;

static int perr(pctx *c, const char *path, const char *fmt, ...) _printf_(3, 4);
static int perr(pctx *c, const char *path, const char *fmt, ...) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return vc_error_set(c->err, -EBADMSG, SIZE_MAX, -1, "golden: %s: %s", path, msg);
}

static const char *type_word(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_null:
                return "null";
        case json_type_boolean:
                return "a boolean";
        case json_type_double:
        case json_type_int:
                return "a number";
        case json_type_object:
                return "an object";
        case json_type_array:
                return "an array";
        case json_type_string:
                return "a string";
        }
        return "?";
}

static int want_type(pctx *c, json_object *o, json_type t, const char *path) {
        if (json_object_is_type(o, t))
                return 0;
        const char *w = t == json_type_object ? "an object"
                        : t == json_type_array ? "an array"
                        : t == json_type_string ? "a string"
                        : t == json_type_int ? "an integer"
                                              : "a boolean";
        return perr(c, path, "expected %s, got %s", w, type_word(o));
}

/* Every key of o must be in allowed; an empty object is an error when nonempty. */
static int check_keys(pctx *c, json_object *o, const char *path, const char *const allowed[], bool nonempty) {
        int r = want_type(c, o, json_type_object, path);
        if (r < 0)
                return r;
        if (nonempty && json_object_object_length(o) == 0)
                return perr(c, path, "empty rule: a rule that checks nothing is not allowed");
        json_object_object_foreach(o, key, val) {
                (void) val;
                bool ok = false;
                for (size_t i = 0; allowed[i]; i++)
                        if (strcmp(key, allowed[i]) == 0)
                                ok = true;
                if (!ok) {
                        char list[256] = "";
                        for (size_t i = 0; allowed[i]; i++)
                                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                                         allowed[i]);
                        return perr(c, path, "unknown field \"%s\" (expected: %s)", key, list);
                }
        }
        return 0;
}

static int want_array(pctx *c, json_object *o, const char *path) {
        int r = want_type(c, o, json_type_array, path);
        if (r < 0)
                return r;
        if (json_object_array_length(o) > VC_GOLDEN_MAX_LIST)
                return vc_error_set(c->err, -E2BIG, SIZE_MAX, -1, "golden: %s: more than %u entries", path,
                                    VC_GOLDEN_MAX_LIST);
        return 0;
}

static int parse_hex_list(pctx *c, json_object *arr, const char *path, vc_dset *out) {
        int r = want_array(c, arr, path);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *v = json_object_array_get_idx(arr, i);
                char p[512];
                uint8_t d[VC_MAX_DIGEST];
                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                r = want_type(c, v, json_type_string, p);
                if (r < 0)
                        return r;
                const char *s = json_object_get_string(v);
                size_t sl = (size_t) json_object_get_string_len(v);
                int n = vc_unhex(s, sl, d, sizeof(d));
                if (n < 0 || sl != 2 * out->size)
                        return perr(c, p, "expected %zu bytes of hex (%zu characters), got \"%.80s\"", out->size,
                                    2 * out->size, s);
                r = vc_dset_add(out, d);
                if (r < 0)
                        return r;
        }
        vc_dset_finish(out);
        return 0;
}

/* UTF-8 text (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF) without
 * DEL or C1 controls; C0 controls other than tab, newline and carriage return only when
 * controls is set. Golden strings end up in findings and logs: they may hold C0 controls
 * (the newlines of GRUB's menuentry commands; findings turn them into spaces), while log
 * strings are text by the event decoder's rule (event.c), which allows none. */
bool vc_golden_text_valid(const uint8_t *s, size_t n, bool controls) {
        for (size_t i = 0; i < n;) {
                unsigned c = s[i], k;
                if (c < 0x80) {
                        if (c == 0x7f || (c < 0x20 && !controls && c != '\t' && c != '\n' && c != '\r'))
                                return false;
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        k = 1;
                else if (c >= 0xe0 && c <= 0xef)
                        k = 2;
                else if (c >= 0xf0 && c <= 0xf4)
                        k = 3;
                else
                        return false;
                if (n - i <= k)
                        return false;
                for (unsigned j = 1; j <= k; j++)
                        if ((s[i + j] & 0xc0) != 0x80)
                                return false;
                unsigned next = s[i + 1];
                if (c == 0xc2 && next < 0xa0) /* C1 controls */
                        return false;
                if (c == 0xed && next >= 0xa0) /* surrogates */
                        return false;
                if ((c == 0xe0 && next < 0xa0) || (c == 0xf0 && next < 0x90) || (c == 0xf4 && next >= 0x90))
                        return false; /* overlong or beyond U+10FFFF */
                i += 1 + k;
        }
        return true;
}

static int parse_string(pctx *c, json_object *v, const char *path, const char **ret) {
        int r = want_type(c, v, json_type_string, path);
        if (r < 0)
                return r;
        size_t n = (size_t) json_object_get_string_len(v);
        if (n > VC_GOLDEN_MAX_STRING)
                return vc_error_set(c->err, -E2BIG, SIZE_MAX, -1, "golden: %s: string of %zu bytes, at most %u",
                                    path, n, VC_GOLDEN_MAX_STRING);
        if (strlen(json_object_get_string(v)) != n)
                return perr(c, path, "string contains a NUL character");
        if (!vc_golden_text_valid((const uint8_t *) json_object_get_string(v), n, true))
                return perr(c, path, "string is not valid UTF-8 text (RFC 8259), or holds DEL/C1 control characters");
        *ret = json_object_get_string(v);
        return 0;
}

static int parse_string_list(pctx *c, json_object *arr, const char *path, vc_sset *out) {
        int r = want_array(c, arr, path);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                char p[512];
                const char *s;
                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                r = parse_string(c, json_object_array_get_idx(arr, i), p, &s);
                if (r < 0)
                        return r;
                r = vc_sset_add(out, s);
                if (r < 0)
                        return r;
        }
        vc_sset_finish(out);
        return 0;
}

static int parse_pcr_number(pctx *c, json_object *v, const char *path, unsigned *ret) {
        int r = want_type(c, v, json_type_int, path);
        if (r < 0)
                return r;
        int64_t n = json_object_get_int64(v);
        if (n < 0 || n >= VC_PCR_COUNT)
                return perr(c, path, "PCR %lld out of range 0-%u", (long long) n, VC_PCR_COUNT - 1);
        *ret = (unsigned) n;
        return 0;
}

static int parse_pcr_key(pctx *c, const char *key, const char *path, unsigned *ret) {
        char *end;
        if (!key[0] || key[0] < '0' || key[0] > '9')
                return perr(c, path, "\"%s\" is not a PCR index", key);
        unsigned long n = strtoul(key, &end, 10);
        if (*end || n >= VC_PCR_COUNT)
                return perr(c, path, "\"%s\" is not a PCR index 0-%u", key, VC_PCR_COUNT - 1);
        *ret = (unsigned) n;
        return 0;
}

#define FIELD(obj, key) json_object *key##_v = NULL; bool has_##key = json_object_object_get_ex(obj, #key, &key##_v)

static int parse_pcr_values(pctx *c, json_object *o, const char *path) {
        vc_golden *g = c->g;
        int r = want_type(c, o, json_type_object, path);
        if (r < 0)
                return r;
        if (json_object_object_length(o) == 0)
                return perr(c, path, "empty rule: a rule that checks nothing is not allowed");
        json_object_object_foreach(o, bank, pcrs) {
                char p[512];
                snprintf(p, sizeof(p), "%s.%s", path, bank);
                const vc_alg_info *a = vc_alg_by_name(bank);
                if (!a)
                        return perr(c, p, "unknown bank (expected sha1, sha256, sha384, sha512 or sm3_256)");
                /* Only the set's bank is quoted for it: a pin in another bank would be
                 * checked against values no quote covers. */
                if (a->alg != g->bank)
                        return perr(c, p, "a pinned value must be in the set's bank (%s)", vc_alg_lookup(g->bank)->name);
                int bi = vc_alg_index(a->alg);
                r = want_type(c, pcrs, json_type_object, p);
                if (r < 0)
                        return r;
                json_object_object_foreach(pcrs, key, list) {
                        char pp[600];
                        unsigned pcr = 0;
                        snprintf(pp, sizeof(pp), "%s.%s", p, key);
                        r = parse_pcr_key(c, key, pp, &pcr);
                        if (r < 0)
                                return r;
                        if (!(g->pcrs & (1u << pcr)))
                                return perr(c, pp, "PCR %u is pinned but not in $.pcrs: the quote would not cover it", pcr);
                        r = parse_hex_list(c, list, pp, &g->pcr_values[bi][pcr]);
                        if (r < 0)
                                return r;
                        if (g->pcr_values[bi][pcr].n == 0)
                                return perr(c, pp, "no allowed value: an empty list would reject every log");
                        g->pcr_values_mask[bi] |= 1u << pcr;
                }
        }
        g->has_pcr_values = true;
        return 0;
}

static int parse_firmware(pctx *c, json_object *o, const char *path) {
        static const char *const keys[] = { "s_crtm_versions", "firmware", "handoff_tables", "configuration", NULL };
        vc_golden *g = c->g;
        char p[512];
        int r = check_keys(c, o, path, keys, true);
        if (r < 0)
                return r;
        FIELD(o, s_crtm_versions);
        FIELD(o, firmware);
        FIELD(o, handoff_tables);
        FIELD(o, configuration);
        if (has_s_crtm_versions) {
                snprintf(p, sizeof(p), "%s.s_crtm_versions", path);
                if ((r = parse_string_list(c, s_crtm_versions_v, p, &g->crtm_versions)) < 0)
                        return r;
                g->has_crtm_versions = true;
        }
        if (has_firmware) {
                snprintf(p, sizeof(p), "%s.firmware", path);
                if ((r = parse_hex_list(c, firmware_v, p, &g->firmware_digests)) < 0)
                        return r;
                g->has_firmware_digests = true;
        }
        if (has_handoff_tables) {
                snprintf(p, sizeof(p), "%s.handoff_tables", path);
                if ((r = parse_hex_list(c, handoff_tables_v, p, &g->handoff_tables)) < 0)
                        return r;
                g->has_handoff = true;
        }
        if (has_configuration) {
                snprintf(p, sizeof(p), "%s.configuration", path);
                if ((r = parse_hex_list(c, configuration_v, p, &g->configuration)) < 0)
                        return r;
                g->has_configuration = true;
        }
        g->has_firmware = true;
        return 0;
}

static int parse_sigvar(pctx *c, json_object *o, const char *path, vc_sigvar_rule *rule, bool dbx) {
        static const char *const keys[] = { "digests", "certificates", "hashes", NULL };
        static const char *const dbx_keys[] = { "certificates", "hashes", NULL };
        char p[512];
        int r = check_keys(c, o, path, dbx ? dbx_keys : keys, true);
        if (r < 0)
                return r;
        FIELD(o, digests);
        FIELD(o, certificates);
        FIELD(o, hashes);
        if (has_digests) {
                snprintf(p, sizeof(p), "%s.digests", path);
                if ((r = parse_hex_list(c, digests_v, p, &rule->digests)) < 0)
                        return r;
                rule->has_digests = true;
        }
        if (has_certificates) {
                snprintf(p, sizeof(p), "%s.certificates", path);
                if ((r = parse_hex_list(c, certificates_v, p, &rule->certificates)) < 0)
                        return r;
                rule->has_certificates = true;
        }
        if (has_hashes) {
                snprintf(p, sizeof(p), "%s.hashes", path);
                if ((r = parse_hex_list(c, hashes_v, p, &rule->hashes)) < 0)
                        return r;
                rule->has_hashes = true;
        }
        rule->present = true;
        return 0;
}

static int parse_secure_boot(pctx *c, json_object *o, const char *path) {
        static const char *const keys[] = { "enabled", "required", "pk", "kek", "db", "dbx_must_contain", "authorities",
                                            "variables", "mok", NULL };
        vc_golden *g = c->g;
        char p[512];
        int r = check_keys(c, o, path, keys, true);
        if (r < 0)
                return r;
        FIELD(o, enabled);
        FIELD(o, required);
        FIELD(o, pk);
        FIELD(o, kek);
        FIELD(o, db);
        FIELD(o, dbx_must_contain);
        FIELD(o, authorities);
        FIELD(o, variables);
        FIELD(o, mok);
        if (has_enabled) {
                snprintf(p, sizeof(p), "%s.enabled", path);
                if (json_object_is_type(enabled_v, json_type_boolean))
                        g->secure_boot_enabled = json_object_get_boolean(enabled_v) ? 1 : 0;
                else if (json_object_is_type(enabled_v, json_type_string) &&
                         strcmp(json_object_get_string(enabled_v), "any") == 0)
                        g->secure_boot_enabled = 2;
                else
                        return perr(c, p, "expected true, false or \"any\", got %s", type_word(enabled_v));
        }
        if (has_required) {
                snprintf(p, sizeof(p), "%s.required", path);
                if ((r = want_type(c, required_v, json_type_boolean, p)) < 0)
                        return r;
                g->sb_required = json_object_get_boolean(required_v);
        }
        struct {
                bool has;
                json_object *v;
                const char *name;
                vc_sigvar_rule *rule;
        } vars[] = { { has_pk, pk_v, "pk", &g->pk }, { has_kek, kek_v, "kek", &g->kek }, { has_db, db_v, "db", &g->db } };
        for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
                if (!vars[i].has)
                        continue;
                snprintf(p, sizeof(p), "%s.%s", path, vars[i].name);
                if ((r = parse_sigvar(c, vars[i].v, p, vars[i].rule, false)) < 0)
                        return r;
        }
        if (has_dbx_must_contain) {
                vc_sigvar_rule tmp = { .certificates = { .size = 32 }, .hashes = { .size = 32 } };
                snprintf(p, sizeof(p), "%s.dbx_must_contain", path);
                r = parse_sigvar(c, dbx_must_contain_v, p, &tmp, true);
                g->dbx_certificates = tmp.certificates;
                g->dbx_hashes = tmp.hashes;
                if (r < 0)
                        return r;
                g->has_dbx_must_contain = true;
        }
        struct {
                bool has;
                json_object *v;
                const char *name;
                vc_dset *set;
                bool *flag;
        } lists[] = {
                { has_authorities, authorities_v, "authorities", &g->authorities, &g->has_authorities },
                { has_variables, variables_v, "variables", &g->sb_variables, &g->has_sb_variables },
                { has_mok, mok_v, "mok", &g->mok, &g->has_mok },
        };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                if (!lists[i].has)
                        continue;
                snprintf(p, sizeof(p), "%s.%s", path, lists[i].name);
                if ((r = parse_hex_list(c, lists[i].v, p, lists[i].set)) < 0)
                        return r;
                *lists[i].flag = true;
        }
        g->has_secure_boot = true;
        return 0;
}

static int parse_chain(pctx *c, json_object *arr, const char *path, vc_chain *chain) {
        static const char *const keys[] = { "name", "digests", NULL };
        int r = want_array(c, arr, path);
        if (r < 0)
                return r;
        /* an empty chain allows exactly a boot with no boot application */
        size_t n = json_object_array_length(arr);
        if (n > VC_GOLDEN_MAX_CHAIN_LEN)
                return vc_error_set(c->err, -E2BIG, SIZE_MAX, -1, "golden: %s: more than %u steps", path,
                                    VC_GOLDEN_MAX_CHAIN_LEN);
        chain->steps = calloc(n ? n : 1, sizeof(*chain->steps));
        if (!chain->steps)
                return -ENOMEM;
        chain->n = n;
        for (size_t i = 0; i < n; i++) {
                char p[512], pp[600];
                json_object *step = json_object_array_get_idx(arr, i);
                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                chain->steps[i].digests.size = c->g->dsize;
                if ((r = check_keys(c, step, p, keys, true)) < 0)
                        return r;
                FIELD(step, name);
                FIELD(step, digests);
                if (has_name) {
                        const char *s;
                        snprintf(pp, sizeof(pp), "%s.name", p);
                        if ((r = parse_string(c, name_v, pp, &s)) < 0)
                                return r;
                        chain->steps[i].name = strdup(s);
                        if (!chain->steps[i].name)
                                return -ENOMEM;
                }
                snprintf(pp, sizeof(pp), "%s.digests", p);
                if (!has_digests)
                        return perr(c, pp, "missing: a boot chain step needs its allowed digests");
                if ((r = parse_hex_list(c, digests_v, pp, &chain->steps[i].digests)) < 0)
                        return r;
                if (chain->steps[i].digests.n == 0)
                        return perr(c, pp, "no allowed digest");
        }
        return 0;
}

static int parse_boot_chain(pctx *c, json_object *o, const char *path) {
        static const char *const keys[] = { "chains", "gpt", NULL };
        vc_golden *g = c->g;
        char p[512];
        int r = check_keys(c, o, path, keys, true);
        if (r < 0)
                return r;
        FIELD(o, chains);
        FIELD(o, gpt);
        if (has_chains) {
                snprintf(p, sizeof(p), "%s.chains", path);
                if ((r = want_array(c, chains_v, p)) < 0)
                        return r;
                size_t n = json_object_array_length(chains_v);
                if (n > VC_GOLDEN_MAX_CHAINS)
                        return vc_error_set(c->err, -E2BIG, SIZE_MAX, -1, "golden: %s: more than %u chains", p,
                                            VC_GOLDEN_MAX_CHAINS);
                if (n == 0)
                        return perr(c, p, "no chain: an empty list would reject every boot application");
                g->chains = calloc(n, sizeof(*g->chains));
                if (!g->chains)
                        return -ENOMEM;
                g->n_chains = n;
                for (size_t i = 0; i < n; i++) {
                        char pp[600];
                        snprintf(pp, sizeof(pp), "%s[%zu]", p, i);
                        if ((r = parse_chain(c, json_object_array_get_idx(chains_v, i), pp, &g->chains[i])) < 0)
                                return r;
                }
        }
        if (has_gpt) {
                snprintf(p, sizeof(p), "%s.gpt", path);
                if ((r = parse_hex_list(c, gpt_v, p, &g->gpt)) < 0)
                        return r;
                g->has_gpt = true;
        }
        g->has_boot_chain = true;
        return 0;
}

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

static int parse_kernel(pctx *c, json_object *o, const char *path) {
        static const char *const keys[] = { "cmdline", "initrd", "load_options", "boot_commands", "boot_files", NULL };
        static const char *const rkeys[] = { "exact", "regex", NULL };
        vc_golden *g = c->g;
        char p[512];
        int r = check_keys(c, o, path, keys, true);
        if (r < 0)
                return r;
        FIELD(o, cmdline);
        FIELD(o, initrd);
        FIELD(o, load_options);
        FIELD(o, boot_commands);
        FIELD(o, boot_files);
        if (has_cmdline) {
                snprintf(p, sizeof(p), "%s.cmdline", path);
                if ((r = want_array(c, cmdline_v, p)) < 0)
                        return r;
                size_t n = json_object_array_length(cmdline_v);
                if (n == 0)
                        return perr(c, p, "no allowed command line");
                g->cmdline = calloc(n, sizeof(*g->cmdline));
                if (!g->cmdline)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        char pp[600], ppp[700];
                        const char *s;
                        json_object *e = json_object_array_get_idx(cmdline_v, i);
                        snprintf(pp, sizeof(pp), "%s[%zu]", p, i);
                        if ((r = check_keys(c, e, pp, rkeys, true)) < 0)
                                return r;
                        if (json_object_object_length(e) != 1)
                                return perr(c, pp, "exactly one of \"exact\" or \"regex\"");
                        FIELD(e, exact);
                        FIELD(e, regex);
                        (void) exact_v;
                        vc_string_rule *rule = &g->cmdline[g->n_cmdline];
                        rule->is_regex = has_regex;
                        snprintf(ppp, sizeof(ppp), "%s.%s", pp, has_exact ? "exact" : "regex");
                        if ((r = parse_string(c, has_exact ? exact_v : regex_v, ppp, &s)) < 0)
                                return r;
                        rule->text = strdup(s);
                        if (!rule->text)
                                return -ENOMEM;
                        g->n_cmdline++;
                        if (rule->is_regex) {
                                r = vc_golden_compile_regex(rule);
                                if (r < 0) {
                                        rule->is_regex = false; /* nothing compiled to free */
                                        return r == -ENOMEM ? r : perr(c, ppp, "invalid POSIX extended regex");
                                }
                        }
                }
        }
        struct {
                bool has;
                json_object *v;
                const char *name;
                vc_dset *set;
                bool *flag;
        } lists[] = {
                { has_initrd, initrd_v, "initrd", &g->initrd, &g->has_initrd },
                { has_load_options, load_options_v, "load_options", &g->load_options, &g->has_load_options },
                { has_boot_files, boot_files_v, "boot_files", &g->boot_files, &g->has_boot_files },
        };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                if (!lists[i].has)
                        continue;
                snprintf(p, sizeof(p), "%s.%s", path, lists[i].name);
                if ((r = parse_hex_list(c, lists[i].v, p, lists[i].set)) < 0)
                        return r;
                *lists[i].flag = true;
        }
        if (has_boot_commands) {
                snprintf(p, sizeof(p), "%s.boot_commands", path);
                if ((r = parse_string_list(c, boot_commands_v, p, &g->boot_commands)) < 0)
                        return r;
                g->has_boot_commands = true;
        }
        g->has_kernel = true;
        return 0;
}

static int parse_hex_digest(pctx *c, json_object *v, const char *path, uint8_t out[VC_MAX_DIGEST]) {
        int r = want_type(c, v, json_type_string, path);
        if (r < 0)
                return r;
        const char *s = json_object_get_string(v);
        size_t sl = (size_t) json_object_get_string_len(v), n = c->g->dsize;
        if (sl != 2 * n || vc_unhex(s, sl, out, VC_MAX_DIGEST) < 0)
                return perr(c, path, "expected %zu bytes of hex (%zu characters), got \"%.80s\"", n, 2 * n, s);
        return 0;
}

/* [{"pcr": 0, "position": 5, "type": 1038, "digest": "<hex>", "after_separator": false}, ...]
 * (after_separator: optional, false by default) */
static int parse_vendor_event(pctx *c, json_object *o, const char *path) {
        static const char *const keys[] = { "pcr", "position", "type", "digest", "after_separator", NULL };
        vc_golden *g = c->g;
        vc_vendor_event e = { 0 };
        char p[600];
        unsigned pcr = 0;
        int r = check_keys(c, o, path, keys, false);
        if (r < 0)
                return r;
        FIELD(o, pcr);
        FIELD(o, position);
        FIELD(o, type);
        FIELD(o, digest);
        FIELD(o, after_separator);
        if (!has_pcr || !has_position || !has_type || !has_digest)
                return perr(c, path, "missing field \"%s\"",
                            !has_pcr ? "pcr" : !has_position ? "position" : !has_type ? "type" : "digest");
        snprintf(p, sizeof(p), "%s.pcr", path);
        if ((r = parse_pcr_number(c, pcr_v, p, &pcr)) < 0)
                return r;
        /* like pcr_values: a pin must be on an evaluated PCR, or nothing would check it */
        if (!(g->pcrs & (1u << pcr)))
                return perr(c, p, "PCR %u is not in $.pcrs", pcr);
        e.pcr = pcr;
        snprintf(p, sizeof(p), "%s.position", path);
        if ((r = want_type(c, position_v, json_type_int, p)) < 0)
                return r;
        int64_t pos = json_object_get_int64(position_v);
        if (pos < 0 || pos >= VC_EVENTLOG_MAX_EVENTS)
                return perr(c, p, "position %lld out of range 0-%u", (long long) pos, VC_EVENTLOG_MAX_EVENTS - 1);
        e.position = (uint32_t) pos;
        snprintf(p, sizeof(p), "%s.type", path);
        if ((r = want_type(c, type_v, json_type_int, p)) < 0)
                return r;
        int64_t type = json_object_get_int64(type_v);
        if (type < 0 || type > UINT32_MAX)
                return perr(c, p, "event type %lld out of range", (long long) type);
        /* (a pin applies only to an event no class rule takes: structure.unknown_events) */
        e.type = (uint32_t) type;
        snprintf(p, sizeof(p), "%s.digest", path);
        if ((r = parse_hex_digest(c, digest_v, p, e.digest)) < 0)
                return r;
        if (has_after_separator) {
                snprintf(p, sizeof(p), "%s.after_separator", path);
                if ((r = want_type(c, after_separator_v, json_type_boolean, p)) < 0)
                        return r;
                e.after_separator = json_object_get_boolean(after_separator_v);
        }
        return vc_vendor_events_add(g, &e);
}

static int parse_vendor_events(pctx *c, json_object *arr, const char *path) {
        int r = want_array(c, arr, path);
        if (r < 0)
                return r;
        if (json_object_array_length(arr) > VC_GOLDEN_MAX_LIST)
                return vc_error_set(c->err, -E2BIG, SIZE_MAX, -1, "golden: %s: more than %u entries", path,
                                    VC_GOLDEN_MAX_LIST);
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                char p[600];
                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                if ((r = want_type(c, json_object_array_get_idx(arr, i), json_type_object, p)) < 0 ||
                    (r = parse_vendor_event(c, json_object_array_get_idx(arr, i), p)) < 0)
                        return r;
        }
        vc_vendor_events_finish(c->g);
        return 0;
}

static int parse_structure(pctx *c, json_object *o, const char *path) {
        static const char *const keys[] = { "separators", "after_separator", "actions", "unknown_events",
                                            "unknown_digests", "vendor_events", "error_separators", NULL };
        vc_golden *g = c->g;
        char p[512];
        int r = check_keys(c, o, path, keys, true);
        if (r < 0)
                return r;
        FIELD(o, separators);
        FIELD(o, after_separator);
        FIELD(o, actions);
        FIELD(o, unknown_events);
        FIELD(o, unknown_digests);
        FIELD(o, vendor_events);
        FIELD(o, error_separators);
        if (has_separators) {
                snprintf(p, sizeof(p), "%s.separators", path);
                if ((r = want_array(c, separators_v, p)) < 0)
                        return r;
                for (size_t i = 0; i < json_object_array_length(separators_v); i++) {
                        char pp[600];
                        unsigned pcr = 0;
                        snprintf(pp, sizeof(pp), "%s[%zu]", p, i);
                        if ((r = parse_pcr_number(c, json_object_array_get_idx(separators_v, i), pp, &pcr)) < 0)
                                return r;
                        g->separators |= 1u << pcr;
                }
        }
        if (has_after_separator) {
                snprintf(p, sizeof(p), "%s.after_separator", path);
                if ((r = want_type(c, after_separator_v, json_type_object, p)) < 0)
                        return r;
                json_object_object_foreach(after_separator_v, key, list) {
                        char pp[600];
                        unsigned pcr = 0;
                        snprintf(pp, sizeof(pp), "%s.%s", p, key);
                        if ((r = parse_pcr_key(c, key, pp, &pcr)) < 0)
                                return r;
                        if ((r = want_array(c, list, pp)) < 0)
                                return r;
                        for (size_t i = 0; i < json_object_array_length(list); i++) {
                                char ppp[700];
                                const char *s;
                                uint32_t type;
                                snprintf(ppp, sizeof(ppp), "%s[%zu]", pp, i);
                                if ((r = parse_string(c, json_object_array_get_idx(list, i), ppp, &s)) < 0)
                                        return r;
                                if (vc_event_type_from_name(s, &type) < 0)
                                        return perr(c, ppp, "unknown event type \"%.64s\"", s);
                                g->after_separator[pcr] |= 1ull << vc_event_type_index(type);
                        }
                }
                g->has_after_separator = true;
        }
        if (has_actions) {
                snprintf(p, sizeof(p), "%s.actions", path);
                if ((r = parse_string_list(c, actions_v, p, &g->actions)) < 0)
                        return r;
                g->has_actions = true;
        }
        if (has_unknown_events) {
                const char *s;
                snprintf(p, sizeof(p), "%s.unknown_events", path);
                if ((r = parse_string(c, unknown_events_v, p, &s)) < 0)
                        return r;
                if (strcmp(s, "reject") == 0)
                        g->unknown_events = VC_UNKNOWN_REJECT;
                else if (strcmp(s, "allow_listed") == 0)
                        g->unknown_events = VC_UNKNOWN_ALLOW_LISTED;
                else
                        return perr(c, p, "expected \"reject\" or \"allow_listed\", got \"%.32s\"", s);
        }
        if (has_unknown_digests) {
                snprintf(p, sizeof(p), "%s.unknown_digests", path);
                if ((r = parse_hex_list(c, unknown_digests_v, p, &g->unknown_digests)) < 0)
                        return r;
        }
        if ((g->unknown_events == VC_UNKNOWN_ALLOW_LISTED) != has_unknown_digests)
                return perr(c, path, "\"unknown_events\": \"allow_listed\" and \"unknown_digests\" go together");
        if (has_vendor_events) {
                snprintf(p, sizeof(p), "%s.vendor_events", path);
                if ((r = parse_vendor_events(c, vendor_events_v, p)) < 0)
                        return r;
        }
        if (has_error_separators) {
                snprintf(p, sizeof(p), "%s.error_separators", path);
                if ((r = want_type(c, error_separators_v, json_type_boolean, p)) < 0)
                        return r;
                g->error_separators = json_object_get_boolean(error_separators_v);
        }
        g->has_structure = true;
        return 0;
}

/* Evaluation looks only at events in $.pcrs. Events are classified by type, so most rules
 * can see events in any PCR; two classes are tied to a PCR by the classifier itself
 * (golden-classify.c): Secure Boot variables (EV_EFI_VARIABLE_DRIVER_CONFIG) only in
 * PCR 7, shim's MOK variables (EV_IPL) only in PCR 14. A rule on those without its PCR
 * would never see an event and so never fail: an error. Where a rule's measurements only
 * usually land in certain PCRs, vc_golden_lint warns. */
static int check_rule_pcrs(pctx *c) {
        const vc_golden *g = c->g;
        bool sb_variables = g->has_secure_boot && (g->secure_boot_enabled >= 0 || g->pk.present || g->kek.present ||
                                                   g->db.present || g->has_dbx_must_contain || g->has_sb_variables);
        if (g->log_kind == VC_LOG_CCEL) {
                /* registers: RTMR0 (1) holds what PCRs 1 and 7 would (UEFI 2.10 38.4.1); shim's
                 * MOK measurements land in RTMR2 among the boot loader's, as boot files */
                if (g->pcrs & ~((1u << VC_CCEL_REGISTERS) - 1))
                        return perr(c, "$.pcrs", "a CCEL set evaluates registers 0-4 (MRTD, RTMR0-3)");
                if (sb_variables && !(g->pcrs & (1u << 1)))
                        return perr(c, "$.rules.secure_boot",
                                    "checks the Secure Boot variables, measured in register 1 (RTMR0), which $.pcrs "
                                    "leaves out: the rule would never apply");
                if (g->has_mok)
                        return perr(c, "$.rules.secure_boot.mok",
                                    "a CCEL log cannot tell shim's MOK measurements from the boot loader's (both in "
                                    "RTMR2): list their digests in kernel.boot_files");
                return 0;
        }
        if (sb_variables && !(g->pcrs & (1u << 7)))
                return perr(c, "$.rules.secure_boot",
                            "checks the Secure Boot variables, measured only in PCR 7, which $.pcrs leaves out: "
                            "the rule would never apply");
        if (g->has_mok && !(g->pcrs & (1u << 14)))
                return perr(c, "$.rules.secure_boot.mok",
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

static int parse_root(pctx *c, json_object *root) {
        static const char *const keys[] = { "name", "version", "description", "log", "bank", "pcrs", "rules", NULL };
        static const char *const rule_keys[] = { "pcr_values", "platform_firmware", "secure_boot", "boot_chain",
                                                 "kernel", "structure", NULL };
        const char *s;
        int r = check_keys(c, root, "$", keys, false);
        if (r < 0)
                return r;
        FIELD(root, name);
        FIELD(root, version);
        FIELD(root, description);
        FIELD(root, log);
        FIELD(root, bank);
        FIELD(root, pcrs);
        FIELD(root, rules);
        if (!has_name || !has_version || !has_bank || !has_pcrs || !has_rules)
                return perr(c, "$", "missing field \"%s\"",
                            !has_name ? "name" : !has_version ? "version" : !has_bank ? "bank" : !has_pcrs ? "pcrs" : "rules");

        if ((r = parse_string(c, name_v, "$.name", &s)) < 0)
                return r;
        if (!s[0] || strlen(s) > 128 || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(s))
                return perr(c, "$.name", "expected 1-128 characters of [A-Za-z0-9._-], got \"%.64s\"", s);
        const char *name = s;
        if ((r = parse_string(c, bank_v, "$.bank", &s)) < 0)
                return r;
        const vc_alg_info *a = vc_alg_by_name(s);
        if (!a)
                return perr(c, "$.bank", "unknown bank \"%.32s\" (expected sha1, sha256, sha384, sha512 or sm3_256)", s);
        r = vc_golden_new_empty(a->alg, &c->g);
        if (r < 0)
                return r;
        vc_golden *g = c->g;
        g->name = strdup(name);
        if (!g->name)
                return -ENOMEM;
        if ((r = want_type(c, version_v, json_type_int, "$.version")) < 0)
                return r;
        g->version = json_object_get_int64(version_v);
        if (g->version < 1 || g->version >= INT64_MAX)
                return perr(c, "$.version", "expected an integer >= 1, got %lld", (long long) g->version);
        if (has_description) {
                if ((r = parse_string(c, description_v, "$.description", &s)) < 0)
                        return r;
                g->description = strdup(s);
                if (!g->description)
                        return -ENOMEM;
        }
        if (has_log) {
                if ((r = parse_string(c, log_v, "$.log", &s)) < 0)
                        return r;
                if (strcmp(s, "tpm") == 0)
                        g->log_kind = VC_LOG_TPM;
                else if (strcmp(s, "ccel") == 0)
                        g->log_kind = VC_LOG_CCEL;
                else
                        return perr(c, "$.log", "expected \"tpm\" or \"ccel\", got \"%.32s\"", s);
        }
        if ((r = want_array(c, pcrs_v, "$.pcrs")) < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(pcrs_v); i++) {
                char p[64];
                unsigned pcr = 0;
                snprintf(p, sizeof(p), "$.pcrs[%zu]", i);
                if ((r = parse_pcr_number(c, json_object_array_get_idx(pcrs_v, i), p, &pcr)) < 0)
                        return r;
                if (VC_GOLDEN_RESETTABLE_PCRS & (1u << pcr))
                        return perr(c, p, "PCR %u can be reset and extended by software (locality 0): its value proves "
                                    "nothing about the boot", pcr);
                g->pcrs |= 1u << pcr;
        }
        if (!g->pcrs)
                return perr(c, "$.pcrs", "no PCR: a golden set that evaluates nothing is not allowed");

        if ((r = check_keys(c, rules_v, "$.rules", rule_keys, true)) < 0)
                return r;
        json_object *v;
        if (json_object_object_get_ex(rules_v, "pcr_values", &v) && (r = parse_pcr_values(c, v, "$.rules.pcr_values")) < 0)
                return r;
        if (json_object_object_get_ex(rules_v, "platform_firmware", &v) &&
            (r = parse_firmware(c, v, "$.rules.platform_firmware")) < 0)
                return r;
        if (json_object_object_get_ex(rules_v, "secure_boot", &v) &&
            (r = parse_secure_boot(c, v, "$.rules.secure_boot")) < 0)
                return r;
        if (json_object_object_get_ex(rules_v, "boot_chain", &v) && (r = parse_boot_chain(c, v, "$.rules.boot_chain")) < 0)
                return r;
        if (json_object_object_get_ex(rules_v, "kernel", &v) && (r = parse_kernel(c, v, "$.rules.kernel")) < 0)
                return r;
        if (json_object_object_get_ex(rules_v, "structure", &v) && (r = parse_structure(c, v, "$.rules.structure")) < 0)
                return r;
        return check_rule_pcrs(c);
}

int vc_golden_parse(const char *json, size_t len, vc_golden **ret, vc_error *err) {
        pctx c = { .err = err };
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

static json_object *hex_array(const vc_dset *s) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < s->n; i++) {
                char h[2 * VC_MAX_DIGEST + 1];
                vc_hex(s->d + i * s->size, s->size, h);
                json_object_array_add(a, json_object_new_string(h));
        }
        return a;
}

static json_object *string_array(const vc_sset *s) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < s->n; i++)
                json_object_array_add(a, json_object_new_string(s->s[i]));
        return a;
}

static json_object *sigvar_json(const vc_sigvar_rule *r) {
        json_object *o = json_object_new_object();
        if (r->has_digests)
                json_object_object_add(o, "digests", hex_array(&r->digests));
        if (r->has_certificates)
                json_object_object_add(o, "certificates", hex_array(&r->certificates));
        if (r->has_hashes)
                json_object_object_add(o, "hashes", hex_array(&r->hashes));
        return o;
}

int vc_golden_to_json(const vc_golden *g, char **ret) {
        json_object *root = json_object_new_object(), *rules = json_object_new_object(), *o;
        if (!root || !rules)
                return -ENOMEM;
        json_object_object_add(root, "name", json_object_new_string(g->name ? g->name : ""));
        json_object_object_add(root, "version", json_object_new_int64(g->version));
        if (g->description)
                json_object_object_add(root, "description", json_object_new_string(g->description));
        if (g->log_kind == VC_LOG_CCEL)
                json_object_object_add(root, "log", json_object_new_string("ccel"));
        json_object_object_add(root, "bank", json_object_new_string(vc_alg_lookup(g->bank)->name));
        o = json_object_new_array();
        for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                if (g->pcrs & (1u << p))
                        json_object_array_add(o, json_object_new_int(p));
        json_object_object_add(root, "pcrs", o);

        if (g->has_pcr_values) {
                o = json_object_new_object();
                for (int b = 0; b < VC_NUM_ALGS; b++) {
                        if (!g->pcr_values_mask[b])
                                continue;
                        json_object *bank = json_object_new_object();
                        for (unsigned p = 0; p < VC_PCR_COUNT; p++) {
                                char key[8];
                                if (!(g->pcr_values_mask[b] & (1u << p)))
                                        continue;
                                snprintf(key, sizeof(key), "%u", p);
                                json_object_object_add(bank, key, hex_array(&g->pcr_values[b][p]));
                        }
                        json_object_object_add(o, vc_alg_at(b)->name, bank);
                }
                json_object_object_add(rules, "pcr_values", o);
        }
        if (g->has_firmware) {
                o = json_object_new_object();
                if (g->has_crtm_versions)
                        json_object_object_add(o, "s_crtm_versions", string_array(&g->crtm_versions));
                if (g->has_firmware_digests)
                        json_object_object_add(o, "firmware", hex_array(&g->firmware_digests));
                if (g->has_handoff)
                        json_object_object_add(o, "handoff_tables", hex_array(&g->handoff_tables));
                if (g->has_configuration)
                        json_object_object_add(o, "configuration", hex_array(&g->configuration));
                json_object_object_add(rules, "platform_firmware", o);
        }
        if (g->has_secure_boot) {
                o = json_object_new_object();
                if (g->secure_boot_enabled == 2)
                        json_object_object_add(o, "enabled", json_object_new_string("any"));
                else if (g->secure_boot_enabled >= 0)
                        json_object_object_add(o, "enabled", json_object_new_boolean(g->secure_boot_enabled));
                if (!g->sb_required)
                        json_object_object_add(o, "required", json_object_new_boolean(false));
                if (g->pk.present)
                        json_object_object_add(o, "pk", sigvar_json(&g->pk));
                if (g->kek.present)
                        json_object_object_add(o, "kek", sigvar_json(&g->kek));
                if (g->db.present)
                        json_object_object_add(o, "db", sigvar_json(&g->db));
                if (g->has_dbx_must_contain) {
                        json_object *d = json_object_new_object();
                        json_object_object_add(d, "certificates", hex_array(&g->dbx_certificates));
                        json_object_object_add(d, "hashes", hex_array(&g->dbx_hashes));
                        json_object_object_add(o, "dbx_must_contain", d);
                }
                if (g->has_authorities)
                        json_object_object_add(o, "authorities", hex_array(&g->authorities));
                if (g->has_sb_variables)
                        json_object_object_add(o, "variables", hex_array(&g->sb_variables));
                if (g->has_mok)
                        json_object_object_add(o, "mok", hex_array(&g->mok));
                json_object_object_add(rules, "secure_boot", o);
        }
        if (g->has_boot_chain) {
                o = json_object_new_object();
                if (g->n_chains) {
                        json_object *chains = json_object_new_array();
                        for (size_t c = 0; c < g->n_chains; c++) {
                                json_object *chain = json_object_new_array();
                                for (size_t s = 0; s < g->chains[c].n; s++) {
                                        json_object *step = json_object_new_object();
                                        if (g->chains[c].steps[s].name)
                                                json_object_object_add(step, "name",
                                                                       json_object_new_string(g->chains[c].steps[s].name));
                                        json_object_object_add(step, "digests", hex_array(&g->chains[c].steps[s].digests));
                                        json_object_array_add(chain, step);
                                }
                                json_object_array_add(chains, chain);
                        }
                        json_object_object_add(o, "chains", chains);
                }
                if (g->has_gpt)
                        json_object_object_add(o, "gpt", hex_array(&g->gpt));
                json_object_object_add(rules, "boot_chain", o);
        }
        if (g->has_kernel) {
                o = json_object_new_object();
                if (g->n_cmdline) {
                        json_object *a = json_object_new_array();
                        for (size_t i = 0; i < g->n_cmdline; i++) {
                                json_object *e = json_object_new_object();
                                json_object_object_add(e, g->cmdline[i].is_regex ? "regex" : "exact",
                                                       json_object_new_string(g->cmdline[i].text));
                                json_object_array_add(a, e);
                        }
                        json_object_object_add(o, "cmdline", a);
                }
                if (g->has_initrd)
                        json_object_object_add(o, "initrd", hex_array(&g->initrd));
                if (g->has_load_options)
                        json_object_object_add(o, "load_options", hex_array(&g->load_options));
                if (g->has_boot_commands)
                        json_object_object_add(o, "boot_commands", string_array(&g->boot_commands));
                if (g->has_boot_files)
                        json_object_object_add(o, "boot_files", hex_array(&g->boot_files));
                json_object_object_add(rules, "kernel", o);
        }
        if (g->has_structure) {
                o = json_object_new_object();
                json_object *a = json_object_new_array();
                for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                        if (g->separators & (1u << p))
                                json_object_array_add(a, json_object_new_int(p));
                json_object_object_add(o, "separators", a);
                if (g->has_after_separator) {
                        json_object *m = json_object_new_object();
                        for (unsigned p = 0; p < VC_PCR_COUNT; p++) {
                                char key[8];
                                if (!(g->separators & (1u << p)) && !g->after_separator[p])
                                        continue;
                                snprintf(key, sizeof(key), "%u", p);
                                json_object *types = json_object_new_array();
                                for (int t = 0; t < VC_EVENT_TYPES; t++)
                                        if (g->after_separator[p] & (1ull << t))
                                                json_object_array_add(types, json_object_new_string(
                                                                                     vc_event_type_name(vc_event_type_at(t))));
                                json_object_object_add(m, key, types);
                        }
                        json_object_object_add(o, "after_separator", m);
                }
                if (g->has_actions)
                        json_object_object_add(o, "actions", string_array(&g->actions));
                json_object_object_add(o, "unknown_events",
                                       json_object_new_string(g->unknown_events == VC_UNKNOWN_ALLOW_LISTED ? "allow_listed"
                                                                                                         : "reject"));
                if (g->unknown_events == VC_UNKNOWN_ALLOW_LISTED)
                        json_object_object_add(o, "unknown_digests", hex_array(&g->unknown_digests));
                if (g->n_vendor_events) {
                        json_object *va = json_object_new_array();
                        for (size_t i = 0; i < g->n_vendor_events; i++) {
                                const vc_vendor_event *e = &g->vendor_events[i];
                                json_object *vo = json_object_new_object();
                                char h[2 * VC_MAX_DIGEST + 1];
                                vc_hex(e->digest, g->dsize, h);
                                json_object_object_add(vo, "pcr", json_object_new_int64(e->pcr));
                                json_object_object_add(vo, "position", json_object_new_int64(e->position));
                                json_object_object_add(vo, "type", json_object_new_int64(e->type));
                                json_object_object_add(vo, "digest", json_object_new_string(h));
                                if (e->after_separator)
                                        json_object_object_add(vo, "after_separator", json_object_new_boolean(true));
                                json_object_array_add(va, vo);
                        }
                        json_object_object_add(o, "vendor_events", va);
                }
                if (g->error_separators)
                        json_object_object_add(o, "error_separators", json_object_new_boolean(true));
                json_object_object_add(rules, "structure", o);
        }
        json_object_object_add(root, "rules", rules);
        const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
        *ret = s ? strdup(s) : NULL;
        json_object_put(root);
        return *ret ? 0 : -ENOMEM;
}

/* ---------------- merge ---------------- */

static int sigvar_merge(vc_sigvar_rule *dst, const vc_sigvar_rule *a, const vc_sigvar_rule *b) {
        int r = 0;
        dst->present = a->present || b->present;
        dst->has_digests = a->has_digests || b->has_digests;
        dst->has_certificates = a->has_certificates || b->has_certificates;
        dst->has_hashes = a->has_hashes || b->has_hashes;
        if ((r = vc_dset_union(&dst->digests, &a->digests)) < 0 || (r = vc_dset_union(&dst->digests, &b->digests)) < 0 ||
            (r = vc_dset_union(&dst->certificates, &a->certificates)) < 0 ||
            (r = vc_dset_union(&dst->certificates, &b->certificates)) < 0 ||
            (r = vc_dset_union(&dst->hashes, &a->hashes)) < 0 || (r = vc_dset_union(&dst->hashes, &b->hashes)) < 0)
                return r;
        return 0;
}

static int union2(vc_dset *dst, const vc_dset *a, const vc_dset *b) {
        int r = vc_dset_union(dst, a);
        return r < 0 ? r : vc_dset_union(dst, b);
}

static int sunion2(vc_sset *dst, const vc_sset *a, const vc_sset *b) {
        int r = vc_sset_union(dst, a);
        return r < 0 ? r : vc_sset_union(dst, b);
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

static int cmdline_merge(vc_golden *g, const vc_golden *a, const vc_golden *b) {
        size_t max = a->n_cmdline + b->n_cmdline;
        if (!max)
                return 0;
        g->cmdline = calloc(max, sizeof(*g->cmdline));
        if (!g->cmdline)
                return -ENOMEM;
        const vc_golden *src[2] = { a, b };
        for (int k = 0; k < 2; k++)
                for (size_t i = 0; i < src[k]->n_cmdline; i++) {
                        const vc_string_rule *sr = &src[k]->cmdline[i];
                        bool dup = false;
                        for (size_t j = 0; j < g->n_cmdline; j++)
                                if (g->cmdline[j].is_regex == sr->is_regex && strcmp(g->cmdline[j].text, sr->text) == 0)
                                        dup = true;
                        if (dup)
                                continue;
                        vc_string_rule *d = &g->cmdline[g->n_cmdline];
                        d->text = strdup(sr->text);
                        if (!d->text)
                                return -ENOMEM;
                        g->n_cmdline++;
                        if (sr->is_regex) {
                                d->is_regex = true;
                                if (vc_golden_compile_regex(d) < 0) {
                                        d->is_regex = false;
                                        return -ENOMEM;
                                }
                        }
                }
        return 0;
}

int vc_golden_merge(const vc_golden *a, const vc_golden *b, vc_golden **ret, vc_error *err) {
        vc_golden *g = NULL;
        int r;

        vc_error_clear(err);
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
        r = vc_golden_new_empty(a->bank, &g);
        if (r < 0)
                return r;
        g->log_kind = a->log_kind;
        g->error_separators = a->error_separators;
        g->name = strdup(a->name);
        if (a->description)
                g->description = strdup(a->description);
        if (!g->name || (a->description && !g->description))
                goto nomem;
        g->version = (a->version > b->version ? a->version : b->version) + 1;
        g->pcrs = a->pcrs | b->pcrs;

        /* Exact PCR values constrain a PCR only if both sets constrain it. */
        for (int bi = 0; bi < VC_NUM_ALGS; bi++) {
                g->pcr_values_mask[bi] = a->pcr_values_mask[bi] & b->pcr_values_mask[bi];
                for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                        if (g->pcr_values_mask[bi] & (1u << p) &&
                            (r = union2(&g->pcr_values[bi][p], &a->pcr_values[bi][p], &b->pcr_values[bi][p])) < 0)
                                goto fail;
                if (g->pcr_values_mask[bi])
                        g->has_pcr_values = true;
        }

        g->has_firmware = a->has_firmware || b->has_firmware;
        g->has_crtm_versions = a->has_crtm_versions || b->has_crtm_versions;
        g->has_firmware_digests = a->has_firmware_digests || b->has_firmware_digests;
        g->has_handoff = a->has_handoff || b->has_handoff;
        g->has_configuration = a->has_configuration || b->has_configuration;
        if ((r = sunion2(&g->crtm_versions, &a->crtm_versions, &b->crtm_versions)) < 0 ||
            (r = union2(&g->firmware_digests, &a->firmware_digests, &b->firmware_digests)) < 0 ||
            (r = union2(&g->handoff_tables, &a->handoff_tables, &b->handoff_tables)) < 0 ||
            (r = union2(&g->configuration, &a->configuration, &b->configuration)) < 0)
                goto fail;

        g->has_secure_boot = a->has_secure_boot || b->has_secure_boot;
        /* The variables must be measured only if both platforms measure them. */
        g->sb_required = a->has_secure_boot && b->has_secure_boot && a->sb_required && b->sb_required;
        if (a->secure_boot_enabled < 0)
                g->secure_boot_enabled = b->secure_boot_enabled;
        else if (b->secure_boot_enabled < 0 || a->secure_boot_enabled == b->secure_boot_enabled)
                g->secure_boot_enabled = a->secure_boot_enabled;
        else
                g->secure_boot_enabled = 2; /* one requires on, the other off: either */
        if ((r = sigvar_merge(&g->pk, &a->pk, &b->pk)) < 0 || (r = sigvar_merge(&g->kek, &a->kek, &b->kek)) < 0 ||
            (r = sigvar_merge(&g->db, &a->db, &b->db)) < 0)
                goto fail;
        /* dbx must contain what both require. */
        g->has_dbx_must_contain = a->has_dbx_must_contain || b->has_dbx_must_contain;
        if (a->has_dbx_must_contain && b->has_dbx_must_contain) {
                if ((r = vc_dset_intersect(&g->dbx_certificates, &a->dbx_certificates, &b->dbx_certificates)) < 0 ||
                    (r = vc_dset_intersect(&g->dbx_hashes, &a->dbx_hashes, &b->dbx_hashes)) < 0)
                        goto fail;
        } else {
                const vc_golden *s = a->has_dbx_must_contain ? a : b;
                if ((r = vc_dset_union(&g->dbx_certificates, &s->dbx_certificates)) < 0 ||
                    (r = vc_dset_union(&g->dbx_hashes, &s->dbx_hashes)) < 0)
                        goto fail;
        }
        g->has_authorities = a->has_authorities || b->has_authorities;
        g->has_sb_variables = a->has_sb_variables || b->has_sb_variables;
        g->has_mok = a->has_mok || b->has_mok;
        if ((r = union2(&g->authorities, &a->authorities, &b->authorities)) < 0 ||
            (r = union2(&g->sb_variables, &a->sb_variables, &b->sb_variables)) < 0 ||
            (r = union2(&g->mok, &a->mok, &b->mok)) < 0)
                goto fail;

        g->has_boot_chain = a->has_boot_chain || b->has_boot_chain;
        if ((r = chains_merge(g, a, b)) < 0)
                goto fail;
        g->has_gpt = a->has_gpt || b->has_gpt;
        if ((r = union2(&g->gpt, &a->gpt, &b->gpt)) < 0)
                goto fail;

        g->has_kernel = a->has_kernel || b->has_kernel;
        if ((r = cmdline_merge(g, a, b)) < 0)
                goto fail;
        g->has_initrd = a->has_initrd || b->has_initrd;
        g->has_load_options = a->has_load_options || b->has_load_options;
        g->has_boot_files = a->has_boot_files || b->has_boot_files;
        g->has_boot_commands = a->has_boot_commands || b->has_boot_commands;
        if ((r = union2(&g->initrd, &a->initrd, &b->initrd)) < 0 ||
            (r = union2(&g->load_options, &a->load_options, &b->load_options)) < 0 ||
            (r = union2(&g->boot_files, &a->boot_files, &b->boot_files)) < 0 ||
            (r = sunion2(&g->boot_commands, &a->boot_commands, &b->boot_commands)) < 0)
                goto fail;

        g->has_structure = a->has_structure || b->has_structure;
        /* A separator is required only where both require it. */
        if (a->has_structure && b->has_structure)
                g->separators = a->separators & b->separators;
        else
                g->separators = a->has_structure ? a->separators : b->separators;
        g->has_after_separator = a->has_after_separator || b->has_after_separator;
        for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                g->after_separator[p] = a->after_separator[p] | b->after_separator[p];
        g->has_actions = a->has_actions || b->has_actions;
        if ((r = sunion2(&g->actions, &a->actions, &b->actions)) < 0)
                goto fail;
        /* Unknown event types with allow-listed digests: the union of the lists. */
        g->unknown_events = a->unknown_events == VC_UNKNOWN_ALLOW_LISTED || b->unknown_events == VC_UNKNOWN_ALLOW_LISTED
                                    ? VC_UNKNOWN_ALLOW_LISTED
                                    : VC_UNKNOWN_REJECT;
        if ((r = union2(&g->unknown_digests, &a->unknown_digests, &b->unknown_digests)) < 0)
                goto fail;
        /* Vendor event pins: either input's, each where it was. */
        for (size_t i = 0; i < a->n_vendor_events + b->n_vendor_events; i++) {
                const vc_vendor_event *e = i < a->n_vendor_events ? &a->vendor_events[i]
                                                                  : &b->vendor_events[i - a->n_vendor_events];
                if ((r = vc_vendor_events_add(g, e)) < 0)
                        goto fail;
        }
        vc_vendor_events_finish(g);
        if ((r = vc_golden_seal(g)) < 0)
                goto fail;
        *ret = g;
        return 0;
nomem:
        r = -ENOMEM;
fail:
        vc_golden_free(g);
        return r == -E2BIG ? vc_error_set(err, r, SIZE_MAX, -1, "golden merge: more than %u boot chains",
                                          VC_GOLDEN_MAX_CHAINS)
                           : r;
}
