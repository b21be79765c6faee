/* SPDX-License-Identifier: Apache-2.0 */
/* The policy-engine API's request handling (docs/API.md): api_handle answers one request
 * given as plain data, with protobuf bodies (JSON on request), and knows nothing of the
 * connection it came on; api-http.c is its transport. */
#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin.h"
#include "api-internal.h"
#include "api.h"
#include "health.h"
#include "clock.h"
#include "devcert.h"
#include "ident.h"
#include "verdict-ear.h"
#include "vouchd.h"

#define API_PAGE_DEFAULT 100
#define API_PAGE_MAX 1000
#define API_MAX_PARAMS 16

typedef enum fmt { FMT_PB = 0, FMT_JSON, FMT_EAR, FMT_PEM, FMT_JWKS, FMT_DER, FMT_NONE } fmt;

/* ---- replies ---- */

static const char *status_name(int s) {
        switch (s) {
        case VOUCH__V1__TRUST_STATUS__TRUSTED: return "TRUSTED";
        case VOUCH__V1__TRUST_STATUS__UNTRUSTED: return "UNTRUSTED";
        case VOUCH__V1__TRUST_STATUS__STALE: return "STALE";
        case VOUCH__V1__TRUST_STATUS__UNKNOWN: return "UNKNOWN";
        default: return "TRUST_STATUS_UNSPECIFIED";
        }
}

static int status_from_name(const char *n) {
        static const int all[] = { VOUCH__V1__TRUST_STATUS__TRUSTED, VOUCH__V1__TRUST_STATUS__UNTRUSTED,
                                   VOUCH__V1__TRUST_STATUS__STALE, VOUCH__V1__TRUST_STATUS__UNKNOWN };
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
                if (strcasecmp(n, status_name(all[i])) == 0)
                        return all[i];
        return -1;
}

/* The proto3 JSON mapping (what google.protobuf.json_format and its kin in other languages
 * read): bytes as standard base64 with padding, 64-bit integers as decimal strings, enums
 * by their names; field names are the .proto's (which every parser accepts). */
static json_object *bytes_json(const uint8_t *p, size_t n) {
        char *s = malloc(4 * ((n + 2) / 3) + 1);
        if (!s)
                return NULL;
        int len = EVP_EncodeBlock((unsigned char *) s, p, (int) n);
        json_object *o = len >= 0 ? json_object_new_string_len(s, len) : NULL;
        free(s);
        return o;
}

static json_object *int64_json(int64_t v) {
        char s[24];
        snprintf(s, sizeof(s), "%lld", (long long) v);
        return json_object_new_string(s);
}

static json_object *uint64_json(uint64_t v) {
        char s[24];
        snprintf(s, sizeof(s), "%llu", (unsigned long long) v);
        return json_object_new_string(s);
}

static const char *anchor_name(int a) {
        return a == VOUCH__V1__EK_ANCHOR__EK_ANCHOR_KEY ? "EK_ANCHOR_KEY" : "EK_ANCHOR_CERTIFICATE";
}

/* A SignedVerdict in the proto3 JSON mapping: the signed Verdict's bytes (base64) as they
 * were signed, not a decoded copy a reader could take for the signed content. */
json_object *api_signed_json(const uint8_t *record, size_t len) {
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, len, record);
        json_object *o = NULL;
        if (sv) {
                o = json_object_new_object();
                json_object_object_add(o, "verdict", bytes_json(sv->verdict.data, sv->verdict.len));
                json_object_object_add(o, "signature", bytes_json(sv->signature.data, sv->signature.len));
                json_object_object_add(o, "key_id", json_object_new_string(sv->key_id ? sv->key_id : ""));
        }
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        return o;
}

void api_response_done(api_response *r) {
        for (size_t i = 0; i < r->n_headers; i++)
                free(r->headers[i].value);
        free(r->body);
        *r = (api_response) { 0 };
}

const char *api_reason(int status) {
        switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Content Too Large";
        case 415: return "Unsupported Media Type";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        default: return "Error";
        }
}

/* Out of memory: 503 with an empty body, which is an Error with no fields (nothing to
 * allocate). */
static void reply_oom(api_response *out) {
        api_response_done(out);
        out->status = 503;
        out->reason = api_reason(503);
        out->content_type = "application/x-protobuf";
}

static int add_header(api_response *out, const char *name, const char *value) {
        if (out->n_headers >= API_MAX_HEADERS)
                return -E2BIG;
        char *v = strdup(value);
        if (!v)
                return -ENOMEM;
        out->headers[out->n_headers++] = (api_header) { name, v };
        return 0;
}

/* The answer: body (malloc'ed, or NULL) taken over, also when this fails. */
static void reply_take(api_response *out, int code, const char *type, uint8_t *body, size_t len) {
        api_response_done(out);
        out->status = code;
        out->reason = api_reason(code);
        out->content_type = type;
        out->body = body;
        out->body_len = len;
        if (add_header(out, "Cache-Control", "no-store") < 0)
                reply_oom(out);
}

static void reply(api_response *out, int code, const char *type, const void *body, size_t len) {
        uint8_t *b = malloc(len ? len : 1);
        if (!b) {
                reply_oom(out);
                return;
        }
        if (len)
                memcpy(b, body, len);
        reply_take(out, code, type, b, len);
}

static void reply_json_as(api_response *out, int code, const char *type, json_object *o) {
        const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)
                          : NULL;
        if (!s)
                reply_oom(out);
        else
                reply(out, code, type, s, strlen(s));
        json_object_put(o);
}

static void reply_json(api_response *out, int code, json_object *o) {
        reply_json_as(out, code, "application/json", o);
}

static void reply_verror(api_response *out, bool json, int code, uint32_t err, const char *fmtstr, va_list ap)
        __attribute__((format(printf, 5, 0)));
static void reply_verror(api_response *out, bool json, int code, uint32_t err, const char *fmtstr, va_list ap) {
        char msg[512];
        vsnprintf(msg, sizeof(msg), fmtstr, ap);
        if (json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "code", json_object_new_int((int32_t) err));
                json_object_object_add(o, "message", json_object_new_string(msg));
                reply_json(out, code, o);
                return;
        }
        Vouch__V1__Error e = VOUCH__V1__ERROR__INIT;
        e.code = err;
        e.message = msg;
        size_t n = vouch__v1__error__get_packed_size(&e);
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf) {
                reply_oom(out);
                return;
        }
        vouch__v1__error__pack(&e, buf);
        reply_take(out, code, "application/x-protobuf", buf, n);
}

void api_reply_error(api_response *out, bool json, int code, uint32_t err, const char *fmtstr, ...) {
        va_list ap;
        va_start(ap, fmtstr);
        reply_verror(out, json, code, err, fmtstr, ap);
        va_end(ap);
}

/* Errors are JSON when the request asked for JSON (or a JWK Set), else protobuf (also for ear and pem). */
static void reply_error(api_response *out, fmt f, int code, uint32_t err, const char *fmtstr, ...)
        __attribute__((format(printf, 5, 6)));
static void reply_error(api_response *out, fmt f, int code, uint32_t err, const char *fmtstr, ...) {
        va_list ap;
        va_start(ap, fmtstr);
        reply_verror(out, f == FMT_JSON, code, err, fmtstr, ap);
        va_end(ap);
}

static void reply_pb(api_response *out, const ProtobufCMessage *m) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf) {
                reply_oom(out);
                return;
        }
        protobuf_c_message_pack(m, buf);
        reply_take(out, 200, "application/x-protobuf", buf, n);
}

/* The first parameter named key (ASCII case ignored, as evhttp_find_header does). */
static const char *query_get(const api_request *in, const char *key) {
        for (size_t i = 0; i < in->n_query; i++)
                if (in->query[i].key && strcasecmp(in->query[i].key, key) == 0)
                        return in->query[i].value;
        return NULL;
}

