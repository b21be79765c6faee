/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the event log path a peer's bytes take through the verifier: vc_eventlog_parse,
 * vc_replay_update with per-event digest checks, vc_event_decode of every event, and
 * vc_eventlog_append. The input is one whole event log.
 *
 * Besides memory errors it checks the contracts of eventlog.h / replay.h / event.h:
 *  - every event lies inside the log buffer; err says the same code as the return value;
 *  - decoding always leaves a text (also for malformed content) that is one line of UTF-8
 *    without control characters (fuzz.h), and pointers into the data;
 *  - a digest check says VERIFIED only when the digests are of the bytes it names, and
 *    NOT_EXTENDED exactly for EV_NO_ACTION and PCR 0xFFFFFFFF;
 *  - the replayed PCRs equal the digests folded again as replay.h describes, and
 *    vc_eventlog_replay agrees with vc_replay_update;
 *  - appending: the log parsed whole equals the same bytes parsed as a prefix plus appends
 *    at event boundaries, and replaying incrementally after each append gives the same PCRs
 *    as one replay of the whole log (the periodic attestation use of vc_replay);
 *  - an append that fails leaves the log as it was; appending nothing changes nothing;
 *  - what follows the last event is nothing or padding (one byte, 0xFF or 0x00, repeated);
 *  - read as CCEL (vc_eventlog_parse_as) the same contracts hold, registers from zero. */
#include <errno.h>
#include <string.h>

#include "event.h"
#include "eventlog.h"
#include "fuzz.h"
#include "hash.h"
#include "replay.h"

#define MAX_APPENDS 3

/* One hasher for the process: fetching the OpenSSL digests per input would dominate the
 * run time. It is reachable until exit, so not a leak. */
static vc_hasher *hasher(void) {
        static vc_hasher *h;
        if (!h && vc_hasher_new(&h) < 0)
                abort();
        return h;
}

static void check_error(int r, const vc_error *err) {
        char buf[512];
        FUZZ_CHECK(r == -EBADMSG || r == -E2BIG || r == -ENOTSUP || r == -ENOMEM);
        /* -ENOMEM may be returned before err is filled in */
        if (r != -ENOMEM)
                FUZZ_CHECK(err->code == r);
        FUZZ_CHECK(memchr(err->msg, '\0', sizeof(err->msg)));
        vc_error_format(err, buf, sizeof(buf));
}

static bool in_buf(const vc_eventlog *log, const uint8_t *p, size_t n) {
        return p >= log->buf && (size_t) (p - log->buf) <= log->len && n <= log->len - (size_t) (p - log->buf);
}

