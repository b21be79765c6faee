/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h> /* before keyvalq_struct.h: TAILQ_FOREACH */
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devcert.h"
#include "health.h"
#include "log.h"
#include "vouchd.h"

struct health {
        struct event_base *base;
        struct evhttp *http;
        pthread_t thread;
};

bool health_ready(vouchd *d, char *why, size_t n) {
        char lost[400] = "";
        vs_stats st;
        vs_get_stats(d->store, &st);
        if (vs_lost(d->store, lost, sizeof(lost))) {
                snprintf(why, n, "the store is lost: %s", lost);
                return false;
        }
        if (st.unavailable) {
                snprintf(why, n, "the store is unavailable (reconnecting): %s",
                         st.last_error[0] ? st.last_error : "no connection");
                return false;
        }
        if (d->shared && !lease_heartbeat_alive(d)) {
                /* every agent would be refused here: a load balancer sends them elsewhere */
                snprintf(why, n, "this instance's heartbeat could not be stored in time: it holds no device lease "
                                 "and refuses agents until it is");
                return false;
        }
        return true;
}

/* Sends body (len bytes); to HEAD, its length and no body (evhttp would send it). */
static void send_body(struct evhttp_request *req, int code, const char *reason, const void *body, size_t len) {
        if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
                char n[24];
                snprintf(n, sizeof(n), "%zu", len);
                evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", n);
                evhttp_send_reply(req, code, reason, NULL);
                return;
        }
        struct evbuffer *b = evbuffer_new();
        if (b)
                evbuffer_add(b, body, len);
        evhttp_send_reply(req, b ? code : 503, b ? reason : "Service Unavailable", b);
        if (b)
                evbuffer_free(b);
}

static void answer(struct evhttp_request *req, int code, const char *reason, const char *body) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Content-Type", "text/plain");
        evhttp_add_header(h, "Cache-Control", "no-store");
        if (code == 405)
                evhttp_add_header(h, "Allow", "GET, HEAD");
        send_body(req, code, reason, body, strlen(body));
}

/* GET /v1/crl: the device CA's CRL (devcert.h), DER or ?format=pem. CRLs are public (RFC
 * 5280: signed by the CA); relying parties fetch it here without a client certificate. */
static void crl(struct evhttp_request *req, vouchd *d) {
        const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
        struct evkeyvalq params = { 0 };
        bool pem = false;
        if (q && *q) {
                const char *f = NULL;
                size_t n = 0;
                struct evkeyval *kv;
                bool bad = evhttp_parse_query_str(q, &params) != 0;
                /* format= once, and nothing else */
                TAILQ_FOREACH(kv, &params, next) {
                        n++;
                        if (strcmp(kv->key, "format") != 0)
                                bad = true;
                        f = kv->value;
                }
                pem = f && strcmp(f, "pem") == 0;
                bad = bad || n != 1 || !f || (!pem && strcmp(f, "der") != 0);
                evhttp_clear_headers(&params);
                if (bad) {
                        answer(req, 400, "Bad Request", "bad query: format=pem or format=der\n");
                        return;
                }
        }
        uint8_t *body = NULL;
        size_t len = 0;
        int r = devcert_crl_get(d, pem, &body, &len);
        if (r == -ENOENT) {
                answer(req, 404, "Not Found", "not found: this vouchd has no device CA, so no CRL\n");
                return;
        }
        if (r < 0) {
                answer(req, 503, "Service Unavailable",
                       r == -EAGAIN ? "no CRL yet: the store could not be read\n" : "out of memory\n");
                return;
        }
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Content-Type", pem ? "application/x-pem-file" : "application/pkix-crl");
        evhttp_add_header(h, "Cache-Control", "no-cache");
        send_body(req, 200, "OK", body, len);
        free(body);
}

static void on_request(struct evhttp_request *req, void *arg) {
        vouchd *d = arg;
        char why[512], body[600];
        const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
        bool is_crl = path && strcmp(path, "/v1/crl") == 0;
        if (!path || (strcmp(path, "/healthz") != 0 && !is_crl)) {
                answer(req, 404, "Not Found", "not found: this port serves GET /healthz and GET /v1/crl only\n");
                return;
        }
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
                answer(req, 405, "Method Not Allowed", is_crl ? "method not allowed: GET /v1/crl\n"
                                                              : "method not allowed: GET /healthz\n");
                return;
        }
        if (is_crl) {
                crl(req, d);
                return;
        }
        const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
        if (q && *q) {
                answer(req, 400, "Bad Request", "bad query: GET /healthz takes no parameters\n");
                return;
        }
        if (health_ready(d, why, sizeof(why)))
                answer(req, 200, "OK", "ok\n");
        else {
                snprintf(body, sizeof(body), "not ready: %s\n", why);
                answer(req, 503, "Service Unavailable", body);
        }
}

static void *health_main(void *arg) {
        struct health *h = arg;
        event_base_dispatch(h->base);
        return NULL;
}

int health_start(vouchd *d) {
        const char *listen = d->cfg.http_listen;
        if (!listen)
                return 0;
        char host[256];
        const char *colon = strrchr(listen, ':');
        char *end = NULL;
        unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
        if (!colon || (size_t) (colon - listen) >= sizeof(host) || !end || *end || port == 0 || port > 65535) {
                vlog(LOG_ERR, "--http-listen %s: expected HOST:PORT", listen);
                return -EINVAL;
        }
        snprintf(host, sizeof(host), "%.*s", (int) (colon - listen), listen);
        if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1] */
                memmove(host, host + 1, strlen(host));
                host[strlen(host) - 1] = 0;
        }
        struct health *h = calloc(1, sizeof(*h));
        if (!h || !(h->base = event_base_new()) || !(h->http = evhttp_new(h->base))) {
                vlog(LOG_ERR, "--http-listen: out of memory");
                goto fail;
        }
        evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                                    EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
        evhttp_set_max_headers_size(h->http, 8192);
        evhttp_set_max_body_size(h->http, 4096);
        evhttp_set_timeout(h->http, 10);
        evhttp_set_gencb(h->http, on_request, d);
        if (evhttp_bind_socket(h->http, host[0] ? host : "0.0.0.0", (uint16_t) port) != 0) {
                vlog(LOG_ERR, "--http-listen %s: cannot listen there (in use, or not an address of this machine)",
                     listen);
                goto fail;
        }
        if (pthread_create(&h->thread, NULL, health_main, h) != 0) {
                vlog(LOG_ERR, "--http-listen: cannot start its thread");
                goto fail;
        }
        d->health = h;
        vlog(LOG_INFO, "health: GET http://%s/healthz and /v1/crl (plain HTTP, no client certificate)", listen);
        return 0;
fail:
        if (h && h->http)
                evhttp_free(h->http);
        if (h && h->base)
                event_base_free(h->base);
        free(h);
        return -EINVAL;
}

void health_stop(vouchd *d) {
        struct health *h = d->health;
        if (!h)
                return;
        event_base_loopexit(h->base, NULL);
        pthread_join(h->thread, NULL);
        evhttp_free(h->http);
        event_base_free(h->base);
        free(h);
        d->health = NULL;
}
