/* SPDX-License-Identifier: Apache-2.0 */
/* Reading and writing the golden format's JSON values (golden.c: the set; golden-rules.c:
 * its rules): every reader checks the value's type and bounds and names it by its JSON
 * path in the error ("$.rules.kernel.initrd[2]: expected 32 bytes of hex ..."). Internal
 * to the core. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "golden.h"

/* JSON paths are built in buffers of at least this size; vc_error's message cuts a path
 * long before. */
#define VC_GJ_PATH 512

/* A parse in progress: where errors go, and the set being filled. */
typedef struct vc_gj_ctx {
        vc_error *err;
        vc_golden *g;
} vc_gj_ctx;

/* Each returns 0, or sets c->err and returns -EBADMSG (-E2BIG past a cap, -ENOMEM). */
int vc_gj_error(vc_gj_ctx *c, const char *path, const char *fmt, ...) _printf_(3, 4);
/* "a boolean", "an array", ...: what o is, for messages. */
const char *vc_gj_type_word(json_object *o);
int vc_gj_want_type(vc_gj_ctx *c, json_object *o, json_type t, const char *path);
/* An array of at most VC_GOLDEN_MAX_LIST entries. */
int vc_gj_want_array(vc_gj_ctx *c, json_object *o, const char *path);
/* An object whose keys are all among the n allowed; an empty one is an error when nonempty. */
int vc_gj_check_keys(vc_gj_ctx *c, json_object *o, const char *path, const char *const allowed[], size_t n,
                     bool nonempty);
/* Looks the n keys up in o: v[i] (json-c's NULL for JSON null) and has[i]; the first key
 * of those in required (bit i: keys[i]) that is missing is an error. */
int vc_gj_fields(vc_gj_ctx *c, json_object *o, const char *path, const char *const keys[], size_t n,
                 uint32_t required, json_object *v[], bool has[]);
/* A string of at most VC_GOLDEN_MAX_STRING bytes of text (vc_golden_text_valid, controls
 * allowed), no NUL; *ret points into v. */
int vc_gj_string(vc_gj_ctx *c, json_object *v, const char *path, const char **ret);
/* Hex digests of out->size bytes, added to out (then sorted). */
int vc_gj_hex_list(vc_gj_ctx *c, json_object *arr, const char *path, vc_dset *out);
/* One hex digest of the set's digest size. */
int vc_gj_hex_digest(vc_gj_ctx *c, json_object *v, const char *path, uint8_t out[VC_MAX_DIGEST]);
/* Strings (vc_gj_string), added to out (then sorted). */
int vc_gj_string_list(vc_gj_ctx *c, json_object *arr, const char *path, vc_sset *out);
/* A PCR index 0-23: as a JSON integer, or as an object key ("7"). */
int vc_gj_pcr_number(vc_gj_ctx *c, json_object *v, const char *path, unsigned *ret);
int vc_gj_pcr_key(vc_gj_ctx *c, const char *key, const char *path, unsigned *ret);
/* An array of PCRs ("pcrs", "separators"), or'ed into *ret; one in resettable is an error. */
int vc_gj_pcr_list(vc_gj_ctx *c, json_object *arr, const char *path, uint32_t resettable, uint32_t *ret);

/* Writers; NULL when out of memory (json-c then drops the value it is added to). */
json_object *vc_gj_hex_array(const vc_dset *s);
json_object *vc_gj_string_array(const vc_sset *s);
json_object *vc_gj_pcr_array(uint32_t mask);
