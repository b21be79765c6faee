/* SPDX-License-Identifier: Apache-2.0 */
/* How golden rules read an event log (shared by golden-create.c and golden-evaluate.c):
 * which rule an event falls under (its class, by type), and the content those rules look
 * at: separator values, Secure Boot variables and their signature entries, boot loader
 * strings. Internal to the core. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest-set.h"
#include "event.h"
#include "eventlog.h"
#include "golden.h"
#include "hash.h"

/* The rule an event falls under. */
typedef enum vc_ev_class {
        CLS_IGNORED = 0,
        CLS_SEPARATOR = 1,
        CLS_CRTM_VERSION = 2,
        CLS_FIRMWARE = 3,
        CLS_HANDOFF = 4,
        CLS_CONFIGURATION = 5,
        CLS_SB_VARIABLE = 6,
        CLS_SB_AUTHORITY = 7,
        CLS_MOK = 8,
        CLS_BOOT_APP = 9,
        CLS_GPT = 10,
        CLS_ACTION = 11,
        CLS_CMDLINE = 12,
        CLS_GRUB = 13,
        CLS_BOOT_FILE = 14,
        CLS_INITRD = 15,
        CLS_LOAD_OPTIONS = 16,
        CLS_UNKNOWN_TYPE = 17,
} vc_ev_class;

/* By type (the type is not measured: see golden-classify.c). CLS_IGNORED for events that
 * extend nothing. */
vc_ev_class vc_classify_event(vc_log_kind kind, const vc_event *ev);
/* The rule that explains a class ("boot_chain.chains"); "" for CLS_IGNORED. */
const char *vc_class_rule(vc_ev_class cls);
/* For a class whose rule allows events by digest alone (firmware, boot files, ...): what
 * such an event is ("boot file"); NULL for the others. */
const char *vc_class_what(vc_ev_class cls);
/* That rule's list in g; NULL when g has no such rule (or the class has none). */
const vc_dset *vc_class_digests(const vc_golden *g, vc_ev_class cls);
/* Makes g have that rule and allow d (golden create). 0, -ENOMEM or -E2BIG. */
int vc_class_allow_digest(vc_golden *g, vc_ev_class cls, const uint8_t *d);

/* "PCR" or "register" (CCEL), for messages. */
const char *vc_index_word(vc_log_kind kind);

/* Where an event is among those extended into its PCR (0 = the first), counted in
 * positions[]; false for events that extend nothing. */
bool vc_event_position(const vc_event *ev, uint32_t positions[VC_PCR_COUNT], uint32_t *ret);

/* An event as the rules see it. */
typedef struct vc_rule_event {
        const vc_event *ev;
        const vc_event_check *chk;
        vc_event_content c;     /* what its class's rules read of it (vc_rule_content) */
        const uint8_t *d;       /* its digest in the set's bank; NULL when it has none */
        vc_ev_class cls;
        uint32_t pos;           /* among the events extended into its PCR (vc_event_position) */
        bool verified;          /* its content is what its digest measured */
} vc_rule_event;

/* Fills x for the next event of a log (its content not read yet); positions[] counts. */
void vc_rule_event_start(vc_rule_event *x, vc_log_kind kind, const vc_event *ev, const vc_event_check *chk,
                         uint16_t bank, uint32_t positions[VC_PCR_COUNT]);

/* What the rules of class cls read of ev's content, as vc_event_decode() decodes it (the
 * same kind and fields) but without its one-line text: ret->text is NULL unless the event
 * was decoded whole. Classes whose rules read nothing get no content (RAW). 0 or -ENOMEM;
 * release with vc_event_content_done(). */
int vc_rule_content(const vc_event *ev, vc_ev_class cls, vc_event_content *ret);

/* The value a verified separator measured: its 4 bytes of data, or 0xFFFFFFFF for
 * SeaBIOS's separator with no data (the digest check says which). False when not verified. */
bool vc_separator_value(const vc_event_content *c, const vc_event_check *chk, uint32_t *ret);

/* GRUB's "kernel_cmdline: " strings hold a command line; its other strings, commands. */
bool vc_grub_says_cmdline(const char *s);
/* The body of a verified GRUB string (after its prefix); malloc'ed, NULL when none. */
char *vc_grub_body(const vc_event_content *c);
/* The command line of a systemd CLS_CMDLINE event whose content is verified; malloc'ed. */
char *vc_cmdline_text(const vc_event_content *c);

/* The Secure Boot variables rules know by name. */
typedef enum vc_sb_var {
        SB_OTHER = 0, /* any other variable */
        SB_SECUREBOOT = 1, SB_PK = 2, SB_KEK = 3, SB_DB = 4, SB_DBX = 5,
} vc_sb_var;
#define VC_SB_VARS 6

vc_sb_var vc_sb_variable(const vc_event_content *c);
/* "SecureBoot", "PK", ...; "variable" for SB_OTHER. */
const char *vc_sb_name(vc_sb_var v);

/* Fingerprints of the X.509 certificates and SHA-256 entries of signature lists. */
typedef struct vc_sig_entries {
        vc_dset certs, hashes;
        size_t other;           /* entries of other types (RSA2048, SHA1, X509_SHA256, ...) */
} vc_sig_entries;

/* The entries of a variable's EFI_SIGNATURE_LISTs. Certificates are hashed with *hasher,
 * made on first use (the caller frees it). 0 (release with vc_sig_entries_done), or
 * -EBADMSG (malformed), -ENOMEM, -EIO: then nothing to release. */
int vc_sig_entries_of(const vc_event_content *c, vc_hasher **hasher, vc_sig_entries *e);
void vc_sig_entries_done(vc_sig_entries *e);
