/* SPDX-License-Identifier: Apache-2.0 */
/* Device certificates (issue 19; docs/vouchd.md, "Device certificates"): the device CA, an
 * X.509 certificate for a device's TPM-resident key issued with each TRUSTED verdict of an
 * attestation that proves the key (TPM2_Certify by the AK over the challenge), and the
 * certificate revocation list of the certificates of devices that are no longer trusted
 * (devcert.c).
 *
 * Issuing is on when --trust-domain is set: every certificate names the device by its
 * SPIFFE ID spiffe://TRUST_DOMAIN/device/DEVICE_ID, so a TLS server that demands a client
 * certificate from the device CA (and checks the CRL) admits only devices vouchd trusts.
 * The certificate is stored in the transaction of its verdict (vs_verdict.cert) and sent to
 * the agent with the verdict (VerdictNotice.device_certificates) once committed; its
 * notAfter is never later than the verdict's expiry.
 *
 * Threads: the CA and the settings are set at start (devcert_load) and read-only after;
 * devcert_check and devcert_issue run on the event loops; the CRL is rebuilt from the store
 * by a thread of its own (devcert_start) and read under its own lock (devcert_crl_get), from
 * the API's and the health port's threads. */
#pragma once

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "quote.h"
#include "store.h"

typedef struct vouchd vouchd;
typedef struct devcert devcert;

/* The state dir's device CA: its key (mode 0600) and self-signed certificate. */
#define DEVCA_KEY_FILE "device-ca.key"
#define DEVCA_CERT_FILE "device-ca.pem"
/* A certificate's notBefore is this far before its issue: relying parties with a clock a
 * little behind vouchd's accept it at once. */
#define DEVCERT_BACKDATE 60
/* A revoked certificate is listed until this long after its notAfter: a relying party whose
 * clock is behind still finds it. */
#define DEVCERT_CRL_EXPIRED_GRACE 300
/* The CRL is read from the store this often (a change at any instance is on it within a
 * second), and reissued at least every interval. */
#define DEVCERT_CRL_POLL_MS 250
/* The most certificates one CRL lists; more is refused (the previous CRL stays, logged). */
#define DEVCERT_CRL_MAX 1000000
/* The most certificates of the device CA's chain sent with a device's certificate. */
#define DEVCERT_CHAIN_MAX 7

/* vouchd init: the state dir's device CA (ECDSA P-256, self-signed, CA:TRUE, keyCertSign and
 * cRLSign) made when both its files are absent and generate is set. A pair present and
 * matching: 0. One of them without the other, unreadable, or not a pair: an error naming the
 * file (err), never replaced. Both absent without generate: 0 (none). */
int devca_init_state_dir(const char *dir, bool generate, char *err, size_t n);
/* vouchd init --join: the existing state dir's device CA copied into dir (*ret_copied), or
 * none when existing has none (*ret_copied false; then dir must not make one of its own: the
 * instances of a deployment share one). Errors as devca_init_state_dir, for existing's files. */
int devca_join_state_dir(const char *dir, const char *existing, bool *ret_copied, char *err, size_t n);

/* At start, before the store is opened: the device CA (--device-ca-cert and
 * --device-ca-key, or the state dir's), checked (a CA certificate that may sign certificates
 * and CRLs, unexpired, of the key), and the settings (--trust-domain, --crl-url,
 * --device-cert-ttl). No device CA is fine without --trust-domain (nothing is issued, no CRL
 * is served); with it, the start is refused. Logs what is wrong; <0 refuses the start. */
int devcert_load(vouchd *d);
/* Whether certificates are issued (a device CA and --trust-domain). */
bool devcert_issuing(vouchd *d);

/* Reads --device-names (devnames.h) and puts it to use: at start (devcert_load calls it) and
 * on SIGHUP. 0 (also when there is no such option); an unreadable or unusable file is logged
 * with what is wrong and where, and returns < 0: at start that refuses the start, on SIGHUP
 * the names in use stay. */
int devcert_names_reload(vouchd *d);
/* A shared store: the device CA is the deployment's (its key id registered as the store's
 * if there is none, vs_device_ca_register, then compared). 0 (also without a device CA);
 * -EXDEV another CA's (err says so); another <0 when the store could not answer. */