/* ---- devices ---- */

static bool valid_id(const char *s) {
        return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static device *find_device(vouchd *d, const char *id) {
        pthread_mutex_lock(&d->lock);
        device *dev = registry_find_locked(d, id);
        pthread_mutex_unlock(&d->lock);
        return dev; /* devices live as long as vouchd */
}

static int cmp_dev(const void *a, const void *b) {
        return strcmp((*(device *const *) a)->rec.id, (*(device *const *) b)->rec.id);
}

/* Devices with id > after, sorted by id, at most max (all when max is 0). */
static device **sorted_devices(vouchd *d, const char *after, size_t *n) {
        pthread_mutex_lock(&d->lock);
        device **v = malloc((d->n_devices ? d->n_devices : 1) * sizeof(*v));
        size_t k = 0;
        for (size_t b = 0; v && b < d->n_buckets; b++)
                for (device *dev = d->buckets[b]; dev; dev = dev->next)
                        if (!after || strcmp(dev->rec.id, after) > 0)
                                v[k++] = dev;
        pthread_mutex_unlock(&d->lock);
        if (v)
                qsort(v, k, sizeof(*v), cmp_dev);
        *n = k;
        return v;
}

static void device_info(vouchd *d, device *dev, Vouch__V1__DeviceInfo *o, char *golden, size_t glen) {
        vouch__v1__device_info__init(o);
        pthread_mutex_lock(&d->lock);
        o->id = dev->rec.id;
        o->approved = dev->rec.approved;
        o->revoked = dev->rec.revoked;
        snprintf(golden, glen, "%s", dev->rec.golden);
        o->golden = golden;
        o->enrolled_at = dev->rec.enrolled_at;
        o->status = verdict_shown_status_locked(d, dev);
        o->sequence = dev->rec.sequence;
        o->connected = dev->session != NULL;
        o->ek_anchor = dev->rec.ek_anchor;
        pthread_mutex_unlock(&d->lock);
}

static json_object *device_info_json(const Vouch__V1__DeviceInfo *o) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "id", json_object_new_string(o->id));
        json_object_object_add(j, "approved", json_object_new_boolean(o->approved));
        json_object_object_add(j, "revoked", json_object_new_boolean(o->revoked));
        json_object_object_add(j, "golden", json_object_new_string(o->golden));
        json_object_object_add(j, "enrolled_at", int64_json(o->enrolled_at));
        json_object_object_add(j, "status", json_object_new_string(status_name(o->status)));
        json_object_object_add(j, "sequence", uint64_json(o->sequence));
        json_object_object_add(j, "connected", json_object_new_boolean(o->connected));
        json_object_object_add(j, "ek_anchor", json_object_new_string(anchor_name(o->ek_anchor)));
        return j;
}

static void reply_device(vouchd *d, api_response *out, fmt f, device *dev) {
        Vouch__V1__DeviceInfo o;
        char golden[129];
        device_info(d, dev, &o, golden, sizeof(golden));
        if (f == FMT_JSON)
                reply_json(out, 200, device_info_json(&o));
        else
                reply_pb(out, &o.base);
}

/* ---- endpoints ---- */

static void get_verdict(struct api *a, api_response *out, fmt f, device *dev) {
        uint8_t *rec = NULL;
        size_t len = 0;
        int status;
        if (verdict_current(a->d, dev, &rec, &len, &status) < 0) {
                reply_error(out, f, 503, EIO, "cannot produce the verdict");
                return;
        }
        if (f == FMT_EAR) {
                char *jwt = NULL;
                if (verdict_ear(a->d, rec, len, &jwt) < 0)
                        reply_error(out, FMT_PB, 503, EIO, "cannot produce the EAR token");
                else
                        reply(out, 200, "application/eat+jwt", jwt, strlen(jwt));
                free(jwt);
        } else if (f == FMT_JSON) {
                reply_json(out, 200, api_signed_json(rec, len));
        } else {
                reply(out, 200, "application/x-protobuf", rec, len);
        }
        free(rec);
}

static int page_args(const api_request *in, api_response *out, fmt f, size_t *size, const char **token) {
        const char *ps = query_get(in, "page_size"), *pt = query_get(in, "page_token");
        *size = API_PAGE_DEFAULT;
        *token = NULL;
        if (ps) {
                char *end;
                unsigned long n = strtoul(ps, &end, 10);
                if (*end || !*ps || n < 1 || n > API_PAGE_MAX) {
                        reply_error(out, f, 400, EINVAL, "page_size \"%s\": expected 1-%u", ps, API_PAGE_MAX);
                        return -EINVAL;
                }
                *size = n;
        }
        if (pt && *pt) {
                if (!valid_id(pt)) {
                        reply_error(out, f, 400, EINVAL, "page_token \"%.80s\" is not one this server gave", pt);
                        return -EINVAL;
                }
                *token = pt;
        }
        return 0;
}

/* A page of a list: JSON {key: arr, "next_page_token": next} (arr is taken), or the
 * protobuf page whose next_page_token field is *token. */
static void reply_page(api_response *out, fmt f, const char *key, json_object *arr, const ProtobufCMessage *page,
                       char **token, const char *next) {
        if (f == FMT_JSON) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, key, arr);
                json_object_object_add(o, "next_page_token", json_object_new_string(next));
                reply_json(out, 200, o);
                return;
        }
        *token = (char *) next;
        reply_pb(out, page);
}

static void list_verdicts(struct api *a, const api_request *in, api_response *out, fmt f) {
        size_t size, n;
        const char *token, *st = query_get(in, "status");
        int want = -1;
        if (page_args(in, out, f, &size, &token) < 0)
                return;
        if (st && (want = status_from_name(st)) < 0) {
                reply_error(out, f, 400, EINVAL, "status \"%.40s\": expected TRUSTED, UNTRUSTED, STALE or UNKNOWN", st);
                return;
        }
        device **devs = sorted_devices(a->d, token, &n);
        Vouch__V1__SignedVerdict **svs = calloc(size, sizeof(*svs));
        uint8_t **recs = calloc(size, sizeof(*recs));
        size_t k = 0, i = 0;
        if (!devs || !svs || !recs) {
                reply_error(out, f, 503, ENOMEM, "out of memory");
                goto done;
        }
        for (; i < n && k < size; i++) {
                uint8_t *rec = NULL;
                size_t len = 0;
                int status;
                /* a page never leaves a device out silently: a filter reader could not tell */
                if (verdict_current(a->d, devs[i], &rec, &len, &status) < 0) {
                        reply_error(out, f, 503, EIO, "cannot produce the current verdict of device %s", devs[i]->rec.id);
                        goto done;
                }
                if (want >= 0 && status != want) {
                        free(rec);
                        continue;
                }
                svs[k] = vouch__v1__signed_verdict__unpack(NULL, len, rec);
                recs[k] = rec;
                if (!svs[k]) {
                        free(rec);
                        recs[k] = NULL;
                        reply_error(out, f, 503, EIO, "the stored verdict of device %s does not decode", devs[i]->rec.id);
                        goto done;
                }
                k++;
        }
        /* a next page only if there are devices left to look at */
        const char *next = i < n && k > 0 ? devs[i - 1]->rec.id : "";
        json_object *arr = f == FMT_JSON ? json_object_new_array() : NULL;
        for (size_t j = 0; arr && j < k; j++) {
                size_t len = vouch__v1__signed_verdict__get_packed_size(svs[j]);
                uint8_t *buf = malloc(len ? len : 1);
                if (buf) {
                        vouch__v1__signed_verdict__pack(svs[j], buf);
                        json_object_array_add(arr, api_signed_json(buf, len));
                }
                free(buf);
        }
        Vouch__V1__VerdictPage p = VOUCH__V1__VERDICT_PAGE__INIT;
        p.verdicts = svs;
        p.n_verdicts = k;
        reply_page(out, f, "verdicts", arr, &p.base, &p.next_page_token, next);
done:
        for (size_t j = 0; svs && recs && j < k; j++) {
                vouch__v1__signed_verdict__free_unpacked(svs[j], NULL);
                free(recs[j]);
        }
        free(svs);
        free(recs);
        free(devs);
}

