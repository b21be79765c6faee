/* SPDX-License-Identifier: Apache-2.0 */
/* The policy-engine API's request handling (api_handle), driven without sockets, TLS or a
 * TPM: requests as plain data against an in-process vouchd (server-fixture.h) with the
 * fake clock, its one software device attesting through an in-memory session. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "admin.h"
#include "api-internal.h"
#include "api.h"
#include "clock.h"
#include "server-fixture.h"
#include "tlsconn.h"
#include "uefi.h"
#include "vc-util.h"

typedef struct tapi {
        sfx f;
        struct api *a;
} tapi;

static int setup(void **state) {
        tapi *t = calloc(1, sizeof(*t));
        assert_non_null(t);
        sfx_setup(&t->f, true);
        assert_int_equal(api_new(&t->f.d, &t->a), 0);
        assert_ptr_equal(t->f.d.api, t->a);
        *state = t;
        return 0;
}

static int teardown(void **state) {
        tapi *t = *state;
        sfx_teardown(&t->f); /* vouchd_free frees the API (api_free) */
        free(t);
        return 0;
}

/* ---- requests ---- */

#define MAX_PARAMS 8

/* One request to api_handle: target is PATH[?K=V&K=V...] (no percent-decoding needed). */
static void call_body(tapi *t, api_method m, api_role role, const char *target, const char *content_type,
                      const void *body, size_t len, api_response *out) {
        char buf[1024];
        api_param params[MAX_PARAMS];
        size_t n = 0;
        assert_true(strlen(target) < sizeof(buf));
        snprintf(buf, sizeof(buf), "%s", target);
        char *q = strchr(buf, '?');
        if (q) {
                *q++ = '\0';
                for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
                        char *eq = strchr(kv, '=');
                        assert_non_null(eq);
                        assert_true(n < MAX_PARAMS);
                        *eq = '\0';
                        params[n++] = (api_param) { kv, eq + 1 };
                }
        }
        api_request in = { .method = m, .path = buf, .query = params, .n_query = n, .body = body, .body_len = len,
                           .content_type = content_type, .role = role, .cn = role == API_ROLE_ADMIN ? "admin" : role == API_ROLE_READER ? "reader" : "nobody" };
        api_handle(t->a, &in, out);
}

static void call(tapi *t, api_method m, api_role role, const char *target, api_response *out) {
        call_body(t, m, role, target, NULL, NULL, 0, out);
}

/* GET with the X-Vouch-Device header a proxy sets. */
static void call_device_header(tapi *t, const char *target, const char *named, api_response *out) {
        api_request in = { .method = API_METHOD_GET, .path = target, .device_header = named, .role = API_ROLE_READER,
                           .cn = "proxy" };
        api_handle(t->a, &in, out);
}

static const char *header(const api_response *r, const char *name) {
        for (size_t i = 0; i < r->n_headers; i++)
                if (strcmp(r->headers[i].name, name) == 0)
                        return r->headers[i].value;
        return NULL;
}

/* RFC 9110's reason phrases, written here apart from vouchd's table */
static const char *reason_phrase(int status) {
        static const struct {
                int status;
                const char *reason;
        } t[] = { { 400, "Bad Request" },        { 403, "Forbidden" },
                  { 404, "Not Found" },          { 405, "Method Not Allowed" },
                  { 413, "Content Too Large" },  { 415, "Unsupported Media Type" },
                  { 503, "Service Unavailable" } };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
                if (t[i].status == status)
                        return t[i].reason;
        fail_msg("no reason phrase for %d in the test", status);
        return NULL;
}

/* A 200 with this content type, never cached. */
static void expect_ok(const api_response *r, const char *type) {
        if (r->status != 200)
                fail_msg("expected 200, got %d (%.*s)", r->status, (int) r->body_len, r->body ? (const char *) r->body : "");
        assert_false(r->watch);
        assert_string_equal(r->reason, "OK");
        assert_string_equal(r->content_type, type);
        assert_string_equal(header(r, "Cache-Control"), "no-store");
}

/* An Error body (protobuf) with this HTTP status and code; its message contains want
 * (when not NULL). */
static void expect_error(const api_response *r, int status, uint32_t code, const char *want) {
        if (r->status != status)
                fail_msg("expected %d, got %d", status, r->status);
        assert_string_equal(r->reason, reason_phrase(status));
        assert_string_equal(r->content_type, "application/x-protobuf");
        assert_string_equal(header(r, "Cache-Control"), "no-store");
        Vouch__V1__Error *e = vouch__v1__error__unpack(NULL, r->body_len, r->body);
        assert_non_null(e);
        if (e->code != code)
                fail_msg("expected error %u, got %u: %s", code, e->code, e->message);
        if (want && !strstr(e->message, want))
                fail_msg("expected \"%s\" in the message \"%s\"", want, e->message);
        vouch__v1__error__free_unpacked(e, NULL);
}

/* The same as JSON ({"code", "message"}). */
static json_object *json_of(const api_response *r) {
        char *s = strndup((const char *) r->body, r->body_len);
        assert_non_null(s);
        json_object *o = json_tokener_parse(s);
        free(s);
        assert_non_null(o);
        return o;
}

static const char *jstr(json_object *o, const char *key) {
        json_object *v;
        assert_true(json_object_object_get_ex(o, key, &v));
        return json_object_get_string(v);
}

static json_object *jget(json_object *o, const char *key) {
        json_object *v;
        assert_true(json_object_object_get_ex(o, key, &v));
        return v;
}

static void expect_json_error(const api_response *r, int status, int code) {
        assert_int_equal(r->status, status);
        assert_string_equal(r->content_type, "application/json");
        json_object *o = json_of(r);
        assert_int_equal(json_object_get_int(jget(o, "code")), code);
        assert_true(strlen(jstr(o, "message")) > 0);
        json_object_put(o);
}

/* ---- bodies ---- */

/* Standard base64 (RFC 4648 section 4, padded) into out: the length, or -1 for anything
 * else (no whitespace, no base64url); decoded here apart from vouchd's encoder. */
static int b64_dec(const char *s, uint8_t *out, size_t cap) {
        static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t n = strlen(s), k = 0;
        if (n % 4)
                return -1;
        for (size_t i = 0; i < n; i += 4) {
                uint32_t v = 0;
                int pad = 0;
                for (int j = 0; j < 4; j++) {
                        const char *c = s[i + j] ? strchr(a, s[i + j]) : NULL;
                        if (s[i + j] == '=' && i + 4 == n && j >= 2 && (j == 3 || s[i + 3] == '='))
                                pad++;
                        else if (!c || pad)
                                return -1;
                        v = v << 6 | (c ? (uint32_t) (c - a) : 0);
                }
                for (int j = 0; j < 3 - pad; j++) {
                        if (k >= cap)
                                return -1;
                        out[k++] = (uint8_t) (v >> (16 - 8 * j));
                }
        }
        return (int) k;
}

/* s is the base64 of these bytes */
static void expect_b64(const char *s, const uint8_t *p, size_t n) {
        uint8_t buf[4096];
        int k = b64_dec(s, buf, sizeof(buf));
        if (k < 0 || (size_t) k != n || memcmp(buf, p, n) != 0)
                fail_msg("\"%.80s\" is not the base64 of the %zu bytes expected", s, n);
}

/* The Verdict of a SignedVerdict in JSON (its "verdict" base64); the caller frees it. */
static Vouch__V1__Verdict *json_verdict(json_object *sv) {
        uint8_t buf[4096];
        json_object *vb;
        assert_true(json_object_object_get_ex(sv, "verdict", &vb));
        assert_true(json_object_is_type(vb, json_type_string));
        int k = b64_dec(json_object_get_string(vb), buf, sizeof(buf));
        assert_true(k > 0);
        Vouch__V1__Verdict *v = vouch__v1__verdict__unpack(NULL, (size_t) k, buf);
        assert_non_null(v);
        return v;
}

/* The Verdict inside a SignedVerdict body (the caller frees it). */
static Vouch__V1__Verdict *verdict_of(const uint8_t *rec, size_t len) {
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, len, rec);
        assert_non_null(sv);
        assert_true(sv->signature.len > 0);
        Vouch__V1__Verdict *v = vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data);
        assert_non_null(v);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        return v;
}

