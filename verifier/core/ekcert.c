/* SPDX-License-Identifier: Apache-2.0 */
/* EK certificates from the makers' services: lookup keys and answers (ekcert.h). The
 * hashes follow what the services expect (as tpm2-tools' tpm2_getekcertificate computes
 * them); the known-answer tests in test/unit/test-enroll.c pin them. */
#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ekcert.h"
#include "enroll.h"
#include "hash.h"

/* out = SHA-256 over the parts, each (pointer, length); a NULL pointer ends the list. */
static int sha256_parts(uint8_t out[32], const void *p1, size_t l1, const void *p2, size_t l2, const void *p3,
                        size_t l3) {
        uint8_t buf[4 + 4 + 2 * sizeof(((TPMT_PUBLIC *) 0)->unique.rsa.buffer)];
        size_t off = 0;
        const void *p[3] = { p1, p2, p3 };
        size_t l[3] = { l1, l2, l3 };
        for (int i = 0; i < 3 && p[i]; i++) {
                if (l[i] > sizeof(buf) - off)
                        return -EINVAL;
                memcpy(buf + off, p[i], l[i]);
                off += l[i];
        }
        return vc_digest(VC_ALG_SHA256, buf, off, out);
}

static int lookup_hash(vc_ekcert_form form, const TPMT_PUBLIC *ek, uint8_t h[32]) {
        static const uint8_t amd_rsa[4] = { 0, 0, 0x22, 0x22 }, amd_ecc[4] = { 0, 0, 0x44, 0x44 },
                             intel_exp[3] = { 0x01, 0x00, 0x01 };
        if (ek->type == TPM2_ALG_RSA) {
                const TPM2B_PUBLIC_KEY_RSA *m = &ek->unique.rsa;
                uint32_t e = ek->parameters.rsaDetail.exponent;
                if (m->size > sizeof(m->buffer))
                        return -EINVAL;
                if (form == VC_EKCERT_FORM_INTEL)
                        return e == 0 || e == 65537 ? sha256_parts(h, m->buffer, m->size, intel_exp, 3, NULL, 0)
                                                    : -ENOTSUP;
                e = e ? e : 65537;
                uint8_t eb[4] = { (uint8_t) (e >> 24), (uint8_t) (e >> 16), (uint8_t) (e >> 8), (uint8_t) e };
                return sha256_parts(h, amd_rsa, 4, eb, 4, m->buffer, m->size);
        }
        if (ek->type == TPM2_ALG_ECC) {
                const TPMS_ECC_POINT *q = &ek->unique.ecc;
                if (q->x.size > sizeof(q->x.buffer) || q->y.size > sizeof(q->y.buffer))
                        return -EINVAL;
                if (form == VC_EKCERT_FORM_INTEL)
                        return sha256_parts(h, q->x.buffer, q->x.size, q->y.buffer, q->y.size, NULL, 0);
                return sha256_parts(h, amd_ecc, 4, q->x.buffer, q->x.size, q->y.buffer, q->y.size);
        }
        return -EINVAL;
}

int vc_ekcert_lookup(vc_ekcert_form form, const TPMT_PUBLIC *ek, char *out, size_t n) {
        uint8_t h[32];
        int r;
        if ((form != VC_EKCERT_FORM_INTEL && form != VC_EKCERT_FORM_AMD) || n < VC_EKCERT_LOOKUP_MAX)
                return -EINVAL;
        if ((r = lookup_hash(form, ek, h)) < 0)
                return r;
        if (form == VC_EKCERT_FORM_AMD) {
                for (size_t i = 0; i < 16; i++)
                        snprintf(out + 2 * i, 3, "%02x", h[i]);
                return 0;
        }
        char b64[48];
        int len = EVP_EncodeBlock((unsigned char *) b64, h, sizeof(h)); /* 44 characters, one '=' */
        size_t o = 0;
        for (int i = 0; i < len; i++) {
                char c = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
                if (c == '=') {
                        memcpy(out + o, "%3D", 3);
                        o += 3;
                } else {
                        out[o++] = c;
                }
        }
        out[o] = 0;
        return 0;
}

/* base64url (RFC 4648, 5), padding optional, into a malloc'ed buffer. */
static int base64url_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_len) {
        size_t padded = (n + 3) / 4 * 4, pad = 0;
        char *t = malloc(padded + 1);
        uint8_t *out = malloc(padded / 4 * 3 + 1);
        int r = -EBADMSG;
        if (!t || !out) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == '-')
                        c = '+';
                else if (c == '_')
                        c = '/';
                else if (!(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '+' &&
                         c != '/' && c != '=')
                        goto out;
                t[i] = c;
        }
        for (size_t i = n; i < padded; i++)
                t[i] = '=';
        t[padded] = 0;
        for (size_t i = padded; i > 0 && t[i - 1] == '='; i--)
                pad++;
        if (padded == 0 || pad > 2)
                goto out;
        int len = EVP_DecodeBlock(out, (const unsigned char *) t, (int) padded);
        if (len < 0 || (size_t) len < pad)
                goto out;
        *ret = out;
        *ret_len = (size_t) len - pad;
        out = NULL;
        r = 0;
