/* SPDX-License-Identifier: Apache-2.0 */
/* The deployment's identity on a shared store (issue 18, docs/scale-out.md): the instances
 * of one deployment share a CA (vouchd init --join), publish their verdict keys to the
 * store so that every instance serves all of them, and register their golden sets' digests
 * so that a name and version are one content everywhere (ident.c). Used only when
 * d->shared: with a store of its own (SQLite) vouchd serves its own keys and trusts its own
 * golden files, as before. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "vouchd.h"

/* This instance's CA is the deployment's: its verifier id (the CA key's id) is registered
 * as the store's if the store has none yet (vs_verifier_id_register), then compared with the
 * store's. 0; -EXDEV when the store belongs to another CA's deployment (err says which, and
 * that a further instance's state dir is made with vouchd init --join); another <0 when the
 * store could not answer. */
int ident_check_ca(vouchd *d, char *err, size_t n);

/* Publishes k's public keys as this instance's (vs_verdict_keys_publish: the active key
 * with no end, the retired ones with their not_after) and waits until that is committed.
 * With stopping set, the active key is published as retired at now + the longest lifetime of
 * a verdict (interval * verdict-ttl): at a clean stop, so that a key no running instance
 * signs with leaves the deployment's keys once its verdicts have expired. 0, or <0 with err
 * (n bytes) saying why. */
int ident_publish_keys(vouchd *d, const verdict_keys *k, bool stopping, char *err, size_t n);

/* Registers the digest (the SHA-256 of its canonical JSON) of every set of t under its name
 * and version (vs_golden_register) and waits for the answer: 0 when the deployment holds
 * each with the same content (registered now, or before); -EEXIST when one or more sets
 * are registered with another content (each logged, naming the set, its version, both
 * digests and the instance that registered the stored one; none of t's sets is registered);
 * another <0 when the store could not answer. err (n bytes) says why. */
int ident_register_golden(vouchd *d, const golden_table *t, char *err, size_t n);

/* The verdict keys GET /v1/keys serves, those past their not_after (at now) left out:
 * this instance's own (d->keys: its active key first, then its retired ones), and with a
 * shared store every instance's published ones after them, one entry per key id (the
 * active ones first, then by key id). A key is active (not_after 0) when some instance signs
 * with it; else its not_after is the latest one published. ret->keys[i].pkey are references
 * (ident_keys_free). Takes seq_lock (briefly: not while the store is read). -EIO when the
 * store cannot be read (err says why), -ENOMEM. */
typedef struct ident_keys {
        size_t n;
        vkey *keys;
} ident_keys;
int ident_keys_get(vouchd *d, int64_t now, ident_keys *ret, char *err, size_t n);
void ident_keys_free(ident_keys *k);
