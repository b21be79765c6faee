/* SPDX-License-Identifier: Apache-2.0 */
/* The policy-engine API (docs/API.md): HTTPS with mutual TLS on its own event loop
 * thread (libevent evhttp over bufferevent_openssl); protobuf bodies, JSON on request.
 * The same thread sweeps for expired verdicts (STALE) once a second, and streams
 * committed verdicts to watchers in global sequence order. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "vouchd.h"
#include "admin.h"
#include "api.h"
#include "tls.h"

#define API_MAX_BODY (64u << 10)
#define API_MAX_WATCHERS 1024
#define API_PAGE_DEFAULT 100
#define API_PAGE_MAX 1000
#define WATCH_BATCH 256
#define WATCH_HIGH_WATER (1u << 20)

typedef enum role { ROLE_NONE = 0, ROLE_READER = 1, ROLE_ADMIN = 2 } role;
typedef enum fmt { FMT_PB = 0, FMT_JSON, FMT_EAR, FMT_PEM } fmt;

typedef struct watcher {
        struct api *a;
        struct evhttp_request *req;
        struct evhttp_connection *conn;
        uint64_t last;                  /* global sequence sent last */
        bool json;
        bool draining;                  /* waiting for the output to drain */
        struct watcher *prev, *next;
} watcher;

struct api {
        vouchd *d;
        struct event_base *base;
        struct evhttp *http;
        SSL_CTX *ctx;
        pthread_t thread;
        bool started;
        struct event *wake, *sweep;
        watcher *watchers;
        atomic_size_t n_watchers;       /* changed on the API thread, read by api_notify too */
        bool lost_logged;               /* the store's loss (vs_lost) is logged once */
        atomic_ullong requests, refused;
        uint64_t store_failures_logged; /* the sweep's: store failures already in the log */
        /* connections (API thread only): at most max_conns; past it, or when accept()
         * fails, the listener pauses (connections wait in the kernel's backlog) */
        struct evconnlistener *listener;
        unsigned n_conns, max_conns;
        bool paused, stopping;
        time_t full_logged;
};

/* ---- replies ---- */

static const char *status_name(int s) {
        switch (s) {
        case VOUCH__V1__TRUST_STATUS__TRUSTED: return "TRUSTED";
        case VOUCH__V1__TRUST_STATUS__UNTRUSTED: return "UNTRUSTED";
        case VOUCH__V1__TRUST_STATUS__STALE: return "STALE";
        case VOUCH__V1__TRUST_STATUS__UNKNOWN: return "UNKNOWN";
        default: return "UNSPECIFIED";
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

static json_object *hex_json(const uint8_t *p, size_t n) {
        char *s = malloc(2 * n + 1);
        if (!s)
                return NULL;
        vc_hex(p, n, s);
        json_object *o = json_object_new_string(s);
        free(s);
        return o;
}

static const char *anchor_name(int a) {
        return a == VOUCH__V1__EK_ANCHOR__EK_ANCHOR_KEY ? "KEY" : "CERTIFICATE";
}

static json_object *verdict_json(const Vouch__V1__Verdict *v) {
        json_object *o = json_object_new_object(), *fs = json_object_new_array();
        json_object_object_add(o, "device_id", json_object_new_string(v->device_id ? v->device_id : ""));
        json_object_object_add(o, "status", json_object_new_string(status_name(v->status)));
        for (size_t i = 0; i < v->n_findings; i++) {
                const Vouch__V1__Finding *f = v->findings[i];
                json_object *fo = json_object_new_object();
                json_object_object_add(fo, "rule", json_object_new_string(f->rule ? f->rule : ""));
                json_object_object_add(fo, "pcr", json_object_new_int(f->pcr));
                json_object_object_add(fo, "event", json_object_new_int64(f->event));
                json_object_object_add(fo, "event_type", json_object_new_string(f->event_type ? f->event_type : ""));
                json_object_object_add(fo, "expected", json_object_new_string(f->expected ? f->expected : ""));
                json_object_object_add(fo, "actual", json_object_new_string(f->actual ? f->actual : ""));
                json_object_object_add(fo, "explanation", json_object_new_string(f->explanation ? f->explanation : ""));
                json_object_array_add(fs, fo);
        }
        json_object_object_add(o, "findings", fs);
        json_object_object_add(o, "issued_at", json_object_new_int64(v->issued_at));
        json_object_object_add(o, "expires_at", json_object_new_int64(v->expires_at));
        json_object_object_add(o, "nonce", hex_json(v->nonce.data, v->nonce.len));
        json_object_object_add(o, "golden_name", json_object_new_string(v->golden_name ? v->golden_name : ""));
        json_object_object_add(o, "golden_version", json_object_new_int64(v->golden_version));
        json_object_object_add(o, "boot_count", json_object_new_int64(v->boot_count));
        json_object_object_add(o, "ak_name", hex_json(v->ak_name.data, v->ak_name.len));
        json_object_object_add(o, "sequence", json_object_new_uint64(v->sequence));
        json_object_object_add(o, "verifier_id", json_object_new_string(v->verifier_id ? v->verifier_id : ""));
        json_object_object_add(o, "global_sequence", json_object_new_uint64(v->global_sequence));
        json_object_object_add(o, "ek_anchor", json_object_new_string(anchor_name(v->ek_anchor)));
        return o;
}

/* A SignedVerdict as JSON: the decoded verdict next to the signed bytes. */
static json_object *signed_json(const uint8_t *record, size_t len) {
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, len, record);
        Vouch__V1__Verdict *v = sv ? vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data) : NULL;
        json_object *o = NULL;
        if (v) {
                o = json_object_new_object();
                json_object_object_add(o, "verdict", verdict_json(v));
                json_object_object_add(o, "verdict_bytes", hex_json(sv->verdict.data, sv->verdict.len));
                json_object_object_add(o, "signature", hex_json(sv->signature.data, sv->signature.len));
                json_object_object_add(o, "key_id", json_object_new_string(sv->key_id ? sv->key_id : ""));
        }
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        return o;
}

