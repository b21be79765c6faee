/* SPDX-License-Identifier: Apache-2.0 */
/* The golden format's JSON values, read with every error named by its JSON path, and
 * written in the one canonical form (golden-json.h). */
#include "golden-json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden-internal.h"

/* JSON paths in error messages are built in fixed buffers; a path cut short is harmless. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

int vc_gj_error(vc_gj_ctx *c, const char *path, const char *fmt, ...) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return vc_error_set(c->err, -EBADMSG, SIZE_MAX, -1, "golden: %s: %s", path, msg);
}

const char *vc_gj_type_word(json_object *o) {
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

int vc_gj_want_type(vc_gj_ctx *c, json_object *o, json_type t, const char *path) {
        if (json_object_is_type(o, t))
                return 0;
        const char *w = t == json_type_object ? "an object"
                        : t == json_type_array ? "an array"
                        : t == json_type_string ? "a string"
                        : t == json_type_int ? "an integer"
                                              : "a boolean";
        return vc_gj_error(c, path, "expected %s, got %s", w, vc_gj_type_word(o));
}

int vc_gj_check_keys(vc_gj_ctx *c, json_object *o, const char *path, const char *const allowed[], size_t n,
                     bool nonempty) {
        int r = vc_gj_want_type(c, o, json_type_object, path);
        if (r < 0)
                return r;
        if (nonempty && json_object_object_length(o) == 0)
                return vc_gj_error(c, path, "empty rule: a rule that checks nothing is not allowed");
        json_object_object_foreach(o, key, val) {
                (void) val;
                bool ok = false;
                for (size_t i = 0; i < n; i++)
                        if (strcmp(key, allowed[i]) == 0)
                                ok = true;
                if (!ok) {
                        char list[256] = "";
                        for (size_t i = 0; i < n; i++)
                                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                                         allowed[i]);
                        return vc_gj_error(c, path, "unknown field \"%s\" (expected: %s)", key, list);
                }
        }
        return 0;
}

int vc_gj_fields(vc_gj_ctx *c, json_object *o, const char *path, const char *const keys[], size_t n,
                 uint32_t required, json_object *v[], bool has[]) {
        for (size_t i = 0; i < n; i++)
                has[i] = json_object_object_get_ex(o, keys[i], &v[i]);
        for (size_t i = 0; i < n; i++)
                if (!has[i] && (required & (1u << i)))
                        return vc_gj_error(c, path, "missing field \"%s\"", keys[i]);
        return 0;
}

int vc_gj_want_array(vc_gj_ctx *c, json_object *o, const char *path) {
        int r = vc_gj_want_type(c, o, json_type_array, path);
        if (r < 0)
                return r;
        if (json_object_array_length(o) > VC_GOLDEN_MAX_LIST)
                return vc_error_set(c->err, -E2BIG, SIZE_MAX, -1, "golden: %s: more than %u entries", path,
                                    VC_GOLDEN_MAX_LIST);
        return 0;
}

/* One digest of size bytes, as hex. */
static int hex_value(vc_gj_ctx *c, json_object *v, const char *path, size_t size, uint8_t out[VC_MAX_DIGEST]) {
        int r = vc_gj_want_type(c, v, json_type_string, path);
        if (r < 0)
                return r;
        const char *s = json_object_get_string(v);
        size_t sl = (size_t) json_object_get_string_len(v);
        if (sl != 2 * size || vc_unhex(s, sl, out, VC_MAX_DIGEST) < 0)
                return vc_gj_error(c, path, "expected %zu bytes of hex (%zu characters), got \"%.80s\"", size,
                                   2 * size, s);
        return 0;
}

int vc_gj_hex_digest(vc_gj_ctx *c, json_object *v, const char *path, uint8_t out[VC_MAX_DIGEST]) {
        return hex_value(c, v, path, c->g->dsize, out);
}

