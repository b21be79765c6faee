/* SPDX-License-Identifier: Apache-2.0 */
/* The relying party's check of a SignedVerdict; see verdict-check.h. */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "vc-util.h"
#include "verdict-check.h"
#include "verdict-sign.h"

vv_keyring *vv_keyring_free(vv_keyring *k) {
        if (!k)
                return NULL;
        for (size_t i = 0; i < k->n; i++)
                EVP_PKEY_free(k->keys[i].pkey);
        free(k);
        return NULL;
}

const vv_key *vv_keyring_find(const vv_keyring *k, const char *id) {
        if (!k || !id)
                return NULL;
        for (size_t i = 0; i < k->n; i++)
                if (strcmp(k->keys[i].id, id) == 0)
                        return &k->keys[i];
        return NULL;
}

static int key_is_p256(EVP_PKEY *p) {
        char group[64];
        size_t glen = 0;
        if (!EVP_PKEY_is_a(p, "EC"))
                return 0;
        if (EVP_PKEY_get_utf8_string_param(p, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) != 1)
                return 0;
        return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

/* One DER SubjectPublicKeyInfo into the ring; its id is the hash of exactly these bytes. */
static int keyring_add(vv_keyring *k, const uint8_t *der, size_t len, int64_t not_after) {
        const unsigned char *p = der;
        uint8_t md[32];
        EVP_PKEY *pkey;
        char id[VV_KEY_ID_LEN + 1];

        if (k->n >= VV_KEYS_MAX)
                return -E2BIG;
        if (len == 0 || len > 4096)
                return -EBADMSG;
        pkey = d2i_PUBKEY(NULL, &p, (long) len);
        if (!pkey)
                return -EBADMSG;
        if ((size_t) (p - der) != len) { /* trailing bytes: not one SPKI */
                EVP_PKEY_free(pkey);
                return -EBADMSG;
        }
        if (!key_is_p256(pkey)) {
                EVP_PKEY_free(pkey);
                return -ENOTSUP;
        }
        if (vc_digest(VC_ALG_SHA256, der, len, md) < 0) {
                EVP_PKEY_free(pkey);
                return -ENOMEM;
        }
        vc_hex(md, sizeof(md), id);
        if (vv_keyring_find(k, id)) {
                EVP_PKEY_free(pkey);
                return -EEXIST;
        }
        k->keys[k->n].pkey = pkey;
        memcpy(k->keys[k->n].id, id, sizeof(id));
        k->keys[k->n].not_after = not_after;
        k->n++;
        return 0;
}

static bool looks_like_pem(const uint8_t *buf, size_t len) {
        static const char tag[] = "-----BEGIN ";
        return memmem(buf, len, tag, sizeof(tag) - 1) != NULL;
}

static int keyring_parse_pem(vv_keyring *k, const uint8_t *buf, size_t len) {
        BIO *bio = BIO_new_mem_buf(buf, (int) len);
        int r = 0;
        if (!bio)
                return -ENOMEM;
        for (;;) {
                char *name = NULL, *header = NULL;
                unsigned char *data = NULL;
                long dlen = 0;
                ERR_clear_error();
                if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1) {
                        unsigned long e = ERR_peek_last_error();
                        /* the normal end: no further BEGIN line */
                        if (!(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
                                r = -EBADMSG;
                        break;
                }
                if (strcmp(name, "PUBLIC KEY") != 0 || (header && header[0]))
                        r = -EBADMSG; /* a certificate, a private key, an encrypted block... */
                else
                        r = keyring_add(k, data, (size_t) dlen, 0);
                OPENSSL_free(name);
                OPENSSL_free(header);
                OPENSSL_free(data);
                if (r < 0)
                        break;
        }
        ERR_clear_error();
        BIO_free(bio);
        return r;
}

static int keyring_parse_proto(vv_keyring *k, const uint8_t *buf, size_t len) {
        Vouch__V1__VerdictKeys *vk = vouch__v1__verdict_keys__unpack(NULL, len, buf);
        int r = 0;
        if (!vk)
                return -EBADMSG;
        for (size_t i = 0; i < vk->n_keys && r == 0; i++) {
                const Vouch__V1__VerdictKey *e = vk->keys[i];
                r = keyring_add(k, e->spki.data, e->spki.len, e->not_after);
                /* the published id must be the one the key has */
                if (r == 0 && strcmp(k->keys[k->n - 1].id, e->key_id ? e->key_id : "") != 0)
                        r = -EBADMSG;
        }
        vouch__v1__verdict_keys__free_unpacked(vk, NULL);
        return r;
}

int vv_keyring_parse(const uint8_t *buf, size_t len, vv_keyring **ret) {
        vv_keyring *k;
        int r;
        if (!buf || !ret)
                return -EINVAL;
        if (len > VV_KEYS_FILE_MAX)
                return -E2BIG;
        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        r = looks_like_pem(buf, len) ? keyring_parse_pem(k, buf, len) : keyring_parse_proto(k, buf, len);
        if (r == 0 && k->n == 0)
                r = -ENOENT;
        if (r < 0) {
                vv_keyring_free(k);
                return r;
        }
        *ret = k;
        return 0;
}

/* ---- the SignedVerdict file ---- */

static int json_hex_field(json_object *o, const char *name, ProtobufCBinaryData *out) {
        json_object *f;
        if (!json_object_object_get_ex(o, name, &f) || !json_object_is_type(f, json_type_string))
                return -EBADMSG;
        size_t n = (size_t) json_object_get_string_len(f);
        if (n == 0 || n % 2)
                return -EBADMSG;
        out->data = malloc(n / 2);
        if (!out->data)
                return -ENOMEM;
        int r = vc_unhex(json_object_get_string(f), n, out->data, n / 2);
        if (r < 0)
                return -EBADMSG;
        out->len = (size_t) r;
        return 0;
}

/* A proto3 JSON bytes field: base64 (RFC 4648 section 4, or the URL-safe alphabet of
 * section 5, as the mapping's parsers accept), padded or not; nothing else. */
static int json_base64_field(json_object *o, const char *name, ProtobufCBinaryData *out) {
        json_object *f;
        if (!json_object_object_get_ex(o, name, &f) || !json_object_is_type(f, json_type_string))
                return -EBADMSG;
        const char *s = json_object_get_string(f);
        size_t n = (size_t) json_object_get_string_len(f);
        while (n > 0 && s[n - 1] == '=' && n % 4 != 1)
                n--;
        if (n == 0 || n % 4 == 1)
                return -EBADMSG;
        out->data = malloc(n * 3 / 4 + 1);
        if (!out->data)
                return -ENOMEM;
        uint32_t acc = 0;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                        : c >= 'a' && c <= 'z' ? c - 'a' + 26
                        : c >= '0' && c <= '9' ? c - '0' + 52
                        : c == '+' || c == '-' ? 62
                        : c == '/' || c == '_' ? 63
                                               : -1;
                if (v < 0)
                        return -EBADMSG;
                acc = acc << 6 | (uint32_t) v;
                if (i % 4 == 3) {
                        out->data[k++] = (uint8_t) (acc >> 16);
                        out->data[k++] = (uint8_t) (acc >> 8);
                        out->data[k++] = (uint8_t) acc;
                        acc = 0;
                }
        }
        if (n % 4 == 2)
                out->data[k++] = (uint8_t) (acc >> 4);
        else if (n % 4 == 3) {
                out->data[k++] = (uint8_t) (acc >> 10);
                out->data[k++] = (uint8_t) (acc >> 2);
        }
        out->len = k;
        return 0;
}

/* The JSON forms carry the same three fields: the API's (the proto3 JSON mapping: "verdict"
 * and "signature" in base64) or vouchctl's (the verdict decoded, "verdict_bytes" and
 * "signature" in hex). The message is rebuilt from them so that every form is released the
 * same way. */
static int signed_parse_json(const uint8_t *buf, size_t len, Vouch__V1__SignedVerdict **ret) {
        json_tokener *tok = json_tokener_new_ex(16);
        json_object *o = NULL, *kid;
        ProtobufCBinaryData verdict = { 0 }, sig = { 0 };
        uint8_t *packed = NULL;
        size_t plen = 0;
        int r = -EBADMSG;

        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, (const char *) buf, (int) len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_object))
                goto out;
        /* nothing but whitespace after the object */
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
                if (!isspace(buf[i]))
                        goto out;
        json_object *vf;
        bool mapping = json_object_object_get_ex(o, "verdict", &vf) && json_object_is_type(vf, json_type_string);
        if (mapping ? (r = json_base64_field(o, "verdict", &verdict)) < 0 || (r = json_base64_field(o, "signature", &sig)) < 0
                    : (r = json_hex_field(o, "verdict_bytes", &verdict)) < 0 || (r = json_hex_field(o, "signature", &sig)) < 0)
                goto out;
        r = -EBADMSG;
        if (!json_object_object_get_ex(o, "key_id", &kid) || !json_object_is_type(kid, json_type_string))
                goto out;
        if ((r = vv_signed_pack(&verdict, &sig, json_object_get_string(kid), &packed, &plen)) < 0)
                goto out;
        *ret = vouch__v1__signed_verdict__unpack(NULL, plen, packed);
        r = *ret ? 0 : -ENOMEM;