static void reply(struct evhttp_request *req, int code, const char *type, const void *body, size_t len) {
        struct evbuffer *b = evbuffer_new();
        if (!b) {
                evhttp_send_error(req, 503, "out of memory");
                return;
        }
        evbuffer_add(b, body, len);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
        evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
        evbuffer_free(b);
}

static void reply_json(struct evhttp_request *req, int code, json_object *o) {
        const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)
                          : NULL;
        if (!s)
                evhttp_send_error(req, 503, "out of memory");
        else
                reply(req, code, "application/json", s, strlen(s));
        json_object_put(o);
}

static void reply_error(struct evhttp_request *req, fmt f, int code, uint32_t err, const char *fmtstr, ...)
        __attribute__((format(printf, 5, 6)));
static void reply_error(struct evhttp_request *req, fmt f, int code, uint32_t err, const char *fmtstr, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmtstr);
        vsnprintf(msg, sizeof(msg), fmtstr, ap);
        va_end(ap);
        if (f == FMT_JSON) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "code", json_object_new_int((int32_t) err));
                json_object_object_add(o, "message", json_object_new_string(msg));
                reply_json(req, code, o);
                return;
        }
        Vouch__V1__Error e = VOUCH__V1__ERROR__INIT;
        e.code = err;
        e.message = msg;
        uint8_t buf[600];
        size_t n = vouch__v1__error__get_packed_size(&e);
        if (n > sizeof(buf)) {
                evhttp_send_error(req, code, msg);
                return;
        }
        vouch__v1__error__pack(&e, buf);
        reply(req, code, "application/x-protobuf", buf, n);
}

static void reply_pb(struct evhttp_request *req, const ProtobufCMessage *m) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf) {
                evhttp_send_error(req, 503, "out of memory");
                return;
        }
        protobuf_c_message_pack(m, buf);
        reply(req, 200, "application/x-protobuf", buf, n);
        free(buf);
}

/* ---- who is asking ---- */

static role role_of(vouchd *d, struct evhttp_request *req, char *cn, size_t cn_len) {
        struct evhttp_connection *conn = evhttp_request_get_connection(req);
        struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
        SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
        X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
        snprintf(cn, cn_len, "(no certificate)");
        if (!peer || SSL_get_verify_result(ssl) != X509_V_OK)
                return ROLE_NONE;
        /* exactly one CN, as UTF-8, taken whole: a second CN, an embedded NUL (which a
         * CA's name checks may pass: "ops\0.partner.example") or a name too long for cn
         * would otherwise be read as a shorter name */
        const X509_NAME *subject = X509_get_subject_name(peer);
        int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
        if (at < 0) {
                snprintf(cn, cn_len, "(no CN)");
                return ROLE_NONE;
        }
        if (X509_NAME_get_index_by_NID(subject, NID_commonName, at) >= 0) {
                snprintf(cn, cn_len, "(several CNs)");
                return ROLE_NONE;
        }
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
        bool usable = n > 0 && (size_t) n < cn_len && memchr(utf8, '\0', (size_t) n) == NULL;
        if (usable)
                memcpy(cn, utf8, (size_t) n + 1);
        else
                snprintf(cn, cn_len, "%s",
                         n < 0                  ? "(unreadable CN)"
                         : n == 0               ? "(empty CN)"
                         : (size_t) n >= cn_len ? "(CN too long)"
                                                : "(CN with a NUL byte)");
        OPENSSL_free(utf8);
        if (!usable)
                return ROLE_NONE;
        for (size_t i = 0; i < d->cfg.n_api_admins; i++)
                if (strcmp(d->cfg.api_admins[i], cn) == 0)
                        return ROLE_ADMIN;
        for (size_t i = 0; i < d->cfg.n_api_readers; i++)
                if (strcmp(d->cfg.api_readers[i], cn) == 0)
                        return ROLE_READER;
        return ROLE_NONE;
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
        json_object_object_add(j, "enrolled_at", json_object_new_int64(o->enrolled_at));
        json_object_object_add(j, "status", json_object_new_string(status_name(o->status)));
        json_object_object_add(j, "sequence", json_object_new_uint64(o->sequence));
        json_object_object_add(j, "connected", json_object_new_boolean(o->connected));
        json_object_object_add(j, "ek_anchor", json_object_new_string(anchor_name(o->ek_anchor)));
        return j;
}

static void reply_device(vouchd *d, struct evhttp_request *req, fmt f, device *dev) {
        Vouch__V1__DeviceInfo o;
        char golden[129];
        device_info(d, dev, &o, golden, sizeof(golden));
        if (f == FMT_JSON)
                reply_json(req, 200, device_info_json(&o));
        else
                reply_pb(req, &o.base);
}

/* ---- endpoints ---- */

static void get_verdict(struct api *a, struct evhttp_request *req, fmt f, device *dev) {
        uint8_t *rec = NULL;
        size_t len = 0;
        int status;
        if (verdict_current(a->d, dev, &rec, &len, &status) < 0) {
                reply_error(req, f, 503, EIO, "cannot produce the verdict");
                return;
        }
        if (f == FMT_EAR) {
                char *jwt = NULL;
                if (verdict_ear(a->d, rec, len, &jwt) < 0)
                        reply_error(req, FMT_PB, 503, EIO, "cannot produce the EAR token");
                else
                        reply(req, 200, "application/eat+jwt", jwt, strlen(jwt));
                free(jwt);
        } else if (f == FMT_JSON) {
                reply_json(req, 200, signed_json(rec, len));
        } else {
                reply(req, 200, "application/x-protobuf", rec, len);
        }
        free(rec);
}