/* Each entry of an array (path[i] naming it), to item. */
static int each_entry(vc_gj_ctx *c, json_object *arr, const char *path,
                      int (*item)(vc_gj_ctx *c, json_object *v, const char *path, void *userdata), void *userdata) {
        int r = vc_gj_want_array(c, arr, path);
        for (size_t i = 0; r == 0 && i < json_object_array_length(arr); i++) {
                char p[VC_GJ_PATH];
                snprintf(p, sizeof(p), "%s[%zu]", path, i);
                r = item(c, json_object_array_get_idx(arr, i), p, userdata);
        }
        return r;
}

static int hex_entry(vc_gj_ctx *c, json_object *v, const char *path, void *userdata) {
        vc_dset *out = userdata;
        uint8_t d[VC_MAX_DIGEST];
        int r = hex_value(c, v, path, out->size, d);
        return r < 0 ? r : vc_dset_add(out, d);
}

/* UTF-8 text (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF) without
 * DEL or C1 controls; C0 controls other than tab, newline and carriage return only when
 * controls is set. Golden strings end up in findings and logs: they may hold C0 controls
 * (the newlines of GRUB's menuentry commands; findings turn them into spaces), while log
 * strings are text by the event decoder's rule (event.c), which allows none. */
bool vc_golden_text_valid(const uint8_t *s, size_t n, bool controls) {
        /* the bytes after a lead byte, and the range the first of them must be in (80-bf
         * for most; RFC 3629 section 4 narrows it where a sequence would be overlong, a
         * surrogate, past U+10FFFF, or a C1 control) */
        static const struct {
                uint8_t lead_min, lead_max, follow, first_min, first_max;
        } seqs[] = {
                { 0xc2, 0xc2, 1, 0xa0, 0xbf }, { 0xc3, 0xdf, 1, 0x80, 0xbf }, { 0xe0, 0xe0, 2, 0xa0, 0xbf },
                { 0xe1, 0xec, 2, 0x80, 0xbf }, { 0xed, 0xed, 2, 0x80, 0x9f }, { 0xee, 0xef, 2, 0x80, 0xbf },
                { 0xf0, 0xf0, 3, 0x90, 0xbf }, { 0xf1, 0xf3, 3, 0x80, 0xbf }, { 0xf4, 0xf4, 3, 0x80, 0x8f },
        };
        size_t i = 0;
        while (i < n) {
                uint8_t b = s[i];
                if (b < 0x80) {
                        bool control = b < 0x20 && b != '\t' && b != '\n' && b != '\r';
                        if (b == 0x7f || (control && !controls))
                                return false;
                        i++;
                        continue;
                }
                size_t k = 0;
                while (k < ELEMENTSOF(seqs) && !(b >= seqs[k].lead_min && b <= seqs[k].lead_max))
                        k++;
                if (k == ELEMENTSOF(seqs) || n - i <= seqs[k].follow || s[i + 1] < seqs[k].first_min ||
                    s[i + 1] > seqs[k].first_max)
                        return false;
                for (size_t j = 2; j <= seqs[k].follow; j++)
                        if ((s[i + j] & 0xc0) != 0x80)
                                return false;
                i += 1 + seqs[k].follow;
        }
        return true;
}

int vc_gj_string(vc_gj_ctx *c, json_object *v, const char *path, const char **ret) {
        int r = vc_gj_want_type(c, v, json_type_string, path);
        if (r < 0)
                return r;
        size_t n = (size_t) json_object_get_string_len(v);
        if (n > VC_GOLDEN_MAX_STRING)
                return vc_error_set(c->err, -E2BIG, SIZE_MAX, -1, "golden: %s: string of %zu bytes, at most %u",
                                    path, n, VC_GOLDEN_MAX_STRING);
        if (strlen(json_object_get_string(v)) != n)
                return vc_gj_error(c, path, "string contains a NUL character");
        if (!vc_golden_text_valid((const uint8_t *) json_object_get_string(v), n, true))
                return vc_gj_error(c, path,
                                   "string is not valid UTF-8 text (RFC 8259), or holds DEL/C1 control characters");
        *ret = json_object_get_string(v);
        return 0;
}