static void list_devices(struct api *a, const api_request *in, api_response *out, fmt f) {
        size_t size, n;
        const char *token;
        if (page_args(in, out, f, &size, &token) < 0)
                return;
        device **devs = sorted_devices(a->d, token, &n);
        size_t k = n < size ? n : size;
        Vouch__V1__DeviceInfo *infos = calloc(k ? k : 1, sizeof(*infos));
        Vouch__V1__DeviceInfo **ptrs = calloc(k ? k : 1, sizeof(*ptrs));
        char(*goldens)[129] = calloc(k ? k : 1, sizeof(*goldens));
        if (!devs || !infos || !ptrs || !goldens) {
                reply_error(out, f, 503, ENOMEM, "out of memory");
                goto done;
        }
        for (size_t i = 0; i < k; i++) {
                device_info(a->d, devs[i], &infos[i], goldens[i], sizeof(goldens[i]));
                ptrs[i] = &infos[i];
        }
        const char *next = k < n ? devs[k - 1]->rec.id : "";
        json_object *arr = f == FMT_JSON ? json_object_new_array() : NULL;
        for (size_t i = 0; arr && i < k; i++)
                json_object_array_add(arr, device_info_json(&infos[i]));
        Vouch__V1__DevicePage p = VOUCH__V1__DEVICE_PAGE__INIT;
        p.devices = ptrs;
        p.n_devices = k;
        reply_page(out, f, "devices", arr, &p.base, &p.next_page_token, next);
done:
        free(devs);
        free(infos);
        free(ptrs);
        free(goldens);
}

/* The verdict keys (ident.h): this instance's, and with a shared store every instance's,
 * so that a verdict of any instance verifies with the keys file of any. */
static void get_keys(struct api *a, api_response *out, fmt f) {
        vouchd *d = a->d;
        ident_keys k;
        char why[400];
        fmt ef = f == FMT_JSON || f == FMT_JWKS ? FMT_JSON : FMT_PB;
        int r = ident_keys_get(d, vclock_wall(), &k, why, sizeof(why));
        if (r < 0) {
                reply_error(out, ef, 503, (uint32_t) -r, "cannot read the deployment's verdict keys: %s",
                            r == -ENOMEM ? "out of memory" : why);
                return;
        }
        size_t n = k.n;
        Vouch__V1__VerdictKey *keys = calloc(n ? n : 1, sizeof(*keys)), **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
        unsigned char **der = calloc(n ? n : 1, sizeof(*der));
        BIO *pem = f == FMT_PEM ? BIO_new(BIO_s_mem()) : NULL;
        json_object *jo = f == FMT_JSON || f == FMT_JWKS ? json_object_new_object() : NULL,
                    *arr = jo ? json_object_new_array() : NULL;
        bool ok = keys && ptrs && der && (f != FMT_PEM || pem) && (!(f == FMT_JSON || f == FMT_JWKS) || (jo && arr));
        size_t published = 0;
        for (size_t i = 0; i < n && ok; i++) {
                const vkey *v = &k.keys[i];
                int len = i2d_PUBKEY(v->pkey, &der[i]);
                ok = len > 0;
                vouch__v1__verdict_key__init(&keys[i]);
                keys[i].key_id = (char *) v->id;
                keys[i].spki.data = der[i];
                keys[i].spki.len = len > 0 ? (size_t) len : 0;
                keys[i].active = v->not_after == 0;
                keys[i].not_after = v->not_after;
                ptrs[published++] = &keys[i];
                if (pem && ok)
                        ok = PEM_write_bio_PUBKEY(pem, v->pkey) == 1;
                if (arr && ok && f == FMT_JWKS) {
                        json_object *o = NULL;
                        ok = vv_jwk(v->pkey, &o) == 0;
                        if (ok && json_object_array_add(arr, o) < 0) {
                                json_object_put(o);
                                ok = false;
                        }
                } else if (arr && ok) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "key_id", json_object_new_string(v->id));
                        json_object_object_add(o, "spki", bytes_json(der[i], keys[i].spki.len));
                        json_object_object_add(o, "active", json_object_new_boolean(v->not_after == 0));
                        json_object_object_add(o, "not_after", int64_json(v->not_after));
                        json_object_array_add(arr, o);
                }
        }
        if (!ok) {
                reply_error(out, ef, 503, EIO, "cannot encode the keys");
                json_object_put(jo);
                json_object_put(arr);
        } else if (pem) {
                char *p;
                long len = BIO_get_mem_data(pem, &p);
                reply(out, 200, "application/x-pem-file", p, (size_t) len);
        } else if (jo) {
                json_object_object_add(jo, "keys", arr);
                reply_json_as(out, 200, f == FMT_JWKS ? "application/jwk-set+json" : "application/json", jo);
        } else {
                Vouch__V1__VerdictKeys m = VOUCH__V1__VERDICT_KEYS__INIT;
                m.keys = ptrs;
                m.n_keys = published;
                reply_pb(out, &m.base);
        }
        BIO_free(pem);
        for (size_t i = 0; der && i < n; i++)
                OPENSSL_free(der[i]);
        free(der);
        free(keys);
        free(ptrs);
        ident_keys_free(&k);
}

/* ---- device certificates (issue 19, devcert.h) ---- */

#define API_CERTS_MAX 1000

/* GET /v1/crl: the device CA's CRL, DER (application/pkix-crl) or ?format=pem; public data,
 * also served without a client certificate on --http-listen (health.c). */
static void get_crl(struct api *a, api_response *out, fmt f) {
        uint8_t *body = NULL;
        size_t len = 0;
        int r = devcert_crl_get(a->d, f == FMT_PEM, &body, &len);
        if (r == -ENOENT)
                reply_error(out, FMT_PB, 404, ENOENT, "this vouchd has no device CA, so no CRL");
        else if (r == -EAGAIN)
                reply_error(out, FMT_PB, 503, EAGAIN, "no CRL yet: the store could not be read");
        else if (r < 0)
                reply_error(out, FMT_PB, 503, ENOMEM, "out of memory");
        else
                reply_take(out, 200, f == FMT_PEM ? "application/x-pem-file" : "application/pkix-crl", body, len);
}

static json_object *cert_json(const Vouch__V1__DeviceCertificate *c) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "serial", json_object_new_string(c->serial));
        json_object_object_add(o, "not_before", int64_json(c->not_before));
        json_object_object_add(o, "not_after", int64_json(c->not_after));
        json_object_object_add(o, "sequence", uint64_json(c->sequence));
        json_object_object_add(o, "global_sequence", uint64_json(c->global_sequence));
        json_object_object_add(o, "revoked", json_object_new_boolean(c->revoked));
        json_object_object_add(o, "revoked_at", int64_json(c->revoked_at));
        json_object_object_add(o, "revoked_sequence", uint64_json(c->revoked_sequence));
        json_object_object_add(o, "der", bytes_json(c->der.data, c->der.len));
        return o;
}