static int page_args(struct evkeyvalq *q, struct evhttp_request *req, fmt f, size_t *size, const char **token) {
        const char *ps = evhttp_find_header(q, "page_size"), *pt = evhttp_find_header(q, "page_token");
        *size = API_PAGE_DEFAULT;
        *token = NULL;
        if (ps) {
                char *end;
                unsigned long n = strtoul(ps, &end, 10);
                if (*end || !*ps || n < 1 || n > API_PAGE_MAX) {
                        reply_error(req, f, 400, EINVAL, "page_size \"%s\": expected 1-%u", ps, API_PAGE_MAX);
                        return -EINVAL;
                }
                *size = n;
        }
        if (pt && *pt) {
                if (!valid_id(pt)) {
                        reply_error(req, f, 400, EINVAL, "page_token \"%.80s\" is not one this server gave", pt);
                        return -EINVAL;
                }
                *token = pt;
        }
        return 0;
}

static void list_verdicts(struct api *a, struct evhttp_request *req, fmt f, struct evkeyvalq *q) {
        size_t size, n;
        const char *token, *st = evhttp_find_header(q, "status");
        int want = -1;
        if (page_args(q, req, f, &size, &token) < 0)
                return;
        if (st && (want = status_from_name(st)) < 0) {
                reply_error(req, f, 400, EINVAL, "status \"%.40s\": expected TRUSTED, UNTRUSTED, STALE or UNKNOWN", st);
                return;
        }
        device **devs = sorted_devices(a->d, token, &n);
        Vouch__V1__SignedVerdict **out = calloc(size, sizeof(*out));
        uint8_t **recs = calloc(size, sizeof(*recs));
        size_t k = 0, i = 0;
        if (!devs || !out || !recs) {
                reply_error(req, f, 503, ENOMEM, "out of memory");
                goto done;
        }
        for (; i < n && k < size; i++) {
                uint8_t *rec = NULL;
                size_t len = 0;
                int status;
                /* a page never leaves a device out silently: a filter reader could not tell */
                if (verdict_current(a->d, devs[i], &rec, &len, &status) < 0) {
                        reply_error(req, f, 503, EIO, "cannot produce the current verdict of device %s", devs[i]->rec.id);
                        goto done;
                }
                if (want >= 0 && status != want) {
                        free(rec);
                        continue;
                }
                out[k] = vouch__v1__signed_verdict__unpack(NULL, len, rec);
                recs[k] = rec;
                if (!out[k]) {
                        free(rec);
                        recs[k] = NULL;
                        reply_error(req, f, 503, EIO, "the stored verdict of device %s does not decode", devs[i]->rec.id);
                        goto done;
                }
                k++;
        }
        /* a next page only if there are devices left to look at */
        const char *next = i < n && k > 0 ? devs[i - 1]->rec.id : "";
        if (f == FMT_JSON) {
                json_object *o = json_object_new_object(), *arr = json_object_new_array();
                for (size_t j = 0; j < k; j++) {
                        size_t len = vouch__v1__signed_verdict__get_packed_size(out[j]);
                        uint8_t *buf = malloc(len ? len : 1);
                        if (buf) {
                                vouch__v1__signed_verdict__pack(out[j], buf);
                                json_object_array_add(arr, signed_json(buf, len));
                        }
                        free(buf);
                }
                json_object_object_add(o, "verdicts", arr);
                json_object_object_add(o, "next_page_token", json_object_new_string(next));
                reply_json(req, 200, o);
        } else {
                Vouch__V1__VerdictPage p = VOUCH__V1__VERDICT_PAGE__INIT;
                p.verdicts = out;
                p.n_verdicts = k;
                p.next_page_token = (char *) next;
                reply_pb(req, &p.base);
        }
done:
        for (size_t j = 0; out && recs && j < k; j++) {
                vouch__v1__signed_verdict__free_unpacked(out[j], NULL);
                free(recs[j]);
        }
        free(out);
        free(recs);
        free(devs);
}

static void list_devices(struct api *a, struct evhttp_request *req, fmt f, struct evkeyvalq *q) {
        size_t size, n;
        const char *token;
        if (page_args(q, req, f, &size, &token) < 0)
                return;
        device **devs = sorted_devices(a->d, token, &n);
        size_t k = n < size ? n : size;
        Vouch__V1__DeviceInfo *infos = calloc(k ? k : 1, sizeof(*infos));
        Vouch__V1__DeviceInfo **ptrs = calloc(k ? k : 1, sizeof(*ptrs));
        char(*goldens)[129] = calloc(k ? k : 1, sizeof(*goldens));
        if (!devs || !infos || !ptrs || !goldens) {
                reply_error(req, f, 503, ENOMEM, "out of memory");
                goto done;
        }
        for (size_t i = 0; i < k; i++) {
                device_info(a->d, devs[i], &infos[i], goldens[i], sizeof(goldens[i]));
                ptrs[i] = &infos[i];
        }
        const char *next = k < n ? devs[k - 1]->rec.id : "";
        if (f == FMT_JSON) {
                json_object *o = json_object_new_object(), *arr = json_object_new_array();
                for (size_t i = 0; i < k; i++)
                        json_object_array_add(arr, device_info_json(&infos[i]));
                json_object_object_add(o, "devices", arr);
                json_object_object_add(o, "next_page_token", json_object_new_string(next));
                reply_json(req, 200, o);
        } else {
                Vouch__V1__DevicePage p = VOUCH__V1__DEVICE_PAGE__INIT;
                p.devices = ptrs;
                p.n_devices = k;
                p.next_page_token = (char *) next;
                reply_pb(req, &p.base);
        }
done:
        free(devs);
        free(infos);
        free(ptrs);
        free(goldens);
}