static void check_log(const vc_eventlog *log) {
        FUZZ_CHECK(log->format == VC_LOG_SHA1_LEGACY || log->format == VC_LOG_CRYPTO_AGILE);
        FUZZ_CHECK(log->n_events >= 1 && log->n_events <= VC_EVENTLOG_MAX_EVENTS);
        FUZZ_CHECK(log->n_events <= log->cap_events);
        if (log->format == VC_LOG_CRYPTO_AGILE) {
                FUZZ_CHECK(log->spec.n_algs >= 1 && log->spec.n_algs <= VC_EVENTLOG_MAX_ALGS);
                if (log->spec.vendor_info_size)
                        FUZZ_CHECK(in_buf(log, log->spec.vendor_info, log->spec.vendor_info_size));
        }
        size_t end = 0;
        for (size_t i = 0; i < log->n_events; i++) {
                const vc_event *ev = &log->events[i];
                FUZZ_CHECK(ev->index == i);
                FUZZ_CHECK(ev->offset == end); /* events are contiguous */
                FUZZ_CHECK(ev->size > 0 && ev->size <= log->len - ev->offset);
                end = ev->offset + ev->size;
                FUZZ_CHECK(ev->pcr < VC_PCR_COUNT || ev->pcr == VC_PCR_NONE);
                FUZZ_CHECK(ev->n_digests >= 1 && ev->n_digests <= VC_EVENTLOG_MAX_ALGS);
                FUZZ_CHECK(ev->data_size <= VC_EVENTLOG_MAX_EVENT_DATA);
                FUZZ_CHECK(in_buf(log, ev->data, ev->data_size));
                for (uint32_t j = 0; j < ev->n_digests; j++) {
                        const vc_event_digest *d = &ev->digests[j];
                        /* the header is a TCG_PCR_EVENT (SHA-1) whatever the Spec ID declares */
                        if (i > 0 || log->format == VC_LOG_SHA1_LEGACY)
                                FUZZ_CHECK(d->size == vc_eventlog_digest_size(log, d->alg));
                        else
                                FUZZ_CHECK(d->alg == VC_ALG_SHA1 && d->size == 20);
                        FUZZ_CHECK(in_buf(log, d->bytes, d->size));
                        FUZZ_CHECK(vc_event_find_digest(ev, d->alg) == d);
                        const vc_alg_info *a = vc_alg_lookup(d->alg);
                        if (a)
                                FUZZ_CHECK(a->size == d->size);
                }
                (void) vc_event_type_name(ev->type);
        }
        /* after the last event: nothing, or padding of one byte, 0xFF or 0x00, repeated */
        FUZZ_CHECK(end + log->padding == log->len);
        FUZZ_CHECK(log->padding_byte == 0x00 || (log->padding_byte == 0xFF && log->padding));
        for (size_t i = end; i < log->len; i++)
                FUZZ_CHECK(log->buf[i] == log->padding_byte);
        if (log->kind == VC_LOG_CCEL) {
                FUZZ_CHECK(log->format == VC_LOG_CRYPTO_AGILE && log->spec.n_algs == 1);
                FUZZ_CHECK(log->spec.algs[0].alg == VC_ALG_SHA384 || log->spec.algs[0].alg == VC_ALG_SM3_256);
                FUZZ_CHECK(log->events[0].pcr <= 1);
                for (size_t i = 0; i < log->n_events; i++)
                        FUZZ_CHECK(log->events[i].pcr < VC_CCEL_REGISTERS);
        } else {
                FUZZ_CHECK(log->kind == VC_LOG_TPM);
                if (log->format == VC_LOG_CRYPTO_AGILE)
                        FUZZ_CHECK(log->events[0].pcr == 0);
        }
}

static bool in_data(const vc_event *ev, const uint8_t *p, uint64_t n) {
        return p >= ev->data && (size_t) (p - ev->data) <= ev->data_size &&
               n <= ev->data_size - (size_t) (p - ev->data);
}

static void decode_events(const vc_eventlog *log) {
        for (size_t i = 0; i < log->n_events; i++) {
                const vc_event *ev = &log->events[i];
                vc_event_content c;
                vc_error err;
                int r = vc_event_decode(ev, &c, &err);
                FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
                if (r == -ENOMEM)
                        continue;
                if (r < 0)
                        check_error(r, &err);
                FUZZ_CHECK(c.text); /* "always set" */
                FUZZ_CHECK(strlen(c.text) < 16384);
                FUZZ_CHECK_TEXT(c.text);
                if (r < 0)
                        FUZZ_CHECK(c.kind == VC_CONTENT_RAW);
                if (c.string)
                        (void) strlen(c.string);
                if (c.device_path)
                        FUZZ_CHECK_TEXT(c.device_path);
                if (c.kind == VC_CONTENT_VARIABLE) {
                        FUZZ_CHECK(c.var_name);
                        (void) strlen(c.var_name);
                        FUZZ_CHECK(in_data(ev, c.var_data, c.var_data_len));
                }
                if (c.kind == VC_CONTENT_TAGGED)
                        FUZZ_CHECK(in_data(ev, c.tag_data, c.tag_size));
                if (c.kind == VC_CONTENT_STRING || c.kind == VC_CONTENT_UTF16)
                        FUZZ_CHECK(c.string);
                vc_event_content_done(&c);
                vc_event_content_done(NULL);
        }
}

/* True when every digest of ev with an algorithm the verifier computes is the hash of
 * p[0..n). */
