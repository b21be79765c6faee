/* SPDX-License-Identifier: Apache-2.0 */
/* The rules of a golden set ($.rules), as one table of rule kinds (golden-rules.c) that
 * every operation on them walks: parse, JSON output, merge, and the lists' lifetime.
 * Internal to the core. */
#pragma once

#include "golden-json.h"
#include "golden.h"

/* Sizes the digest lists for the set's bank (certificate and hash lists: SHA-256). */
void vc_golden_rules_init(vc_golden *g);
/* Frees what the rules hold. */
void vc_golden_rules_done(vc_golden *g);
/* Sorts every list (and drops duplicates), after entries were added one by one. */
void vc_golden_rules_finish(vc_golden *g);

/* Parses $.rules into c->g (its bank and $.pcrs already set). 0 or as golden-json.h. */
int vc_golden_rules_parse(vc_gj_ctx *c, json_object *rules);
/* $.rules of g; NULL when out of memory. */
json_object *vc_golden_rules_json(const vc_golden *g);
/* Into g (empty, of a's bank): rules that allow what a or b allows. 0, -ENOMEM, -E2BIG. */
int vc_golden_rules_merge(vc_golden *g, const vc_golden *a, const vc_golden *b);