static void get_keys(struct api *a, struct evhttp_request *req, fmt f) {
        vouchd *d = a->d;
        pthread_mutex_lock(&d->seq_lock);
        const verdict_keys *k = &d->keys;
        size_t n = 1 + k->n_retired;
        Vouch__V1__VerdictKey keys[1 + VERDICT_MAX_RETIRED], *ptrs[1 + VERDICT_MAX_RETIRED];
        unsigned char *der[1 + VERDICT_MAX_RETIRED] = { 0 };
        BIO *pem = f == FMT_PEM ? BIO_new(BIO_s_mem()) : NULL;
        json_object *jo = f == FMT_JSON ? json_object_new_object() : NULL, *arr = jo ? json_object_new_array() : NULL;
        bool ok = f != FMT_PEM || pem;
        int64_t now = vclock_wall();
        size_t published = 0; /* keys published: a retired one past its end date is not (the sweep drops it within a second) */
        for (size_t i = 0; i < n && ok; i++) {
                const vkey *v = i == 0 ? &k->active : &k->retired[i - 1];
                if (i > 0 && v->not_after <= now)
                        continue;
                int len = i2d_PUBKEY(v->pkey, &der[i]);
                ok = len > 0;
                vouch__v1__verdict_key__init(&keys[i]);
                keys[i].key_id = (char *) v->id;
                keys[i].spki.data = der[i];
                keys[i].spki.len = len > 0 ? (size_t) len : 0;
                keys[i].active = i == 0;
                keys[i].not_after = v->not_after;
                ptrs[published++] = &keys[i];
                if (pem && ok)
                        ok = PEM_write_bio_PUBKEY(pem, v->pkey) == 1;
                if (arr && ok) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "key_id", json_object_new_string(v->id));
                        json_object_object_add(o, "spki", hex_json(der[i], keys[i].spki.len));
                        json_object_object_add(o, "active", json_object_new_boolean(i == 0));
                        json_object_object_add(o, "not_after", json_object_new_int64(v->not_after));
                        json_object_array_add(arr, o);
                }
        }
        pthread_mutex_unlock(&d->seq_lock);
        if (!ok) {
                reply_error(req, f == FMT_JSON ? FMT_JSON : FMT_PB, 503, EIO, "cannot encode the keys");
                json_object_put(jo);
                json_object_put(arr);
        } else if (pem) {
                char *p;
                long len = BIO_get_mem_data(pem, &p);
                reply(req, 200, "application/x-pem-file", p, (size_t) len);
        } else if (jo) {
                json_object_object_add(jo, "keys", arr);
                reply_json(req, 200, jo);
        } else {
                Vouch__V1__VerdictKeys m = VOUCH__V1__VERDICT_KEYS__INIT;
                m.keys = ptrs;
                m.n_keys = published;
                reply_pb(req, &m.base);
        }
        BIO_free(pem);
        for (size_t i = 0; i < n; i++)
                OPENSSL_free(der[i]);
}