static bool digests_are_of(const vc_event *ev, const uint8_t *p, size_t n) {
        uint8_t md[VC_MAX_DIGEST];
        for (uint32_t i = 0; i < ev->n_digests; i++) {
                if (!vc_alg_lookup(ev->digests[i].alg))
                        continue;
                if (vc_hasher_digest(hasher(), ev->digests[i].alg, p, n, md) < 0)
                        continue;
                if (memcmp(md, ev->digests[i].bytes, ev->digests[i].size) != 0)
                        return false;
        }
        return true;
}

/* event.h: what each status means, checked from the outside. */
static void check_digest_check(const vc_event *ev, const vc_event_check *ch) {
        uint32_t all = (uint32_t) ((1ull << ev->n_digests) - 1);
        FUZZ_CHECK(ch->status <= VC_DIGEST_NOT_EXTENDED);
        FUZZ_CHECK((ch->mismatch_mask & ~all) == 0 && (ch->unchecked_mask & ~all) == 0);
        FUZZ_CHECK((ch->status == VC_DIGEST_NOT_EXTENDED) == (ev->type == EV_NO_ACTION || ev->pcr == VC_PCR_NONE));
        if (ch->status == VC_DIGEST_MISMATCH) {
                FUZZ_CHECK(ch->mismatch_mask != 0);
                FUZZ_CHECK((ch->mismatch_mask & ch->unchecked_mask) == 0);
        }
        if (ch->status == VC_DIGEST_VERIFIED) {
                const uint8_t *vd;
                const uint8_t *g, *name;
                uint64_t nc, vl;
                FUZZ_CHECK(ch->unchecked_mask != all); /* something was checked */
                switch (ch->measured) {
                case VC_MEASURED_EVENT_DATA:
                        FUZZ_CHECK(digests_are_of(ev, ev->data, ev->data_size));
                        break;
                case VC_MEASURED_TRUNCATED:
                        FUZZ_CHECK(ev->data_size > 0 && digests_are_of(ev, ev->data, ev->data_size - 1u));
                        break;
                case VC_MEASURED_VARIABLE_DATA:
                        FUZZ_CHECK(vc_parse_variable(ev->data, ev->data_size, &g, &name, &nc, &vd, &vl) == 0);
                        FUZZ_CHECK(digests_are_of(ev, vd, (size_t) vl));
                        break;
                case VC_MEASURED_STRING:
                        FUZZ_CHECK(ev->type == EV_IPL);
                        break;
                case VC_MEASURED_ERROR_SEPARATOR:
                        FUZZ_CHECK(ev->type == EV_SEPARATOR && ev->data_size == 0);
                        FUZZ_CHECK(digests_are_of(ev, (const uint8_t *) "\xff\xff\xff\xff", 4));
                        break;
                default:
                        FUZZ_CHECK(!"VERIFIED without saying what was measured");
                }
        }
        (void) vc_digest_status_name(ch->status);
}

/* The PCR values of a successful replay, computed again by folding the digests as replay.h
 * describes: events from the first after the Spec ID header, EV_NO_ACTION and PCR
 * 0xFFFFFFFF not extended, PCR 0 starting at the StartupLocality (or 4 after an H-CRTM
 * event) when that comes before the first extend of PCR 0. */
