/* SPDX-License-Identifier: Apache-2.0 */
#include "replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void vc_replay_init(vc_replay *r) {
        memset(r, 0, sizeof(*r));
}

static int set_locality(vc_replay *r, const vc_event *ev, uint8_t locality, vc_error *err) {
        if (r->pcr0_started)
                return vc_error_set(err, -EBADMSG, ev->offset, (long) ev->index,
                                    "%s sets PCR 0's starting locality after PCR 0 was already extended",
                                    vc_event_type_name(ev->type));
        r->locality = locality;
        return 0;
}

static void setup_banks(const vc_eventlog *log, vc_replay *r) {
        if (r->pcrs.n_banks || r->n_skipped_algs)
                return;
        if (log->format == VC_LOG_SHA1_LEGACY) {
                vc_pcr_set_bank(&r->pcrs, VC_ALG_SHA1);
                return;
        }
        for (uint32_t i = 0; i < log->spec.n_algs; i++) {
                /* A declared algorithm we cannot compute is parsed (its size is declared)
                 * but not replayed: PFP 1.05 10.4.5.1 lets a parser skip unknown digests. */
                if (!vc_pcr_set_bank(&r->pcrs, log->spec.algs[i].alg))
                        r->skipped_algs[r->n_skipped_algs++] = log->spec.algs[i].alg;
        }
}

static void drop_bank(vc_replay *r, uint32_t b) {
        if (r->n_skipped_algs < VC_EVENTLOG_MAX_ALGS)
                r->skipped_algs[r->n_skipped_algs++] = r->pcrs.banks[b].alg;
        memmove(&r->pcrs.banks[b], &r->pcrs.banks[b + 1], (r->pcrs.n_banks - b - 1) * sizeof(r->pcrs.banks[0]));
        r->pcrs.n_banks--;
}

int vc_replay_update(vc_hasher *h, const vc_eventlog *log, vc_replay *r, vc_event_check *checks, vc_error *err) {
        setup_banks(log, r);
        for (; r->next_event < log->n_events; r->next_event++) {
                const vc_event *ev = &log->events[r->next_event];
                int k;

                if (checks) {
                        k = vc_event_check_digests(h, ev, &checks[r->next_event]);
                        if (k < 0)
                                return vc_error_set(err, k, ev->offset, (long) ev->index, "hashing failed");
                }
                /* The Spec ID event heads a crypto-agile log and is never extended. */
                if (r->next_event == 0 && log->format == VC_LOG_CRYPTO_AGILE)
                        continue;
                if (ev->type == EV_NO_ACTION) {
                        if (ev->pcr == 0 && ev->data_size == 17 && memcmp(ev->data, "StartupLocality\0", 16) == 0) {
                                k = set_locality(r, ev, ev->data[16], err);
                                if (k < 0)
                                        return k;
                        }
                        continue;
                }
                if (ev->pcr == VC_PCR_NONE)
                        continue;
                if (ev->type == EV_EFI_HCRTM_EVENT && ev->pcr == 0 && !r->pcr0_started) {
                        k = set_locality(r, ev, 4, err);
                        if (k < 0)
                                return k;
                }
                for (uint32_t b = 0; b < r->pcrs.n_banks; b++) {
                        vc_pcr_bank *bank = &r->pcrs.banks[b];
                        const vc_event_digest *d = vc_event_find_digest(ev, bank->alg);
                        uint8_t *v = bank->values[ev->pcr];
                        if (!d) {
                                /* The event does not extend this bank: its values are
                                 * unknowable from the log, so the bank is dropped. */
                                drop_bank(r, b--);
                                continue;
                        }
                        if (!(bank->mask & (1u << ev->pcr))) {
                                memset(v, 0, bank->size);
                                if (ev->pcr == 0)
                                        v[bank->size - 1] = r->locality;
                        }
                        k = vc_hasher_digest2(h, bank->alg, v, bank->size, d->bytes, d->size, v);
                        if (k < 0)
                                return vc_error_set(err, k, ev->offset, (long) ev->index, "%s extend failed",
                                                    vc_alg_lookup(bank->alg)->name);
                        bank->mask |= 1u << ev->pcr;
                }
                if (ev->pcr == 0)
                        r->pcr0_started = true;
        }
        return 0;
}

int vc_eventlog_replay(vc_hasher *h, const vc_eventlog *log, vc_pcr_set *ret, vc_error *err) {
        vc_replay *r = malloc(sizeof(*r));
        if (!r)
                return -ENOMEM;
        vc_replay_init(r);
        int k = vc_replay_update(h, log, r, NULL, err);
        if (k == 0)
                *ret = r->pcrs;
        free(r);
        return k;
}