out:
        free(packed);
        free(verdict.data);
        free(sig.data);
        json_object_put(o);
        json_tokener_free(tok);
        return r;
}

int vv_signed_parse(const uint8_t *buf, size_t len, Vouch__V1__SignedVerdict **ret) {
        Vouch__V1__SignedVerdict *sv = NULL;
        size_t i = 0;
        int r;

        if (!buf || !ret)
                return -EINVAL;
        if (len > VV_SIGNED_MAX)
                return -E2BIG;
        while (i < len && isspace(buf[i]))
                i++;
        /* '{' (0x7b) would be a group start of field 15 in protobuf: never a SignedVerdict */
        if (i < len && buf[i] == '{')
                r = signed_parse_json(buf, len, &sv);
        else {
                sv = vouch__v1__signed_verdict__unpack(NULL, len, buf);
                r = sv ? 0 : -EBADMSG;
        }
        if (r < 0)
                return r;
        /* protobuf accepts an empty or unrelated message as all defaults: demand the fields */
        if (sv->verdict.len == 0 || sv->signature.len == 0 || !sv->key_id || !sv->key_id[0]) {
                vouch__v1__signed_verdict__free_unpacked(sv, NULL);
                return -EBADMSG;
        }
        *ret = sv;
        return 0;
}

/* ---- the check ---- */