static void check_fold(const vc_eventlog *log, const vc_pcr_set *got) {
        uint8_t *v = malloc(VC_PCR_COUNT * VC_MAX_DIGEST);
        if (!v)
                abort();
        for (uint32_t b = 0; b < got->n_banks; b++) {
                const vc_pcr_bank *bank = &got->banks[b];
                uint32_t mask = 0;
                uint8_t locality = 0;
                bool started = false;
                memset(v, 0, VC_PCR_COUNT * VC_MAX_DIGEST);
                for (size_t i = log->format == VC_LOG_CRYPTO_AGILE ? 1 : 0; i < log->n_events; i++) {
                        const vc_event *ev = &log->events[i];
                        bool tpm = log->kind == VC_LOG_TPM; /* CCEL registers start at zero */
                        if (ev->type == EV_NO_ACTION) {
                                if (tpm && ev->pcr == 0 && ev->data_size == 17 &&
                                    memcmp(ev->data, "StartupLocality", 16) == 0)
                                        locality = ev->data[16];
                                continue;
                        }
                        if (ev->pcr == VC_PCR_NONE)
                                continue;
                        if (tpm && ev->type == EV_EFI_HCRTM_EVENT && ev->pcr == 0 && !started)
                                locality = 4;
                        const vc_event_digest *d = vc_event_find_digest(ev, bank->alg);
                        FUZZ_CHECK(d); /* else the bank would have been dropped */
                        uint8_t *pv = v + ev->pcr * VC_MAX_DIGEST;
                        if (tpm && ev->pcr == 0 && !started)
                                pv[bank->size - 1] = locality;
                        FUZZ_CHECK(vc_hasher_digest2(hasher(), bank->alg, pv, bank->size, d->bytes, d->size, pv) == 0);
                        mask |= 1u << ev->pcr;
                        if (tpm && ev->pcr == 0)
                                started = true;
                }
                FUZZ_CHECK(mask == bank->mask);
                for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                        if (mask & (1u << p))
                                FUZZ_CHECK(memcmp(v + p * VC_MAX_DIGEST, bank->values[p], bank->size) == 0);
        }
        free(v);
}

/* Replays the events not replayed yet into r, checking digests into *checks (grown to the
 * log's event count, as replay.h requires). */
static int replay(const vc_eventlog *log, vc_replay *r, vc_event_check **checks) {
        vc_error err;
        vc_event_check *c = realloc(*checks, log->n_events * sizeof(*c));
        if (!c)
                abort();
        *checks = c;
        size_t first = r->next_event;
        int k = vc_replay_update(hasher(), log, r, c, &err);
        if (k < 0) {
                /* StartupLocality after PCR 0 was extended is the only input error */
                FUZZ_CHECK(k == -EBADMSG);
                FUZZ_CHECK(err.code == k);
                FUZZ_CHECK(r->next_event < log->n_events);
                FUZZ_CHECK(err.event == (long) log->events[r->next_event].index);
        } else
                FUZZ_CHECK(r->next_event == log->n_events);
        FUZZ_CHECK(r->pcrs.n_banks <= VC_NUM_ALGS);
        FUZZ_CHECK(r->n_skipped_algs <= VC_EVENTLOG_MAX_ALGS);
        for (uint32_t b = 0; b < r->pcrs.n_banks; b++) {
                const vc_alg_info *a = vc_alg_lookup(r->pcrs.banks[b].alg);
                FUZZ_CHECK(a && a->size == r->pcrs.banks[b].size);
                FUZZ_CHECK((r->pcrs.banks[b].mask >> VC_PCR_COUNT) == 0);
        }
        size_t end = k < 0 ? r->next_event + 1 : r->next_event;
        for (size_t i = first; i < end && i < log->n_events; i++)
                check_digest_check(&log->events[i], &c[i]);
        return k;
}

static bool same_pcrs(const vc_pcr_set *a, const vc_pcr_set *b) {
        if (a->n_banks != b->n_banks)
                return false;
        for (uint32_t i = 0; i < a->n_banks; i++) {
                const vc_pcr_bank *x = &a->banks[i], *y = &b->banks[i];
                if (x->alg != y->alg || x->size != y->size || x->mask != y->mask)
                        return false;
                for (uint32_t p = 0; p < VC_PCR_COUNT; p++)
                        if ((x->mask & (1u << p)) && memcmp(x->values[p], y->values[p], x->size) != 0)
                                return false;
        }
        return true;
}

static bool same_event(const vc_event *a, const vc_event *b) {
        if (a->index != b->index || a->offset != b->offset || a->size != b->size || a->pcr != b->pcr ||
            a->type != b->type || a->n_digests != b->n_digests || a->data_size != b->data_size ||
            memcmp(a->data, b->data, a->data_size) != 0)
                return false;
        for (uint32_t j = 0; j < a->n_digests; j++)
                if (a->digests[j].alg != b->digests[j].alg || a->digests[j].size != b->digests[j].size ||
                    memcmp(a->digests[j].bytes, b->digests[j].bytes, a->digests[j].size) != 0)
                        return false;
        return true;
}