/* GET /v1/devices/ID/verdict as a reader: its status. */
static int verdict_status(tapi *t, const char *id) {
        char path[128];
        api_response r;
        snprintf(path, sizeof(path), "/v1/devices/%s/verdict", id);
        call(t, API_METHOD_GET, API_ROLE_READER, path, &r);
        expect_ok(&r, "application/x-protobuf");
        Vouch__V1__Verdict *v = verdict_of(r.body, r.body_len);
        assert_string_equal(v->device_id, id);
        int status = v->status;
        vouch__v1__verdict__free_unpacked(v, NULL);
        api_response_done(&r);
        return status;
}

static Vouch__V1__DeviceInfo *device_info_of(const api_response *r) {
        expect_ok(r, "application/x-protobuf");
        Vouch__V1__DeviceInfo *o = vouch__v1__device_info__unpack(NULL, r->body_len, r->body);
        assert_non_null(o);
        return o;
}

static void attest(tapi *t) {
        fconn *c;
        struct session *s = sfx_connect(&t->f, &c);
        assert_int_equal(sfx_attest(&t->f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        session_event(s, TCONN_EOF, "");
}

/* Another enrolled, approved device with this id (its EK does not parse, so it is in no
 * EK key chain and the fixture's device is still found by its own). */
static void enroll_other(tapi *t, const char *id) {
        vouchd *d = &t->f.d;
        vs_device rec = { .ek_public = (uint8_t *) "xyz", .ek_public_len = 3, .ak_public = t->f.ak_pub,
                          .ak_public_len = t->f.ak_len, .approved = true, .enrolled_at = SFX_WALL };
        snprintf(rec.id, sizeof(rec.id), "%s", id);
        pthread_mutex_lock(&d->lock);
        assert_non_null(registry_add_locked(d, &rec));
        pthread_mutex_unlock(&d->lock);
        assert_int_equal(vs_device_put(d->store, &rec, NULL, NULL), 0);
        vs_flush(d->store);
}

#define ID_1 "0000000000000000000000000000000000000000000000000000000000000001"
#define ID_2 "0000000000000000000000000000000000000000000000000000000000000002"
#define ID_F "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

/* ---- verdicts ---- */

static void test_verdict_trusted(void **state) {
        tapi *t = *state;
        attest(t);
        char path[128];
        api_response r;
        snprintf(path, sizeof(path), "/v1/devices/%s/verdict", t->f.id);
        call(t, API_METHOD_GET, API_ROLE_READER, path, &r);
        expect_ok(&r, "application/x-protobuf");
        Vouch__V1__Verdict *v = verdict_of(r.body, r.body_len);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_string_equal(v->device_id, t->f.id);
        assert_int_equal(v->sequence, 1);
        assert_int_equal(v->issued_at, SFX_WALL);
        assert_string_equal(v->golden_name, "dev");
        /* the same SignedVerdict as JSON, in the proto3 mapping: the signed bytes and the
         * signature in base64, exactly these three fields */
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, r.body_len, r.body);
        assert_non_null(sv);
        api_response_done(&r);
        snprintf(path, sizeof(path), "/v1/devices/%s/verdict?format=json", t->f.id);
        call(t, API_METHOD_GET, API_ROLE_READER, path, &r);
        expect_ok(&r, "application/json");
        json_object *o = json_of(&r);
        assert_int_equal(json_object_object_length(o), 3);
        expect_b64(jstr(o, "verdict"), sv->verdict.data, sv->verdict.len);
        expect_b64(jstr(o, "signature"), sv->signature.data, sv->signature.len);
        assert_string_equal(jstr(o, "key_id"), sv->key_id);
        json_object_put(o);
        api_response_done(&r);
        /* and as an EAR: a JWS in compact form */
        snprintf(path, sizeof(path), "/v1/devices/%s/verdict?format=ear", t->f.id);
        call(t, API_METHOD_GET, API_ROLE_READER, path, &r);
        expect_ok(&r, "application/eat+jwt");
        char *jwt = strndup((const char *) r.body, r.body_len);
        char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
        assert_non_null(dot2);
        assert_null(strchr(dot2 + 1, '.'));
        free(jwt);
        api_response_done(&r);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        vouch__v1__verdict__free_unpacked(v, NULL);
}

static void test_verdict_unknown_before_attesting(void **state) {
        tapi *t = *state;
        char path[128];
        api_response r;
        assert_int_equal(verdict_status(t, t->f.id), VOUCH__V1__TRUST_STATUS__UNKNOWN);
        snprintf(path, sizeof(path), "/v1/devices/%s/verdict?format=json", t->f.id);
        call(t, API_METHOD_GET, API_ROLE_READER, path, &r);
        expect_ok(&r, "application/json");
        json_object *o = json_of(&r);
        Vouch__V1__Verdict *v = json_verdict(o);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__UNKNOWN);
        assert_int_equal(v->sequence, 0); /* not stored */
        vouch__v1__verdict__free_unpacked(v, NULL);
        json_object_put(o);
        api_response_done(&r);
}

static void test_verdict_of_no_device(void **state) {
        tapi *t = *state;
        api_response r;
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/devices/" ID_1 "/verdict", &r);
        expect_error(&r, 404, ENOENT, "no device \"" ID_1 "\"");
        api_response_done(&r);
        /* a malformed id (not 64 lower-case hex digits) is no device either: the same 404 */
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/devices/abc/verdict", &r);
        expect_error(&r, 404, ENOENT, "no device \"abc\"");
        api_response_done(&r);
        char upper[128];
        snprintf(upper, sizeof(upper), "/v1/devices/%s/verdict", t->f.id);
        for (char *p = upper + strlen("/v1/devices/"); *p != '/'; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char) (*p - 'a' + 'A');
        call(t, API_METHOD_GET, API_ROLE_READER, upper, &r);
        expect_error(&r, 404, ENOENT, NULL);
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/devices/" ID_1 "/verdict?format=json", &r);
        expect_json_error(&r, 404, ENOENT);
        api_response_done(&r);
        /* only GET */
        char path[128];
        snprintf(path, sizeof(path), "/v1/devices/%s/verdict", t->f.id);
        call(t, API_METHOD_POST, API_ROLE_ADMIN, path, &r);
        expect_error(&r, 405, EINVAL, "this endpoint answers GET, HEAD");
        assert_string_equal(header(&r, "Allow"), "GET, HEAD");
        api_response_done(&r);
}

/* Past its expiry (fake clock) a TRUSTED verdict is shown STALE, and listed as such. */
static void test_expired_verdict_is_stale(void **state) {
        tapi *t = *state;
        api_response r;
        attest(t);
        assert_int_equal(verdict_status(t, t->f.id), VOUCH__V1__TRUST_STATUS__TRUSTED);
        vclock_fake_advance(3 * 60 - 1);
        assert_int_equal(verdict_status(t, t->f.id), VOUCH__V1__TRUST_STATUS__TRUSTED);
        vclock_fake_advance(2);
        assert_int_equal(verdict_status(t, t->f.id), VOUCH__V1__TRUST_STATUS__STALE);
        sfx_pump(&t->f);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/verdicts?status=STALE", &r);
        expect_ok(&r, "application/x-protobuf");
        Vouch__V1__VerdictPage *p = vouch__v1__verdict_page__unpack(NULL, r.body_len, r.body);
        assert_non_null(p);
        assert_int_equal(p->n_verdicts, 1);
        Vouch__V1__Verdict *v = vouch__v1__verdict__unpack(NULL, p->verdicts[0]->verdict.len, p->verdicts[0]->verdict.data);
        assert_non_null(v);
        assert_string_equal(v->device_id, t->f.id);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__STALE);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__verdict_page__free_unpacked(p, NULL);
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/verdicts?status=TRUSTED", &r);
        expect_ok(&r, "application/x-protobuf");
        p = vouch__v1__verdict_page__unpack(NULL, r.body_len, r.body);
        assert_non_null(p);
        assert_int_equal(p->n_verdicts, 0);
        vouch__v1__verdict_page__free_unpacked(p, NULL);
        api_response_done(&r);
}

/* ---- lists and paging ---- */

static Vouch__V1__DevicePage *device_page(tapi *t, const char *target) {
        api_response r;
        call(t, API_METHOD_GET, API_ROLE_ADMIN, target, &r);
        expect_ok(&r, "application/x-protobuf");
        Vouch__V1__DevicePage *p = vouch__v1__device_page__unpack(NULL, r.body_len, r.body);
        assert_non_null(p);
        api_response_done(&r);
        return p;
}