static int verify_signature(EVP_PKEY *pkey, const ProtobufCBinaryData *msg, const ProtobufCBinaryData *sig, bool *ret_ok) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        /* ECDSA with SHA-256; OpenSSL rejects a signature whose DER is not the canonical
         * encoding of (r, s), and (r, n - s), which verifies too, is refused here: vouchd
         * signs with the low S, so a SignedVerdict has exactly one valid form */
        int ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
                 EVP_DigestVerify(ctx, sig->data, sig->len, msg->data, msg->len) == 1 &&
                 vc_ecdsa_p256_is_low_s(sig->data, sig->len);
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        *ret_ok = ok;
        return 0;
}

static void set_reason(vv_result *r, vv_outcome o, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_reason(vv_result *r, vv_outcome o, const char *fmt, ...) {
        va_list ap;
        r->outcome = o;
        va_start(ap, fmt);
        vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
        va_end(ap);
}

/* key ids are printed in messages: only hex, and bounded */
static const char *printable_id(const char *id, char buf[VV_KEY_ID_LEN + 4]) {
        size_t n = 0;
        for (; id[n] && n < VV_KEY_ID_LEN; n++)
                buf[n] = isxdigit((unsigned char) id[n]) ? id[n] : '?';
        buf[n] = '\0';
        if (id[n])
                strcpy(buf + n, "...");
        return buf;
}

int vv_verify(const vv_keyring *k, const Vouch__V1__SignedVerdict *sv, int64_t now, int64_t skew, vv_result *ret) {
        char idbuf[VV_KEY_ID_LEN + 4], t1[32], t2[32];
        const vv_key *key;
        bool ok;
        int r;

        if (!k || !sv || !ret)
                return -EINVAL;
        memset(ret, 0, sizeof(*ret));
        ret->outcome = VV_UNKNOWN_KEY; /* until proven otherwise */
        key = vv_keyring_find(k, sv->key_id);
        if (!key) {
                set_reason(ret, VV_UNKNOWN_KEY, "key id %s is not the SHA-256 of any key in the keys file",
                           printable_id(sv->key_id ? sv->key_id : "", idbuf));
                return 0;
        }
        r = verify_signature(key->pkey, &sv->verdict, &sv->signature, &ok);
        if (r < 0)
                return r;
        if (!ok) {
                set_reason(ret, VV_BAD_SIGNATURE, "the signature does not verify with key %s", key->id);
                return 0;
        }
        ret->verdict = vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data);
        if (!ret->verdict) {
                set_reason(ret, VV_BAD_VERDICT, "the signed bytes are not a Verdict");
                return 0;
        }
        const Vouch__V1__Verdict *v = ret->verdict;
        /* A retired key's end date bounds everything it vouches for, by the checker's own
         * clock: issued_at and expires_at are the signer's to choose, and a retired key
         * is exactly the one that may have leaked. */
        if (key->not_after != 0 && v->issued_at >= key->not_after) {
                set_reason(ret, VV_KEY_RETIRED, "issued at %s, but key %s only signs until %s",
                           vv_format_time(v->issued_at, t1, sizeof(t1)), key->id,
                           vv_format_time(key->not_after, t2, sizeof(t2)));
                return 0;
        }
        if (key->not_after != 0 && now >= key->not_after) {
                set_reason(ret, VV_KEY_RETIRED, "key %s was retired at %s (now %s): nothing it signed verifies",
                           key->id, vv_format_time(key->not_after, t1, sizeof(t1)), vv_format_time(now, t2, sizeof(t2)));
                return 0;
        }
        if (key->not_after != 0 && v->expires_at > key->not_after) {
                set_reason(ret, VV_KEY_RETIRED, "expires at %s, after key %s's end date %s",
                           vv_format_time(v->expires_at, t1, sizeof(t1)), key->id,
                           vv_format_time(key->not_after, t2, sizeof(t2)));
                return 0;
        }
        if (v->issued_at > now && v->issued_at - now > skew) {
                set_reason(ret, VV_NOT_YET_VALID, "issued at %s, later than now (%s) by more than %lld s",
                           vv_format_time(v->issued_at, t1, sizeof(t1)), vv_format_time(now, t2, sizeof(t2)),
                           (long long) skew);
                return 0;
        }
        /* docs/API.md: valid while now < expires_at */
        if (!(now < v->expires_at)) {
                set_reason(ret, VV_EXPIRED, "expired at %s (now %s)", vv_format_time(v->expires_at, t1, sizeof(t1)),
                           vv_format_time(now, t2, sizeof(t2)));
                return 0;
        }
        ret->outcome = VV_VALID;
        return 0;
}