/* The whole log parsed: cut it at up to MAX_APPENDS event boundaries, parse the first part
 * and append the others, replaying after each step; the result must equal the whole. */
static void append_at_boundaries(const uint8_t *data, size_t size, const vc_eventlog *whole, int whole_replay,
                                 const vc_replay *whole_r, uint64_t seed) {
        size_t cuts[MAX_APPENDS + 2];
        size_t n_cuts = 0;

        if (whole->n_events < 2)
                return;
        /* Boundaries after event 0 (the header must be in the first part), ascending. */
        size_t n_bound = whole->n_events - 1; /* starts of events 1..n-1 */
        size_t want = 1 + seed % MAX_APPENDS;
        cuts[n_cuts++] = 0;
        size_t lo = 1;
        for (size_t i = 0; i < want && lo <= n_bound; i++) {
                size_t ev = lo + (size_t) ((seed >> (8 + 8 * i)) % (n_bound - lo + 1));
                cuts[n_cuts++] = whole->events[ev].offset;
                lo = ev + 1;
        }
        cuts[n_cuts++] = size;

        vc_eventlog *log = NULL;
        vc_error err;
        int r = vc_eventlog_parse(data, cuts[1], &log, &err);
        FUZZ_CHECK(r == 0); /* a prefix ending at an event boundary is a valid log */

        vc_replay *rs = calloc(1, sizeof(*rs));
        vc_event_check *checks = NULL;
        if (!rs)
                abort();
        vc_replay_init(rs);
        int k = replay(log, rs, &checks);
        for (size_t i = 2; i < n_cuts; i++) {
                r = vc_eventlog_append(log, data + cuts[i - 1], cuts[i] - cuts[i - 1], &err);
                FUZZ_CHECK(r == 0);
                check_log(log);
                if (k == 0)
                        k = replay(log, rs, &checks);
        }
        FUZZ_CHECK(log->len == whole->len && log->n_events == whole->n_events);
        FUZZ_CHECK(log->format == whole->format && log->spec.n_algs == whole->spec.n_algs &&
                   log->spec.vendor_info_size == whole->spec.vendor_info_size);
        for (uint32_t i = 0; i < log->spec.n_algs; i++)
                FUZZ_CHECK(log->spec.algs[i].alg == whole->spec.algs[i].alg &&
                           log->spec.algs[i].size == whole->spec.algs[i].size);
        for (size_t i = 0; i < log->n_events; i++)
                FUZZ_CHECK(same_event(&log->events[i], &whole->events[i]));
        /* replaying in steps == replaying the whole log */
        FUZZ_CHECK(k == whole_replay);
        FUZZ_CHECK(rs->next_event == whole_r->next_event);
        if (k == 0)
                FUZZ_CHECK(same_pcrs(&rs->pcrs, &whole_r->pcrs));

        free(checks);
        free(rs);
        vc_eventlog_free(log);
}

/* Any cut: when the part before it is a log, appending the rest must agree with the parse
 * of the whole input, and a failed append must leave the log as it was. */
static void append_at(const uint8_t *data, size_t size, size_t cut, int whole_r) {
        vc_eventlog *log = NULL;
        vc_error err;

        if (cut == 0 || cut >= size)
                return;
        if (vc_eventlog_parse(data, cut, &log, &err) < 0)
                return;
        size_t n = log->n_events, len = log->len;
        vc_event last = log->events[n - 1];
        int r = vc_eventlog_append(log, data + cut, size - cut, &err);
        if (whole_r == 0)
                FUZZ_CHECK(r == 0);
        else if (whole_r != -ENOMEM && r != -ENOMEM)
                FUZZ_CHECK(r < 0); /* the failure lies in the appended part */
        if (r < 0) {
                check_error(r, &err);
                FUZZ_CHECK(log->n_events == n && log->len == len);
                /* the buffer may have moved; the events must follow it */
                FUZZ_CHECK(log->events[n - 1].size == last.size && log->events[n - 1].offset == last.offset);
        }
        check_log(log);
        decode_events(log); /* reads every event through the (moved) buffer */
        vc_eventlog_free(log);
}