static void test_device_list_pages(void **state) {
        tapi *t = *state;
        char target[256];
        api_response r;
        enroll_other(t, ID_F);
        enroll_other(t, ID_2);
        enroll_other(t, ID_1);
        attest(t);
        const char *want[] = { ID_1, ID_2, t->f.id, ID_F }; /* by id */
        Vouch__V1__DevicePage *p = device_page(t, "/v1/devices");
        assert_int_equal(p->n_devices, 4);
        for (size_t i = 0; i < 4; i++)
                assert_string_equal(p->devices[i]->id, want[i]);
        assert_string_equal(p->next_page_token, "");
        assert_int_equal(p->devices[2]->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_int_equal(p->devices[0]->status, VOUCH__V1__TRUST_STATUS__UNKNOWN);
        assert_true(p->devices[2]->approved);
        assert_false(p->devices[2]->revoked);
        vouch__v1__device_page__free_unpacked(p, NULL);
        /* two pages of two */
        p = device_page(t, "/v1/devices?page_size=2");
        assert_int_equal(p->n_devices, 2);
        assert_string_equal(p->devices[1]->id, ID_2);
        assert_string_equal(p->next_page_token, ID_2);
        snprintf(target, sizeof(target), "/v1/devices?page_size=2&page_token=%s", p->next_page_token);
        vouch__v1__device_page__free_unpacked(p, NULL);
        p = device_page(t, target);
        assert_int_equal(p->n_devices, 2);
        assert_string_equal(p->devices[0]->id, t->f.id);
        assert_string_equal(p->devices[1]->id, ID_F);
        assert_string_equal(p->next_page_token, "");
        vouch__v1__device_page__free_unpacked(p, NULL);
        /* the same as JSON */
        call(t, API_METHOD_GET, API_ROLE_ADMIN, "/v1/devices?page_size=3&format=json", &r);
        expect_ok(&r, "application/json");
        json_object *o = json_of(&r), *devs = jget(o, "devices");
        assert_int_equal(json_object_array_length(devs), 3);
        assert_string_equal(jstr(json_object_array_get_idx(devs, 2), "id"), t->f.id);
        assert_string_equal(jstr(json_object_array_get_idx(devs, 2), "status"), "TRUSTED");
        assert_string_equal(jstr(json_object_array_get_idx(devs, 2), "golden"), "");
        assert_string_equal(jstr(o, "next_page_token"), t->f.id);
        json_object_put(o);
        api_response_done(&r);
        /* bad paging arguments */
        call(t, API_METHOD_GET, API_ROLE_ADMIN, "/v1/devices?page_size=0", &r);
        expect_error(&r, 400, EINVAL, "page_size");
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_ADMIN, "/v1/devices?page_size=1001&format=json", &r);
        expect_json_error(&r, 400, EINVAL);
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_ADMIN, "/v1/devices?page_size=2x", &r);
        expect_error(&r, 400, EINVAL, "page_size");
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_ADMIN, "/v1/devices?page_token=zz", &r);
        expect_error(&r, 400, EINVAL, "page_token \"zz\"");
        api_response_done(&r);
        /* an empty page_token is the first page */
        p = device_page(t, "/v1/devices?page_token=");
        assert_int_equal(p->n_devices, 4);
        vouch__v1__device_page__free_unpacked(p, NULL);
}

static Vouch__V1__VerdictPage *verdict_page(tapi *t, const char *target) {
        api_response r;
        call(t, API_METHOD_GET, API_ROLE_READER, target, &r);
        expect_ok(&r, "application/x-protobuf");
        Vouch__V1__VerdictPage *p = vouch__v1__verdict_page__unpack(NULL, r.body_len, r.body);
        assert_non_null(p);
        api_response_done(&r);
        return p;
}

static void assert_page_ids(const Vouch__V1__VerdictPage *p, const char *const *ids, size_t n) {
        assert_int_equal(p->n_verdicts, n);
        for (size_t i = 0; i < n; i++) {
                Vouch__V1__Verdict *v = vouch__v1__verdict__unpack(NULL, p->verdicts[i]->verdict.len,
                                                                   p->verdicts[i]->verdict.data);
                assert_non_null(v);
                assert_string_equal(v->device_id, ids[i]);
                vouch__v1__verdict__free_unpacked(v, NULL);
        }
}

static void test_verdict_list_filter_and_pages(void **state) {
        tapi *t = *state;
        api_response r;
        enroll_other(t, ID_1);
        enroll_other(t, ID_2);
        enroll_other(t, ID_F);
        attest(t);
        const char *all[] = { ID_1, ID_2, t->f.id, ID_F }, *unknown[] = { ID_1, ID_2, ID_F };
        Vouch__V1__VerdictPage *p = verdict_page(t, "/v1/verdicts");
        assert_page_ids(p, all, 4);
        assert_string_equal(p->next_page_token, "");
        vouch__v1__verdict_page__free_unpacked(p, NULL);
        p = verdict_page(t, "/v1/verdicts?status=TRUSTED");
        assert_page_ids(p, &all[2], 1);
        vouch__v1__verdict_page__free_unpacked(p, NULL);
        p = verdict_page(t, "/v1/verdicts?status=untrusted"); /* names in any case */
        assert_page_ids(p, NULL, 0);
        vouch__v1__verdict_page__free_unpacked(p, NULL);
        /* a filtered page of two: the token is the last device looked at */
        p = verdict_page(t, "/v1/verdicts?status=UNKNOWN&page_size=2");
        assert_page_ids(p, unknown, 2);
        assert_string_equal(p->next_page_token, ID_2);
        vouch__v1__verdict_page__free_unpacked(p, NULL);
        p = verdict_page(t, "/v1/verdicts?status=UNKNOWN&page_size=2&page_token=" ID_2);
        assert_page_ids(p, &unknown[2], 1);
        assert_string_equal(p->next_page_token, "");
        vouch__v1__verdict_page__free_unpacked(p, NULL);
        /* JSON */
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/verdicts?format=json&status=TRUSTED", &r);
        expect_ok(&r, "application/json");
        json_object *o = json_of(&r), *vs = jget(o, "verdicts");
        assert_int_equal(json_object_array_length(vs), 1);
        Vouch__V1__Verdict *v = json_verdict(json_object_array_get_idx(vs, 0));
        assert_string_equal(v->device_id, t->f.id);
        vouch__v1__verdict__free_unpacked(v, NULL);
        assert_string_equal(jstr(o, "next_page_token"), "");
        json_object_put(o);
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/verdicts?status=GOOD", &r);
        expect_error(&r, 400, EINVAL, "status \"GOOD\"");
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/verdicts?page_size=-1", &r);
        expect_error(&r, 400, EINVAL, NULL);
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/verdicts?page_token=" ID_1 "0", &r);
        expect_error(&r, 400, EINVAL, "page_token");
        api_response_done(&r);
}

/* ---- keys ---- */

static void test_keys(void **state) {
        tapi *t = *state;
        const vkey *active = &t->f.d.keys.active;
        api_response r;
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/keys", &r);
        expect_ok(&r, "application/x-protobuf");
        Vouch__V1__VerdictKeys *k = vouch__v1__verdict_keys__unpack(NULL, r.body_len, r.body);
        assert_non_null(k);
        assert_int_equal(k->n_keys, 1);
        assert_string_equal(k->keys[0]->key_id, active->id);
        assert_true(k->keys[0]->active);
        const unsigned char *der = k->keys[0]->spki.data;
        EVP_PKEY *pub = d2i_PUBKEY(NULL, &der, (long) k->keys[0]->spki.len);
        assert_non_null(pub);
        assert_int_equal(EVP_PKEY_eq(pub, active->pkey), 1);
        EVP_PKEY_free(pub);
        vouch__v1__verdict_keys__free_unpacked(k, NULL);
        api_response_done(&r);

        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/keys?format=pem", &r);
        expect_ok(&r, "application/x-pem-file");
        assert_true(r.body_len > 26 && memcmp(r.body, "-----BEGIN PUBLIC KEY-----", 26) == 0);
        BIO *b = BIO_new_mem_buf(r.body, (int) r.body_len);
        pub = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        assert_non_null(pub);
        assert_int_equal(EVP_PKEY_eq(pub, active->pkey), 1);
        EVP_PKEY_free(pub);
        BIO_free(b);
        api_response_done(&r);

        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/keys?format=json", &r);
        expect_ok(&r, "application/json");
        json_object *o = json_of(&r), *keys = jget(o, "keys");
        assert_int_equal(json_object_array_length(keys), 1);
        assert_string_equal(jstr(json_object_array_get_idx(keys, 0), "key_id"), active->id);
        assert_true(json_object_get_boolean(jget(json_object_array_get_idx(keys, 0), "active")));
        json_object_put(o);
        api_response_done(&r);
}