/* GET /v1/devices/ID/certificates: the newest API_CERTS_MAX, from the store. */
static void list_certificates(struct api *a, api_response *out, fmt f, device *dev) {
        vs_cert *certs = calloc(API_CERTS_MAX, sizeof(*certs));
        Vouch__V1__DeviceCertificate *cs = calloc(API_CERTS_MAX, sizeof(*cs)), **ptrs = calloc(API_CERTS_MAX, sizeof(*ptrs));
        int n = certs && cs && ptrs ? vs_cert_list(a->d->store, dev->rec.id, certs, API_CERTS_MAX) : -ENOMEM;
        if (n < 0) {
                char why[300] = "out of memory";
                if (n != -ENOMEM)
                        vs_read_error(a->d->store, why, sizeof(why));
                reply_error(out, f, 503, (uint32_t) -n, "cannot read the device's certificates: %s", why);
                goto out;
        }
        json_object *arr = f == FMT_JSON ? json_object_new_array() : NULL;
        for (int i = 0; i < n; i++) {
                vouch__v1__device_certificate__init(&cs[i]);
                cs[i].serial = certs[i].serial;
                cs[i].not_before = certs[i].not_before;
                cs[i].not_after = certs[i].not_after;
                cs[i].sequence = certs[i].sequence;
                cs[i].global_sequence = certs[i].global_sequence;
                cs[i].revoked = certs[i].revoked_at != 0;
                cs[i].revoked_at = certs[i].revoked_at;
                cs[i].revoked_sequence = certs[i].revoked_sequence;
                cs[i].der = (ProtobufCBinaryData) { certs[i].der_len, certs[i].der };
                ptrs[i] = &cs[i];
                if (arr)
                        json_object_array_add(arr, cert_json(&cs[i]));
        }
        if (f == FMT_JSON) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "certificates", arr);
                reply_json(out, 200, o);
        } else {
                Vouch__V1__DeviceCertificates m = VOUCH__V1__DEVICE_CERTIFICATES__INIT;
                m.certificates = ptrs;
                m.n_certificates = (size_t) n;
                reply_pb(out, &m.base);
        }
        for (int i = 0; i < n; i++)
                vs_cert_done(&certs[i]);
out:
        free(certs);
        free(cs);
        free(ptrs);
}

/* GET /healthz: 200 "ok" while verdicts can be committed; 503 "not ready: WHY" while the
 * store is unreachable (PostgreSQL down or partitioned: reconnecting) or lost (health.c).
 * A load balancer or orchestrator takes the instance out of rotation on 503. */
static void healthz(vouchd *d, api_response *out) {
        char why[512], body[600];
        if (health_ready(d, why, sizeof(why))) {
                reply(out, 200, "text/plain", "ok\n", 3);
                return;
        }
        snprintf(body, sizeof(body), "not ready: %s\n", why);
        reply(out, 503, "text/plain", body, strlen(body));
}

static void get_metrics(struct api *a, api_response *out) {
        vouchd *d = a->d;
        char *text = NULL;
        size_t text_len = 0;
        FILE *b = open_memstream(&text, &text_len);
        unsigned long long hits = 0, misses = 0, cum = 0;
        if (!b) {
                reply_oom(out);
                return;
        }
        for (unsigned i = 0; i < d->n_loops; i++) {
                hits += atomic_load(&d->loops[i].cache_hits);
                misses += atomic_load(&d->loops[i].cache_misses);
        }
        pthread_mutex_lock(&d->lock);
        size_t devices = d->n_devices;
        pthread_mutex_unlock(&d->lock);
        vs_stats st;
        vs_get_stats(d->store, &st);
        fprintf(b,
                            "# HELP vouch_attestations_total Attestations verified, by outcome.\n"
                            "# TYPE vouch_attestations_total counter\n"
                            "vouch_attestations_total{outcome=\"trusted\"} %llu\n"
                            "vouch_attestations_total{outcome=\"untrusted\"} %llu\n"
                            "# HELP vouch_enrollments_total Devices enrolled (or re-enrolled).\n"
                            "# TYPE vouch_enrollments_total counter\n"
                            "vouch_enrollments_total %llu\n"
                            "# HELP vouch_verdicts_issued_total Verdicts signed and queued to the store.\n"
                            "# TYPE vouch_verdicts_issued_total counter\n"
                            "vouch_verdicts_issued_total %llu\n"
                            "# HELP vouch_stale_verdicts_total STALE verdicts issued for devices that stopped attesting.\n"
                            "# TYPE vouch_stale_verdicts_total counter\n"
                            "vouch_stale_verdicts_total %llu\n"
                            "# HELP vouch_eventlog_rerequests_total Attestations answered by a challenge for the whole event "
                            "log (a new state of the boot with no evaluation held).\n"
                            "# TYPE vouch_eventlog_rerequests_total counter\n"
                            "vouch_eventlog_rerequests_total %llu\n",
                            (unsigned long long) atomic_load(&d->attestations_ok),
                            (unsigned long long) atomic_load(&d->attestations_bad),
                            (unsigned long long) atomic_load(&d->enrollments),
                            (unsigned long long) atomic_load(&d->verdicts_issued),
                            (unsigned long long) atomic_load(&d->stale_issued),
                            (unsigned long long) atomic_load(&d->log_rerequests));
        fprintf(b, "# HELP vouch_attestation_latency_seconds From the challenge to the stored verdict.\n"
                               "# TYPE vouch_attestation_latency_seconds histogram\n");
        for (size_t i = 0; i < LATENCY_BUCKETS; i++) {
                cum += atomic_load(&d->latency_count[i]);
                fprintf(b, "vouch_attestation_latency_seconds_bucket{le=\"%g\"} %llu\n", latency_bounds[i], cum);
        }
        cum += atomic_load(&d->latency_count[LATENCY_BUCKETS]);
        fprintf(b,
                            "vouch_attestation_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
                            "vouch_attestation_latency_seconds_sum %.6f\n"
                            "vouch_attestation_latency_seconds_count %llu\n",
                            cum, atomic_load(&d->latency_sum_us) / 1e6, cum);
        fprintf(b,
                            "# HELP vouch_connected_agents Agent connections open now.\n"
                            "# TYPE vouch_connected_agents gauge\n"
                            "vouch_connected_agents %u\n"
                            "# HELP vouch_accept_pauses_total Times a listener paused to keep to --accept-rate.\n"
                            "# TYPE vouch_accept_pauses_total counter\n"
                            "vouch_accept_pauses_total %llu\n"
                            "# HELP vouch_devices Devices enrolled.\n"
                            "# TYPE vouch_devices gauge\n"
                            "vouch_devices %zu\n"
                            "# HELP vouch_eval_cache_hits_total Golden evaluations answered from the cache.\n"
                            "# TYPE vouch_eval_cache_hits_total counter\n"
                            "vouch_eval_cache_hits_total %llu\n"
                            "# HELP vouch_eval_cache_misses_total Golden evaluations computed.\n"
                            "# TYPE vouch_eval_cache_misses_total counter\n"
                            "vouch_eval_cache_misses_total %llu\n"
                            "# HELP vouch_store_queue_depth Store writes queued and not yet committed.\n"
                            "# TYPE vouch_store_queue_depth gauge\n"
                            "vouch_store_queue_depth %zu\n"
                            "# HELP vouch_store_commits_total Store transactions committed (each a batch of writes).\n"
                            "# TYPE vouch_store_commits_total counter\n"
                            "vouch_store_commits_total %llu\n"
                            "# HELP vouch_store_writes_total Store writes committed.\n"
                            "# TYPE vouch_store_writes_total counter\n"
                            "vouch_store_writes_total %llu\n"
                            "# HELP vouch_store_commit_seconds_total Time in committed store transactions, fsync included.\n"
                            "# TYPE vouch_store_commit_seconds_total counter\n"
                            "vouch_store_commit_seconds_total %.6f\n"
                            "# HELP vouch_store_failures_total Store transactions that failed (their writes not stored).\n"
                            "# TYPE vouch_store_failures_total counter\n"
                            "vouch_store_failures_total %llu\n"
                            "# HELP vouch_store_lost 1 when the store's files were deleted, replaced or truncated while vouchd ran (nothing is acknowledged since).\n"
                            "# TYPE vouch_store_lost gauge\n"
                            "vouch_store_lost %d\n"
                            "# HELP vouch_api_watchers Open watch streams.\n"
                            "# TYPE vouch_api_watchers gauge\n"
                            "vouch_api_watchers %zu\n"
                            "# HELP vouch_api_refused_total API requests refused (authentication or role).\n"
                            "# TYPE vouch_api_refused_total counter\n"
                            "vouch_api_refused_total %llu\n",
                            atomic_load(&d->connections), (unsigned long long) atomic_load(&d->accept_pauses), devices,
                            hits, misses, vs_queue_depth(d->store),
                            (unsigned long long) st.commits, (unsigned long long) st.writes, st.commit_us / 1e6,
                            (unsigned long long) st.failures, vs_lost(d->store, NULL, 0) ? 1 : 0,
                            atomic_load(&a->n_watchers),
                            (unsigned long long) atomic_load(&a->refused));
        fprintf(b, "# HELP vouch_store_unavailable 1 while the database cannot be reached (PostgreSQL: reconnecting with backoff; nothing is committed).\n"
                   "# TYPE vouch_store_unavailable gauge\n"
                   "vouch_store_unavailable %d\n"
                   "# HELP vouch_store_reconnects_total Connections to the database made again after it was lost.\n"
                   "# TYPE vouch_store_reconnects_total counter\n"
                   "vouch_store_reconnects_total %llu\n",
                st.unavailable ? 1 : 0, (unsigned long long) st.reconnects);
        if (d->shared) {
                /* device leases (lease.h): what this instance holds, and its heartbeat */
                lease_state *ls = &d->leases;
                struct timespec now;
                vclock_mono_ts(&now);
                pthread_mutex_lock(&ls->mu);
                int64_t renewed = ls->renewed_ms;
                pthread_mutex_unlock(&ls->mu);
                double age = renewed ? ((double) now.tv_sec * 1000 + now.tv_nsec / 1e6 - (double) renewed) / 1000 : -1;
                fprintf(b,
                        "# HELP vouch_leases_held Devices whose lease this instance holds.\n"
                        "# TYPE vouch_leases_held gauge\n"
                        "vouch_leases_held %llu\n"
                        "# HELP vouch_lease_heartbeat_age_seconds Since the last stored heartbeat was queued (-1: none yet).\n"
                        "# TYPE vouch_lease_heartbeat_age_seconds gauge\n"
                        "vouch_lease_heartbeat_age_seconds %.3f\n"
                        "# HELP vouch_lease_heartbeat_lost 1 while the heartbeat is lost: no device is claimed.\n"
                        "# TYPE vouch_lease_heartbeat_lost gauge\n"
                        "vouch_lease_heartbeat_lost %d\n"
                        "# HELP vouch_lease_refusals_total Claims refused: another instance held the device.\n"
                        "# TYPE vouch_lease_refusals_total counter\n"
                        "vouch_lease_refusals_total %llu\n"
                        "# HELP vouch_leases_lost_total Leases given up because the heartbeat was lost.\n"
                        "# TYPE vouch_leases_lost_total counter\n"
                        "vouch_leases_lost_total %llu\n",
                        (unsigned long long) atomic_load(&ls->held), age, atomic_load(&ls->lost) ? 1 : 0,
                        (unsigned long long) atomic_load(&ls->refusals),
                        (unsigned long long) atomic_load(&ls->lost_leases));
        }
        devcert_metrics(d, b);
        fprintf(b, "# HELP vouch_build_info vouchd's version.\n# TYPE vouch_build_info gauge\n"
                   "vouch_build_info{version=\"" VOUCH_VERSION "\"} 1\n");
        if (fclose(b) != 0) {
                free(text);
                reply_oom(out);
                return;
        }
        api_response_done(out);
        *out = (api_response) { .status = 200, .reason = "OK", .content_type = "text/plain; version=0.0.4",
                                .body = (uint8_t *) text, .body_len = text_len };
}