/* A tail parsed after only the log's first event (what the verifier keeps of a boot):
 * at an event boundary it must give the whole parse's events, with their whole-log
 * indices and offsets, and replaying it on the replay of the part before must give the
 * whole log's PCRs; at any other cut it must fail no later than the whole parse would,
 * with an error inside the tail. */
static void tail_at(const uint8_t *data, size_t size, const vc_eventlog *whole, int whole_replay,
                    const vc_replay *whole_r, size_t ev) {
        vc_eventlog *tail = NULL, *before = NULL;
        vc_error err;
        if (whole->n_events < 2 || ev == 0 || ev >= whole->n_events)
                return;
        size_t cut = whole->events[ev].offset, head_len = whole->events[0].size;
        if (cut < head_len)
                return;
        int r = vc_eventlog_parse_tail(data, head_len, cut, ev, data + cut, size - cut, &tail, &err);
        if (r == -ENOMEM)
                return;
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(tail->n_events == whole->n_events - ev + 1);
        for (size_t i = 1; i < tail->n_events; i++)
                FUZZ_CHECK(same_event(&tail->events[i], &whole->events[ev + i - 1]));
        /* (a prefix that ends in zero events reads them as padding: vouchd then asks for
         * the log from before them, see tail_at_any) */
        if (vc_eventlog_parse(data, cut, &before, &err) == 0 && before->padding == 0) {
                vc_replay *rs = calloc(1, sizeof(*rs));
                if (!rs)
                        abort();
                vc_replay_init(rs);
                int k = vc_replay_update(hasher(), before, rs, NULL, &err);
                if (k == 0) {
                        rs->next_event = 1;
                        k = vc_replay_update(hasher(), tail, rs, NULL, &err);
                }
                if (k != -ENOMEM) {
                        FUZZ_CHECK(k == whole_replay);
                        if (k == 0)
                                FUZZ_CHECK(same_pcrs(&rs->pcrs, &whole_r->pcrs));
                }
                free(rs);
        }
        vc_eventlog_free(before);
        vc_eventlog_free(tail);
}

/* Any cut where the part before is a log: the tail parsed after that log's first event
 * must agree with appending it to the parsed part (same success, same error, same events
 * at the same indices and offsets). */
static void tail_at_any(const uint8_t *data, size_t size, size_t cut) {
        vc_eventlog *log = NULL, *tail = NULL;
        vc_error err, terr;
        if (cut == 0 || cut >= size || vc_eventlog_parse(data, cut, &log, &err) < 0) {
                vc_eventlog_free(log);
                return;
        }
        size_t n = log->n_events;
        /* vouchd holds the log up to its last event, not its padding: the tail starts there */
        size_t base = cut - log->padding;
        if (base < log->events[0].size) {
                vc_eventlog_free(log);
                return;
        }
        int t = vc_eventlog_parse_tail(data, log->events[0].size, base, n, data + base, size - base, &tail, &terr);
        int a = vc_eventlog_append(log, data + cut, size - cut, &err);
        if (t != -ENOMEM && a != -ENOMEM) {
                FUZZ_CHECK(t == a);
                if (t < 0) {
                        FUZZ_CHECK(!tail);
                        check_error(t, &terr);
                        FUZZ_CHECK(terr.offset == err.offset && terr.event == err.event);
                } else {
                        FUZZ_CHECK(tail->n_events == log->n_events - n + 1);
                        for (size_t i = 1; i < tail->n_events; i++)
                                FUZZ_CHECK(same_event(&tail->events[i], &log->events[n + i - 1]));
                }
        }
        vc_eventlog_free(tail);
        vc_eventlog_free(log);
}

/* The same bytes read as CCEL (and by structure): a CCEL log satisfies the same
 * contracts, replays its registers from zero, and appends like a TPM log; read by
 * structure, a log is CCEL exactly when its Spec ID event has index 1, and a TPM log
 * then parses as it does read as one. */