/* ---- the JWK Set (RFC 7517) and the EAR's kid ---- */

/* base64url without padding, written here apart from vouchd's own encoder */
static void b64url_enc(const uint8_t *p, size_t n, char *out) {
        static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t k = 0;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < n ? (uint32_t) p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
                out[k++] = a[v >> 18 & 63];
                out[k++] = a[v >> 12 & 63];
                if (i + 1 < n)
                        out[k++] = a[v >> 6 & 63];
                if (i + 2 < n)
                        out[k++] = a[v & 63];
        }
        out[k] = 0;
}

/* base64url (no padding) into out (at most cap bytes): the length, or -1 for a bad string */
static int b64url_dec(const char *s, uint8_t *out, size_t cap) {
        static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        uint32_t v = 0;
        int bits = 0;
        size_t k = 0;
        for (; *s; s++) {
                const char *c = strchr(a, *s);
                if (!c)
                        return -1;
                v = v << 6 | (uint32_t) (c - a);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        if (k >= cap)
                                return -1;
                        out[k++] = (uint8_t) (v >> bits);
                }
        }
        return (int) k;
}

/* The RFC 7638 thumbprint of an EC P-256 key, from its encoded point 04 || X || Y, and its
 * x and y (base64url): the canonical JSON built by hand, SHA-256, base64url. */
static void thumbprint(EVP_PKEY *k, char x64[44], char y64[44], char kid[44]) {
        uint8_t pt[65], h[32];
        size_t n = 0;
        unsigned hn = 0;
        assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &n), 1);
        assert_int_equal(n, 65);
        assert_int_equal(pt[0], 4);
        b64url_enc(pt + 1, 32, x64);
        b64url_enc(pt + 33, 32, y64);
        char canon[200];
        snprintf(canon, sizeof(canon), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x64, y64);
        assert_int_equal(EVP_Digest(canon, strlen(canon), h, &hn, EVP_sha256(), NULL), 1);
        assert_int_equal(hn, 32);
        b64url_enc(h, 32, kid);
        assert_int_equal(strlen(kid), 43);
}

/* GET /v1/keys?format=jwks matches GET /v1/keys key for key, in order: the JWK of each, its
 * kid the thumbprint computed here. The kids into kids (n of them). */
static size_t check_jwks(tapi *t, const char *target, char kids[][44], size_t max) {
        api_response r;
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/keys", &r);
        expect_ok(&r, "application/x-protobuf");
        Vouch__V1__VerdictKeys *k = vouch__v1__verdict_keys__unpack(NULL, r.body_len, r.body);
        assert_non_null(k);
        api_response_done(&r);
        assert_true(k->n_keys <= max);

        call(t, API_METHOD_GET, API_ROLE_READER, target, &r);
        expect_ok(&r, "application/jwk-set+json");
        json_object *o = json_of(&r), *keys = jget(o, "keys");
        assert_true(json_object_is_type(keys, json_type_array));
        assert_int_equal(json_object_array_length(keys), k->n_keys);
        for (size_t i = 0; i < k->n_keys; i++) {
                const unsigned char *der = k->keys[i]->spki.data;
                EVP_PKEY *pub = d2i_PUBKEY(NULL, &der, (long) k->keys[i]->spki.len);
                assert_non_null(pub);
                char x64[44], y64[44];
                thumbprint(pub, x64, y64, kids[i]);
                EVP_PKEY_free(pub);
                json_object *j = json_object_array_get_idx(keys, i);
                assert_int_equal(json_object_object_length(j), 7);
                assert_string_equal(jstr(j, "kty"), "EC");
                assert_string_equal(jstr(j, "crv"), "P-256");
                assert_string_equal(jstr(j, "use"), "sig");
                assert_string_equal(jstr(j, "alg"), "ES256");
                assert_string_equal(jstr(j, "x"), x64);
                assert_string_equal(jstr(j, "y"), y64);
                assert_string_equal(jstr(j, "kid"), kids[i]);
                uint8_t c[40];
                assert_int_equal(b64url_dec(jstr(j, "x"), c, sizeof(c)), 32);
                assert_int_equal(b64url_dec(jstr(j, "y"), c, sizeof(c)), 32);
        }
        json_object_put(o);
        api_response_done(&r);
        size_t n = k->n_keys;
        vouch__v1__verdict_keys__free_unpacked(k, NULL);
        return n;
}

/* The device's EAR: its header {"alg","typ","kid"} and the kid into kid; iss checked. The
 * token into *ret_jwt (the caller frees it). */
static void check_ear(tapi *t, char kid[44], char **ret_jwt) {
        char path[128];
        api_response r;
        snprintf(path, sizeof(path), "/v1/devices/%s/verdict?format=ear", t->f.id);
        call(t, API_METHOD_GET, API_ROLE_READER, path, &r);
        expect_ok(&r, "application/eat+jwt");
        char *jwt = strndup((const char *) r.body, r.body_len);
        *ret_jwt = strndup((const char *) r.body, r.body_len);
        api_response_done(&r);
        char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
        assert_non_null(dot2);
        *dot1 = *dot2 = 0;
        char buf[4096];
        int n = b64url_dec(jwt, (uint8_t *) buf, sizeof(buf) - 1);
        assert_true(n > 0);
        buf[n] = 0;
        json_object *h = json_tokener_parse(buf);
        assert_non_null(h);
        assert_int_equal(json_object_object_length(h), 3);
        assert_string_equal(jstr(h, "alg"), "ES256");
        assert_string_equal(jstr(h, "typ"), "eat+jwt");
        assert_int_equal(strlen(jstr(h, "kid")), 43);
        snprintf(kid, 44, "%s", jstr(h, "kid"));
        json_object_put(h);
        n = b64url_dec(dot1 + 1, (uint8_t *) buf, sizeof(buf) - 1);
        assert_true(n > 0);
        buf[n] = 0;
        json_object *p = json_tokener_parse(buf);
        assert_non_null(p);
        assert_string_equal(jstr(p, "iss"), t->f.d.verifier_id);
        assert_int_equal(strlen(jstr(p, "iss")), 64);
        json_object_put(p);
        free(jwt);
}

/* With VOUCH_JOSE_OUT=DIR, test_jwks leaves its JWK Set and EAR tokens there for
 * test-jose.py (PyJWT). */
static void jose_out(const char *name, const char *text, size_t len) {
        const char *dir = getenv("VOUCH_JOSE_OUT");
        if (!dir)
                return;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
}

static void test_jwks(void **state) {
        tapi *t = *state;
        char kids[4][44], again[4][44], kid[44], *old_ear = NULL, *new_ear = NULL;
        /* the active key alone; the well-known path gives the same set */
        assert_int_equal(check_jwks(t, "/v1/keys?format=jwks", kids, 4), 1);
        assert_int_equal(check_jwks(t, "/.well-known/jwks.json", again, 4), 1);
        assert_string_equal(again[0], kids[0]);
        /* the EAR names its key by that thumbprint */
        attest(t);
        check_ear(t, kid, &old_ear);
        assert_string_equal(kid, kids[0]);

        /* rotated: the new key signs, the old one stays published until its end date */
        char new_id[65];
        assert_int_equal(vk_rotate(t->f.d.cfg.state_dir, vclock_wall() + 86400, new_id), 0);
        assert_int_equal(verdict_keys_reload(&t->f.d), 0);
        assert_string_equal(t->f.d.keys.active.id, new_id);
        assert_int_equal(check_jwks(t, "/v1/keys?format=jwks", again, 4), 2);
        assert_string_not_equal(again[0], kids[0]);
        assert_string_equal(again[1], kids[0]);
        char well[4][44];
        assert_int_equal(check_jwks(t, "/.well-known/jwks.json", well, 4), 2);
        assert_string_equal(well[0], again[0]);
        assert_string_equal(well[1], again[1]);
        check_ear(t, kid, &new_ear);
        assert_string_equal(kid, again[0]);
        if (getenv("VOUCH_JOSE_OUT")) {
                api_response r;
                call(t, API_METHOD_GET, API_ROLE_READER, "/.well-known/jwks.json", &r);
                expect_ok(&r, "application/jwk-set+json");
                jose_out("jwks.json", (const char *) r.body, r.body_len);
                api_response_done(&r);
                jose_out("ear-old.jwt", old_ear, strlen(old_ear));
                jose_out("ear-new.jwt", new_ear, strlen(new_ear));
                jose_out("issuer", t->f.d.verifier_id, strlen(t->f.d.verifier_id));
        }
        free(old_ear);
        free(new_ear);

        /* a reader's endpoint: no role, no keys; errors in JSON */
        api_response r;
        call(t, API_METHOD_GET, API_ROLE_NONE, "/.well-known/jwks.json", &r);
        expect_json_error(&r, 403, EACCES);
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_NONE, "/v1/keys?format=jwks", &r);
        expect_json_error(&r, 403, EACCES);
        api_response_done(&r);
        call(t, API_METHOD_POST, API_ROLE_ADMIN, "/.well-known/jwks.json", &r);
        expect_json_error(&r, 405, EINVAL);
        api_response_done(&r);
        /* a JWK Set is keys only */
        char path[128];
        snprintf(path, sizeof(path), "/v1/devices/%s/verdict?format=jwks", t->f.id);
        call(t, API_METHOD_GET, API_ROLE_READER, path, &r);
        expect_json_error(&r, 400, EINVAL);
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/verdicts?format=jwks", &r);
        expect_json_error(&r, 400, EINVAL);
        api_response_done(&r);
}

