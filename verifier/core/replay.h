/* SPDX-License-Identifier: Apache-2.0 */
/* Replay of an event log to PCR values, bank by bank (TCG PC Client PFP 1.05). */
#pragma once

#include "event.h"
#include "eventlog.h"
#include "pcrs.h"

/* Replay state; can be carried across appends of the same boot's log so that a periodic
 * attestation only processes new events. Zero-initialise, or use vc_replay_init(). */
typedef struct vc_replay {
        vc_pcr_set pcrs;        /* values so far; mask = PCRs the log extended */
        size_t next_event;      /* first event not yet replayed */
        uint8_t locality;       /* PCR 0 starting locality (StartupLocality / H-CRTM) */
        bool pcr0_started;      /* PCR 0 extended at least once */
        uint32_t only_algs;     /* 0: every bank the log declares; else only these (vc_alg_index() bits) */
        uint32_t n_skipped_algs;
        uint16_t skipped_algs[VC_EVENTLOG_MAX_ALGS]; /* banks declared (and asked for) but not
                                                      * computable here, or missing from some
                                                      * event: not replayed */
} vc_replay;

void vc_replay_init(vc_replay *r);
/* A replay of the banks in algs alone (vc_alg_index() bits; 0: every bank, as
 * vc_replay_init()). The log's other banks are parsed but neither replayed nor listed in
 * skipped_algs: an attestation needs the bank its quote covers (and those its golden set
 * reads), not the others, which no quote of it attests. */
void vc_replay_init_banks(vc_replay *r, uint32_t algs);
/* Whether r is to replay alg's bank: false only when r was restricted to other banks
 * (whether the log has that bank is r->pcrs's and skipped_algs's to say). */
bool vc_replay_covers(const vc_replay *r, uint16_t alg);

/* A compact copy of a vc_replay for keeping between attestations (a vc_replay is 7.7 KiB
 * whatever the log; this holds only the replayed banks' values of the PCRs in their
 * masks). vc_replay_unpack(vc_replay_pack(r)) gives back r byte for byte (a replay's values
 * outside a bank's mask are always zero); NULL unpacks to an initialised replay. */
typedef struct vc_replay_packed vc_replay_packed;
int vc_replay_pack(const vc_replay *r, vc_replay_packed **ret);
void vc_replay_unpack(const vc_replay_packed *p, vc_replay *r);
size_t vc_replay_packed_size(const vc_replay_packed *p);

/* Replays events [r->next_event, log->n_events) into r. When checks is not NULL it must
 * have log->n_events entries; each replayed event's digest check is written there.
 * Rules (PFP 1.05): EV_NO_ACTION is never extended (10.4.5); the StartupLocality event
 * sets PCR 0's starting value to its locality (10.4.5.3); an H-CRTM sequence
 * (EV_EFI_HCRTM_EVENT) starts PCR 0 at locality 4; PCR index 0xFFFFFFFF is not extended.
 * A CCEL log (log->kind) replays its registers, keyed by the index as written, each from
 * zero: no locality rule applies there.
 * Errors: -EBADMSG (StartupLocality after PCR 0 was extended), -EIO, -ENOMEM. On error
 * r is left at the failing event. */
int vc_replay_update(vc_hasher *h, const vc_eventlog *log, vc_replay *r, vc_event_check *checks, vc_error *err);

/* Whole-log convenience: replays from scratch into *ret. */
int vc_eventlog_replay(vc_hasher *h, const vc_eventlog *log, vc_pcr_set *ret, vc_error *err);