void vv_result_done(vv_result *r) {
        if (!r)
                return;
        if (r->verdict)
                vouch__v1__verdict__free_unpacked(r->verdict, NULL);
        r->verdict = NULL;
}

void vv_expect_device(vv_result *r, const char *device) {
        if (!r || r->outcome != VV_VALID || !r->verdict || !device)
                return;
        const char *got = r->verdict->device_id ? r->verdict->device_id : "";
        if (strcmp(got, device) == 0)
                return;
        r->outcome = VV_WRONG_DEVICE;
        snprintf(r->reason, sizeof(r->reason), "the verdict is about device %.64s%s, not %.64s%s", got,
                 strlen(got) > 64 ? "..." : "", device, strlen(device) > 64 ? "..." : "");
}

void vv_expect_device_key(vv_result *r, const uint8_t *spki, size_t spki_len) {
        uint8_t want[SHA256_DIGEST_LENGTH];
        if (!r || r->outcome != VV_VALID || !r->verdict || !spki)
                return;
        const ProtobufCBinaryData *got = &r->verdict->device_key;
        if (SHA256(spki, spki_len, want) && got->len == sizeof(want) && CRYPTO_memcmp(got->data, want, sizeof(want)) == 0)
                return;
        r->outcome = VV_WRONG_KEY;
        snprintf(r->reason, sizeof(r->reason), "%s",
                 got->len ? "the verdict proves another device key than the one presented"
                          : "the verdict proves no device key (its attestation certified none, or vouchd issues no "
                            "device certificates)");
}

