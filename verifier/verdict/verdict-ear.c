/* SPDX-License-Identifier: Apache-2.0 */
/* The EAR form of a verdict; see verdict-ear.h. */
#include <errno.h>
#include <json-c/json.h>
#include <openssl/ecdsa.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verdict-ear.h"
#include "verdict-sign.h"

/* base64url without padding (RFC 7515, 2) */
static char *b64url(const uint8_t *p, size_t n) {
        size_t cap = 4 * ((n + 2) / 3) + 1;
        char *s = malloc(cap);
        if (!s)
                return NULL;
        int len = EVP_EncodeBlock((unsigned char *) s, p, (int) n);
        while (len > 0 && s[len - 1] == '=')
                len--;
        s[len] = 0;
        for (char *c = s; *c; c++)
                *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
        return s;
}

/* The coordinates of an EC P-256 public key, 32 bytes each. 0 or -ENOTSUP. */
static int p256_xy(EVP_PKEY *key, uint8_t x[32], uint8_t y[32]) {
        char group[64];
        BIGNUM *bx = NULL, *by = NULL;
        int r = -ENOTSUP;
        if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
            EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1 ||
            strcmp(group, "prime256v1") != 0)
                return r;
        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &bx) == 1 &&
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &by) == 1 && BN_bn2binpad(bx, x, 32) == 32 &&
            BN_bn2binpad(by, y, 32) == 32)
                r = 0;
        BN_free(bx);
        BN_free(by);
        return r;
}

/* x and y of key, base64url, into new strings. 0, -ENOTSUP, -ENOMEM. */
static int jwk_xy(EVP_PKEY *key, char **ret_x, char **ret_y) {
        uint8_t x[32], y[32];
        int r = p256_xy(key, x, y);
        if (r < 0)
                return r;
        char *x64 = b64url(x, 32), *y64 = b64url(y, 32);
        if (!x64 || !y64) {
                free(x64);
                free(y64);
                return -ENOMEM;
        }
        *ret_x = x64;
        *ret_y = y64;
        return 0;
}

static int thumbprint_of(const char *x64, const char *y64, char ret_kid[VV_JWK_KID_LEN + 1]) {
        char canon[160];
        uint8_t h[SHA256_DIGEST_LENGTH];
        int n = snprintf(canon, sizeof(canon), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x64, y64);
        if (n < 0 || (size_t) n >= sizeof(canon))
                return -ENOTSUP;
        SHA256((const unsigned char *) canon, (size_t) n, h);
        char *kid = b64url(h, sizeof(h));
        if (!kid)
                return -ENOMEM;
        snprintf(ret_kid, VV_JWK_KID_LEN + 1, "%s", kid);
        free(kid);
        return 0;
}

int vv_jwk_thumbprint(EVP_PKEY *key, char ret_kid[VV_JWK_KID_LEN + 1]) {
        char *x64 = NULL, *y64 = NULL;
        int r = jwk_xy(key, &x64, &y64);
        if (r == 0)
                r = thumbprint_of(x64, y64, ret_kid);
        free(x64);
        free(y64);
        return r;
}

int vv_jwk(EVP_PKEY *key, json_object **ret) {
        char *x64 = NULL, *y64 = NULL, kid[VV_JWK_KID_LEN + 1];
        int r = jwk_xy(key, &x64, &y64);
        if (r == 0)
                r = thumbprint_of(x64, y64, kid);
        json_object *o = r == 0 ? json_object_new_object() : NULL;
        if (r == 0 && !o)
                r = -ENOMEM;
        if (o) {
                json_object_object_add(o, "kty", json_object_new_string("EC"));
                json_object_object_add(o, "crv", json_object_new_string("P-256"));
                json_object_object_add(o, "x", json_object_new_string(x64));
                json_object_object_add(o, "y", json_object_new_string(y64));
                json_object_object_add(o, "use", json_object_new_string("sig"));
                json_object_object_add(o, "alg", json_object_new_string("ES256"));
                json_object_object_add(o, "kid", json_object_new_string(kid));
                *ret = o;
        }
        free(x64);
        free(y64);
        return r;
}