/* ---- admin ---- */

/* Whether a protobuf message (well-formed: it unpacked) has field number `field` on the wire:
 * proto3 leaves an empty string out, so "" is told from no field at all only so. */
static bool pb_has_field(const uint8_t *p, size_t len, uint32_t field) {
        size_t i = 0;
        while (i < len) {
                uint64_t key = 0, v = 0;
                for (unsigned shift = 0; i < len && shift < 64; shift += 7) {
                        key |= (uint64_t) (p[i] & 0x7f) << shift;
                        if (!(p[i++] & 0x80))
                                break;
                }
                if (key >> 3 == field)
                        return true;
                switch (key & 7) {
                case 0:
                        while (i < len && (p[i++] & 0x80))
                                ;
                        break;
                case 1: i += 8; break;
                case 5: i += 4; break;
                case 2:
                        for (unsigned shift = 0; i < len && shift < 64; shift += 7) {
                                v |= (uint64_t) (p[i] & 0x7f) << shift;
                                if (!(p[i++] & 0x80))
                                        break;
                        }
                        if (v > len - i)
                                return false;
                        i += (size_t) v;
                        break;
                default: return false;
                }
        }
        return false;
}

/* The media type of a request body, parameters (";charset=...") and case ignored:
 * FMT_JSON, FMT_PB, or FMT_NONE for none or another. */
static fmt body_format(const char *content_type) {
        if (!content_type)
                return FMT_NONE;
        size_t n = strcspn(content_type, "; \t");
        if (n == strlen("application/json") && strncasecmp(content_type, "application/json", n) == 0)
                return FMT_JSON;
        if ((n == strlen("application/x-protobuf") && strncasecmp(content_type, "application/x-protobuf", n) == 0) ||
            (n == strlen("application/protobuf") && strncasecmp(content_type, "application/protobuf", n) == 0))
                return FMT_PB;
        return FMT_NONE;
}

/* A GoldenAssignment body, in the format its Content-Type names: the set's name into name (n
 * bytes). The field must be there: an empty body, {} or a message without it is refused,
 * never taken for "" (the default set). 0, or answered: 413 over API_MAX_BODY, 415 for
 * another media type, 400 for a body that is not one. */
