/* SPDX-License-Identifier: Apache-2.0 */
/* Verdicts: numbering, signing and queueing them, the latest one of every device, STALE
 * verdicts, what the API shows, the verdict keys and the EAR form (verdict.c). */
#pragma once

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "registry.h"
#include "vouch.pb-c.h"



/* A verdict's end (the store's writer thread): error 0 once it is committed, with record
 * the SignedVerdict bytes (valid for the call only); <0 when it was not stored (record
 * NULL). With a shared store the record exists only from then on: it is signed once the
 * store has numbered it (commit-ordered numbering, store.h "Global order"). */
typedef void (*verdict_done_fn)(int error, const uint8_t *record, size_t record_len, void *userdata);
/* CLOCK_MONOTONIC seconds; the monotonic second at which a verdict expiring at expires_at
 * (wall clock) expires, counted from now; whether the device's latest verdict has expired
 * by either clock (d->lock held). */
int64_t verdict_deadline(int64_t expires_at);
bool verdict_expired_locked(const device *dev);
/* Numbers (device and global sequence), signs and queues v for dev; done runs on the
 * writer thread once it is committed, after the device's latest verdict is updated and
 * watchers woken, and gets the record. With a shared store (vouchd.shared) v gets its
 * device sequence here and its global sequence from the store, in the transaction that
 * stores it, where the seal hook signs it (v's global_sequence stays 0). */
int verdict_issue(vouchd *d, device *dev, Vouch__V1__Verdict *v, verdict_done_fn done, void *userdata);
/* The device's record as the store should hold it: rec with the last accepted quote's
 * clock from the attestation state (a shallow copy: the store copies the key bytes when
 * queueing). d->lock held; takes dev->mu. */
vs_device verdict_row_locked(device *dev);
/* The same with the device's row, its approved / revoked flags set to these, in the
 * verdict's transaction: both are stored or neither (a revocation and its verdict). When
 * the commit fails the device's latest verdict is left as it was. Lock order: seq_lock,
 * d->lock, dev->mu. */
int verdict_issue_with_access(vouchd *d, device *dev, Vouch__V1__Verdict *v, bool approved, bool revoked,
                              verdict_done_fn done, void *userdata);
/* The same for the verdict of an attestation: -EACCES (nothing issued) when the device is
 * revoked or not approved at the moment it would be numbered; -ESTALE when ticket (the
 * device's verification count when this evidence was verified) is below that of a verdict
 * already issued: verdicts go out in the order their evidence was verified; -ENOLCK on a
 * shared store when this instance does not hold the device's lease (lease_held_locked): its
 * heartbeat was lost, another instance may be attesting it. */
int verdict_issue_attested(vouchd *d, device *dev, Vouch__V1__Verdict *v, uint64_t ticket, verdict_done_fn done,
                           void *userdata);
/* The same with a TRUSTED verdict's device certificate (devcert.h; NULL: none), stored in the
 * verdict's transaction: both are stored or neither. -EINVAL for a certificate with a verdict
 * that is not TRUSTED. (Every verdict that is not TRUSTED revokes the device's certificates
 * in its transaction, whichever function issues it: vs_verdict.revoke_certs.) */
int verdict_issue_attested_cert(vouchd *d, device *dev, Vouch__V1__Verdict *v, uint64_t ticket, const vs_cert *cert,
                                verdict_done_fn done, void *userdata);
/* Sets the device's approved / revoked flags, ordered with the numbering of verdicts:
 * every attestation verdict numbered after this call sees them. Lock order: seq_lock,
 * then d->lock. */
void verdict_set_access(vouchd *d, device *dev, bool approved, bool revoked);
/* A signed verdict that is not stored (sequence 0): UNKNOWN for a device never attested. */
int verdict_adhoc(vouchd *d, device *dev, int status, uint8_t **record, size_t *record_len);
/* True when the device's latest verdict is TRUSTED under a golden set (name or version)
 * other than the one it is judged by now (assigned another, or reloaded): that verdict
 * then stands for nothing and is shown as STALE. why (optional) explains. d->lock held. */
