/* SPDX-License-Identifier: Apache-2.0 */
/* Verdicts, devices and keys as text and JSON; see verdict-format.h. */
#include <stdlib.h>
#include <string.h>

#include "vc-util.h"
#include "verdict-check.h"
#include "verdict-format.h"

#define TEXT_MAX 1024 /* bytes of one peer string shown in text output */

static json_object *hex_json(const ProtobufCBinaryData *b) {
        char *hex = vc_hex_dup(b->data, b->len);
        json_object *o = hex ? json_object_new_string(hex) : NULL;
        free(hex);
        return o;
}

static size_t utf8_printable_len(const unsigned char *p);

/* JSON strings are UTF-8 (RFC 8259, 8.1): a byte that is not part of a valid sequence
 * becomes U+FFFD. json-c escapes the control characters. */
static json_object *str_json(const char *s) {
        const unsigned char *p = (const unsigned char *) (s ? s : "");
        size_t n = strlen((const char *) p), o = 0;
        char *out = malloc(3 * n + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < n;) {
                size_t k = p[i] < 0x80 ? 1 : utf8_printable_len(p + i);
                if (k == 0 && p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] < 0xa0)
                        k = 2; /* a C1 control is valid UTF-8: json-c passes it, escaped or not */
                if (k == 0) {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                } else {
                        memcpy(out + o, p + i, k);
                        o += k;
                        i += k;
                }
        }
        out[o] = '\0';
        json_object *j = json_object_new_string_len(out, (int) o);
        free(out);
        return j;
}

static json_object *status_json(int status) {
        const char *n = vv_status_name(status);
        /* proto3 enums are open: a value this build does not know stays a number */
        return n ? json_object_new_string(n) : json_object_new_int64(status);
}

/* The JSON form of each message: the fields shown, in this order (docs/API.md). */
typedef struct json_form {
        const ProtobufCMessageDescriptor *desc;
        const char *const *fields;      /* NULL-terminated */
} json_form;

static const json_form json_forms[] = {
        { &vouch__v1__verdict__descriptor,
          (const char *const[]) { "device_id", "status", "findings", "issued_at", "expires_at", "nonce", "golden_name",
                                  "golden_version", "boot_count", "ak_name", "sequence", "verifier_id",
                                  "global_sequence", "ek_anchor", "device_key", NULL } },
        { &vouch__v1__finding__descriptor,
          (const char *const[]) { "rule", "pcr", "event", "event_type", "expected", "actual", "explanation", NULL } },
        { &vouch__v1__device_info__descriptor,
          (const char *const[]) { "id", "approved", "revoked", "golden", "enrolled_at", "status", "sequence",
                                  "connected", NULL } },
        { &vouch__v1__verdict_keys__descriptor, (const char *const[]) { "keys", NULL } },
        { &vouch__v1__verdict_key__descriptor, (const char *const[]) { "key_id", "spki", "active", "not_after", NULL } },
};

static json_object *message_json(const ProtobufCMessage *m);

static json_object *enum_json(const ProtobufCEnumDescriptor *d, int value) {
        if (d == &vouch__v1__ek_anchor__descriptor)
                return json_object_new_string(value == VOUCH__V1__EK_ANCHOR__EK_ANCHOR_KEY ? "KEY" : "CERTIFICATE");
        return status_json(value);
}

/* A field that is not repeated: strings as UTF-8, bytes as lowercase hex, integers as
 * numbers (a uint64 beyond INT64_MAX would not survive as a JSON number anyway). */
static json_object *field_json(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
        const void *p = (const char *) m + f->offset;
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: return str_json(*(char *const *) p);
        case PROTOBUF_C_TYPE_BYTES: return hex_json(p);
        case PROTOBUF_C_TYPE_BOOL: return json_object_new_boolean(*(const protobuf_c_boolean *) p);
        case PROTOBUF_C_TYPE_INT32: return json_object_new_int64(*(const int32_t *) p);
        case PROTOBUF_C_TYPE_UINT32: return json_object_new_int64(*(const uint32_t *) p);
        case PROTOBUF_C_TYPE_INT64: return json_object_new_int64(*(const int64_t *) p);
        case PROTOBUF_C_TYPE_UINT64: return json_object_new_uint64(*(const uint64_t *) p);
        case PROTOBUF_C_TYPE_ENUM: return enum_json(f->descriptor, *(const int *) p);
        default: return NULL; /* no other type is shown */
        }
}

/* A repeated message field: an array of the messages' JSON (one that cannot be made, out of
 * memory, is left out); NULL when the array cannot be made. */
static json_object *repeated_json(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
        size_t n = *(const size_t *) ((const char *) m + f->quantifier_offset);
        const ProtobufCMessage *const *items = *(const ProtobufCMessage *const *const *) ((const char *) m + f->offset);
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < n; i++) {
                json_object *o = message_json(items[i]);
                if (o)
                        json_object_array_add(a, o);
        }
        return a;
}