int devcert_check_deployment(vouchd *d, char *err, size_t n);
/* Builds the first CRL from the store (a failure is logged: /v1/crl answers 503 until a
 * rebuild succeeds) and starts the CRL's thread. Without a device CA, nothing. */
int devcert_start(vouchd *d);
/* Stops the CRL's thread (before the store closes); devcert_free frees the rest. Both may be
 * called in any state, more than once. */
void devcert_stop(vouchd *d);
void devcert_free(vouchd *d);

/* The device key's proof with a quote (QuoteAnswer.device_key_*), checked. */
typedef enum devcert_proof_state {
        DEVCERT_PROOF_NONE = 0,         /* no key sent, or not checked (issuing off, not TRUSTED) */
        DEVCERT_PROOF_VALID = 1,        /* key set */
        DEVCERT_PROOF_INVALID = 2,      /* check and why say what failed */
} devcert_proof_state;

typedef struct devcert_proof {
        devcert_proof_state state;
        EVP_PKEY *key;                  /* VALID: the certified key (devcert_proof_done frees it) */
        const char *check;              /* INVALID: the check that failed (vc_certify_check_name,
                                         * "malformed") */
        char why[400];                  /* INVALID: what failed */
} devcert_proof;

/* Checks the proof of the key whose marshalled TPMT_PUBLIC is pub (the certify's TPMS_ATTEST
 * attest, the AK's TPMT_SIGNATURE sig) against the device's AK and the challenge's nonce:
 * vc_certify_verify with vc_certify_qualifying_data(nonce). Nothing is checked (NONE) when
 * the agent sent no key (all three empty) or issuing is off. Pure but for d's settings; the
 * caller holds what keeps ak alive (dev->mu). 0 with *ret filled (INVALID is a result);
 * -ENOMEM, -EIO when it could not be evaluated. */
int devcert_check(vouchd *d, const vc_ak *ak, const uint8_t *nonce, size_t nonce_len, const uint8_t *pub,
                  size_t pub_len, const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
                  devcert_proof *ret);
void devcert_proof_done(devcert_proof *p);

/* SHA-256 of key's DER SubjectPublicKeyInfo (Verdict.device_key) into out (32 bytes).
 * -ENOMEM, -EIO. */
int devcert_key_digest(EVP_PKEY *key, uint8_t out[32]);

/* The certificate of device_id's key, issued at now for a TRUSTED verdict expiring at
 * expires_at (both Unix seconds): a random positive 16-byte serial; notBefore now -
 * DEVCERT_BACKDATE; notAfter the earliest of expires_at, now + --device-cert-ttl and the
 * CA's notAfter; subject CN=device_id; SAN URI spiffe://TRUST_DOMAIN/device/DEVICE_ID;
 * keyUsage digitalSignature; extendedKeyUsage clientAuth; the key identifiers; the CRL
 * distribution point. *ret (serial, validity, der malloc'ed: vs_cert_done) as the store takes
 * it. -EINVAL issuing off or an expiry not after now, -EIO OpenSSL failed, -ENOMEM; why says. */
int devcert_issue(vouchd *d, const char *device_id, EVP_PKEY *key, int64_t now, int64_t expires_at, vs_cert *ret,
                  char *why, size_t n);

/* The framed VerdictNotice for record with the device's certificate cert (NULL: none) and
 * the device CA's chain after it (vw_frame_verdict_notice_certs). Errors as that. */
int devcert_frame_notice(vouchd *d, const uint8_t *record, size_t len, const uint8_t *cert, size_t cert_len,
                         uint8_t **ret, size_t *ret_len);

/* The current CRL, a copy (malloc'ed): DER, or PEM when pem. -ENOENT no device CA, -EAGAIN
 * none built yet (the store could not be read), -ENOMEM. */
int devcert_crl_get(vouchd *d, bool pem, uint8_t **ret, size_t *ret_len);
/* The device certificates' counters and the CRL's size and age for /metrics (nothing without a
 * device CA). */
void devcert_metrics(vouchd *d, FILE *f);
/* Reads the store and issues a new CRL when what it lists changed, when force is set, or
 * when the current one is an interval old (what the CRL's thread does every
 * DEVCERT_CRL_POLL_MS). 1 a new CRL, 0 none needed, <0 the store's error (the current CRL
 * stays), -E2BIG more than DEVCERT_CRL_MAX. */
int devcert_crl_refresh(vouchd *d, bool force);