static int golden_assignment(const api_request *in, api_response *out, fmt ef, char *name, size_t n) {
        static const char want[] = "a GoldenAssignment with its field golden (\"\" is the default set): "
                                   "JSON {\"golden\": \"NAME\"} or protobuf (an empty golden as the bytes 0a 00)";
        fmt bf = body_format(in->content_type);
        if (in->body_len > API_MAX_BODY) {
                reply_error(out, ef, 413, E2BIG, "body of %zu bytes, at most %u", in->body_len, API_MAX_BODY);
                return -E2BIG;
        }
        if (bf == FMT_NONE) {
                reply_error(out, ef, 415, EPROTONOSUPPORT,
                            "Content-Type \"%.60s\": the body is application/json or application/x-protobuf",
                            in->content_type ? in->content_type : "(none)");
                return -EPROTONOSUPPORT;
        }
        if (in->body_len == 0) {
                reply_error(out, ef, 400, EBADMSG, "an empty body: expected %s", want);
                return -EBADMSG;
        }
        int r = -EBADMSG;
        if (bf == FMT_JSON) {
                json_tokener *tok = json_tokener_new();
                json_object *o = tok ? json_tokener_parse_ex(tok, (const char *) in->body, (int) in->body_len) : NULL, *g;
                /* one object, nothing after it, with golden (a string) and no other member */
                bool whole = o && tok && json_tokener_get_error(tok) == json_tokener_success &&
                             json_tokener_get_parse_end(tok) == in->body_len;
                if (whole && json_object_is_type(o, json_type_object) && json_object_object_length(o) == 1 &&
                    json_object_object_get_ex(o, "golden", &g) && json_object_is_type(g, json_type_string) &&
                    (size_t) json_object_get_string_len(g) < n && strlen(json_object_get_string(g)) ==
                                                                          (size_t) json_object_get_string_len(g)) {
                        snprintf(name, n, "%s", json_object_get_string(g));
                        r = 0;
                }
                json_object_put(o);
                if (tok)
                        json_tokener_free(tok);
        } else {
                Vouch__V1__GoldenAssignment *ga = vouch__v1__golden_assignment__unpack(NULL, in->body_len, in->body);
                if (ga && strlen(ga->golden) < n && pb_has_field(in->body, in->body_len, 1)) {
                        snprintf(name, n, "%s", ga->golden);
                        r = 0;
                }
                vouch__v1__golden_assignment__free_unpacked(ga, NULL);
        }
        if (r < 0)
                reply_error(out, ef, 400, EBADMSG, "the body (%s) is not %s", bf == FMT_JSON ? "JSON" : "protobuf", want);
        return r;
}

/* PUT /v1/devices/ID/golden */
static void assign_golden(struct api *a, const api_request *in, api_response *out, fmt f, fmt ef, device *dev) {
        char name[129];
        if (golden_assignment(in, out, ef, name, sizeof(name)) < 0)
                return;
        int r = device_assign_golden(a->d, dev, name, in->cn);
        if (r == -ENOENT) {
                reply_error(out, ef, 404, ENOENT, "no golden set \"%s\" is loaded", name);
                return;
        }
        if (r < 0) {
                reply_error(out, ef, 503, EIO, "the store could not record it; the device is unchanged");
                return;
        }
        reply_device(a->d, out, f, dev);
}

/* POST /v1/devices/ID/approve|revoke: no body. */
static void approve_or_revoke(struct api *a, const api_request *in, api_response *out, fmt f, device *dev, bool revoke) {
        vouchd *d = a->d;
        if (in->body_len) {
                reply_error(out, f, 400, EBADMSG, "%s takes no body (%zu bytes sent)", revoke ? "revoke" : "approve",
                            in->body_len);
                return;
        }
        if ((revoke ? device_revoke(d, dev, in->cn) : device_approve(d, dev, in->cn)) < 0) {
                reply_error(out, f, 503, EIO, "the store could not record it; the device is unchanged");
                return;
        }
        reply_device(d, out, f, dev);
}

/* ---- watch ---- */

/* GET /v1/watch: since= checked (a number, not past the head of the stream), a free watcher
 * slot; the transport streams. HEAD: the same status and headers, no stream. */
static void watch(struct api *a, const api_request *in, api_response *out, fmt f) {
        const char *since = query_get(in, "since");
        uint64_t from = 0;
        if (since) {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(since, &end, 10);
                /* global sequence numbers are SQLite integers: above INT64_MAX is none of them
                 * (and would wrap to a negative "since" that replays the whole stream) */
                if (errno || *end || !*since || since[0] == '-' || n > INT64_MAX) {
                        reply_error(out, f, 400, EINVAL,
                                    "since \"%.40s\": expected a global sequence number (0 to 9223372036854775807)", since);
                        return;
                }
                from = n;
        }
        if (from > atomic_load(&a->d->published)) {
                /* past what this instance shows: past what the store holds (the deployment's
                 * head; another instance's stream may be ahead of this one by a read) is no
                 * sequence a stream ever gave: a client of another store, or of one restored
                 * from an older backup, would otherwise wait in silence */
                uint64_t head = 0;
                int r = vs_verdict_last_global(a->d->store, &head);
                if (r < 0) {
                        reply_error(out, f, 503, (uint32_t) -r, "cannot read the head of the stream");
                        return;
                }
                if (from > head) {
                        reply_error(out, f, 400, ERANGE,
                                    "since %llu is past the head of the stream (global sequence %llu): no stream of "
                                    "this deployment gave it",
                                    (unsigned long long) from, (unsigned long long) head);
                        return;
                }
        }
        if (atomic_load(&a->n_watchers) >= API_MAX_WATCHERS) {
                reply_error(out, f, 503, EBUSY, "%u watch streams are open already", API_MAX_WATCHERS);
                return;
        }
        const char *type = f == FMT_JSON ? "application/x-ndjson" : "application/x-protobuf; delimited=uint32be";
        if (in->method == API_METHOD_HEAD) {
                reply(out, 200, type, "", 0);
                return;
        }
        api_response_done(out);
        out->status = 200;
        out->reason = api_reason(200);
        out->content_type = type;
        if (add_header(out, "Cache-Control", "no-store") < 0) {
                reply_oom(out);
                return;
        }
        out->watch = true;
        out->watch_json = f == FMT_JSON;
        out->watch_since = from;
}

int api_watch_next(struct api *a, uint64_t after, vs_verdict *out, size_t max) {
        vouchd *d = a->d;
        int n = vs_verdict_since(d->store, after, out, max);
        if (n <= 0)
                return n;
        /* not past what GET shows: the writer may have committed verdicts whose callbacks
         * (which make them the latest) have not run yet; with a shared store, verdicts of
         * other instances that verdict_follow has not read yet */
        uint64_t published = atomic_load(&d->published);
        int keep = 0;
        while (keep < n && out[keep].global_sequence <= published)
                keep++;
        for (int i = keep; i < n; i++)
                vs_verdict_done(&out[i]);
        return keep;
}

/* ---- the decision for enforcement points (nginx auth_request, forward auth) ---- */

/* "allow" only for a device whose verdict, as shown now, is TRUSTED and unexpired; "deny"
 * (403) for everything else, the unknown device included: an enforcement point that maps
 * 2xx to allow and anything else to deny (nginx auth_request: 401/403 deny, other codes
 * fail the request) never lets a device through on an error. The reason is in the
 * X-Vouch-Reason header and the JSON body (a Decision, always JSON). */
static void decision_reply(api_response *out, const char *id, bool allow, const char *reason, const char *status,
                           int64_t expires_at) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "decision", json_object_new_string(allow ? "allow" : "deny"));
        json_object_object_add(o, "device", json_object_new_string(id));
        json_object_object_add(o, "reason", json_object_new_string(reason));
        if (status)
                json_object_object_add(o, "status", json_object_new_string(status));
        if (expires_at)
                json_object_object_add(o, "expires_at", int64_json(expires_at));
        reply_json(out, allow ? 200 : 403, o);
        add_header(out, "X-Vouch-Decision", allow ? "allow" : "deny");
        add_header(out, "X-Vouch-Reason", reason);
}

/* The device a proxy names: its id, or a SPIFFE ID spiffe://TRUST_DOMAIN/device/ID. */
static const char *device_of_header(const char *h) {
        if (strncmp(h, "spiffe://", 9) == 0) {
                const char *p = strstr(h + 9, "/device/");
                return p && !strchr(p + 8, '/') ? p + 8 : NULL;
        }
        return h;
}

