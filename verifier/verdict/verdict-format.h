/* SPDX-License-Identifier: Apache-2.0 */
/* Verdicts, devices and keys for people (text) and programs (JSON in the form of
 * docs/API.md: proto field names, enums by name, bytes as lowercase hex, 64-bit integers as
 * JSON numbers). Pure: builds objects or writes to the FILE it is given. Text output
 * escapes control characters, since every string comes from a peer. */
#pragma once

#include <json-c/json.h>
#include <stdio.h>

#include "vouch.pb-c.h"

/* Each returns a new object (json_object_put it); NULL on ENOMEM. */
json_object *vfmt_verdict_json(const Vouch__V1__Verdict *v);
/* {"verdict": {...}, "verdict_bytes": hex, "signature": hex, "key_id": ...}. v is the
 * decoded verdict ("verdict": null when NULL, e.g. bytes that do not decode). */
json_object *vfmt_signed_json(const Vouch__V1__SignedVerdict *sv, const Vouch__V1__Verdict *v);
json_object *vfmt_device_json(const Vouch__V1__DeviceInfo *d);
json_object *vfmt_keys_json(const Vouch__V1__VerdictKeys *k);

/* The JSON text: pretty (multi-line) or one line (for streams). Valid until o is put. */
const char *vfmt_json_text(json_object *o, int pretty);

/* A verdict, one field per line, then its findings. */
void vfmt_verdict_text(FILE *f, const Vouch__V1__Verdict *v);
/* One line per device / verdict / key (for lists); a header line for each list. */
void vfmt_verdict_line_header(FILE *f);
void vfmt_verdict_line(FILE *f, const Vouch__V1__Verdict *v);
void vfmt_device_line_header(FILE *f);
void vfmt_device_line(FILE *f, const Vouch__V1__DeviceInfo *d);
void vfmt_keys_text(FILE *f, const Vouch__V1__VerdictKeys *k);

/* s with control characters (C0, DEL, C1), bytes that are not valid UTF-8 and backslash
 * escaped (\n, \t, \\, \xNN), at most max bytes of input (then "..."), into f. NULL prints
 * as "". */
void vfmt_put_safe(FILE *f, const char *s, size_t max);
