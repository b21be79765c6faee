/* SPDX-License-Identifier: Apache-2.0 */
#include "replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void vc_replay_init(vc_replay *r) {
        memset(r, 0, sizeof(*r));
}

void vc_replay_init_banks(vc_replay *r, uint32_t algs) {
        vc_replay_init(r);
        r->only_algs = algs;
}

bool vc_replay_covers(const vc_replay *r, uint16_t alg) {
        int b = vc_alg_index(alg);
        return !r->only_algs || (b >= 0 && (r->only_algs & (1u << b)));
}

struct vc_replay_packed {
        size_t next_event, size;
        uint8_t locality;
        bool pcr0_started;
        uint32_t only_algs;
        uint32_t n_skipped_algs;
        uint16_t skipped_algs[VC_EVENTLOG_MAX_ALGS];
        uint32_t n_banks;
        struct {
                uint16_t alg, size;
                uint32_t mask;
        } banks[VC_NUM_ALGS];
        uint8_t values[];       /* per bank, the values of the PCRs in its mask, ascending */
};

int vc_replay_pack(const vc_replay *r, vc_replay_packed **ret) {
        size_t n = 0;
        for (uint32_t b = 0; b < r->pcrs.n_banks; b++)
                n += (size_t) __builtin_popcount(r->pcrs.banks[b].mask) * r->pcrs.banks[b].size;
        vc_replay_packed *p = calloc(1, sizeof(*p) + n);
        if (!p)
                return -ENOMEM;
        p->size = sizeof(*p) + n;
        p->next_event = r->next_event;
        p->locality = r->locality;
        p->pcr0_started = r->pcr0_started;
        p->only_algs = r->only_algs;
        p->n_skipped_algs = r->n_skipped_algs;
        memcpy(p->skipped_algs, r->skipped_algs, sizeof(p->skipped_algs));
        p->n_banks = r->pcrs.n_banks;
        uint8_t *v = p->values;
        for (uint32_t b = 0; b < r->pcrs.n_banks; b++) {
                const vc_pcr_bank *bank = &r->pcrs.banks[b];
                p->banks[b].alg = bank->alg;
                p->banks[b].size = bank->size;
                p->banks[b].mask = bank->mask;
                for (unsigned i = 0; i < VC_PCR_COUNT; i++)
                        if (bank->mask & (1u << i)) {
                                memcpy(v, bank->values[i], bank->size);
                                v += bank->size;
                        }
        }
        *ret = p;
        return 0;
}

void vc_replay_unpack(const vc_replay_packed *p, vc_replay *r) {
        vc_replay_init(r);
        if (!p)
                return;
        r->next_event = p->next_event;
        r->locality = p->locality;
        r->pcr0_started = p->pcr0_started;
        r->only_algs = p->only_algs;
        r->n_skipped_algs = p->n_skipped_algs;
        memcpy(r->skipped_algs, p->skipped_algs, sizeof(r->skipped_algs));
        r->pcrs.n_banks = p->n_banks;
        const uint8_t *v = p->values;
        for (uint32_t b = 0; b < p->n_banks; b++) {
                vc_pcr_bank *bank = &r->pcrs.banks[b];
                bank->alg = p->banks[b].alg;
                bank->size = p->banks[b].size;
                bank->mask = p->banks[b].mask;
                for (unsigned i = 0; i < VC_PCR_COUNT; i++)
                        if (bank->mask & (1u << i)) {
                                memcpy(bank->values[i], v, bank->size);
                                v += bank->size;
                        }
        }
}

size_t vc_replay_packed_size(const vc_replay_packed *p) {
        return p ? p->size : 0;
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
                if (vc_replay_covers(r, VC_ALG_SHA1))
                        vc_pcr_set_bank(&r->pcrs, VC_ALG_SHA1);
                return;
        }
        for (uint32_t i = 0; i < log->spec.n_algs; i++) {
                if (!vc_replay_covers(r, log->spec.algs[i].alg))
                        continue;
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
                        /* StartupLocality and H-CRTM are TPM PCR 0 rules; CCEL registers
                         * all start at zero (register 0 is MRTD, not PCR 0). */
                        if (log->kind == VC_LOG_TPM && ev->pcr == 0 && ev->data_size == 17 && memcmp(ev->data, "StartupLocality\0", 16) == 0) {
                                k = set_locality(r, ev, ev->data[16], err);
                                if (k < 0)
                                        return k;
                        }
                        continue;
                }
                if (ev->pcr == VC_PCR_NONE)
                        continue;
                if (log->kind == VC_LOG_TPM && ev->type == EV_EFI_HCRTM_EVENT && ev->pcr == 0 && !r->pcr0_started) {
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
                                if (ev->pcr == 0 && log->kind == VC_LOG_TPM)
                                        v[bank->size - 1] = r->locality;
                        }
                        k = vc_hasher_digest2(h, bank->alg, v, bank->size, d->bytes, d->size, v);
                        if (k < 0)
                                return vc_error_set(err, k, ev->offset, (long) ev->index, "%s extend failed",
                                                    vc_alg_lookup(bank->alg)->name);
                        bank->mask |= 1u << ev->pcr;
                }
                if (ev->pcr == 0 && log->kind == VC_LOG_TPM)
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