/* ---- roles ---- */

static void test_roles(void **state) {
        tapi *t = *state;
        char path[128];
        api_response r;
        unsigned long long refused = atomic_load(&t->a->refused);
        /* no role: refused everywhere, also /healthz */
        call(t, API_METHOD_GET, API_ROLE_NONE, "/healthz", &r);
        expect_error(&r, 403, EACCES, "client \"nobody\" has no role");
        api_response_done(&r);
        snprintf(path, sizeof(path), "/v1/devices/%s/verdict?format=json", t->f.id);
        call(t, API_METHOD_GET, API_ROLE_NONE, path, &r);
        expect_json_error(&r, 403, EACCES);
        api_response_done(&r);
        /* a reader reads verdicts, not the device list, and changes nothing */
        call(t, API_METHOD_GET, API_ROLE_READER, "/healthz", &r);
        expect_ok(&r, "text/plain");
        assert_memory_equal(r.body, "ok\n", 3);
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/devices", &r);
        expect_error(&r, 403, EACCES, "is a reader");
        api_response_done(&r);
        snprintf(path, sizeof(path), "/v1/devices/%s/revoke", t->f.id);
        call(t, API_METHOD_POST, API_ROLE_READER, path, &r);
        expect_error(&r, 403, EACCES, "needs the admin role");
        api_response_done(&r);
        assert_false(sfx_device(&t->f)->rec.revoked);
        assert_int_equal(verdict_status(t, t->f.id), VOUCH__V1__TRUST_STATUS__UNKNOWN);
        assert_int_equal(atomic_load(&t->a->refused), refused + 4);
        /* the refusals are counted on /metrics */
        call(t, API_METHOD_GET, API_ROLE_READER, "/metrics", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "text/plain; version=0.0.4");
        assert_int_equal(r.n_headers, 0);
        char *text = strndup((const char *) r.body, r.body_len), want[64];
        snprintf(want, sizeof(want), "\nvouch_api_refused_total %llu\n", refused + 4);
        assert_non_null(strstr(text, want));
        assert_non_null(strstr(text, "\nvouch_devices 1\n"));
        free(text);
        api_response_done(&r);
        /* the configuration's names */
        char *admins[] = { "ops" }, *readers[] = { "pdp" };
        t->f.d.cfg.api_admins = admins;
        t->f.d.cfg.n_api_admins = 1;
        t->f.d.cfg.api_readers = readers;
        t->f.d.cfg.n_api_readers = 1;
        assert_int_equal(api_role_of_cn(&t->f.d, "ops"), API_ROLE_ADMIN);
        assert_int_equal(api_role_of_cn(&t->f.d, "pdp"), API_ROLE_READER);
        assert_int_equal(api_role_of_cn(&t->f.d, "Ops"), API_ROLE_NONE);
        assert_int_equal(api_role_of_cn(&t->f.d, ""), API_ROLE_NONE);
        t->f.d.cfg.api_admins = t->f.d.cfg.api_readers = NULL;
        t->f.d.cfg.n_api_admins = t->f.d.cfg.n_api_readers = 0;
}

/* /metrics names the build: vouch_build_info{version="..."} 1, a gauge (issue 20) */
static void test_build_info(void **state) {
        tapi *t = *state;
        api_response r;
        call(t, API_METHOD_GET, API_ROLE_READER, "/metrics", &r);
        assert_int_equal(r.status, 200);
        char *text = strndup((const char *) r.body, r.body_len);
        assert_non_null(text);
        assert_non_null(strstr(text, "\n# TYPE vouch_build_info gauge\n"));
        assert_non_null(strstr(text, "\nvouch_build_info{version=\"" VOUCH_VERSION "\"} 1\n"));
        assert_string_not_equal(VOUCH_VERSION, "");
        free(text);
        api_response_done(&r);
}

/* ---- admin actions ---- */

