/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devnames.h"

typedef struct entry {
        char id[DEVNAMES_ID_LEN + 1];
        size_t line;
        size_t n;
        char *names[DEVNAMES_PER_DEVICE];
} entry;

struct devnames {
        entry *e;               /* sorted by id */
        size_t n, cap;
};

static int fail(char *err, size_t size, int r, size_t line, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static int fail(char *err, size_t size, int r, size_t line, const char *fmt, ...) {
        va_list ap;
        int k = line ? snprintf(err, size, "line %zu: ", line) : 0;
        if (k < 0 || (size_t) k >= size)
                k = 0;
        va_start(ap, fmt);
        vsnprintf(err + k, size - (size_t) k, fmt, ap);
        va_end(ap);
        return r;
}

/* What a token is, printable and short, for messages. */
static const char *shown(const char *s, size_t len, char *buf, size_t size) {
        size_t j = 0;
        for (size_t i = 0; i < len && j + 5 < size; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c >= 0x20 && c < 0x7f)
                        buf[j++] = (char) c;
                else
                        j += (size_t) snprintf(buf + j, size - j, "\\x%02x", c);
                if (i + 1 < len && j + 5 >= size) {
                        snprintf(buf + j, size - j, "...");
                        return buf;
                }
        }
        buf[j] = 0;
        return buf;
}

