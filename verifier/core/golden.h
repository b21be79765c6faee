/* SPDX-License-Identifier: Apache-2.0 */
/* Golden measurements: a versioned set of rules describing the platforms to trust, parsed
 * from JSON (golden/README.md documents the format), created from a known-good event log,
 * merged, and evaluated against a parsed, digest-checked, replayed event log. Pure. */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest-set.h"
#include "event.h"
#include "eventlog.h"
#include "pcrs.h"
#include "replay.h"
#include "vc-util.h"

#define VC_GOLDEN_MAX_FILE (4u << 20)   /* a golden JSON file */
#define VC_GOLDEN_MAX_LIST 100000u      /* entries in any one list */
#define VC_GOLDEN_MAX_STRING 8192u      /* one string (command line, regex) */
#define VC_GOLDEN_MAX_DEPTH 10          /* JSON nesting */
#define VC_GOLDEN_MAX_CHAINS 64u
#define VC_GOLDEN_MAX_CHAIN_LEN 64u

typedef struct vc_string_rule {
        bool is_regex;
        char *text;           /* exact string, or the regex as written (anchored when used) */
        regex_t re;           /* compiled text when is_regex; matched whole (vc_golden_regex_whole) */
} vc_string_rule;

typedef struct vc_chain_step {
        char *name;           /* a label ("shimx64.efi"): a hint for people, never evaluated */
        vc_dset digests;
} vc_chain_step;

typedef struct vc_chain {
        size_t n;
        vc_chain_step *steps;
} vc_chain;

/* Allowed contents of one Secure Boot variable (PK, KEK, db) or required dbx entries. */
typedef struct vc_sigvar_rule {
        bool present;
        bool has_digests, has_certificates, has_hashes;
        vc_dset digests;       /* event digests (golden bank) of the variable's measurement */
        vc_dset certificates;  /* SHA-256 of each X.509 certificate's DER */
        vc_dset hashes;        /* EFI_CERT_SHA256 entries */
} vc_sigvar_rule;

typedef enum vc_unknown_policy {
        VC_UNKNOWN_REJECT = 0,          /* an event type the spec does not define is a finding */
        VC_UNKNOWN_ALLOW_LISTED = 1,    /* ... unless its digest is in unknown_digests */
} vc_unknown_policy;

/* An event of a type the PC Client spec does not define (a vendor's: 0x40e in PCR 0 on an
 * Intel server board, 0x8401 in PCR 2 on a ThinkPad), pinned where a known-good log had
 * it: its PCR, its position among the events extended into that PCR (0 = the first), its
 * type and its digest in the set's bank. */
typedef struct vc_vendor_event {
        uint32_t pcr, position, type;
        bool after_separator;   /* after its PCR's separator in the log it was pinned from */
        uint8_t digest[VC_MAX_DIGEST];
} vc_vendor_event;

typedef struct vc_golden {
        char *name;
        int64_t version;
        char *description;
        vc_log_kind log_kind;   /* $.log: "tpm" (default: PCRs) or "ccel" (registers 0-4) */
        uint16_t bank;          /* the bank every digest in the rules is written in */
        size_t dsize;
        uint32_t pcrs;          /* PCRs (CCEL: registers) whose events the set evaluates (bit mask) */

        /* rules.pcr_values: allowed exact values per bank and PCR */
        bool has_pcr_values;
        vc_dset pcr_values[VC_NUM_ALGS][VC_PCR_COUNT];
        uint32_t pcr_values_mask[VC_NUM_ALGS];

        /* rules.platform_firmware */
        bool has_firmware;
        bool has_crtm_versions, has_firmware_digests, has_handoff, has_configuration;
        vc_sset crtm_versions;
        vc_dset firmware_digests, handoff_tables, configuration;

        /* rules.secure_boot */
        bool has_secure_boot;
        int secure_boot_enabled;        /* -1 not checked, 0 must be disabled, 1 must be enabled, 2 either */
        bool sb_required;               /* the variables with a rule must be measured (default) */
        vc_sigvar_rule pk, kek, db;
        bool has_dbx_must_contain;
        vc_dset dbx_certificates, dbx_hashes;   /* entries dbx must contain */
        bool has_authorities, has_sb_variables, has_mok;
        vc_dset authorities, sb_variables, mok;

        /* rules.boot_chain */
        bool has_boot_chain;
        size_t n_chains;
        vc_chain *chains;
        bool has_gpt;
        vc_dset gpt;

        /* rules.kernel */
        bool has_kernel;
        size_t n_cmdline;
        vc_string_rule *cmdline;
        bool has_initrd, has_load_options, has_boot_commands, has_boot_files;
        vc_dset initrd, load_options, boot_files;
        vc_sset boot_commands;

        /* rules.structure */
        bool has_structure;
        uint32_t separators;                     /* PCRs that must hold exactly one separator */
        bool has_after_separator;
        uint64_t after_separator[VC_PCR_COUNT];  /* allowed types after the separator (class bits) */
        bool has_actions;
        vc_sset actions;
        vc_unknown_policy unknown_events;
        vc_dset unknown_digests;
        size_t n_vendor_events;                  /* sorted by pcr, position, type, digest; unique */
        vc_vendor_event *vendor_events;
        /* The platform measures every separator as 0xFFFFFFFF (legacy BIOS: SeaBIOS): then
         * that is the only separator value accepted, and 0 is a finding. */
        bool error_separators;

        /* SHA-256 of the set's canonical JSON: set by parse, create and merge; part of the
         * evaluation cache key, so two different sets never share a cached decision. */
        uint8_t fingerprint[32];
} vc_golden;

