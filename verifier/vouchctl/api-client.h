/* SPDX-License-Identifier: Apache-2.0 */
/* vouchctl's client of the policy-engine API (docs/API.md): configuration, request paths,
 * and HTTPS requests with mutual TLS 1.3 (libevent evhttp over bufferevent_openssl).
 * The configuration and path functions are pure; api_call/api_stream talk to the server
 * and report failures in the err buffer they are given (they do not print). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_PATH_MAX 2048
#define API_CONFIG_MAX (64u << 10)     /* bytes of a config file */
#define API_BODY_MAX (16u << 20)       /* bytes of one response (a page of 1000 verdicts fits) */
#define API_ERROR_BODY_MAX 4096        /* bytes of an error body kept for the message */
#define API_TIMEOUT_S 30               /* per request (not for the watch stream) */

typedef struct api_config {
        char *server;                  /* https://HOST[:PORT][/PREFIX] */
        char *cert, *key, *ca;         /* client certificate, its key, the server's CA */
} api_config;

/* Reads "name = value" lines (server, cert, key, ca; '#' comments and blank lines
 * allowed) into cfg, replacing what is there. Errors: -EBADMSG a line that is not
 * "name = value" or an unknown name (*ret_line says which, from 1), -ENOMEM. */
int api_config_parse(const char *text, size_t len, api_config *cfg, unsigned *ret_line);
void api_config_done(api_config *cfg);

typedef struct api_server {
        char host[256];                /* without brackets for IPv6 */
        uint16_t port;                 /* 443 when not given */
        bool host_is_ip;
        char prefix[256];              /* path before /v1/..., without trailing '/'; "" usually */
} api_server;

/* Parses https://HOST[:PORT][/PREFIX]. Only https. Errors: -EINVAL. */
int api_server_parse(const char *url, api_server *ret);

/* Percent-encodes s (RFC 3986, 2.3: everything but unreserved characters) into out.
 * Errors: -E2BIG when out (size bytes, including the NUL) is too small. */
int api_escape(const char *s, char *out, size_t size);

/* Builds prefix + "/v1/devices/" + escaped id + (suffix ? "/" suffix : "") into out.
 * Errors: -EINVAL empty id, -E2BIG. */
int api_device_path(const api_server *srv, const char *id, const char *suffix, char *out, size_t size);
/* Builds prefix + path into out. Errors: -E2BIG. */
int api_path(const api_server *srv, const char *path, char *out, size_t size);
/* Appends "?name=value" (or "&name=value" when out already has a query), value escaped.
 * Errors: -E2BIG (out unchanged). */
int api_query_add(char *out, size_t size, const char *name, const char *value);

typedef struct api_client api_client;

/* Loads the TLS context: TLS 1.3 only, the server verified against cfg->ca (and its name
 * or IP against the URL's host), cfg->cert/cfg->key presented. Errors (message in err):
 * -EINVAL missing or bad settings, -EIO unreadable certificate or key, -ENOMEM. */
int api_client_new(const api_config *cfg, api_client **ret, char *err, size_t errlen);
api_client *api_client_free(api_client *c);
const api_server *api_client_server(const api_client *c);

typedef struct api_response {
        int status;                    /* HTTP status; 0 when no response came */
        char content_type[128];
        uint8_t *body;                 /* malloc'ed (NUL-terminated for convenience) */
        size_t len;
} api_response;
void api_response_done(api_response *r);

/* One request (method "GET", "POST" or "PUT"; a protobuf body when body_len > 0, or an
 * empty body for POST/PUT). On any HTTP answer returns 0 with *ret filled, whatever the
 * status; a body over max fails. Errors (message in err): -ECONNREFUSED, -EHOSTUNREACH (the
 * name does not resolve), -EPROTO (TLS or
 * HTTP failure, certificate not trusted), -ETIMEDOUT, -E2BIG, -ENOMEM. */
int api_call(api_client *c, const char *method, const char *path, const uint8_t *body, size_t body_len, size_t max,
             api_response *ret, char *err, size_t errlen);

/* Called with each length-prefixed frame of a stream (GET /v1/watch). Return 0 to go on,
 * 1 to stop, a negative errno to fail (err filled by the callback). */
typedef int (*api_frame_fn)(const uint8_t *frame, size_t len, void *userdata, char *err, size_t errlen);

/* Streams path: on a 200 answer, every frame (at most max_frame bytes) goes to fn until
 * it returns 1 (result 0) or the stream ends (-EPIPE). On another status, returns 0 with
 * ret->status and the error body. Errors as api_call, plus -EPIPE, -E2BIG (a frame over
 * max_frame), and whatever fn returns. */
int api_stream(api_client *c, const char *path, size_t max_frame, api_frame_fn fn, void *userdata, api_response *ret,
               char *err, size_t errlen);

/* "HTTP 403 Forbidden: <the Error message>" for a non-2xx response into buf. */
const char *api_error_text(const api_response *r, char *buf, size_t size);