static void get_metrics(struct api *a, struct evhttp_request *req) {
        vouchd *d = a->d;
        struct evbuffer *b = evbuffer_new();
        unsigned long long hits = 0, misses = 0, cum = 0;
        if (!b) {
                evhttp_send_error(req, 503, "out of memory");
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
        evbuffer_add_printf(b,
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
        evbuffer_add_printf(b, "# HELP vouch_attestation_latency_seconds From the challenge to the stored verdict.\n"
                               "# TYPE vouch_attestation_latency_seconds histogram\n");
        for (size_t i = 0; i < LATENCY_BUCKETS; i++) {
                cum += atomic_load(&d->latency_count[i]);
                evbuffer_add_printf(b, "vouch_attestation_latency_seconds_bucket{le=\"%g\"} %llu\n", latency_bounds[i], cum);
        }
        cum += atomic_load(&d->latency_count[LATENCY_BUCKETS]);
        evbuffer_add_printf(b,
                            "vouch_attestation_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
                            "vouch_attestation_latency_seconds_sum %.6f\n"
                            "vouch_attestation_latency_seconds_count %llu\n",
                            cum, atomic_load(&d->latency_sum_us) / 1e6, cum);
        evbuffer_add_printf(b,
                            "# HELP vouch_connected_agents Agent connections open now.\n"
                            "# TYPE vouch_connected_agents gauge\n"
                            "vouch_connected_agents %u\n"
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
                            atomic_load(&d->connections), devices, hits, misses, vs_queue_depth(d->store),
                            (unsigned long long) st.commits, (unsigned long long) st.writes, st.commit_us / 1e6,
                            (unsigned long long) st.failures, vs_lost(d->store, NULL, 0) ? 1 : 0,
                            atomic_load(&a->n_watchers),
                            (unsigned long long) atomic_load(&a->refused));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4");
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
}

/* ---- admin ---- */

static void admin(struct api *a, struct evhttp_request *req, fmt f, device *dev, const char *action, const char *who) {
        vouchd *d = a->d;
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        if (strcmp(action, "approve") == 0 || strcmp(action, "revoke") == 0) {
                if (m != EVHTTP_REQ_POST) {
                        reply_error(req, f, 405, EINVAL, "%s needs POST", action);
                        return;
                }
                bool revoke = action[0] == 'r';
                if ((revoke ? device_revoke(d, dev, who) : device_approve(d, dev, who)) < 0) {
                        reply_error(req, f, 503, EIO, "the store could not record it; the device is unchanged");
                        return;
                }
                reply_device(d, req, f, dev);
                return;
        }
        if (strcmp(action, "golden") == 0) {
                if (m != EVHTTP_REQ_PUT) {
                        reply_error(req, f, 405, EINVAL, "golden needs PUT");
                        return;
                }
                struct evbuffer *in = evhttp_request_get_input_buffer(req);
                size_t len = evbuffer_get_length(in);
                char name[129];
                if (len > API_MAX_BODY) {
                        reply_error(req, f, 400, E2BIG, "body of %zu bytes, at most %u", len, API_MAX_BODY);
                        return;
                }
                uint8_t *body = malloc(len + 1);
                if (!body) {
                        reply_error(req, f, 503, ENOMEM, "out of memory");
                        return;
                }
                evbuffer_copyout(in, body, len);
                body[len] = 0;
                int ok = 0;
                if (f == FMT_JSON) {
                        json_object *o = json_tokener_parse((const char *) body), *g = NULL;
                        if (o && json_object_object_get_ex(o, "golden", &g) && json_object_is_type(g, json_type_string) &&
                            json_object_get_string_len(g) < (int) sizeof(name)) {
                                snprintf(name, sizeof(name), "%s", json_object_get_string(g));
                                ok = 1;
                        }
                        json_object_put(o);
                } else {
                        Vouch__V1__GoldenAssignment *ga = vouch__v1__golden_assignment__unpack(NULL, len, body);
                        if (ga && strlen(ga->golden) < sizeof(name)) {
                                snprintf(name, sizeof(name), "%s", ga->golden);
                                ok = 1;
                        }
                        vouch__v1__golden_assignment__free_unpacked(ga, NULL);
                }
                free(body);
                if (!ok) {
                        reply_error(req, f, 400, EBADMSG, "the body is not a GoldenAssignment%s",
                                    f == FMT_JSON ? " ({\"golden\": \"NAME\"})" : "");
                        return;
                }
                int r = device_assign_golden(d, dev, name, who);
                if (r == -ENOENT) {
                        reply_error(req, f, 404, ENOENT, "no golden set \"%s\" is loaded", name);
                        return;
                }
                if (r < 0) {
                        reply_error(req, f, 503, EIO, "the store could not record it; the device is unchanged");
                        return;
                }
                reply_device(d, req, f, dev);
                return;
        }
        reply_error(req, f, 404, ENOENT, "no such endpoint");
}

/* ---- watch ---- */

static void watch_pump(watcher *w);

static void watch_drained(struct evhttp_connection *conn, void *arg) {
        watcher *w = arg;
        w->draining = false;
        watch_pump(w);
}

/* The stream's last words are out: the connection is shut down under evhttp, which then
 * closes it as a failed one (watch_closed frees the watcher). The client sees the stream
 * end without its final chunk: an error, never a clean end it could take for "no more". */
static void watch_abort_cb(struct evhttp_connection *conn, void *arg) {
        evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(conn));
        if (fd >= 0)
                shutdown(fd, SHUT_RDWR);
}

/* The store could not be read: the stream ends with an error (JSON: a last line saying
 * so), never a short answer and never a silent hang. */
static void watch_fail(watcher *w, int error) {
        char why[200];
        vs_read_error(w->a->d->store, why, sizeof(why));
        vlog(LOG_ERR, "API: a watch stream (after global sequence %llu) ends: the store cannot be read: %s",
             (unsigned long long) w->last, why);
        w->draining = true; /* no more pumping */
        struct evbuffer *b = evbuffer_new();
        if (b && w->json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "error", json_object_new_int(-error));
                json_object_object_add(o, "message", json_object_new_string("the store cannot be read; reconnect with since="));
                json_object_object_add(o, "since", json_object_new_uint64(w->last));
                evbuffer_add_printf(b, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                json_object_put(o);
        }
        if (b && evbuffer_get_length(b) > 0)
                evhttp_send_reply_chunk_with_cb(w->req, b, watch_abort_cb, w);
        else
                watch_abort_cb(w->conn, w);
        evbuffer_free(b);
}

static void watch_pump(watcher *w) {
        vouchd *d = w->a->d;
        vs_verdict batch[WATCH_BATCH];
        if (w->draining)
                return;
        for (;;) {
                int n = vs_verdict_since(d->store, w->last, batch, WATCH_BATCH);
                if (n < 0) {
                        watch_fail(w, n);
                        return;
                }
                /* not past what GET shows: the writer may have committed verdicts whose
                 * callbacks (which make them the latest) have not run yet */
                uint64_t published = atomic_load(&d->published);
                int keep = 0;
                while (keep < n && batch[keep].global_sequence <= published)
                        keep++;
                for (int i = keep; i < n; i++)
                        vs_verdict_done(&batch[i]);
                n = n < 0 ? n : keep;
                if (n <= 0)
                        return;
                struct evbuffer *b = evbuffer_new();
                for (int i = 0; b && i < n; i++) {
                        if (w->json) {
                                json_object *o = signed_json(batch[i].record, batch[i].record_len);
                                const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
                                if (s)
                                        evbuffer_add_printf(b, "%s\n", s);
                                json_object_put(o);
                        } else {
                                uint8_t hdr[4] = { (uint8_t) (batch[i].record_len >> 24), (uint8_t) (batch[i].record_len >> 16),
                                                   (uint8_t) (batch[i].record_len >> 8), (uint8_t) batch[i].record_len };
                                evbuffer_add(b, hdr, 4);
                                evbuffer_add(b, batch[i].record, batch[i].record_len);
                        }
                        w->last = batch[i].global_sequence;
                }
                for (int i = 0; i < n; i++)
                        vs_verdict_done(&batch[i]);
                if (!b)
                        return;
                struct bufferevent *bev = evhttp_connection_get_bufferevent(w->conn);
                bool full = evbuffer_get_length(bufferevent_get_output(bev)) + evbuffer_get_length(b) > WATCH_HIGH_WATER;
                if (full) {
                        w->draining = true;
                        evhttp_send_reply_chunk_with_cb(w->req, b, watch_drained, w);
                } else {
                        evhttp_send_reply_chunk(w->req, b);
                }
                evbuffer_free(b);
                if (full || n < WATCH_BATCH)
                        return;
        }
}

/* The stream's connection is being freed. When the peer closed it, a write timed out or
 * watch_fail shut it down, evhttp has already detached the unfinished request from it and
 * left it to us (libevent http.c, evhttp_connection_incoming_fail: "remove it so that it
 * will not be freed"); a request still on its connection (evhttp_free at exit) is freed
 * with it. */
static void watch_closed(struct evhttp_connection *conn, void *arg) {
        watcher *w = arg;
        struct api *a = w->a;
        if (!evhttp_request_get_connection(w->req))
                evhttp_request_free(w->req);
        if (w->prev)
                w->prev->next = w->next;
        else
                a->watchers = w->next;
        if (w->next)
                w->next->prev = w->prev;
        a->n_watchers--;
        free(w);
}

static void start_watch(struct api *a, struct evhttp_request *req, fmt f, struct evkeyvalq *q) {
        const char *since = evhttp_find_header(q, "since");
        uint64_t from = 0;
        if (since) {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(since, &end, 10);
                /* global sequence numbers are SQLite integers: above INT64_MAX is none of them
                 * (and would wrap to a negative "since" that replays the whole stream) */
                if (errno || *end || !*since || since[0] == '-' || n > INT64_MAX) {
                        reply_error(req, f, 400, EINVAL,
                                    "since \"%.40s\": expected a global sequence number (0 to 9223372036854775807)", since);
                        return;
                }
                from = n;
        }
        if (a->n_watchers >= API_MAX_WATCHERS) {
                reply_error(req, f, 503, EBUSY, "%u watch streams are open already", API_MAX_WATCHERS);
                return;
        }
        watcher *w = calloc(1, sizeof(*w));
        if (!w) {
                reply_error(req, f, 503, ENOMEM, "out of memory");
                return;
        }
        w->a = a;
        w->req = req;
        w->conn = evhttp_request_get_connection(req);
        w->last = from;
        w->json = f == FMT_JSON;
        w->next = a->watchers;
        if (a->watchers)
                a->watchers->prev = w;
        a->watchers = w;
        /* counted before the first pump reads the store: a commit api_notify skipped (no
         * watcher yet) is one that pump finds */
        a->n_watchers++;
        evhttp_connection_set_closecb(w->conn, watch_closed, w);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          w->json ? "application/x-ndjson" : "application/x-protobuf; delimited=uint32be");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
        evhttp_send_reply_start(req, 200, "OK");
        /* a stream: no read timeout (the client only listens); a client that stops reading
         * is dropped when a write has waited this long */
        struct timeval wt = { 60, 0 };
        bufferevent_set_timeouts(evhttp_connection_get_bufferevent(w->conn), NULL, &wt);
        watch_pump(w);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg) {
        struct api *a = arg;
        for (watcher *w = a->watchers, *next; w; w = next) {
                next = w->next;
                watch_pump(w);
        }
}