/* Parses and validates a golden set. Unknown fields, wrong types, invalid hex, digests
 * of the wrong size, bad regexes, empty rule sets and sets that check nothing are errors;
 * err->msg names the JSON path ("$.rules.boot_chain.chains[0][1].digests[2]").
 * Returns 0, -EBADMSG, -E2BIG, -ENOMEM. */
int vc_golden_parse(const char *json, size_t len, vc_golden **ret, vc_error *err);

/* Rules whose measurements usually land only in PCRs the set leaves out (the boot chain
 * without PCR 4, platform configuration without PCRs 1/3/5/6, ...): such a rule probably
 * sees nothing. Not an error (events are classified by type, and a platform may measure
 * elsewhere); each is passed to warn (may be NULL). Returns how many. Secure Boot variables
 * without PCR 7 and MOK rules without PCR 14 are parse errors instead. */
size_t vc_golden_lint(const vc_golden *g, void (*warn)(const char *msg, void *userdata), void *userdata);
vc_golden *vc_golden_free(vc_golden *g);

/* Writes g as pretty-printed, stable JSON (same set, same bytes). *ret is malloc'ed. */
int vc_golden_to_json(const vc_golden *g, char **ret);

/* True when the leftmost longest match of re in s is the whole of s. */
bool vc_golden_regex_whole(const regex_t *re, const char *s);

/* A golden set that accepts exactly the platform that produced log: firmware, Secure Boot
 * configuration, boot chain, command line. checks has one entry per event. Its pcrs: those
 * the log extends and VC_GOLDEN_CREATE_PCRS (0-9, 12-14: extended only before the OS runs,
 * so an event there that the log did not have is a finding). */
#define VC_GOLDEN_CREATE_PCRS 0x73ffu
/* For a CCEL log: RTMR0-2 (registers 1-3: firmware, boot loader, kernel; UEFI 2.10 38.4.1);
 * RTMR3 (register 4, the OS's at run time) and MRTD (0, the TDX module's) only when the log
 * extends them. */
#define VC_GOLDEN_CREATE_CCEL_REGISTERS 0x0eu
/* PCRs 16 (debug) and 23 (application support) can be reset and extended from locality 0
 * (TCG PC Client Platform TPM Profile): software chooses their values, so a golden set
 * does not evaluate them (parse refuses them in $.pcrs; create leaves them out). */
#define VC_GOLDEN_RESETTABLE_PCRS ((1u << 16) | (1u << 23))
int vc_golden_create(const vc_eventlog *log, const vc_event_check *checks, const vc_pcr_set *replayed,
                     const char *name, const char *description, vc_golden **ret, vc_error *err);

/* One set that allows anything either allows (a firmware rollout). Names and descriptions
 * come from a; the version is the larger one plus one. Both must use the same bank. */
int vc_golden_merge(const vc_golden *a, const vc_golden *b, vc_golden **ret, vc_error *err);

/* ---- evaluation ---- */

typedef enum vc_trust {
        VC_TRUST_UNKNOWN = 0,   /* zeroed: never to be taken as trusted */
        VC_TRUST_TRUSTED = 1,
        VC_TRUST_UNTRUSTED = 2,
} vc_trust;

typedef struct vc_finding {
        char rule[48];          /* "boot_chain.chains", "secure_boot.enabled", ... */
        int pcr;                /* -1 when not about one PCR */
        long event;             /* event index, -1 when not about one event */
        uint32_t event_type;
        char *expected;         /* allowed values, as text; owned */
        char *actual;           /* what the log has; owned */
        char *explanation;      /* one line for people; owned */
} vc_finding;

/* An evaluation lists at most VC_EVAL_MAX_FINDINGS findings (the last one then counts
 * those left out), and a finding's expected and actual texts are cut at
 * VC_FINDING_TEXT_MAX bytes: a device can make its log fail everywhere, and its
 * evaluation is held in the cache and in the device's state. */