static void other_reads(const uint8_t *data, size_t size, const vc_eventlog *tpm) {
        static const vc_log_read hows[] = { VC_READ_CCEL, VC_READ_AUTO };
        for (size_t i = 0; i < ELEMENTSOF(hows); i++) {
                vc_eventlog *log = NULL;
                vc_error err;
                int r = vc_eventlog_parse_as(data, size, hows[i], &log, &err);
                if (r < 0) {
                        check_error(r, &err);
                        FUZZ_CHECK(!log);
                        if (hows[i] == VC_READ_AUTO && tpm)
                                FUZZ_CHECK(r == -ENOMEM);
                        continue;
                }
                check_log(log);
                if (hows[i] == VC_READ_CCEL)
                        FUZZ_CHECK(log->kind == VC_LOG_CCEL);
                else if (log->kind == VC_LOG_CCEL)
                        FUZZ_CHECK(log->events[0].pcr == 1);
                else
                        FUZZ_CHECK(tpm && tpm->n_events == log->n_events && tpm->padding == log->padding);
                vc_replay *rs = calloc(1, sizeof(*rs));
                vc_event_check *checks = NULL;
                if (!rs)
                        abort();
                vc_replay_init(rs);
                if (replay(log, rs, &checks) == 0)
                        check_fold(log, &rs->pcrs);
                decode_events(log);
                if (log->n_events > 1) {
                        /* an append at an event boundary gives the whole parse */
                        size_t cut = log->events[log->n_events - 1].offset;
                        vc_eventlog *part = NULL;
                        if (vc_eventlog_parse_as(data, cut, hows[i], &part, &err) == 0 && part->kind == log->kind &&
                            part->padding == 0) {
                                r = vc_eventlog_append(part, data + cut, size - cut, &err);
                                if (r != -ENOMEM) {
                                        FUZZ_CHECK(r == 0 && part->n_events == log->n_events);
                                        FUZZ_CHECK(part->padding == log->padding);
                                }
                        }
                        vc_eventlog_free(part);
                }
                free(checks);
                free(rs);
                vc_eventlog_free(log);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        vc_eventlog *log = NULL;
        vc_error err;
        uint64_t seed = fuzz_hash(data, size);

        int r = vc_eventlog_parse(data, size, &log, &err);
        if (r < 0) {
                check_error(r, &err);
                FUZZ_CHECK(!log);
        } else {
                vc_replay *rs = calloc(1, sizeof(*rs));
                vc_event_check *checks = NULL;
                if (!rs)
                        abort();
                FUZZ_CHECK(log && log->len == size && memcmp(log->buf, data, size) == 0);
                check_log(log);
                vc_replay_init(rs);
                int k = replay(log, rs, &checks);
                if (k == 0)
                        check_fold(log, &rs->pcrs);
                /* the whole-log convenience agrees with the incremental replay */
                vc_pcr_set *all = malloc(sizeof(*all));
                if (!all)
                        abort();
                FUZZ_CHECK(vc_eventlog_replay(hasher(), log, all, &err) == k);
                if (k == 0)
                        FUZZ_CHECK(same_pcrs(all, &rs->pcrs));
                free(all);
                /* appending nothing changes nothing */
                FUZZ_CHECK(vc_eventlog_append(log, data, 0, &err) == 0);
                FUZZ_CHECK(log->len == size);
                decode_events(log);
                append_at_boundaries(data, size, log, k, rs, seed);
                if (log->n_events > 1)
                        tail_at(data, size, log, k, rs, 1 + (size_t) ((seed >> 40) % (log->n_events - 1)));
                free(checks);
                free(rs);
        }
        other_reads(data, size, r == 0 ? log : NULL);
        if (size > 1) {
                append_at(data, size, 1 + (size_t) (seed % (size - 1)), r);
                tail_at_any(data, size, (size_t) ((seed >> 20) % size));
        }
        vc_eventlog_free(log);
        return 0;
}