/* Failed store transactions, logged at most once a second with SQLite's reason (their
 * agents' connections are closed with a bare errno, per attestation). */
static void log_store_failures(struct api *a) {
        vs_stats st;
        char why[400];
        if (!a->lost_logged && vs_lost(a->d->store, why, sizeof(why))) {
                vlog(LOG_ERR, "store: %s. Stop vouchd, restore the store from a backup (or start with --fresh-store "
                              "to begin anew), and restart it (docs/failure-behaviour.md)", why);
                a->lost_logged = true;
        }
        vs_get_stats(a->d->store, &st);
        if (st.failures == a->store_failures_logged)
                return;
        vlog(LOG_ERR, "store: %llu transaction(s) failed since the last report, their writes not stored (%llu in all); "
                      "the last failure: %s",
             (unsigned long long) (st.failures - a->store_failures_logged), (unsigned long long) st.failures,
             st.last_error);
        a->store_failures_logged = st.failures;
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg) {
        struct api *a = arg;
        verdict_sweep(a->d);
        log_store_failures(a);
}

/* After each commit (the store's writer thread, through d->on_committed): wakes the API
 * thread only when a watch stream is open, not once a batch for nobody. */
static void api_notify(vouchd *d) {
        if (d->api && d->api->wake && atomic_load(&d->api->n_watchers) > 0)
                event_active(d->api->wake, 0, 0);
}

/* ---- routing ---- */