#define VC_EVAL_MAX_FINDINGS 64
#define VC_FINDING_TEXT_MAX 512

typedef struct vc_evaluation {
        vc_trust trust;
        size_t n_findings;
        vc_finding *findings;
} vc_evaluation;

void vc_evaluation_done(vc_evaluation *e);

/* Evaluates log against g. attested is the mask of PCRs *in g->bank* that a verified
 * quote covers and whose quoted values equal the log's replay (all 24 for an offline
 * check). Digests of other banks are not attested by such a quote, so the caller must
 * quote g->bank: an event in a PCR that g evaluates but the quote does not cover cannot
 * be believed and is a finding. Only digest-verified content is used; an event whose
 * digest does not match its data is a finding. TRUSTED only when there is no finding.
 * Returns 0 with *ret filled; -ENOMEM when it could not evaluate. */
int vc_golden_evaluate(const vc_golden *g, const vc_eventlog *log, const vc_event_check *checks,
                       const vc_pcr_set *replayed, uint32_t attested, vc_evaluation *ret);

/* What vc_golden_evaluate() reads, and no more, for an attestation that quotes g->bank:
 * vc_golden_banks() is the banks whose replay it reads (g->bank, and the banks of
 * rules.pcr_values; bit vc_alg_index(alg) per bank). vc_golden_check_digests() fills
 * checks (one per event of log) with each event's digest check in g->bank alone, for the
 * events in the PCRs g evaluates; the others' are zeroed (NOT_CHECKED), and the
 * evaluation does not look at them. The other banks' digests are left alone: no quote of
 * g->bank attests them, so whether they agree with the data says nothing of what was
 * measured into the quoted PCRs. On a log whose banks agree (what firmware writes) the
 * evaluation is the one that checking every bank gives; a log whose unquoted banks
 * disagree with its data is judged by its quoted bank (vc_event_check_digests() of every
 * bank calls such an event MISMATCH). 0, or -EIO/-ENOMEM. */
uint32_t vc_golden_banks(const vc_golden *g);
int vc_golden_check_digests(vc_hasher *h, const vc_golden *g, const vc_eventlog *log, vc_event_check *checks);

/* ---- cache of evaluated states ---- */

/* Remembers the trust decision for (golden fingerprint, name, version, attested mask,
 * replayed values of the attested PCRs in every replayed bank). Not thread-safe: one per thread or behind a lock.
 * Bounded: the oldest entries are evicted past max_entries, or past
 * VC_EVAL_CACHE_MAX_BYTES of held evaluations (findings and their texts). */
typedef struct vc_eval_cache vc_eval_cache;
#define VC_EVAL_CACHE_MAX_BYTES (16u << 20)

int vc_eval_cache_new(size_t max_entries, vc_eval_cache **ret);
vc_eval_cache *vc_eval_cache_free(vc_eval_cache *c);

/* Like vc_golden_evaluate, through the cache. *ret_hit says whether it was reused. A cached
 * result carries the trust decision and the findings. */
int vc_golden_evaluate_cached(vc_eval_cache *c, const vc_golden *g, const vc_eventlog *log,
                              const vc_event_check *checks, const vc_pcr_set *replayed, uint32_t attested,
                              vc_evaluation *ret, bool *ret_hit);
void vc_eval_cache_stats(const vc_eval_cache *c, uint64_t *hits, uint64_t *misses, size_t *entries);
/* Bytes the cache's evaluations hold (findings and their texts), as counted against
 * VC_EVAL_CACHE_MAX_BYTES. */
size_t vc_eval_cache_bytes(const vc_eval_cache *c);
/* The heap an evaluation holds beyond its struct: its findings and their texts. */
size_t vc_evaluation_heap_size(const vc_evaluation *e);

/* The key the cache files an evaluation under: SHA-256 over (golden fingerprint, name,
 * version, attested mask, and per replayed bank the values of the attested PCRs). Equal
 * keys: the same measured boot judged by the same golden set. */
int vc_eval_key(vc_hasher *h, const vc_golden *g, const vc_pcr_set *replayed, uint32_t attested, uint8_t key[32]);
/* A copy of the evaluation filed under key: 0, or -ENOENT (counted as neither hit nor
 * miss), -ENOMEM. */
int vc_eval_cache_lookup(vc_eval_cache *c, const uint8_t key[32], vc_evaluation *ret);
/* Files a copy of eval under key (the oldest entry makes room), counted as a miss: an
 * evaluation computed. 0, or -ENOMEM (then not filed). */
int vc_eval_cache_put(vc_eval_cache *c, const uint8_t key[32], const vc_evaluation *eval);
/* A deep copy (dst's own strings). 0 or -ENOMEM (dst then empty). */
int vc_evaluation_copy(vc_evaluation *dst, const vc_evaluation *src);