static int string_entry(vc_gj_ctx *c, json_object *v, const char *path, void *userdata) {
        const char *s;
        int r = vc_gj_string(c, v, path, &s);
        return r < 0 ? r : vc_sset_add(userdata, s);
}

/* digests (a vc_dset) or strings (a vc_sset), sorted when read */
static int list_of(vc_gj_ctx *c, json_object *arr, const char *path, bool strings, void *out) {
        int r = each_entry(c, arr, path, strings ? string_entry : hex_entry, out);
        if (r == 0 && strings)
                vc_sset_finish(out);
        else if (r == 0)
                vc_dset_finish(out);
        return r;
}

int vc_gj_hex_list(vc_gj_ctx *c, json_object *arr, const char *path, vc_dset *out) {
        return list_of(c, arr, path, false, out);
}

int vc_gj_string_list(vc_gj_ctx *c, json_object *arr, const char *path, vc_sset *out) {
        return list_of(c, arr, path, true, out);
}

int vc_gj_pcr_number(vc_gj_ctx *c, json_object *v, const char *path, unsigned *ret) {
        int r = vc_gj_want_type(c, v, json_type_int, path);
        if (r < 0)
                return r;
        int64_t n = json_object_get_int64(v);
        if (n < 0 || n >= VC_PCR_COUNT)
                return vc_gj_error(c, path, "PCR %lld out of range 0-%u", (long long) n, VC_PCR_COUNT - 1);
        *ret = (unsigned) n;
        return 0;
}

int vc_gj_pcr_key(vc_gj_ctx *c, const char *key, const char *path, unsigned *ret) {
        char *end;
        if (!key[0] || key[0] < '0' || key[0] > '9')
                return vc_gj_error(c, path, "\"%s\" is not a PCR index", key);
        unsigned long n = strtoul(key, &end, 10);
        if (*end || n >= VC_PCR_COUNT)
                return vc_gj_error(c, path, "\"%s\" is not a PCR index 0-%u", key, VC_PCR_COUNT - 1);
        *ret = (unsigned) n;
        return 0;
}

typedef struct pcr_list {
        uint32_t resettable, *mask;
} pcr_list;

static int pcr_entry(vc_gj_ctx *c, json_object *v, const char *path, void *userdata) {
        pcr_list *l = userdata;
        unsigned pcr = 0;
        int r = vc_gj_pcr_number(c, v, path, &pcr);
        if (r < 0)
                return r;
        if (l->resettable & (1u << pcr))
                return vc_gj_error(c, path, "PCR %u can be reset and extended by software (locality 0): its value "
                                   "proves nothing about the boot", pcr);
        *l->mask |= 1u << pcr;
        return 0;
}

int vc_gj_pcr_list(vc_gj_ctx *c, json_object *arr, const char *path, uint32_t resettable, uint32_t *ret) {
        return each_entry(c, arr, path, pcr_entry, &(pcr_list) { .resettable = resettable, .mask = ret });
}

json_object *vc_gj_hex_array(const vc_dset *s) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < s->n; i++) {
                char h[2 * VC_MAX_DIGEST + 1];
                vc_hex(s->d + i * s->size, s->size, h);
                json_object_array_add(a, json_object_new_string(h));
        }
        return a;
}

json_object *vc_gj_string_array(const vc_sset *s) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < s->n; i++)
                json_object_array_add(a, json_object_new_string(s->s[i]));
        return a;
}

json_object *vc_gj_pcr_array(uint32_t mask) {
        json_object *a = json_object_new_array();
        for (unsigned p = 0; a && p < VC_PCR_COUNT; p++)
                if (mask & (1u << p))
                        json_object_array_add(a, json_object_new_int((int) p));
        return a;
}