static void decision(struct api *a, api_response *out, const char *id) {
        char shown[VS_ID_MAX + 1];
        snprintf(shown, sizeof(shown), "%s", id ? id : "");
        if (!id || !valid_id(id)) {
                decision_reply(out, shown, false, id ? "bad-device-id" : "no-device", NULL, 0);
                return;
        }
        device *dev = find_device(a->d, id);
        if (!dev) {
                decision_reply(out, shown, false, "unknown-device", NULL, 0);
                return;
        }
        uint8_t *rec = NULL;
        size_t len = 0;
        int status = VOUCH__V1__TRUST_STATUS__UNKNOWN;
        if (verdict_current(a->d, dev, &rec, &len, &status) < 0) {
                decision_reply(out, shown, false, "no-verdict", NULL, 0);
                return;
        }
        /* the signed record itself must say TRUSTED and unexpired, not only the status */
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, len, rec);
        Vouch__V1__Verdict *v = sv ? vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data) : NULL;
        free(rec);
        int64_t now = vclock_wall(), exp = v ? v->expires_at : 0;
        pthread_mutex_lock(&a->d->lock);
        bool revoked = dev->rec.revoked, approved = dev->rec.approved;
        pthread_mutex_unlock(&a->d->lock);
        const char *name = status_name(v ? (int) v->status : status);
        if (revoked)
                decision_reply(out, shown, false, "revoked", name, exp);
        else if (!approved)
                decision_reply(out, shown, false, "not-approved", name, exp);
        else if (!v || status != VOUCH__V1__TRUST_STATUS__TRUSTED || v->status != VOUCH__V1__TRUST_STATUS__TRUSTED)
                decision_reply(out, shown, false, v ? (v->status == VOUCH__V1__TRUST_STATUS__UNTRUSTED ? "untrusted"
                                                       : v->status == VOUCH__V1__TRUST_STATUS__STALE  ? "stale"
                                                                                                      : "unknown")
                                                    : "no-verdict",
                               name, exp);
        else if (exp <= now)
                decision_reply(out, shown, false, "expired", name, exp);
        else
                decision_reply(out, shown, true, "trusted", name, exp);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
}

/* ---- one request ---- */

typedef enum route_id {
        R_HEALTHZ,
        R_METRICS,
        R_KEYS,
        R_JWKS,
        R_CRL,
        R_VERDICTS,
        R_WATCH,
        R_DEVICES,
        R_DECISION,
        R_DEVICE_VERDICT,
        R_DEVICE_DECISION,
        R_DEVICE_CERTIFICATES,
        R_DEVICE_APPROVE,
        R_DEVICE_REVOKE,
        R_DEVICE_GOLDEN,
        _R_MAX,
} route_id;

static const api_route routes[_R_MAX] = {
        [R_HEALTHZ] = { "/healthz", API_METHOD_GET, API_ROLE_READER, "", "" },
        [R_METRICS] = { "/metrics", API_METHOD_GET, API_ROLE_READER, "", "" },
        [R_KEYS] = { "/v1/keys", API_METHOD_GET, API_ROLE_READER, "format", "protobuf json pem jwks" },
        [R_JWKS] = { "/.well-known/jwks.json", API_METHOD_GET, API_ROLE_READER, "format", "jwks" },
        [R_CRL] = { "/v1/crl", API_METHOD_GET, API_ROLE_READER, "format", "der pem" },
        [R_VERDICTS] = { "/v1/verdicts", API_METHOD_GET, API_ROLE_READER, "status page_size page_token format",
                         "protobuf json" },
        [R_WATCH] = { "/v1/watch", API_METHOD_GET, API_ROLE_READER, "since format", "protobuf json" },
        [R_DEVICES] = { "/v1/devices", API_METHOD_GET, API_ROLE_ADMIN, "page_size page_token format", "protobuf json" },
        [R_DECISION] = { "/v1/decision", API_METHOD_GET, API_ROLE_READER, "format", "json" },
        [R_DEVICE_VERDICT] = { "/v1/devices/{id}/verdict", API_METHOD_GET, API_ROLE_READER, "format",
                               "protobuf json ear" },
        [R_DEVICE_DECISION] = { "/v1/devices/{id}/decision", API_METHOD_GET, API_ROLE_READER, "format", "json" },
        [R_DEVICE_CERTIFICATES] = { "/v1/devices/{id}/certificates", API_METHOD_GET, API_ROLE_READER, "format",
                                    "protobuf json" },
        [R_DEVICE_APPROVE] = { "/v1/devices/{id}/approve", API_METHOD_POST, API_ROLE_ADMIN, "format", "protobuf json" },
        [R_DEVICE_REVOKE] = { "/v1/devices/{id}/revoke", API_METHOD_POST, API_ROLE_ADMIN, "format", "protobuf json" },
        [R_DEVICE_GOLDEN] = { "/v1/devices/{id}/golden", API_METHOD_PUT, API_ROLE_ADMIN, "format", "protobuf json" },
};

const api_route *api_routes(size_t *n) {
        *n = _R_MAX;
        return routes;
}

static const char *method_name(api_method m) {
        switch (m) {
        case API_METHOD_GET: return "GET";
        case API_METHOD_POST: return "POST";
        case API_METHOD_PUT: return "PUT";
        case API_METHOD_HEAD: return "HEAD";
        case API_METHOD_DELETE: return "DELETE";
        case API_METHOD_OPTIONS: return "OPTIONS";
        case API_METHOD_PATCH: return "PATCH";
        default: return "(method)";
        }
}

/* Whether word (n bytes) is one of the space-separated words of list, ASCII case ignored. */
static bool in_list(const char *list, const char *word, size_t n) {
        for (const char *p = list; *p;) {
                size_t k = strcspn(p, " ");
                if (k == n && strncasecmp(p, word, n) == 0)
                        return true;
                p += k;
                p += strspn(p, " ");
        }
        return false;
}

/* Whether path matches the route's: the same segments, {id} any one segment (into *id). */
static bool path_matches(const char *pattern, const char *path, const char **id, size_t *id_len) {
        while (*pattern && *path) {
                if (*pattern++ != '/' || *path++ != '/')
                        return false;
                size_t pn = strcspn(pattern, "/"), n = strcspn(path, "/");
                if (pn == 4 && strncmp(pattern, "{id}", 4) == 0) {
                        if (n == 0)
                                return false;
                        *id = path;
                        *id_len = n;
                } else if (pn != n || strncmp(pattern, path, n) != 0)
                        return false;
                pattern += pn;
                path += n;
        }
        return !*pattern && !*path;
}

static fmt fmt_of_name(const char *s) {
        static const char *const names[] = { [FMT_PB] = "protobuf", [FMT_JSON] = "json", [FMT_EAR] = "ear",
                                             [FMT_PEM] = "pem", [FMT_JWKS] = "jwks", [FMT_DER] = "der" };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (names[i] && strcmp(s, names[i]) == 0)
                        return (fmt) i;
        return FMT_NONE;
}

/* The route's formats as "a, b or c" for messages. */
static void list_words(const char *list, char *buf, size_t n) {
        size_t k = 0, words = 0, i = 0;
        for (const char *p = list; *p; p++)
                words += *p != ' ' && (p == list || p[-1] == ' ');
        buf[0] = '\0';
        for (const char *p = list; *p && k < n;) {
                size_t w = strcspn(p, " ");
                k += (size_t) snprintf(buf + k, n - k, "%s%.*s", i == 0 ? "" : i + 1 == words ? " or " : ", ", (int) w, p);
                i++;
                p += w;
                p += strspn(p, " ");
        }
}

