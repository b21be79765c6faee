/* SPDX-License-Identifier: Apache-2.0 */
/* The policy-engine API's transport (api.h): HTTPS with mutual TLS on its own event loop
 * thread (libevent evhttp over bufferevent_openssl). Each request becomes an api_request
 * (the caller's role from its client certificate) for api_handle, and its api_response is
 * sent back. The same thread sweeps for expired verdicts (STALE) once a second, and
 * streams committed verdicts to watchers in global sequence order; with a store shared by
 * several instances it also reads what the others committed (verdict_follow), every
 * API_FOLLOW_MS and after each commit of its own. */
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
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api-internal.h"
#include "api.h"
#include "frame.h"
#include "tls.h"
#include "vouchd.h"

#define WATCH_BATCH 256
#define WATCH_HIGH_WATER (1u << 20)

typedef struct watcher {
        struct api *a;
        struct evhttp_request *req;
        struct evhttp_connection *conn;
        uint64_t last;                  /* global sequence sent last */
        time_t sent_at;                 /* when anything was sent last (monotonic seconds) */
        bool json;
        bool draining;                  /* waiting for the output to drain */
        struct watcher *prev, *next;
} watcher;

/* ---- who is asking ---- */

/* The client certificate's CN into cn (or why there is none), and the role it has. */
static api_role role_of(vouchd *d, struct evhttp_request *req, char *cn, size_t cn_len) {
        struct evhttp_connection *conn = evhttp_request_get_connection(req);
        struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
        SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
        X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
        snprintf(cn, cn_len, "(no certificate)");
        if (!peer || SSL_get_verify_result(ssl) != X509_V_OK)
                return API_ROLE_NONE;
        /* exactly one CN, as UTF-8, taken whole: a second CN, an embedded NUL (which a
         * CA's name checks may pass: "ops\0.partner.example") or a name too long for cn
         * would otherwise be read as a shorter name */
        const X509_NAME *subject = X509_get_subject_name(peer);
        int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
        if (at < 0) {
                snprintf(cn, cn_len, "(no CN)");
                return API_ROLE_NONE;
        }
        if (X509_NAME_get_index_by_NID(subject, NID_commonName, at) >= 0) {
                snprintf(cn, cn_len, "(several CNs)");
                return API_ROLE_NONE;
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
        return usable ? api_role_of_cn(d, cn) : API_ROLE_NONE;
}

/* ---- watch ---- */

static time_t mono_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec;
}

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

/* The store could not be read: the stream ends with an error (JSON: a last line, an Error
 * {"code", "message"}), never a short answer and never a silent hang. */