static void route(struct evhttp_request *req, void *arg) {
        struct api *a = arg;
        vouchd *d = a->d;
        char cn[128], path[512];
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        const char *p = uri ? evhttp_uri_get_path(uri) : NULL, *qs = uri ? evhttp_uri_get_query(uri) : NULL;
        struct evkeyvalq q = { 0 };
        fmt f = FMT_PB;
        atomic_fetch_add(&a->requests, 1);
        TAILQ_INIT(&q);
        if (qs && evhttp_parse_query_str(qs, &q) < 0) {
                reply_error(req, f, 400, EINVAL, "malformed query string");
                return;
        }
        const char *fs = evhttp_find_header(&q, "format");
        if (fs) {
                if (!strcmp(fs, "json"))
                        f = FMT_JSON;
                else if (!strcmp(fs, "ear"))
                        f = FMT_EAR;
                else if (!strcmp(fs, "pem"))
                        f = FMT_PEM;
                else if (strcmp(fs, "protobuf") != 0) {
                        reply_error(req, FMT_PB, 400, EINVAL, "format \"%.40s\": expected json, ear, pem or protobuf", fs);
                        goto out;
                }
        }
        fmt ef = f == FMT_JSON ? FMT_JSON : FMT_PB; /* errors */
        if (!p || strlen(p) >= sizeof(path)) {
                reply_error(req, ef, 400, EINVAL, "no or too long a path");
                goto out;
        }
        snprintf(path, sizeof(path), "%s", p);
        role r = role_of(d, req, cn, sizeof(cn));
        if (r == ROLE_NONE) {
                atomic_fetch_add(&a->refused, 1);
                vlog(LOG_WARN, "API: refused %s: client \"%s\" has no role", path, cn);
                reply_error(req, ef, 403, EACCES, "client \"%s\" has no role on this verifier", cn);
                goto out;
        }
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        bool get = m == EVHTTP_REQ_GET;
        char *parts[6];
        size_t np = 0;
        for (char *save = NULL, *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save))
                if (np < 6)
                        parts[np++] = t;
                else
                        np = 7;
        bool admin_only = (np == 2 && !strcmp(parts[0], "v1") && !strcmp(parts[1], "devices")) ||
                          (np == 4 && !strcmp(parts[0], "v1") && !strcmp(parts[1], "devices") && strcmp(parts[3], "verdict"));
        if (admin_only && r != ROLE_ADMIN) {
                atomic_fetch_add(&a->refused, 1);
                vlog(LOG_WARN, "API: refused %s %s: client \"%s\" is a reader, the endpoint needs admin",
                     get ? "GET" : "non-GET", p, cn);
                reply_error(req, ef, 403, EACCES, "client \"%s\" is a reader; %s needs the admin role", cn, p);
                goto out;
        }
        if (np == 1 && !strcmp(parts[0], "healthz") && get) {
                reply(req, 200, "text/plain", "ok\n", 3);
        } else if (np == 1 && !strcmp(parts[0], "metrics") && get) {
                get_metrics(a, req);
        } else if (np == 2 && !strcmp(parts[0], "v1") && !strcmp(parts[1], "keys") && get) {
                get_keys(a, req, f);
        } else if (np == 2 && !strcmp(parts[0], "v1") && !strcmp(parts[1], "verdicts") && get) {
                list_verdicts(a, req, ef, &q);
        } else if (np == 2 && !strcmp(parts[0], "v1") && !strcmp(parts[1], "watch") && get) {
                start_watch(a, req, ef, &q);
        } else if (np == 2 && !strcmp(parts[0], "v1") && !strcmp(parts[1], "devices") && get) {
                list_devices(a, req, ef, &q);
        } else if (np == 4 && !strcmp(parts[0], "v1") && !strcmp(parts[1], "devices")) {
                device *dev = valid_id(parts[2]) ? find_device(d, parts[2]) : NULL;
                if (!dev)
                        reply_error(req, ef, 404, ENOENT, "no device \"%.80s\"", parts[2]);
                else if (!strcmp(parts[3], "verdict") && get)
                        get_verdict(a, req, f, dev);
                else if (!strcmp(parts[3], "verdict"))
                        reply_error(req, ef, 405, EINVAL, "verdict needs GET");
                else
                        admin(a, req, ef, dev, parts[3], cn);
        } else {
                reply_error(req, ef, 404, ENOENT, "no endpoint %s %s", get ? "GET" : "(method)", p);
        }
out:
        evhttp_clear_headers(&q);
}

/* ---- TLS ---- */

/* An SSL ex_data slot: set once the connection's handshake completed. */
static int handshaken_idx = -1;

static void tls_info(const SSL *ssl, int where, int ret) {
        if (where & SSL_CB_HANDSHAKE_DONE) {
                SSL_set_ex_data((SSL *) ssl, handshaken_idx, (void *) 1);
                return;
        }
        /* a refused handshake (no certificate, another CA) is logged once, by its alert. A
         * fatal alert after a completed handshake is not a refusal: a client that closes
         * its keep-alive connection without close_notify (Python's http.client does) puts
         * the connection in an error state and OpenSSL answers with an alert; that is an
         * ordinary end of a connection. */
        if ((where & SSL_CB_ALERT) && (where & SSL_CB_WRITE) && SSL_alert_type_string(ret)[0] == 'F' &&
            !SSL_get_ex_data(ssl, handshaken_idx))
                vlog(LOG_WARN, "API: TLS handshake refused: %s", SSL_alert_desc_string_long(ret));
}

/* One API connection, hung on its SSL (freed with it): counted against max_conns, and
 * given API_HANDSHAKE_SECONDS to complete its handshake in all (evhttp's timeout starts
 * again with every byte, so a client trickling its handshake would hold the slot). */
#define API_HANDSHAKE_SECONDS 10
typedef struct api_conn {
        struct api *a;
        SSL *ssl;
        struct event *deadline;
} api_conn;
static int conn_idx = -1;

static void listener_resume(evutil_socket_t fd, short what, void *arg) {
        struct api *a = arg;
        if (a->paused && !a->stopping && a->listener && a->n_conns < a->max_conns) {
                a->paused = false;
                evconnlistener_enable(a->listener);
        }
}

static void conn_gone(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
        api_conn *c = ptr;
        if (!c)
                return;
        struct api *a = c->a;
        if (c->deadline)
                event_free(c->deadline);
        free(c);
        a->n_conns--;
        listener_resume(-1, 0, a);
}

static void handshake_deadline(evutil_socket_t fd, short what, void *arg) {
        api_conn *c = arg;
        if (SSL_get_ex_data(c->ssl, handshaken_idx))
                return;
        /* the read side ends: evhttp sees the end of the connection and frees it */
        int sfd = SSL_get_fd(c->ssl);
        if (sfd >= 0)
                shutdown(sfd, SHUT_RDWR);
}