out:
        free(t);
        free(out);
        return r;
}

static int one_der_certificate(const uint8_t *p, size_t n) {
        const unsigned char *q = p;
        X509 *x = d2i_X509(NULL, &q, (long) n);
        bool whole = x && (size_t) (q - p) == n;
        X509_free(x);
        return whole ? 0 : -EBADMSG;
}

static int copy_out(const uint8_t *p, size_t n, uint8_t **ret, size_t *ret_len) {
        uint8_t *d = malloc(n ? n : 1);
        if (!d)
                return -ENOMEM;
        memcpy(d, p, n);
        *ret = d;
        *ret_len = n;
        return 0;
}

static int from_intel(const uint8_t *body, size_t len, uint8_t **ret_der, size_t *ret_len, vc_error *err) {
        json_tokener *tok = json_tokener_new();
        json_object *o = tok ? json_tokener_parse_ex(tok, (const char *) body, (int) len) : NULL, *c = NULL;
        int r = -EBADMSG;
        if (!tok)
                return -ENOMEM;
        if (!o || json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object))
                vc_error_set(err, r, SIZE_MAX, -1, "the answer is not one JSON object (%zu bytes)", len);
        else if (!json_object_object_get_ex(o, "certificate", &c) || !json_object_is_type(c, json_type_string))
                vc_error_set(err, r, SIZE_MAX, -1, "the JSON answer has no \"certificate\" string");
        else if ((r = base64url_decode(json_object_get_string(c), (size_t) json_object_get_string_len(c), ret_der,
                                       ret_len)) < 0)
                vc_error_set(err, r, SIZE_MAX, -1, "\"certificate\" is not base64url");
        else if ((r = one_der_certificate(*ret_der, *ret_len)) < 0) {
                free(*ret_der);
                *ret_der = NULL;
                vc_error_set(err, r, SIZE_MAX, -1, "\"certificate\" is not one DER certificate");
        }
        json_object_put(o);
        json_tokener_free(tok);
        return r;
}

static int from_amd(const uint8_t *body, size_t len, uint8_t **ret_der, size_t *ret_len, vc_error *err) {
        if (one_der_certificate(body, len) == 0)
                return copy_out(body, len, ret_der, ret_len);
        BIO *b = BIO_new_mem_buf(body, (int) len);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        unsigned char *der = NULL;
        int n = x ? i2d_X509(x, &der) : -1, r;
        /* exactly one PEM certificate: nothing after it but whitespace */
        bool rest = false;
        char c;
        while (x && BIO_read(b, &c, 1) == 1)
                rest = rest || !(c == '\n' || c == '\r' || c == ' ' || c == '\t');
        if (n > 0 && !rest)
                r = copy_out(der, (size_t) n, ret_der, ret_len);
        else
                r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                 "the answer (%zu bytes) is not one DER or PEM certificate", len);
        OPENSSL_free(der);
        X509_free(x);
        BIO_free(b);
        return r;
}

int vc_ekcert_from_answer(vc_ekcert_form form, const uint8_t *body, size_t len, uint8_t **ret_der, size_t *ret_len,
                          vc_error *err) {
        vc_error_clear(err);
        if (len > VC_EKCERT_ANSWER_MAX)
                return vc_error_set(err, -E2BIG, SIZE_MAX, -1, "an answer of %zu bytes, at most %u", len,
                                    VC_EKCERT_ANSWER_MAX);
        if (len == 0)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "an empty answer");
        if (form == VC_EKCERT_FORM_INTEL)
                return from_intel(body, len, ret_der, ret_len, err);
        if (form == VC_EKCERT_FORM_AMD)
                return from_amd(body, len, ret_der, ret_len, err);
        return vc_error_set(err, -EINVAL, SIZE_MAX, -1, "unknown answer form %d", (int) form);
}

void vc_tpm_manufacturer_name(uint32_t id, char out[12]) {
        char s[5] = { (char) (id >> 24), (char) (id >> 16), (char) (id >> 8), (char) id, 0 };
        size_t n = 4;
        while (n > 0 && (s[n - 1] == 0 || s[n - 1] == ' '))
                s[--n] = 0;
        bool printable = n > 0;
        for (size_t i = 0; i < n; i++)
                printable = printable && s[i] >= 0x21 && s[i] <= 0x7e;
        if (printable)
                snprintf(out, 12, "%s", s);
        else
                snprintf(out, 12, "0x%08x", id);
}

int vc_ek_key_fingerprint(const TPMT_PUBLIC *ek, char out[65]) {
        uint8_t id[32];
        int r = vc_ek_key_id(ek, id);
        if (r < 0)
                return r;
        for (size_t i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", id[i]);
        return 0;
}