static bool is_hex_lower(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* A DNS host name (see devnames.h) into out (lowercase), or why not into why. */
static bool host_name(const char *s, size_t len, char *out, const char **why) {
        if (len > DEVNAMES_NAME_MAX) {
                *why = "longer than 253 characters";
                return false;
        }
        size_t label = 0;
        for (size_t i = 0; i <= len; i++) {
                char c = i < len ? s[i] : '.';
                if (c == '.') {
                        if (label == 0) {
                                *why = i == len ? "it ends with a dot (write it without)" : "an empty label";
                                return false;
                        }
                        if (s[i - 1] == '-') {
                                *why = "a label ends with '-'";
                                return false;
                        }
                        label = 0;
                } else if (c == '*') {
                        *why = "a wildcard (a device's certificate names its own hosts only)";
                        return false;
                } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-') {
                        if (label == 0 && c == '-') {
                                *why = "a label starts with '-'";
                                return false;
                        }
                        if (++label > 63) {
                                *why = "a label longer than 63 characters";
                                return false;
                        }
                } else {
                        *why = "a character that is not a letter, digit, '-' or '.'";
                        return false;
                }
                if (i < len)
                        out[i] = (char) (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        out[len] = 0;
        return true;
}

static int by_id(const void *a, const void *b) {
        return strcmp(((const entry *) a)->id, ((const entry *) b)->id);
}

static void entry_done(entry *e) {
        for (size_t i = 0; i < e->n; i++)
                free(e->names[i]);
        e->n = 0;
}

devnames *devnames_free(devnames *names) {
        if (!names)
                return NULL;
        for (size_t i = 0; i < names->n; i++)
                entry_done(&names->e[i]);
        free(names->e);
        free(names);
        return NULL;
}

/* One line's fields (not a comment, not blank) into e. */
static int parse_line(const char *s, size_t len, size_t line, entry *e, char *err, size_t size) {
        char buf[80];
        size_t i = 0, field = 0;
        while (i < len) {
                while (i < len && (s[i] == ' ' || s[i] == '\t'))
                        i++;
                if (i == len)
                        break;
                size_t start = i;
                while (i < len && s[i] != ' ' && s[i] != '\t')
                        i++;
                const char *t = s + start;
                size_t tlen = i - start;
                if (field == 0) {
                        bool ok = tlen == DEVNAMES_ID_LEN;
                        for (size_t k = 0; ok && k < tlen; k++)
                                ok = is_hex_lower(t[k]);
                        if (!ok)
                                return fail(err, size, -EBADMSG, line,
                                            "the device id must be 64 lowercase hex digits (GET /v1/devices), not "
                                            "\"%s\"", shown(t, tlen, buf, sizeof(buf)));
                        memcpy(e->id, t, tlen);
                        e->id[tlen] = 0;
                } else {
                        char name[DEVNAMES_NAME_MAX + 1];
                        const char *why = NULL;
                        if (e->n == DEVNAMES_PER_DEVICE)
                                return fail(err, size, -E2BIG, line, "more than %d names for device %.16s...",
                                            DEVNAMES_PER_DEVICE, e->id);
                        if (!host_name(t, tlen, name, &why))
                                return fail(err, size, -EBADMSG, line, "\"%s\" is not a DNS host name: %s",
                                            shown(t, tlen, buf, sizeof(buf)), why);
                        for (size_t k = 0; k < e->n; k++)
                                if (strcmp(e->names[k], name) == 0)
                                        return fail(err, size, -EEXIST, line, "the name %s twice", name);
                        if (!(e->names[e->n] = strdup(name)))
                                return -ENOMEM;
                        e->n++;
                }
                field++;
        }
        if (e->n == 0)
                return fail(err, size, -EBADMSG, line, "device %.16s... has no name (expected: DEVICE_ID NAME [NAME...])",
                            e->id);
        return 0;
}

int devnames_parse(const char *text, size_t len, devnames **ret, char *err, size_t err_size) {
        devnames *d = calloc(1, sizeof(*d));
        size_t line = 0, pos = 0;
        int r = 0;
        if (err_size)
                err[0] = 0;
        if (!d)
                return -ENOMEM;
        if (len > DEVNAMES_FILE_MAX) {
                r = fail(err, err_size, -E2BIG, 0, "the file has %zu bytes, more than %u", len, DEVNAMES_FILE_MAX);
                goto out;
        }
        if (memchr(text, 0, len)) {
                r = fail(err, err_size, -EBADMSG, 0, "a NUL byte at offset %zu: not a text file",
                         (size_t) ((const char *) memchr(text, 0, len) - text));
                goto out;
        }
        while (pos < len) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t end = nl ? (size_t) (nl - text) : len, l = end - pos;
                const char *s = text + pos;
                line++;
                pos = nl ? end + 1 : len;
                if (l && s[l - 1] == '\r')
                        l--;
                size_t k = 0;
                while (k < l && (s[k] == ' ' || s[k] == '\t'))
                        k++;
                if (k == l || s[k] == '#')
                        continue;
                if (d->n == d->cap) {
                        size_t cap = d->cap ? d->cap * 2 : 64;
                        entry *e = realloc(d->e, cap * sizeof(*e));
                        if (!e) {
                                r = -ENOMEM;
                                goto out;
                        }
                        d->e = e;
                        d->cap = cap;
                }
                entry *e = &d->e[d->n];
                memset(e, 0, sizeof(*e));
                e->line = line;
                r = parse_line(s, l, line, e, err, err_size);
                d->n++; /* its names are freed with d, also on failure */
                if (r < 0)
                        goto out;
        }
        if (d->n > 1)
                qsort(d->e, d->n, sizeof(*d->e), by_id);
        for (size_t i = 1; i < d->n; i++)
                if (strcmp(d->e[i - 1].id, d->e[i].id) == 0) {
                        size_t a = d->e[i - 1].line, b = d->e[i].line;
                        r = fail(err, err_size, -EEXIST, 0, "device %s is listed twice (lines %zu and %zu)", d->e[i].id,
                                 a < b ? a : b, a < b ? b : a);
                        goto out;
                }
out:
        if (r == -ENOMEM)
                fail(err, err_size, r, line, "out of memory");
        if (r < 0) {
                devnames_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

size_t devnames_find(const devnames *names, const char *id, const char *const **ret) {
        if (!names || !id || strlen(id) != DEVNAMES_ID_LEN)
                return 0;
        entry key;
        memcpy(key.id, id, DEVNAMES_ID_LEN + 1);
        const entry *e = bsearch(&key, names->e, names->n, sizeof(*names->e), by_id);
        if (!e)
                return 0;
        *ret = (const char *const *) e->names;
        return e->n;
}

size_t devnames_count(const devnames *names) {
        return names ? names->n : 0;
}