/* AR4SI trustworthiness claims and the findings that bear on them. */
enum { TV_IDENTITY, TV_CONFIG, TV_EXEC, TV_HARDWARE, TV_N };
static const char *const tv_names[TV_N] = { "instance-identity", "configuration", "executables", "hardware" };

static void tv_from_findings(const Vouch__V1__Verdict *v, int tv[TV_N]) {
        bool identity = false, cfg = false, exec = false, hardware = false;
        for (size_t i = 0; i < v->n_findings; i++) {
                const char *r = v->findings[i]->rule ? v->findings[i]->rule : "";
                if (!strcmp(r, "attestation") || !strcmp(r, "revoked") || !strcmp(r, "freshness"))
                        identity = true;
                else if (!strncmp(r, "secure_boot", 11))
                        cfg = true;
                else if (!strncmp(r, "platform_firmware", 17))
                        hardware = exec = true; /* firmware: the platform and the code it runs */
                else if (!strcmp(r, "pcr_values") && v->findings[i]->pcr >= 0 && v->findings[i]->pcr <= 3)
                        hardware = exec = true;
                else
                        exec = true; /* boot chain, kernel, structure, coverage, digests */
        }
        /* AR4SI values: 2 affirming, 96 contraindicated, 0 no claim */
        if (identity) {
                tv[TV_IDENTITY] = 96;
                tv[TV_CONFIG] = tv[TV_EXEC] = tv[TV_HARDWARE] = 0; /* the evidence says nothing */
                return;
        }
        tv[TV_IDENTITY] = 2;
        tv[TV_CONFIG] = cfg ? 96 : 2;
        tv[TV_EXEC] = exec ? 96 : 2;
        tv[TV_HARDWARE] = hardware ? 96 : 2;
}

/* The DER ECDSA-Sig-Value as JWS wants it: r and s, 32 bytes each (RFC 7518, 3.4). */
static int es256_raw(const uint8_t *der, size_t der_len, uint8_t raw[64]) {
        const unsigned char *p = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long) der_len);
        if (!sig)
                return -EIO;
        const BIGNUM *r, *s;
        ECDSA_SIG_get0(sig, &r, &s);
        int ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
        ECDSA_SIG_free(sig);
        return ok ? 0 : -EIO;
}

/* The "vouch-tpm" submodule: the status, what the findings say, the verdict's ids. */
static json_object *ear_submod(const Vouch__V1__Verdict *v) {
        const char *status = v->status == VOUCH__V1__TRUST_STATUS__TRUSTED     ? "affirming"
                             : v->status == VOUCH__V1__TRUST_STATUS__UNTRUSTED ? "contraindicated"
                                                                               : "none";
        json_object *sub = json_object_new_object();
        json_object_object_add(sub, "ear.status", json_object_new_string(status));
        if (v->status == VOUCH__V1__TRUST_STATUS__TRUSTED || v->status == VOUCH__V1__TRUST_STATUS__UNTRUSTED) {
                int tv[TV_N];
                tv_from_findings(v, tv);
                json_object *vec = json_object_new_object();
                for (int i = 0; i < TV_N; i++)
                        json_object_object_add(vec, tv_names[i], json_object_new_int(tv[i]));
                json_object_object_add(sub, "ear.trustworthiness-vector", vec);
        }
        if (v->golden_name && v->golden_name[0]) {
                char pid[300];
                snprintf(pid, sizeof(pid), "golden:%s@%lld", v->golden_name, (long long) v->golden_version);
                json_object_object_add(sub, "ear.appraisal-policy-id", json_object_new_string(pid));
        }
        json_object_object_add(sub, "vouch.device-id", json_object_new_string(v->device_id ? v->device_id : ""));
        json_object_object_add(sub, "vouch.sequence", json_object_new_int64((int64_t) v->sequence));
        json_object_object_add(sub, "vouch.global-sequence", json_object_new_int64((int64_t) v->global_sequence));
        json_object_object_add(sub, "vouch.boot-count", json_object_new_int64(v->boot_count));
        json_object *rules = json_object_new_array();
        for (size_t i = 0; i < v->n_findings; i++)
                json_object_array_add(rules, json_object_new_string(v->findings[i]->rule ? v->findings[i]->rule : ""));
        json_object_object_add(sub, "vouch.findings", rules);
        return sub;
}

