/* SPDX-License-Identifier: Apache-2.0 */
/* The policy-engine API (docs/API.md), in two layers:
 *   api.c       api_handle: one request, given as plain data (method, path, parsed query,
 *               body, and the caller's role, which the transport decided), answered as
 *               plain data (status, headers, body). No sockets, no TLS, no event loop:
 *               unit tests drive it directly (api_new).
 *   api-http.c  the transport: HTTPS with mutual TLS on the API's own event loop thread
 *               (libevent evhttp over bufferevent_openssl), the role from the client
 *               certificate, the watch streams, and the once-a-second STALE sweep. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vouchd vouchd;
struct api;

typedef enum api_method {
        API_METHOD_GET = 0,
        API_METHOD_POST = 1,
        API_METHOD_PUT = 2,
        API_METHOD_OTHER = 3,           /* any other (TRACE, CONNECT, ...): 405 everywhere */
        API_METHOD_HEAD = 4,            /* answered as GET, without the body */
        API_METHOD_DELETE = 5,
        API_METHOD_OPTIONS = 6,
        API_METHOD_PATCH = 7,
} api_method;

/* What a client may do: decided from its certificate's CN (api_role_of_cn). */
typedef enum api_role {
        API_ROLE_NONE = 0,
        API_ROLE_READER = 1,
        API_ROLE_ADMIN = 2,
} api_role;

/* One query parameter, percent-decoded. Looked up as evhttp does: the first one whose key
 * matches, ignoring ASCII case. */
typedef struct api_param {
        const char *key, *value;
} api_param;

/* A request, borrowed for the call. */
typedef struct api_request {
        api_method method;
        const char *path;               /* the URI's path as sent; NULL when there is none */
        const api_param *query;
        size_t n_query;
        bool query_malformed;           /* the query string did not parse: answered with 400 */
        const uint8_t *body;            /* may be NULL when body_len is 0 */
        size_t body_len;
        const char *content_type;       /* NULL when the request has none */
        const char *device_header;      /* X-Vouch-Device (set by a proxy), NULL when none */
        api_role role;
        const char *cn;                 /* the client certificate's CN, or why there is none */
} api_request;

#define API_MAX_HEADERS 4
typedef struct api_header {
        const char *name;               /* static */
        char *value;                    /* owned */
} api_header;

/* An answer, owned by the caller: api_response_done frees it. Every answer has a body
 * of its content type: an error's is an Error (protobuf, or JSON when asked for); out of
 * memory, an empty one (an Error with no fields). */
typedef struct api_response {
        int status;                     /* HTTP status */
        const char *reason;             /* static: its reason phrase (api_reason) */
        const char *content_type;       /* static */
        api_header headers[API_MAX_HEADERS]; /* sent after Content-Type, in this order */
        size_t n_headers;
        uint8_t *body;
        size_t body_len;
        /* GET /v1/watch accepted: no body; the transport sends the status and headers and
         * then streams the committed verdicts after global sequence watch_since */
        bool watch;
        bool watch_json;                /* as JSON lines, else uint32be-delimited protobuf */
        uint64_t watch_since;
} api_response;

/* One endpoint (docs/API.md; docs/openapi.yaml describes the same): what api_handle routes
 * by, and what answers 405 with an Allow header and 400 for a query parameter or format it
 * does not take. */
typedef struct api_route {
        const char *path;               /* "/v1/devices/{id}/verdict": {id} is one path segment */
        api_method method;              /* GET routes answer HEAD too */
        api_role role;                  /* the least role that may call it */
        const char *params;             /* the query parameters it takes, space-separated ("": none) */
        const char *formats;            /* the format= values it takes, space-separated; the first is
                                         * the default ("": no format= at all) */
} api_route;

/* Every endpoint, in a fixed order; *n their number. */
const api_route *api_routes(size_t *n);
/* The reason phrase of an HTTP status (RFC 9110), "Error" for one the API does not use. */
const char *api_reason(int status);

/* The API's state without a listener or a thread (d->api, freed by api_free): what
 * api_handle needs. api_start makes it too. -ENOMEM. */
int api_new(vouchd *d, struct api **ret);
/* Answers one request (any thread; admin actions wait for the store, so never an agent
 * event loop). *out is always filled, also for every refusal. */
void api_handle(struct api *a, const api_request *in, api_response *out);
void api_response_done(api_response *r);
/* The role the configuration gives a client certificate's CN (--api-admin, --api-reader). */
api_role api_role_of_cn(const vouchd *d, const char *cn);

/* The transport (api-http.c): api_new, listening on --api-listen (when set) and the sweep,
 * on a thread of its own. */
int api_start(vouchd *d);
void api_stop(vouchd *d);
void api_free(vouchd *d);