static json_object *message_json(const ProtobufCMessage *m) {
        const json_form *form = NULL;
        for (size_t i = 0; i < sizeof(json_forms) / sizeof(json_forms[0]); i++)
                if (json_forms[i].desc == m->descriptor)
                        form = &json_forms[i];
        json_object *o = form ? json_object_new_object() : NULL;
        for (const char *const *name = form ? form->fields : NULL; o && *name; name++) {
                const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(form->desc, *name);
                json_object *v = f->label == PROTOBUF_C_LABEL_REPEATED ? repeated_json(m, f) : field_json(m, f);
                if (!v && f->label == PROTOBUF_C_LABEL_REPEATED) {
                        json_object_put(o);
                        return NULL;
                }
                json_object_object_add(o, *name, v);
        }
        return o;
}

json_object *vfmt_verdict_json(const Vouch__V1__Verdict *v) {
        return message_json(&v->base);
}

json_object *vfmt_signed_json(const Vouch__V1__SignedVerdict *sv, const Vouch__V1__Verdict *v) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "verdict", v ? vfmt_verdict_json(v) : NULL);
        json_object_object_add(o, "verdict_bytes", hex_json(&sv->verdict));
        json_object_object_add(o, "signature", hex_json(&sv->signature));
        json_object_object_add(o, "key_id", str_json(sv->key_id));
        return o;
}

json_object *vfmt_device_json(const Vouch__V1__DeviceInfo *d) {
        return message_json(&d->base);
}

json_object *vfmt_keys_json(const Vouch__V1__VerdictKeys *k) {
        return message_json(&k->base);
}

const char *vfmt_json_text(json_object *o, int pretty) {
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE;
        flags |= pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN;
        return json_object_to_json_string_ext(o, flags);
}

/* Length of the valid UTF-8 sequence at p (RFC 3629, 4: no overlong forms, no surrogates,
 * at most U+10FFFF) that is not a C1 control character; 0 if there is none. */
static size_t utf8_printable_len(const unsigned char *p) {
        unsigned c = p[0];
        if (c >= 0xc2 && c <= 0xdf)
                return (p[1] & 0xc0) == 0x80 && !(c == 0xc2 && p[1] < 0xa0) ? 2 : 0;
        if (c >= 0xe0 && c <= 0xef) {
                unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
                return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
        }
        if (c >= 0xf0 && c <= 0xf4) {
                unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
                return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
        }
        return 0;
}

void vfmt_put_safe(FILE *f, const char *s, size_t max) {
        const unsigned char *p = (const unsigned char *) s;
        size_t i = 0;
        if (!s)
                return;
        while (p[i] && i < max) {
                unsigned char c = p[i];
                size_t n = c >= 0x80 ? utf8_printable_len(p + i) : 1;
                if (n > 1 && i + n > max)
                        break; /* a character is not cut in half */
                if (c == '\n')
                        fputs("\\n", f);
                else if (c == '\t')
                        fputs("\\t", f);
                else if (c == '\\')
                        fputs("\\\\", f);
                else if (c < 0x20 || c == 0x7f || n == 0) {
                        fprintf(f, "\\x%02x", c); /* controls, C1, bytes that are not UTF-8 */
                        n = 1;
                } else
                        fwrite(p + i, 1, n, f);
                i += n;
        }
        if (p[i])
                fputs("...", f);
}

static void put_hex(FILE *f, const ProtobufCBinaryData *b) {
        for (size_t i = 0; i < b->len && i < TEXT_MAX; i++)
                fprintf(f, "%02x", b->data[i]);
        if (b->len == 0)
                fputs("(none)", f);
}

static void put_status(FILE *f, int status) {
        const char *n = vv_status_name(status);
        if (n)
                fputs(n, f);
        else
                fprintf(f, "status %d (unknown to this vouchctl)", status);
}