static json_object *ear_claims(const Vouch__V1__Verdict *v, const char *build) {
        json_object *pl = json_object_new_object();
        json_object_object_add(pl, "eat_profile", json_object_new_string("tag:github.com,2023:veraison/ear"));
        if (v->verifier_id && v->verifier_id[0])
                json_object_object_add(pl, "iss", json_object_new_string(v->verifier_id));
        json_object_object_add(pl, "iat", json_object_new_int64(v->issued_at));
        if (v->expires_at > v->issued_at)
                json_object_object_add(pl, "exp", json_object_new_int64(v->expires_at));
        json_object *vid = json_object_new_object();
        json_object_object_add(vid, "developer", json_object_new_string("vouch"));
        json_object_object_add(vid, "build", json_object_new_string(build));
        json_object_object_add(pl, "ear.verifier-id", vid);
        if (v->nonce.len) {
                char *n64 = b64url(v->nonce.data, v->nonce.len);
                if (n64)
                        json_object_object_add(pl, "eat_nonce", json_object_new_string(n64));
                free(n64);
        }
        json_object *subs = json_object_new_object();
        json_object_object_add(subs, "vouch-tpm", ear_submod(v));
        json_object_object_add(pl, "submods", subs);
        return pl;
}

/* The JWS compact serialization (RFC 7515, 7.1) of header and payload, signed ES256. */
static int jws_es256(json_object *hdr, json_object *pl, EVP_PKEY *key, char **ret) {
        const int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
        const char *hs = json_object_to_json_string_ext(hdr, flags), *ps = json_object_to_json_string_ext(pl, flags);
        char *h64 = b64url((const uint8_t *) hs, strlen(hs)), *p64 = b64url((const uint8_t *) ps, strlen(ps));
        char *input = NULL, *s64 = NULL, *jwt = NULL;
        uint8_t *sig = NULL, raw[64];
        size_t sig_len = 0, in_len = 0;
        int r = -ENOMEM;
        if (!h64 || !p64)
                goto out;
        in_len = strlen(h64) + 1 + strlen(p64);
        input = malloc(in_len + 1);
        if (!input)
                goto out;
        snprintf(input, in_len + 1, "%s.%s", h64, p64);
        if ((r = vv_sign(key, (const uint8_t *) input, in_len, &sig, &sig_len)) < 0 ||
            (r = es256_raw(sig, sig_len, raw)) < 0)
                goto out;
        r = -ENOMEM;
        if (!(s64 = b64url(raw, 64)) || !(jwt = malloc(in_len + 1 + strlen(s64) + 1)))
                goto out;
        sprintf(jwt, "%s.%s", input, s64);
        *ret = jwt;
        r = 0;
out:
        free(h64);
        free(p64);
        free(s64);
        free(input);
        OPENSSL_free(sig);
        return r;
}

int vv_ear(const uint8_t *record, size_t len, const vv_key *key, const char *build, char **ret_jwt) {
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, len, record);
        Vouch__V1__Verdict *v = sv ? vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data) : NULL;
        json_object *hdr = NULL, *pl = NULL;
        char kid[VV_JWK_KID_LEN + 1];
        int r = -EBADMSG;
        if (!v || (r = vv_jwk_thumbprint(key->pkey, kid)) < 0)
                goto out;
        hdr = json_object_new_object();
        json_object_object_add(hdr, "alg", json_object_new_string("ES256"));
        /* explicit typing (RFC 8725, 3.11): the media type application/eat+jwt it is served as */
        json_object_object_add(hdr, "typ", json_object_new_string("eat+jwt"));
        json_object_object_add(hdr, "kid", json_object_new_string(kid));
        pl = ear_claims(v, build);
        r = jws_es256(hdr, pl, key->pkey, ret_jwt);
out:
        json_object_put(hdr);
        json_object_put(pl);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        return r;
}
