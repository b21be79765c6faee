/* SPDX-License-Identifier: Apache-2.0 */
/* What api.c (the handler) and api-http.c (its transport) share; the rest of vouchd sees
 * only api.h (test-api.c looks inside, at the counters and limits). */
#pragma once

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "api.h"
#include "store.h"

#define API_MAX_BODY (64u << 10)
/* what evhttp reads of a body at most (answering a larger one itself) */
#define API_HTTP_MAX_BODY (1u << 20)
/* a watch stream idle this long gets a heartbeat (an empty frame, or an empty JSON line) */
#define API_HEARTBEAT_SECONDS 5
#define API_MAX_WATCHERS 1024
/* Shared stores: how often the verdicts of the other instances are read (verdict_follow) */
#define API_FOLLOW_MS 200

struct event_base;
struct evhttp;
struct event;
struct evconnlistener;
struct watcher;

struct api {
        vouchd *d;
        /* counted by api_handle (any thread), shown on /metrics */
        atomic_ullong requests, refused;
        atomic_size_t n_watchers;       /* changed on the API thread, read by api_notify too */

        /* the transport's (api-http.c), on the API thread unless said otherwise */
        struct event_base *base;
        struct evhttp *http;
        SSL_CTX *ctx;
        pthread_t thread;
        bool started;
        struct event *wake, *sweep;
        struct event *follow;           /* shared stores: verdict_follow every API_FOLLOW_MS */
        time_t follow_failed_logged;
        struct watcher *watchers;
        bool lost_logged;               /* the store's loss (vs_lost) is logged once */
        uint64_t store_failures_logged; /* the sweep's: store failures already in the log */
        /* connections: at most max_conns; past it, or when accept() fails, the listener
         * pauses (connections wait in the kernel's backlog) */
        struct evconnlistener *listener;
        unsigned n_conns, max_conns;
        bool paused, stopping;
        time_t full_logged;
};

/* A SignedVerdict as JSON (the decoded verdict next to the signed bytes); NULL when it
 * does not decode. */
json_object *api_signed_json(const uint8_t *record, size_t len);
/* What a watch stream sends next: up to max committed verdicts after global sequence
 * after, in order, none past d->published (so never ahead of GET); how many, or the
 * store's error (vs_verdict_since). */
int api_watch_next(struct api *a, uint64_t after, vs_verdict *out, size_t max);
/* An Error answer (JSON or protobuf) with this status. */
void api_reply_error(api_response *out, bool json, int code, uint32_t err, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