static struct bufferevent *bev_cb(struct event_base *base, void *arg) {
        struct api *a = arg;
        SSL *ssl = SSL_new(a->ctx);
        api_conn *c = calloc(1, sizeof(*c));
        if (!ssl || !c) {
                SSL_free(ssl);
                free(c);
                return NULL;
        }
        c->a = a;
        c->ssl = ssl;
        c->deadline = evtimer_new(base, handshake_deadline, c);
        struct timeval tv = { API_HANDSHAKE_SECONDS, 0 };
        if (!c->deadline || SSL_set_ex_data(ssl, conn_idx, c) != 1) {
                if (c->deadline)
                        event_free(c->deadline);
                free(c);
                SSL_free(ssl);
                return NULL;
        }
        a->n_conns++; /* conn_gone counts it out, whatever becomes of ssl */
        evtimer_add(c->deadline, &tv);
        if (a->n_conns >= a->max_conns && a->listener && !a->paused) {
                a->paused = true;
                evconnlistener_disable(a->listener);
                time_t now = time(NULL);
                if (now != a->full_logged) {
                        a->full_logged = now;
                        vlog(LOG_WARN, "API: %u connections open (the limit): new ones wait until one closes", a->n_conns);
                }
        }
        struct bufferevent *bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                                 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!bev)
                SSL_free(ssl);
        return bev;
}

/* accept() failed (out of file descriptors, say): pause for 100 ms rather than spin. The
 * listener is evhttp's, its argument evhttp's own: the one API is found here. */
static struct api *listening_api;
static void api_accept_error(struct evconnlistener *lis, void *arg) {
        struct api *a = listening_api;
        int e = EVUTIL_SOCKET_ERROR();
        time_t now = time(NULL);
        if (now != a->full_logged) {
                a->full_logged = now;
                vlog(LOG_WARN, "API: accept: %s; pausing new connections for 100 ms (%u open)",
                     evutil_socket_error_to_string(e), a->n_conns);
        }
        a->paused = true;
        evconnlistener_disable(lis);
        struct timeval tv = { 0, 100000 };
        event_base_once(a->base, -1, EV_TIMEOUT, listener_resume, a, &tv);
}

static void *api_main(void *arg) {
        struct api *a = arg;
        event_base_dispatch(a->base);
        return NULL;
}

static int parse_hostport(const char *s, char *host, size_t hlen, unsigned short *port) {
        const char *colon = strrchr(s, ':');
        if (!colon || colon == s || (size_t) (colon - s) >= hlen)
                return -EINVAL;
        char *end;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (*end || !colon[1] || p > 65535)
                return -EINVAL;
        if (s[0] == '[' && colon[-1] == ']')
                snprintf(host, hlen, "%.*s", (int) (colon - s - 2), s + 1);
        else
                snprintf(host, hlen, "%.*s", (int) (colon - s), s);
        *port = (unsigned short) p;
        return 0;
}

int api_start(vouchd *d) {
        struct api *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->d = d;
        d->api = a;
        d->on_committed = api_notify;
        a->base = event_base_new();
        if (!a->base)
                return -ENOMEM;
        a->wake = event_new(a->base, -1, 0, wake_cb, a);
        a->sweep = event_new(a->base, -1, EV_PERSIST, sweep_cb, a);
        struct timeval one = { 1, 0 };
        if (!a->wake || !a->sweep || event_add(a->sweep, &one) < 0)
                return -ENOMEM;
        if (d->cfg.api_listen) {
                char host[256];
                unsigned short port;
                if (parse_hostport(d->cfg.api_listen, host, sizeof(host), &port) < 0) {
                        vlog(LOG_ERR, "--api-listen %s: expected HOST:PORT", d->cfg.api_listen);
                        return -EINVAL;
                }
                a->ctx = tls_api_ctx(d->cfg.state_dir, d->cfg.api_client_ca);
                if (!a->ctx) {
                        vlog(LOG_ERR, "API: cannot set up TLS with the client CA %s",
                             d->cfg.api_client_ca ? d->cfg.api_client_ca : "(state dir ca.pem)");
                        return -EIO;
                }
                if (handshaken_idx < 0)
                        handshaken_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
                if (conn_idx < 0)
                        conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_gone);
                a->max_conns = d->cfg.api_max_connections ? d->cfg.api_max_connections : 128;
                SSL_CTX_set_info_callback(a->ctx, tls_info);
                a->http = evhttp_new(a->base);
                if (!a->http)
                        return -ENOMEM;
                evhttp_set_bevcb(a->http, bev_cb, a);
                evhttp_set_gencb(a->http, route, a);
                evhttp_set_max_body_size(a->http, API_MAX_BODY);
                evhttp_set_max_headers_size(a->http, 16384);
                evhttp_set_timeout(a->http, 30);
                evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT);
                struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(a->http, host, port);
                if (!bound) {
                        vlog(LOG_ERR, "API: cannot listen on %s", d->cfg.api_listen);
                        return -EADDRINUSE;
                }
                a->listener = evhttp_bound_socket_get_listener(bound);
                listening_api = a;
                evconnlistener_set_error_cb(a->listener, api_accept_error);
                if (!d->cfg.n_api_admins && !d->cfg.n_api_readers)
                        vlog(LOG_WARN, "API: no --api-admin or --api-reader: every client will be refused");
                vlog(LOG_INFO, "API: listening on %s (mutual TLS; %zu admins, %zu readers)", d->cfg.api_listen,
                     d->cfg.n_api_admins, d->cfg.n_api_readers);
        }
        if (pthread_create(&a->thread, NULL, api_main, a) != 0)
                return -EAGAIN;
        a->started = true;
        return 0;
}

void api_stop(vouchd *d) {
        struct api *a = d->api;
        if (!a || !a->started)
                return;
        event_base_loopexit(a->base, NULL);
        pthread_join(a->thread, NULL);
        a->started = false;
}

void api_free(vouchd *d) {
        struct api *a = d->api;
        if (!a)
                return;
        api_stop(d);
        d->api = NULL;
        a->stopping = true; /* evhttp_free frees the listener before the connections */
        a->listener = NULL;
        if (a->http)
                evhttp_free(a->http); /* closes the watchers' connections (watch_closed frees them) */
        if (a->wake)
                event_free(a->wake);
        if (a->sweep)
                event_free(a->sweep);
        if (a->base)
                event_base_free(a->base);
        SSL_CTX_free(a->ctx);
        free(a);
}