void vfmt_verdict_text(FILE *f, const Vouch__V1__Verdict *v) {
        char t[32];
        fputs("device:       ", f);
        vfmt_put_safe(f, v->device_id, TEXT_MAX);
        fputs("\nstatus:       ", f);
        put_status(f, v->status);
        fprintf(f, "\nissued:       %s\n", vv_format_time(v->issued_at, t, sizeof(t)));
        fprintf(f, "expires:      %s\n", vv_format_time(v->expires_at, t, sizeof(t)));
        fputs("golden:       ", f);
        vfmt_put_safe(f, v->golden_name && v->golden_name[0] ? v->golden_name : "(none)", TEXT_MAX);
        fprintf(f, " (version %lld)\n", (long long) v->golden_version);
        fprintf(f, "boot count:   %u\n", v->boot_count);
        fprintf(f, "anchored by:  %s\n", v->ek_anchor == VOUCH__V1__EK_ANCHOR__EK_ANCHOR_KEY
                                                  ? "its EK key (allowlisted; no EK certificate)"
                                                  : "an EK certificate");
        fprintf(f, "sequence:     %llu (global %llu)\n", (unsigned long long) v->sequence,
                (unsigned long long) v->global_sequence);
        fputs("verifier:     ", f);
        vfmt_put_safe(f, v->verifier_id, TEXT_MAX);
        fputs("\nnonce:        ", f);
        put_hex(f, &v->nonce);
        fputs("\nak name:      ", f);
        put_hex(f, &v->ak_name);
        if (v->device_key.len) {
                fputs("\ndevice key:   ", f);
                put_hex(f, &v->device_key);
                fputs(" (SHA-256 of its public key; proven by the AK)", f);
        }
        fprintf(f, "\nfindings:     %zu\n", v->n_findings);
        for (size_t i = 0; i < v->n_findings; i++) {
                const Vouch__V1__Finding *fd = v->findings[i];
                fputs("  [", f);
                vfmt_put_safe(f, fd->rule, TEXT_MAX);
                fputc(']', f);
                if (fd->pcr >= 0)
                        fprintf(f, " PCR %d", fd->pcr);
                if (fd->event >= 0)
                        fprintf(f, " event %lld", (long long) fd->event);
                if (fd->event_type && fd->event_type[0]) {
                        fputs(" (", f);
                        vfmt_put_safe(f, fd->event_type, TEXT_MAX);
                        fputc(')', f);
                }
                fputs(": ", f);
                vfmt_put_safe(f, fd->explanation, TEXT_MAX);
                fputc('\n', f);
                if (fd->expected && fd->expected[0]) {
                        fputs("      expected: ", f);
                        vfmt_put_safe(f, fd->expected, TEXT_MAX);
                        fputc('\n', f);
                }
                if (fd->actual && fd->actual[0]) {
                        fputs("      actual:   ", f);
                        vfmt_put_safe(f, fd->actual, TEXT_MAX);
                        fputc('\n', f);
                }
        }
}

void vfmt_verdict_line_header(FILE *f) {
        fprintf(f, "%-64s  %-9s  %-20s  %-20s  %8s  %8s\n", "DEVICE", "STATUS", "ISSUED", "EXPIRES", "SEQ", "GLOBAL");
}

void vfmt_verdict_line(FILE *f, const Vouch__V1__Verdict *v) {
        char t1[32], t2[32];
        const char *st = vv_status_name(v->status);
        vfmt_put_safe(f, v->device_id, 128);
        size_t n = v->device_id ? strlen(v->device_id) : 0;
        for (; n < 64; n++)
                fputc(' ', f);
        fprintf(f, "  %-9s  %-20s  %-20s  %8llu  %8llu\n", st ? st : "?", vv_format_time(v->issued_at, t1, sizeof(t1)),
                vv_format_time(v->expires_at, t2, sizeof(t2)), (unsigned long long) v->sequence,
                (unsigned long long) v->global_sequence);
}

void vfmt_device_line_header(FILE *f) {
        fprintf(f, "%-64s  %-9s  %-8s  %-7s  %-9s  %-20s  %s\n", "DEVICE", "STATUS", "APPROVED", "REVOKED", "CONNECTED",
                "ENROLLED", "GOLDEN");
}

void vfmt_device_line(FILE *f, const Vouch__V1__DeviceInfo *d) {
        char t[32];
        const char *st = vv_status_name(d->status);
        vfmt_put_safe(f, d->id, 128);
        size_t n = d->id ? strlen(d->id) : 0;
        for (; n < 64; n++)
                fputc(' ', f);
        fprintf(f, "  %-9s  %-8s  %-7s  %-9s  %-20s  ", st ? st : "?", d->approved ? "yes" : "no", d->revoked ? "yes" : "no",
                d->connected ? "yes" : "no", vv_format_time(d->enrolled_at, t, sizeof(t)));
        vfmt_put_safe(f, d->golden && d->golden[0] ? d->golden : "(default)", TEXT_MAX);
        fputc('\n', f);
}

void vfmt_keys_text(FILE *f, const Vouch__V1__VerdictKeys *k) {
        char t[32];
        for (size_t i = 0; i < k->n_keys; i++) {
                const Vouch__V1__VerdictKey *e = k->keys[i];
                fputs("key ", f);
                vfmt_put_safe(f, e->key_id, 128);
                fprintf(f, "  %s", e->active ? "active" : "retired");
                if (e->not_after)
                        fprintf(f, ", verifies verdicts issued before %s", vv_format_time(e->not_after, t, sizeof(t)));
                fputc('\n', f);
        }
}