static void watch_fail(watcher *w, int error) {
        char why[200];
        vs_read_error(w->a->d->store, why, sizeof(why));
        vlog(LOG_ERR, "API: a watch stream (after global sequence %llu) ends: the store cannot be read: %s",
             (unsigned long long) w->last, why);
        w->draining = true; /* no more pumping */
        struct evbuffer *b = evbuffer_new();
        if (b && w->json) {
                /* an Error in the proto3 JSON mapping, as every JSON error of the API */
                char msg[160];
                snprintf(msg, sizeof(msg), "the store cannot be read; reconnect with since=%llu",
                         (unsigned long long) w->last);
                json_object *o = json_object_new_object();
                json_object_object_add(o, "code", json_object_new_int(-error));
                json_object_object_add(o, "message", json_object_new_string(msg));
                evbuffer_add_printf(b, "%s\n",
                                    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
        }
        if (b && evbuffer_get_length(b) > 0)
                evhttp_send_reply_chunk_with_cb(w->req, b, watch_abort_cb, w);
        else
                watch_abort_cb(w->conn, w);
        evbuffer_free(b);
}

static void watch_pump(watcher *w) {
        vs_verdict batch[WATCH_BATCH];
        if (w->draining)
                return;
        for (;;) {
                int n = api_watch_next(w->a, w->last, batch, WATCH_BATCH);
                if (n < 0) {
                        watch_fail(w, n);
                        return;
                }
                if (n == 0)
                        return;
                struct evbuffer *b = evbuffer_new();
                for (int i = 0; b && i < n; i++) {
                        if (w->json) {
                                json_object *o = api_signed_json(batch[i].record, batch[i].record_len);
                                const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                                              JSON_C_TO_STRING_NOSLASHESCAPE)
                                                  : NULL;
                                if (s)
                                        evbuffer_add_printf(b, "%s\n", s);
                                json_object_put(o);
                        } else {
                                uint8_t hdr[VF_HEADER_SIZE];
                                /* a stored record is far below the 4 GiB a header can announce */
                                if (vf_header(batch[i].record_len, UINT32_MAX, hdr) == 0) {
                                        evbuffer_add(b, hdr, sizeof(hdr));
                                        evbuffer_add(b, batch[i].record, batch[i].record_len);
                                }
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
                w->sent_at = mono_now();
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

/* Sends the response's status and headers (Content-Type first, then the others in order). */
static void add_headers(struct evhttp_request *req, const api_response *r) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Content-Type", r->content_type);
        for (size_t i = 0; i < r->n_headers; i++)
                evhttp_add_header(h, r->headers[i].name, r->headers[i].value);
}

/* Out of memory before an answer could be made: 503 with an empty protobuf body (an Error
 * with no fields), never evhttp's HTML error page. */
static void send_oom(struct evhttp_request *req) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/x-protobuf");
        evhttp_send_reply(req, 503, api_reason(503), NULL);
}

static void send_response(struct evhttp_request *req, const api_response *r) {
        if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
                /* the headers GET would have, no body (evhttp would send one) */
                char len[24];
                snprintf(len, sizeof(len), "%zu", r->body_len);
                add_headers(req, r);
                evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", len);
                evhttp_send_reply(req, r->status, r->reason, NULL);
                return;
        }
        struct evbuffer *b = evbuffer_new();
        if (!b || evbuffer_add(b, r->body, r->body_len) < 0) {
                evbuffer_free(b);
                send_oom(req);
                return;
        }
        add_headers(req, r);
        evhttp_send_reply(req, r->status, r->reason, b);
        evbuffer_free(b);
}

/* api_handle accepted a watch (r): the stream starts. */
static void start_watch(struct api *a, struct evhttp_request *req, const api_response *r) {
        watcher *w = calloc(1, sizeof(*w));
        if (!w) {
                api_response e;
                api_reply_error(&e, r->watch_json, 503, ENOMEM, "out of memory");
                send_response(req, &e);
                api_response_done(&e);
                return;
        }
        w->a = a;
        w->req = req;
        w->conn = evhttp_request_get_connection(req);
        w->last = r->watch_since;
        w->sent_at = mono_now();
        w->json = r->watch_json;
        w->next = a->watchers;
        if (a->watchers)
                a->watchers->prev = w;
        a->watchers = w;
        /* counted before the first pump reads the store: a commit api_notify skipped (no
         * watcher yet) is one that pump finds */
        a->n_watchers++;
        evhttp_connection_set_closecb(w->conn, watch_closed, w);
        add_headers(req, r);
        evhttp_send_reply_start(req, r->status, r->reason);
        /* a stream: no read timeout (the client only listens); a client that stops reading
         * is dropped when a write has waited this long */
        struct timeval wt = { 60, 0 };
        bufferevent_set_timeouts(evhttp_connection_get_bufferevent(w->conn), NULL, &wt);
        watch_pump(w);
}

/* A stream with nothing to send for API_HEARTBEAT_SECONDS gets a heartbeat, so that a
 * client (or a proxy) tells a live idle stream from a dead one by a read timeout: a frame
 * of length 0 (4 zero bytes; no SignedVerdict is empty), or an empty line in JSON. Not
 * while the output waits to drain: that stream is not idle. */
static void watch_heartbeats(struct api *a) {
        time_t now = mono_now();
        for (watcher *w = a->watchers; w; w = w->next) {
                if (w->draining || now - w->sent_at < API_HEARTBEAT_SECONDS)
                        continue;
                static const uint8_t empty_frame[VF_HEADER_SIZE] = { 0 };
                struct evbuffer *b = evbuffer_new();
                if (!b)
                        return;
                if (w->json ? evbuffer_add(b, "\n", 1) : evbuffer_add(b, empty_frame, sizeof(empty_frame))) {
                        evbuffer_free(b);
                        return;
                }
                evhttp_send_reply_chunk(w->req, b);
                evbuffer_free(b);
                w->sent_at = now;
        }
}

static void pump_all(struct api *a) {
        for (watcher *w = a->watchers, *next; w; w = next) {
                next = w->next;
                watch_pump(w);
        }
}

/* Shared stores: what every instance committed reaches memory (GET, the lists) and moves
 * d->published (verdict_follow); a failure is logged at most once a minute, and the
 * watch streams wait (their own reads fail and end them if the store stays away). */
static void follow(struct api *a) {
        uint64_t before = atomic_load(&a->d->published);
        int r = verdict_follow(a->d);
        if (r < 0) {
                time_t now = time(NULL);
                if (now - a->follow_failed_logged >= 60) {
                        char why[300];
                        vs_read_error(a->d->store, why, sizeof(why));
                        vlog(LOG_ERR, "store: the verdicts of the other instances cannot be read (%s): GET and the "
                                      "watch streams show what was read until now", why);
                        a->follow_failed_logged = now;
                }
        }
        if (atomic_load(&a->d->published) != before)
                pump_all(a);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg) {
        struct api *a = arg;
        if (a->d->shared)
                follow(a);
        else
                pump_all(a);
}

static void follow_cb(evutil_socket_t fd, short what, void *arg) {
        follow(arg);
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
        watch_heartbeats(a);
}

/* After each commit (the store's writer thread, through d->on_committed): wakes the API
 * thread only when a watch stream is open, not once a batch for nobody (with a shared
 * store, the follow timer reads the commits anyway, this one's sooner). */
static void api_notify(vouchd *d) {
        if (d->api && d->api->wake && atomic_load(&d->api->n_watchers) > 0)
                event_active(d->api->wake, 0, 0);
}

/* ---- routing ---- */

/* The request as api_handle takes it: its query parameters into *ret_params (the caller
 * frees it; NULL and query_malformed when the query string does not parse), the body made
 * contiguous. -ENOMEM. */
static int request_of(struct evhttp_request *req, struct evkeyvalq *q, api_param **ret_params, api_request *in) {
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
        struct evbuffer *body = evhttp_request_get_input_buffer(req);
        switch (evhttp_request_get_command(req)) {
        case EVHTTP_REQ_GET: in->method = API_METHOD_GET; break;
        case EVHTTP_REQ_POST: in->method = API_METHOD_POST; break;
        case EVHTTP_REQ_PUT: in->method = API_METHOD_PUT; break;
        case EVHTTP_REQ_HEAD: in->method = API_METHOD_HEAD; break;
        case EVHTTP_REQ_DELETE: in->method = API_METHOD_DELETE; break;
        case EVHTTP_REQ_OPTIONS: in->method = API_METHOD_OPTIONS; break;
        case EVHTTP_REQ_PATCH: in->method = API_METHOD_PATCH; break;
        default: in->method = API_METHOD_OTHER; break;
        }
        in->path = uri ? evhttp_uri_get_path(uri) : NULL;
        in->content_type = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        in->device_header = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Vouch-Device");
        in->body_len = body ? evbuffer_get_length(body) : 0;
        in->body = in->body_len ? evbuffer_pullup(body, -1) : NULL;
        if (in->body_len && !in->body)
                return -ENOMEM;
        *ret_params = NULL;
        if (qs && evhttp_parse_query_str(qs, q) < 0) {
                in->query_malformed = true;
                return 0;
        }
        size_t n = 0;
        struct evkeyval *kv;
        TAILQ_FOREACH(kv, q, next)
                n++;
        api_param *params = calloc(n ? n : 1, sizeof(*params));
        if (!params)
                return -ENOMEM;
        n = 0;
        TAILQ_FOREACH(kv, q, next)
                params[n++] = (api_param) { kv->key, kv->value };
        in->query = params;
        in->n_query = n;
        *ret_params = params;
        return 0;
}

static void route(struct evhttp_request *req, void *arg) {
        struct api *a = arg;
        char cn[128];
        struct evkeyvalq q;
        api_param *params = NULL;
        api_request in = { 0 };
        api_response out;
        TAILQ_INIT(&q);
        if (request_of(req, &q, &params, &in) < 0) {
                send_oom(req);
                goto done;
        }
        in.role = role_of(a->d, req, cn, sizeof(cn));
        in.cn = cn;
        api_handle(a, &in, &out);
        if (out.watch)
                start_watch(a, req, &out);
        else
                send_response(req, &out);
        api_response_done(&out);
done:
        free(params);
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
        struct api *a;
        int r = api_new(d, &a);
        if (r < 0)
                return r;
        d->on_committed = api_notify;
        a->base = event_base_new();
        if (!a->base)
                return -ENOMEM;
        a->wake = event_new(a->base, -1, 0, wake_cb, a);
        a->sweep = event_new(a->base, -1, EV_PERSIST, sweep_cb, a);
        struct timeval one = { 1, 0 };
        if (!a->wake || !a->sweep || event_add(a->sweep, &one) < 0)
                return -ENOMEM;
        if (d->shared) {
                /* other instances' verdicts: in GET and the watch streams within this */
                struct timeval period = { 0, API_FOLLOW_MS * 1000 };
                a->follow = event_new(a->base, -1, EV_PERSIST, follow_cb, a);
                if (!a->follow || event_add(a->follow, &period) < 0)
                        return -ENOMEM;
        }
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
                /* bodies up to API_HTTP_MAX_BODY reach api_handle, which refuses those over
                 * API_MAX_BODY with an Error (413); past that, evhttp answers on its own */
                evhttp_set_max_body_size(a->http, API_HTTP_MAX_BODY);
                evhttp_set_max_headers_size(a->http, 16384);
                evhttp_set_timeout(a->http, 30);
                /* every method reaches api_handle, which answers 405 with an Allow header and an
                 * Error (evhttp's own refusal is an HTML page) */
                evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_HEAD |
                                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
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
        if (a->follow)
                event_free(a->follow);
        if (a->base)
                event_base_free(a->base);
        SSL_CTX_free(a->ctx);
        free(a);
}