void api_handle(struct api *a, const api_request *request, api_response *out) {
        api_request in = *request;
        *out = (api_response) { 0 };
        if (!in.cn)
                in.cn = "(no certificate)";
        atomic_fetch_add(&a->requests, 1);
        const char *p = in.path;
        /* the route by path (any method), for the form of errors: JSON where the endpoint
         * answers JSON only (the decision, the JWK Set) or format=json or jwks asks for it */
        const api_route *by_path = NULL;
        const char *id = NULL;
        size_t id_len = 0;
        for (size_t i = 0; p && i < _R_MAX && !by_path; i++)
                if (path_matches(routes[i].path, p, &id, &id_len))
                        by_path = &routes[i];
        const char *fs = in.query_malformed ? NULL : query_get(&in, "format");
        fmt f = fs ? fmt_of_name(fs) : FMT_PB;
        fmt ef = f == FMT_JSON || f == FMT_JWKS ||
                                 (by_path && (!strcmp(by_path->formats, "json") || !strcmp(by_path->formats, "jwks")))
                         ? FMT_JSON
                         : FMT_PB;
        if (in.query_malformed) {
                reply_error(out, ef, 400, EINVAL, "malformed query string");
                return;
        }
        if (fs && f == FMT_NONE) {
                reply_error(out, ef, 400, EINVAL, "format \"%.40s\": expected json, ear, pem, jwks, der or protobuf", fs);
                return;
        }
        if (in.n_query > API_MAX_PARAMS) {
                /* no endpoint takes that many; and the repeats are looked for pairwise */
                reply_error(out, ef, 400, EINVAL, "%zu query parameters, at most %u", in.n_query, API_MAX_PARAMS);
                return;
        }
        for (size_t i = 0; i < in.n_query; i++)
                for (size_t j = 0; j < i; j++)
                        if (in.query[i].key && in.query[j].key && strcasecmp(in.query[i].key, in.query[j].key) == 0) {
                                reply_error(out, ef, 400, EINVAL, "query parameter \"%.40s\" given more than once",
                                            in.query[i].key);
                                return;
                        }
        if (!p || strlen(p) >= 512) {
                reply_error(out, ef, 400, EINVAL, "no or too long a path");
                return;
        }
        if (in.role == API_ROLE_NONE) {
                atomic_fetch_add(&a->refused, 1);
                vlog(LOG_WARN, "API: refused %s: client \"%s\" has no role", p, in.cn);
                reply_error(out, ef, 403, EACCES, "client \"%s\" has no role on this verifier", in.cn);
                return;
        }
        /* the route by path and method */
        api_method m = in.method == API_METHOD_HEAD ? API_METHOD_GET : in.method;
        const api_route *rt = NULL;
        char allow[64] = "";
        for (size_t i = 0; i < _R_MAX; i++) {
                const char *rid = NULL;
                size_t rid_len = 0;
                if (!path_matches(routes[i].path, p, &rid, &rid_len))
                        continue;
                if (routes[i].method == m)
                        rt = &routes[i];
                size_t k = strlen(allow);
                snprintf(allow + k, sizeof(allow) - k, "%s%s%s", k ? ", " : "", method_name(routes[i].method),
                         routes[i].method == API_METHOD_GET ? ", HEAD" : "");
        }
        if (!rt && allow[0]) {
                reply_error(out, ef, 405, EINVAL, "%s %s: this endpoint answers %s", method_name(in.method), p, allow);
                if (add_header(out, "Allow", allow) < 0)
                        reply_oom(out);
                return;
        }
        if (!rt) {
                reply_error(out, ef, 404, ENOENT, "no endpoint %s %s", method_name(in.method), p);
                return;
        }
        if (rt->role == API_ROLE_ADMIN && in.role != API_ROLE_ADMIN) {
                atomic_fetch_add(&a->refused, 1);
                vlog(LOG_WARN, "API: refused %s %s: client \"%s\" is a reader, the endpoint needs admin",
                     method_name(in.method), p, in.cn);
                reply_error(out, ef, 403, EACCES, "client \"%s\" is a reader; %s needs the admin role", in.cn, p);
                return;
        }
        for (size_t i = 0; i < in.n_query; i++) {
                const char *k = in.query[i].key ? in.query[i].key : "";
                if (strcasecmp(k, "format") != 0 && !in_list(rt->params, k, strlen(k))) {
                        char takes[128];
                        list_words(rt->params, takes, sizeof(takes));
                        reply_error(out, ef, 400, EINVAL, "unknown query parameter \"%.40s\": %s %s takes %s", k,
                                    method_name(rt->method), rt->path, takes[0] ? takes : "none");
                        return;
                }
        }
        if (fs && !in_list(rt->formats, fs, strlen(fs))) {
                char offered[128];
                list_words(rt->formats, offered, sizeof(offered));
                reply_error(out, ef, 400, EINVAL, "format \"%s\" is not offered by %s %s (%s)", fs, method_name(rt->method),
                            rt->path, offered[0] ? offered : "no format= at all");
                return;
        }
        if (!fs && rt->formats[0]) {
                char first[16]; /* the default */
                snprintf(first, sizeof(first), "%.*s", (int) strcspn(rt->formats, " "), rt->formats);
                f = fmt_of_name(first);
        }
        if (in.body_len && rt->method == API_METHOD_GET) {
                reply_error(out, ef, 400, EBADMSG, "%s %s takes no body", method_name(in.method), rt->path);
                return;
        }
        char dev_id[VS_ID_MAX + 1];
        snprintf(dev_id, sizeof(dev_id), "%.*s", (int) (id_len < VS_ID_MAX ? id_len : VS_ID_MAX), id ? id : "");
        device *dev = NULL;
        switch ((route_id) (rt - routes)) {
        case R_DEVICE_VERDICT:
        case R_DEVICE_CERTIFICATES:
        case R_DEVICE_APPROVE:
        case R_DEVICE_REVOKE:
        case R_DEVICE_GOLDEN:
                dev = id_len == 64 && valid_id(dev_id) ? find_device(a->d, dev_id) : NULL;
                if (!dev) {
                        reply_error(out, ef, 404, ENOENT, "no device \"%.80s\"", dev_id);
                        return;
                }
                break;
        default: break;
        }
        switch ((route_id) (rt - routes)) {
        case R_HEALTHZ: healthz(a->d, out); break;
        case R_METRICS: get_metrics(a, out); break;
        case R_KEYS: get_keys(a, out, f); break;
        case R_JWKS: get_keys(a, out, FMT_JWKS); break;
        case R_CRL: get_crl(a, out, f); break;
        case R_VERDICTS: list_verdicts(a, &in, out, ef); break;
        case R_WATCH: watch(a, &in, out, ef); break;
        case R_DEVICES: list_devices(a, &in, out, ef); break;
        case R_DECISION: decision(a, out, in.device_header ? device_of_header(in.device_header) : NULL); break;
        case R_DEVICE_DECISION: decision(a, out, id_len <= VS_ID_MAX ? dev_id : ""); break;
        case R_DEVICE_VERDICT: get_verdict(a, out, f, dev); break;
        case R_DEVICE_CERTIFICATES: list_certificates(a, out, ef, dev); break;
        case R_DEVICE_APPROVE: approve_or_revoke(a, &in, out, ef, dev, false); break;
        case R_DEVICE_REVOKE: approve_or_revoke(a, &in, out, ef, dev, true); break;
        case R_DEVICE_GOLDEN: assign_golden(a, &in, out, ef, ef, dev); break;
        case _R_MAX: break;
        }
}

api_role api_role_of_cn(const vouchd *d, const char *cn) {
        for (size_t i = 0; i < d->cfg.n_api_admins; i++)
                if (strcmp(d->cfg.api_admins[i], cn) == 0)
                        return API_ROLE_ADMIN;
        for (size_t i = 0; i < d->cfg.n_api_readers; i++)
                if (strcmp(d->cfg.api_readers[i], cn) == 0)
                        return API_ROLE_READER;
        return API_ROLE_NONE;
}

int api_new(vouchd *d, struct api **ret) {
        struct api *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->d = d;
        d->api = a;
        *ret = a;
        return 0;
}