bool vv_accept(const vv_result *r, bool any_status) {
        if (!r || r->outcome != VV_VALID || !r->verdict)
                return false;
        return any_status || r->verdict->status == VOUCH__V1__TRUST_STATUS__TRUSTED;
}

const char *vv_outcome_name(vv_outcome o) {
        switch (o) {
        case VV_VALID: return "valid";
        case VV_UNKNOWN_KEY: return "unknown-key";
        case VV_BAD_SIGNATURE: return "bad-signature";
        case VV_BAD_VERDICT: return "bad-verdict";
        case VV_KEY_RETIRED: return "key-retired";
        case VV_NOT_YET_VALID: return "not-yet-valid";
        case VV_EXPIRED: return "expired";
        case VV_WRONG_DEVICE: return "wrong-device";
        case VV_WRONG_KEY: return "wrong-key";
        }
        return "invalid";
}

const char *vv_status_name(int status) {
        switch (status) {
        case VOUCH__V1__TRUST_STATUS__TRUST_STATUS_UNSPECIFIED: return "UNSPECIFIED";
        case VOUCH__V1__TRUST_STATUS__TRUSTED: return "TRUSTED";
        case VOUCH__V1__TRUST_STATUS__UNTRUSTED: return "UNTRUSTED";
        case VOUCH__V1__TRUST_STATUS__STALE: return "STALE";
        case VOUCH__V1__TRUST_STATUS__UNKNOWN: return "UNKNOWN";
        default: return NULL;
        }
}

/* ---- time ---- */

static int digits(const char **p, int n, int *out) {
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char) (*p)[i]))
                        return -EINVAL;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        *out = v;
        return 0;
}

int vv_parse_time(const char *s, int64_t *ret) {
        const char *p = s;
        int Y, M, D, h, m, sec, oh = 0, om = 0, sign = 0;

        if (!s || !ret || !*s)
                return -EINVAL;
        if (strspn(s, "0123456789") == strlen(s)) {
                if (strlen(s) > 15) /* keep far from overflow; year 30 million is enough */
                        return -EINVAL;
                *ret = strtoll(s, NULL, 10);
                return 0;
        }
        /* RFC 3339, 5.6: date-time = full-date "T" full-time */
        if (digits(&p, 4, &Y) < 0 || *p++ != '-' || digits(&p, 2, &M) < 0 || *p++ != '-' || digits(&p, 2, &D) < 0)
                return -EINVAL;
        if (*p != 'T' && *p != 't')
                return -EINVAL;
        p++;
        if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &m) < 0 || *p++ != ':' || digits(&p, 2, &sec) < 0)
                return -EINVAL;
        if (*p == '.') {
                p++;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                while (isdigit((unsigned char) *p))
                        p++;
        }
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                sign = *p++ == '+' ? 1 : -1;
                if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0 || oh > 23 || om > 59)
                        return -EINVAL;
        } else
                return -EINVAL;
        if (*p)
                return -EINVAL;
        if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 59)
                return -EINVAL;
        struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec };
        time_t t = timegm(&tm);
        /* timegm normalizes Feb 30 into March: refuse dates that moved */
        if (tm.tm_mday != D || tm.tm_mon != M - 1)
                return -EINVAL;
        *ret = (int64_t) t - sign * (oh * 3600 + om * 60);
        return 0;
}

const char *vv_format_time(int64_t t, char *buf, size_t size) {
        struct tm tm;
        time_t tt = (time_t) t;
        if (t < -62135596800LL || t > 253402300799LL || !gmtime_r(&tt, &tm) ||
            strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "%lld", (long long) t);
        return buf;
}