static void test_revoke_and_approve(void **state) {
        tapi *t = *state;
        char path[128];
        api_response r;
        attest(t);
        snprintf(path, sizeof(path), "/v1/devices/%s/revoke", t->f.id);
        call(t, API_METHOD_GET, API_ROLE_ADMIN, path, &r);
        expect_error(&r, 405, EINVAL, "this endpoint answers POST");
        assert_string_equal(header(&r, "Allow"), "POST");
        api_response_done(&r);
        call(t, API_METHOD_PUT, API_ROLE_ADMIN, path, &r);
        expect_error(&r, 405, EINVAL, "this endpoint answers POST");
        api_response_done(&r);
        /* a body where none is taken: 400, nothing done */
        call_body(t, API_METHOD_POST, API_ROLE_ADMIN, path, "application/json", "{}", 2, &r);
        expect_error(&r, 400, EBADMSG, "revoke takes no body");
        api_response_done(&r);
        assert_int_equal(verdict_status(t, t->f.id), VOUCH__V1__TRUST_STATUS__TRUSTED);
        call(t, API_METHOD_POST, API_ROLE_ADMIN, path, &r);
        Vouch__V1__DeviceInfo *o = device_info_of(&r);
        assert_string_equal(o->id, t->f.id);
        assert_true(o->revoked);
        assert_false(o->approved);
        assert_int_equal(o->status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        vouch__v1__device_info__free_unpacked(o, NULL);
        api_response_done(&r);
        assert_int_equal(verdict_status(t, t->f.id), VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        sfx_pump(&t->f);
        /* the revocation's verdict names the admin */
        snprintf(path, sizeof(path), "/v1/devices/%s/verdict?format=json", t->f.id);
        call(t, API_METHOD_GET, API_ROLE_READER, path, &r);
        expect_ok(&r, "application/json");
        json_object *j = json_of(&r);
        Vouch__V1__Verdict *v = json_verdict(j);
        assert_int_equal(v->n_findings, 1);
        assert_string_equal(v->findings[0]->rule, "revoked");
        assert_non_null(strstr(v->findings[0]->explanation, "\"admin\""));
        vouch__v1__verdict__free_unpacked(v, NULL);
        json_object_put(j);
        api_response_done(&r);
        /* approve: POST only; the device list shows it approved */
        snprintf(path, sizeof(path), "/v1/devices/%s/approve?format=json", t->f.id);
        call(t, API_METHOD_PUT, API_ROLE_ADMIN, path, &r);
        expect_json_error(&r, 405, EINVAL);
        api_response_done(&r);
        call(t, API_METHOD_POST, API_ROLE_ADMIN, path, &r);
        expect_ok(&r, "application/json");
        j = json_of(&r);
        assert_string_equal(jstr(j, "id"), t->f.id);
        assert_true(json_object_get_boolean(jget(j, "approved")));
        json_object_put(j);
        api_response_done(&r);
        /* an action there is not */
        snprintf(path, sizeof(path), "/v1/devices/%s/frob", t->f.id);
        call(t, API_METHOD_POST, API_ROLE_ADMIN, path, &r);
        expect_error(&r, 404, ENOENT, "no endpoint POST /v1/devices/");
        api_response_done(&r);
        call(t, API_METHOD_POST, API_ROLE_ADMIN, "/v1/devices/" ID_1 "/revoke", &r);
        expect_error(&r, 404, ENOENT, "no device");
        api_response_done(&r);
}

static void put_golden_pb(tapi *t, const char *name, api_response *r) {
        char path[128];
        Vouch__V1__GoldenAssignment ga = VOUCH__V1__GOLDEN_ASSIGNMENT__INIT;
        uint8_t buf[256];
        ga.golden = (char *) name;
        size_t n = vouch__v1__golden_assignment__get_packed_size(&ga);
        assert_true(n <= sizeof(buf));
        vouch__v1__golden_assignment__pack(&ga, buf);
        snprintf(path, sizeof(path), "/v1/devices/%s/golden", t->f.id);
        call_body(t, API_METHOD_PUT, API_ROLE_ADMIN, path, "application/x-protobuf", buf, n, r);
}

static void test_golden_assignment(void **state) {
        tapi *t = *state;
        char path[128];
        api_response r;
        put_golden_pb(t, "dev", &r);
        Vouch__V1__DeviceInfo *o = device_info_of(&r);
        assert_string_equal(o->golden, "dev");
        vouch__v1__device_info__free_unpacked(o, NULL);
        api_response_done(&r);
        assert_string_equal(sfx_device(&t->f)->rec.golden, "dev");
        /* a set that is not loaded: 404, the assignment stays */
        put_golden_pb(t, "nope", &r);
        expect_error(&r, 404, ENOENT, "no golden set \"nope\"");
        api_response_done(&r);
        assert_string_equal(sfx_device(&t->f)->rec.golden, "dev");
        /* as JSON (the body's Content-Type says so, whatever format= asks of the answer);
         * "" is the default set */
        snprintf(path, sizeof(path), "/v1/devices/%s/golden?format=json", t->f.id);
        const char *body = "{\"golden\": \"\"}";
        call_body(t, API_METHOD_PUT, API_ROLE_ADMIN, path, "application/json; charset=utf-8", body, strlen(body), &r);
        expect_ok(&r, "application/json");
        json_object *j = json_of(&r);
        assert_string_equal(jstr(j, "golden"), "");
        json_object_put(j);
        api_response_done(&r);
        assert_string_equal(sfx_device(&t->f)->rec.golden, "");
        snprintf(path, sizeof(path), "/v1/devices/%s/golden", t->f.id);
        body = "{\"golden\": \"dev\"}";
        call_body(t, API_METHOD_PUT, API_ROLE_ADMIN, path, "Application/JSON", body, strlen(body), &r);
        o = device_info_of(&r); /* the answer in protobuf: no format= */
        assert_string_equal(o->golden, "dev");
        vouch__v1__device_info__free_unpacked(o, NULL);
        api_response_done(&r);
        /* a protobuf body read as protobuf with ?format=json: the body's type decides */
        snprintf(path, sizeof(path), "/v1/devices/%s/golden?format=json", t->f.id);
        call_body(t, API_METHOD_PUT, API_ROLE_ADMIN, path, "application/x-protobuf", "\x0a\x00", 2, &r);
        expect_ok(&r, "application/json");
        api_response_done(&r);
        assert_string_equal(sfx_device(&t->f)->rec.golden, "");
        /* the set named, then malformed bodies: 400 (or 415, 413), nothing changed */
        put_golden_pb(t, "dev", &r);
        api_response_done(&r);
        const char *bad[] = { "", "not json", "{\"golden\": 7}", "{\"name\": \"dev\"}", "[\"dev\"]", "{}",
                              "{\"golden\": \"\"} x", "{\"golden\": \"\", \"x\": 1}", "\"dev\"" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                call_body(t, API_METHOD_PUT, API_ROLE_ADMIN, path, "application/json", bad[i], strlen(bad[i]), &r);
                expect_json_error(&r, 400, EBADMSG);
                api_response_done(&r);
        }
        snprintf(path, sizeof(path), "/v1/devices/%s/golden", t->f.id);
        /* protobuf: an empty body, or one without the field, is no assignment (proto3 writes
         * golden "" as nothing: it must be sent as 0a 00) */
        const struct {
                const char *bytes;
                size_t len;
        } badpb[] = { { "", 0 }, { "\xff\xff\xff", 3 }, { "\x10\x01", 2 }, { "\x0a\x05" "ab", 4 } };
        for (size_t i = 0; i < sizeof(badpb) / sizeof(badpb[0]); i++) {
                call_body(t, API_METHOD_PUT, API_ROLE_ADMIN, path, "application/x-protobuf", badpb[i].bytes, badpb[i].len,
                          &r);
                expect_error(&r, 400, EBADMSG, i == 0 ? "an empty body" : "is not a GoldenAssignment");
                api_response_done(&r);
        }
        /* the media type: none, or another, is 415 */
        call_body(t, API_METHOD_PUT, API_ROLE_ADMIN, path, NULL, "\x0a\x00", 2, &r);
        expect_error(&r, 415, EPROTONOSUPPORT, "Content-Type \"(none)\"");
        api_response_done(&r);
        call_body(t, API_METHOD_PUT, API_ROLE_ADMIN, path, "text/plain", "dev", 3, &r);
        expect_error(&r, 415, EPROTONOSUPPORT, "Content-Type \"text/plain\"");
        api_response_done(&r);
        char long_name[200];
        memset(long_name, 'a', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        put_golden_pb(t, long_name, &r);
        expect_error(&r, 400, EBADMSG, NULL);
        api_response_done(&r);
        size_t big = API_MAX_BODY + 1;
        uint8_t *huge = calloc(1, big);
        assert_non_null(huge);
        call_body(t, API_METHOD_PUT, API_ROLE_ADMIN, path, "application/x-protobuf", huge, big, &r);
        expect_error(&r, 413, E2BIG, NULL);
        api_response_done(&r);
        free(huge);
        assert_string_equal(sfx_device(&t->f)->rec.golden, "dev");
        /* PUT only */
        call(t, API_METHOD_POST, API_ROLE_ADMIN, path, &r);
        expect_error(&r, 405, EINVAL, "this endpoint answers PUT");
        assert_string_equal(header(&r, "Allow"), "PUT");
        api_response_done(&r);
}

/* A store that cannot record the revocation: 503, and the device is as it was. */
static void test_store_failure_leaves_device_unchanged(void **state) {
        tapi *t = *state;
        char path[128];
        api_response r;
        if (strcmp(getenv("VOUCH_FAILPOINTS_BUILT") ?: "0", "1") != 0) {
                fprintf(stderr, "SKIP: the store's failpoints are not built (meson -Dfailpoints=true)\n");
                skip();
        }
        attest(t);
        snprintf(path, sizeof(path), "/v1/devices/%s/revoke", t->f.id);
        setenv("VOUCH_FAILPOINTS", "store-verdict", 1);
        call(t, API_METHOD_POST, API_ROLE_ADMIN, path, &r);
        unsetenv("VOUCH_FAILPOINTS");
        expect_error(&r, 503, EIO, "the device is unchanged");
        api_response_done(&r);
        sfx_pump(&t->f);
        device *dev = sfx_device(&t->f);
        assert_false(dev->rec.revoked);
        assert_true(dev->rec.approved);
        assert_int_equal(verdict_status(t, t->f.id), VOUCH__V1__TRUST_STATUS__TRUSTED);
        vs_device stored;
        assert_int_equal(vs_device_get(t->f.d.store, t->f.id, &stored), 0);
        assert_false(stored.revoked);
        assert_true(stored.approved);
        vs_device_done(&stored);
        /* and once the store works again, the revocation goes through */
        call(t, API_METHOD_POST, API_ROLE_ADMIN, path, &r);
        Vouch__V1__DeviceInfo *o = device_info_of(&r);
        assert_true(o->revoked);
        vouch__v1__device_info__free_unpacked(o, NULL);
        api_response_done(&r);
        assert_int_equal(verdict_status(t, t->f.id), VOUCH__V1__TRUST_STATUS__UNTRUSTED);
}

/* /healthz: ready while verdicts can be committed; 503, saying why, once the store is lost
 * (its file deleted under vouchd: nothing can be acknowledged any more). */
static void test_healthz_store_lost(void **state) {
        tapi *t = *state;
        char path[256];
        api_response r;
        call(t, API_METHOD_GET, API_ROLE_READER, "/healthz", &r);
        assert_int_equal(r.status, 200);
        assert_memory_equal(r.body, "ok\n", 3);
        api_response_done(&r);
        attest(t);
        snprintf(path, sizeof(path), "%s/vouch.db", t->f.d.cfg.state_dir);
        assert_int_equal(unlink(path), 0);
        snprintf(path, sizeof(path), "/v1/devices/%s/revoke", t->f.id);
        call(t, API_METHOD_POST, API_ROLE_ADMIN, path, &r);
        assert_int_equal(r.status, 503);
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/healthz", &r);
        assert_int_equal(r.status, 503);
        assert_non_null(memmem(r.body, r.body_len, "not ready: the store is lost", 28));
        api_response_done(&r);
}

/* ---- requests refused before any endpoint ---- */

static void test_malformed_requests(void **state) {
        tapi *t = *state;
        api_response r;
        api_request in = { .method = API_METHOD_GET, .path = "/healthz", .query_malformed = true,
                           .role = API_ROLE_ADMIN, .cn = "admin" };
        api_handle(t->a, &in, &r);
        expect_error(&r, 400, EINVAL, "malformed query string");
        api_response_done(&r);
        /* no path, or one too long */
        in = (api_request) { .method = API_METHOD_GET, .role = API_ROLE_ADMIN };
        api_handle(t->a, &in, &r);
        expect_error(&r, 400, EINVAL, "no or too long a path");
        api_response_done(&r);
        char long_path[600];
        memset(long_path, 'a', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[sizeof(long_path) - 1] = '\0';
        call(t, API_METHOD_GET, API_ROLE_ADMIN, long_path, &r);
        expect_error(&r, 400, EINVAL, "too long");
        api_response_done(&r);
        /* format: checked first, its error always protobuf */
        call(t, API_METHOD_GET, API_ROLE_NONE, "/v1/keys?format=xml", &r);
        expect_error(&r, 400, EINVAL, "format \"xml\"");
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/keys?FORMAT=json", &r); /* keys ignore case */
        expect_ok(&r, "application/json");
        api_response_done(&r);
        /* no such endpoint, or not with this method */
        call(t, API_METHOD_GET, API_ROLE_ADMIN, "/v1/nothing", &r);
        expect_error(&r, 404, ENOENT, "no endpoint GET /v1/nothing");
        api_response_done(&r);
        call(t, API_METHOD_POST, API_ROLE_ADMIN, "/healthz?format=json", &r);
        expect_json_error(&r, 405, EINVAL);
        assert_string_equal(header(&r, "Allow"), "GET, HEAD");
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_ADMIN, "/v1/devices/a/b/c/d/e/f/g", &r);
        expect_error(&r, 404, ENOENT, NULL);
        api_response_done(&r);
        assert_true(atomic_load(&t->a->requests) >= 8);
}

/* ---- the HTTP details (issue 20): every refusal named, nothing ignored ---- */

static void test_http_details(void **state) {
        tapi *t = *state;
        char path[200];
        api_response r;
        attest(t);
        /* a query parameter the endpoint does not take: 400 naming it and those it takes */
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/verdicts?colour=blue", &r);
        expect_error(&r, 400, EINVAL,
                     "unknown query parameter \"colour\": GET /v1/verdicts takes status, page_size, page_token or format");
        api_response_done(&r);
        snprintf(path, sizeof(path), "/v1/devices/%s/verdict?page_size=5", t->f.id);
        call(t, API_METHOD_GET, API_ROLE_READER, path, &r);
        expect_error(&r, 400, EINVAL, "unknown query parameter \"page_size\"");
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/healthz?verbose=1", &r);
        expect_error(&r, 400, EINVAL, "GET /healthz takes none");
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/watch?since=0&format=json&sinse=1", &r);
        expect_json_error(&r, 400, EINVAL);
        assert_false(r.watch);
        api_response_done(&r);
        /* too many (no endpoint takes more than four) */
        api_param many[17];
        for (size_t i = 0; i < 17; i++)
                many[i] = (api_param) { "format", "protobuf" };
        api_request in = { .method = API_METHOD_GET, .path = "/v1/keys", .query = many, .n_query = 17,
                           .role = API_ROLE_READER, .cn = "reader" };
        api_handle(t->a, &in, &r);
        expect_error(&r, 400, EINVAL, "17 query parameters, at most 16");
        api_response_done(&r);
        /* one given twice (case ignored, as lookups do) */
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/verdicts?status=TRUSTED&STATUS=UNTRUSTED", &r);
        expect_error(&r, 400, EINVAL, "given more than once");
        api_response_done(&r);
        /* a format= the endpoint does not offer: 400, not the default form */
        const char *not_offered[] = { "/healthz?format=json", "/metrics?format=protobuf", "/v1/verdicts?format=ear",
                                      "/v1/crl?format=protobuf", "/v1/keys?format=der", "/v1/decision?format=protobuf" };
        for (size_t i = 0; i < sizeof(not_offered) / sizeof(not_offered[0]); i++) {
                call(t, API_METHOD_GET, API_ROLE_READER, not_offered[i], &r);
                if (strstr(not_offered[i], "json"))
                        expect_json_error(&r, 400, EINVAL);
                else if (strstr(not_offered[i], "decision"))
                        expect_json_error(&r, 400, EINVAL); /* the decision's errors are JSON */
                else
                        expect_error(&r, 400, EINVAL, "is not offered by");
                api_response_done(&r);
        }
        /* a body on a GET */
        call_body(t, API_METHOD_GET, API_ROLE_READER, "/v1/keys", "application/json", "{}", 2, &r);
        expect_error(&r, 400, EBADMSG, "takes no body");
        api_response_done(&r);
        /* methods: every one answered; 405 names those the path takes in Allow */
        const api_method others[] = { API_METHOD_DELETE, API_METHOD_PATCH, API_METHOD_OPTIONS, API_METHOD_OTHER,
                                      API_METHOD_POST };
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
                call(t, others[i], API_ROLE_ADMIN, "/v1/keys", &r);
                expect_error(&r, 405, EINVAL, "this endpoint answers GET, HEAD");
                assert_string_equal(header(&r, "Allow"), "GET, HEAD");
                api_response_done(&r);
        }
        call(t, API_METHOD_DELETE, API_ROLE_ADMIN, "/v1/nothing", &r);
        expect_error(&r, 404, ENOENT, "no endpoint DELETE /v1/nothing");
        assert_null(header(&r, "Allow"));
        api_response_done(&r);
        /* HEAD: GET's answer (the transport leaves out the body) */
        call(t, API_METHOD_HEAD, API_ROLE_READER, "/v1/keys", &r);
        expect_ok(&r, "application/x-protobuf");
        api_response_done(&r);
        /* a path with an empty or extra segment is no endpoint */
        const char *odd[] = { "//v1/keys", "/v1/keys/", "/v1//keys", "/v1/devices//verdict", "/" };
        for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
                call(t, API_METHOD_GET, API_ROLE_READER, odd[i], &r);
                expect_error(&r, 404, ENOENT, "no endpoint GET");
                api_response_done(&r);
        }
        /* the JSON mapping's types: 64-bit integers as strings, enums by name */
        call(t, API_METHOD_GET, API_ROLE_ADMIN, "/v1/devices?format=json", &r);
        expect_ok(&r, "application/json");
        json_object *o = json_of(&r), *d = json_object_array_get_idx(jget(o, "devices"), 0);
        assert_true(json_object_is_type(jget(d, "sequence"), json_type_string));
        assert_string_equal(jstr(d, "sequence"), "1");
        assert_true(json_object_is_type(jget(d, "enrolled_at"), json_type_string));
        assert_string_equal(jstr(d, "ek_anchor"), "EK_ANCHOR_CERTIFICATE");
        json_object_put(o);
        api_response_done(&r);
        snprintf(path, sizeof(path), "/v1/devices/%s/decision", t->f.id);
        call(t, API_METHOD_GET, API_ROLE_READER, path, &r);
        o = json_of(&r);
        assert_true(json_object_is_type(jget(o, "expires_at"), json_type_string));
        assert_string_equal(jstr(o, "status"), "TRUSTED");
        json_object_put(o);
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/keys?format=json", &r);
        o = json_of(&r);
        json_object *k = json_object_array_get_idx(jget(o, "keys"), 0);
        assert_string_equal(jstr(k, "not_after"), "0");
        const vkey *active = &t->f.d.keys.active;
        unsigned char *der = NULL;
        int len = i2d_PUBKEY(active->pkey, &der);
        assert_true(len > 0);
        expect_b64(jstr(k, "spki"), der, (size_t) len);
        OPENSSL_free(der);
        json_object_put(o);
        api_response_done(&r);
}

/* ---- watch: checked here, streamed by the transport ---- */

static void test_watch_request(void **state) {
        tapi *t = *state;
        api_response r;
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/watch", &r);
        assert_int_equal(r.status, 200);
        assert_true(r.watch);
        assert_false(r.watch_json);
        assert_int_equal(r.watch_since, 0);
        assert_null(r.body);
        assert_string_equal(r.content_type, "application/x-protobuf; delimited=uint32be");
        assert_string_equal(header(&r, "Cache-Control"), "no-store");
        api_response_done(&r);
        /* since= at the head of the stream: a stream that waits for the next verdict; past
         * it (no stream of this store gave that number): 400, not a silent stream */
        attest(t);
        sfx_pump(&t->f);
        uint64_t head = atomic_load(&t->f.d.published);
        assert_true(head >= 1);
        char target[128];
        snprintf(target, sizeof(target), "/v1/watch?format=json&since=%llu", (unsigned long long) head);
        call(t, API_METHOD_GET, API_ROLE_READER, target, &r);
        assert_int_equal(r.status, 200);
        assert_true(r.watch);
        assert_true(r.watch_json);
        assert_true(r.watch_since == head);
        assert_string_equal(r.content_type, "application/x-ndjson");
        api_response_done(&r);
        snprintf(target, sizeof(target), "/v1/watch?since=%llu", (unsigned long long) head + 1);
        call(t, API_METHOD_GET, API_ROLE_READER, target, &r);
        expect_error(&r, 400, ERANGE, "past the head of the stream");
        assert_false(r.watch);
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/watch?format=json&since=9223372036854775807", &r);
        expect_json_error(&r, 400, ERANGE);
        assert_false(r.watch);
        api_response_done(&r);
        /* HEAD: the headers, no stream */
        call(t, API_METHOD_HEAD, API_ROLE_READER, "/v1/watch", &r);
        assert_int_equal(r.status, 200);
        assert_false(r.watch);
        assert_string_equal(r.content_type, "application/x-protobuf; delimited=uint32be");
        api_response_done(&r);
        const char *bad[] = { "abc", "-1", "", "1x", "9223372036854775808", "99999999999999999999" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(target, sizeof(target), "/v1/watch?since=%s", bad[i]);
                call(t, API_METHOD_GET, API_ROLE_READER, target, &r);
                expect_error(&r, 400, EINVAL, "since");
                assert_false(r.watch);
                api_response_done(&r);
        }
        call(t, API_METHOD_POST, API_ROLE_READER, "/v1/watch", &r);
        expect_error(&r, 405, EINVAL, NULL);
        api_response_done(&r);
        call(t, API_METHOD_GET, API_ROLE_NONE, "/v1/watch", &r);
        expect_error(&r, 403, EACCES, NULL);
        assert_false(r.watch);
        api_response_done(&r);
        /* all watcher slots taken */
        atomic_store(&t->a->n_watchers, API_MAX_WATCHERS);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/watch?format=json", &r);
        expect_json_error(&r, 503, EBUSY);
        assert_false(r.watch);
        api_response_done(&r);
        atomic_store(&t->a->n_watchers, 0);
}

/* ---- the decision for enforcement points ---- */

static void expect_decision(tapi *t, const api_response *r, bool allow, const char *reason) {
        assert_int_equal(r->status, allow ? 200 : 403);
        assert_string_equal(r->content_type, "application/json");
        assert_string_equal(header(r, "X-Vouch-Decision"), allow ? "allow" : "deny");
        assert_string_equal(header(r, "X-Vouch-Reason"), reason);
        json_object *j = json_of(r);
        assert_string_equal(jstr(j, "decision"), allow ? "allow" : "deny");
        assert_string_equal(jstr(j, "reason"), reason);
        json_object_put(j);
}

static void decide(tapi *t, const char *id, bool allow, const char *reason) {
        char path[160];
        api_response r;
        snprintf(path, sizeof(path), "/v1/devices/%s/decision", id);
        call(t, API_METHOD_GET, API_ROLE_READER, path, &r);
        expect_decision(t, &r, allow, reason);
        api_response_done(&r);
}

static void test_decision(void **state) {
        tapi *t = *state;
        api_response r;
        char spiffe[160];
        /* unknown, malformed, not named, never attested: deny (never a 404 an enforcement
         * point might not map to deny) */
        decide(t, ID_F, false, "unknown-device");
        decide(t, "0000", false, "bad-device-id");
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/decision", &r);
        expect_decision(t, &r, false, "no-device");
        api_response_done(&r);
        decide(t, t->f.id, false, "unknown");
        attest(t);
        decide(t, t->f.id, true, "trusted");
        /* the device named by the proxy: its id, or its SPIFFE ID */
        call_device_header(t, "/v1/decision", t->f.id, &r);
        expect_decision(t, &r, true, "trusted");
        api_response_done(&r);
        snprintf(spiffe, sizeof(spiffe), "spiffe://example.org/device/%s", t->f.id);
        call_device_header(t, "/v1/decision", spiffe, &r);
        expect_decision(t, &r, true, "trusted");
        api_response_done(&r);
        call_device_header(t, "/v1/decision", "spiffe://example.org/device/", &r);
        expect_decision(t, &r, false, "bad-device-id");
        api_response_done(&r);
        /* a reader may ask; no role may not; only GET */
        snprintf(spiffe, sizeof(spiffe), "/v1/devices/%s/decision", t->f.id);
        call(t, API_METHOD_GET, API_ROLE_NONE, spiffe, &r);
        assert_int_equal(r.status, 403);
        assert_null(header(&r, "X-Vouch-Decision"));
        api_response_done(&r);
        call(t, API_METHOD_POST, API_ROLE_ADMIN, spiffe, &r);
        assert_int_equal(r.status, 405);
        api_response_done(&r);
        /* expired: deny */
        vclock_fake_advance(3 * 60 + 1);
        decide(t, t->f.id, false, "stale");
        sfx_pump(&t->f);
}

static void test_decision_revoked(void **state) {
        tapi *t = *state;
        api_response r;
        char path[160];
        attest(t);
        snprintf(path, sizeof(path), "/v1/devices/%s/revoke", t->f.id);
        call(t, API_METHOD_POST, API_ROLE_ADMIN, path, &r);
        assert_int_equal(r.status, 200);
        api_response_done(&r);
        decide(t, t->f.id, false, "revoked");
        sfx_pump(&t->f);
}

/* A device that was UNTRUSTED and stopped attesting stays UNTRUSTED, with its findings (not
 * replaced by STALE): a filter on UNTRUSTED still finds it, and enforcement still denies it
 * for that reason. */
static void test_untrusted_stays_visible(void **state) {
        tapi *t = *state;
        api_response r;
        fconn *c;
        attest(t);
        lb_event_fill(&t->f.b, 4, EV_EFI_BOOT_SERVICES_APPLICATION, 0x66, "rogue", 5);
        struct session *s = sfx_connect(&t->f, &c);
        assert_int_equal(sfx_attest(&t->f, s, c), VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        session_event(s, TCONN_EOF, "");
        decide(t, t->f.id, false, "untrusted");
        vclock_fake_advance(3 * 60 + 1);
        verdict_sweep(&t->f.d);
        sfx_pump(&t->f);
        assert_int_equal(verdict_status(t, t->f.id), VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        vs_verdict v;
        assert_int_equal(vs_verdict_latest(t->f.d.store, t->f.id, &v), 0);
        assert_int_equal(v.status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        vs_verdict_done(&v);
        call(t, API_METHOD_GET, API_ROLE_READER, "/v1/verdicts?status=UNTRUSTED", &r);
        Vouch__V1__VerdictPage *p = vouch__v1__verdict_page__unpack(NULL, r.body_len, r.body);
        assert_non_null(p);
        assert_int_equal(p->n_verdicts, 1);
        vouch__v1__verdict_page__free_unpacked(p, NULL);
        api_response_done(&r);
        decide(t, t->f.id, false, "untrusted");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_decision, setup, teardown),
                cmocka_unit_test_setup_teardown(test_decision_revoked, setup, teardown),
                cmocka_unit_test_setup_teardown(test_untrusted_stays_visible, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verdict_trusted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verdict_unknown_before_attesting, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verdict_of_no_device, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expired_verdict_is_stale, setup, teardown),
                cmocka_unit_test_setup_teardown(test_device_list_pages, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verdict_list_filter_and_pages, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jwks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_roles, setup, teardown),
                cmocka_unit_test_setup_teardown(test_build_info, setup, teardown),
                cmocka_unit_test_setup_teardown(test_revoke_and_approve, setup, teardown),
                cmocka_unit_test_setup_teardown(test_golden_assignment, setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_failure_leaves_device_unchanged, setup, teardown),
                cmocka_unit_test_setup_teardown(test_healthz_store_lost, setup, teardown),
                cmocka_unit_test_setup_teardown(test_malformed_requests, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch_request, setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_details, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