bool verdict_golden_outdated_locked(vouchd *d, const device *dev, char *why, size_t n);
/* v's findings: the one finding f (about no PCR or event), through *fp. */
void verdict_one_finding(Vouch__V1__Verdict *v, Vouch__V1__Finding *f, Vouch__V1__Finding **fp, const char *rule,
                         const char *expected, const char *actual, const char *explanation);
/* The device's latest verdict as the API shows it: a copy of the latest one (committed,
 * or a failed commit's that is not TRUSTED), or a signed UNKNOWN; judged against the
 * device's state when served: never TRUSTED for a revoked device (a signed UNTRUSTED
 * stand-in), once expired by either clock (a STALE one is then issued) nor under a golden
 * set the device is no longer judged by (a signed STALE stand-in). */
int verdict_current(vouchd *d, device *dev, uint8_t **record, size_t *record_len, int *status);
/* The status verdict_current shows (d->lock held). */
int verdict_shown_status_locked(vouchd *d, const device *dev);
/* At start, after verdict_load_latest: a revoked device whose latest verdict is TRUSTED
 * gets its UNTRUSTED (revoked) verdict; when the previous run did not close the store
 * cleanly (previous_clean false), every other TRUSTED latest verdict is superseded by a
 * STALE one (finding "restart"). Waits until they are stored; -EIO when one is not. On a
 * shared store each under the device's lease (lease_settle_at_start). */
int verdict_settle_at_start(vouchd *d, bool previous_clean, size_t *ret_stale, size_t *ret_revoked);
/* Issues STALE verdicts for devices whose latest verdict has expired. On a shared store only
 * the holder of a device's lease does: a device nobody holds is claimed for it (lease_get),
 * and released after. */
void verdict_sweep(vouchd *d);
/* A shared store, when this instance claims a device (lease.c), or learns of a device
 * another instance enrolled (vouchd_follow): the device's latest verdict from the store, when
 * it is newer than the one in memory (as verdict_follow judges it: another instance issued
 * it; a newer one in memory is this instance's own, shown but not stored). 0, or the read's
 * error. */
int verdict_reload_latest(vouchd *d, device *dev);
/* The same with the latest verdict already read (a claim's transaction read it: lease.c);
 * its record is taken (latest->record NULL then) when it becomes the device's latest. 0. */
int verdict_take_latest(vouchd *d, device *dev, vs_verdict *latest);
/* Supersedes dev's latest verdict when it is TRUSTED (else does nothing and returns 0): by
 * an UNTRUSTED one when the device is revoked or not approved, else by a STALE one whose
 * finding says why: taken_from, the instance whose lease this one took over (rule
 * "takeover"), or NULL, this instance's own unclean run (rule "restart"). Returns 1 when one
 * was queued (done runs once it is committed or failed), or <0 when none could be. */
int verdict_supersede(vouchd *d, device *dev, const char *taken_from, verdict_done_fn done, void *userdata);
/* A shared store: dev's latest verdict in memory, shown but not stored (device.unstored), is
 * issued again with new numbers (the same statement, signed anew). 1 when queued (done runs
 * once committed or failed), 0 when nothing is unstored, or <0. */
int verdict_store_shown(vouchd *d, device *dev, verdict_done_fn done, void *userdata);
/* Reads the verdict-signing keys again (vk_load) and swaps them in. */
int verdict_keys_reload(vouchd *d);
/* Loads the latest verdict of every device from the store (at start). */
int verdict_load_latest(vouchd *d);
/* Shared stores (API thread): reads the verdicts every instance committed after
 * d->published (vs_verdict_since), makes each its device's latest in memory when it is
 * newer (by device sequence) than the one there, and then moves d->published to the last
 * one read. Other instances' verdicts thus reach GET, the lists and the watch stream (never
 * ahead of GET). Returns how many were read, or the store's error. */
int verdict_follow(vouchd *d);
/* The verdict as an IETF RATS EAR (JWT, ES256). */
int verdict_ear(vouchd *d, const uint8_t *record, size_t len, char **jwt);


