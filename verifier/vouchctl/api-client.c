/* SPDX-License-Identifier: Apache-2.0 */
/* The policy-engine API client; see api-client.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-client.h"
#include "frame.h"
#include "vouch.pb-c.h"

/* ---- configuration ---- */

void api_config_done(api_config *cfg) {
        if (!cfg)
                return;
        free(cfg->server);
        free(cfg->cert);
        free(cfg->key);
        free(cfg->ca);
        *cfg = (api_config) { 0 };
}

static char *trim(char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                s[--n] = '\0';
        return s;
}

int api_config_parse(const char *text, size_t len, api_config *cfg, unsigned *ret_line) {
        char *copy = strndup(text, len), *save = NULL, *line;
        unsigned lineno = 0;
        int r = 0;
        if (!copy)
                return -ENOMEM;
        if (strlen(copy) != len) { /* a NUL inside */
                free(copy);
                if (ret_line)
                        *ret_line = 0;
                return -EBADMSG;
        }
        /* strtok_r would skip empty lines and miscount them */
        for (line = copy; line; line = save) {
                save = strchr(line, '\n');
                if (save)
                        *save++ = '\0';
                lineno++;
                char *l = trim(line), *eq, **slot;
                if (!*l || *l == '#')
                        continue;
                eq = strchr(l, '=');
                if (!eq) {
                        r = -EBADMSG;
                        break;
                }
                *eq = '\0';
                char *name = trim(l), *value = trim(eq + 1);
                if (strcmp(name, "server") == 0)
                        slot = &cfg->server;
                else if (strcmp(name, "cert") == 0)
                        slot = &cfg->cert;
                else if (strcmp(name, "key") == 0)
                        slot = &cfg->key;
                else if (strcmp(name, "ca") == 0)
                        slot = &cfg->ca;
                else {
                        r = -EBADMSG;
                        break;
                }
                if (!*value) {
                        r = -EBADMSG;
                        break;
                }
                char *v = strdup(value);
                if (!v) {
                        r = -ENOMEM;
                        break;
                }
                free(*slot);
                *slot = v;
        }
        if (r < 0 && ret_line)
                *ret_line = lineno;
        free(copy);
        return r;
}

/* ---- paths ---- */

int api_server_parse(const char *url, api_server *ret) {
        static const char scheme[] = "https://";
        api_server s = { 0 };
        const char *p, *host_end, *port_s = NULL, *path;
        size_t hlen;

        if (!url || strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
                return -EINVAL;
        p = url + sizeof(scheme) - 1;
        path = p + strcspn(p, "/?#");
        if (*path == '?' || *path == '#')
                return -EINVAL;
        if (*p == '[') { /* RFC 3986, 3.2.2: IP-literal */
                host_end = memchr(p, ']', (size_t) (path - p));
                if (!host_end)
                        return -EINVAL;
                hlen = (size_t) (host_end - p - 1);
                if (hlen == 0 || hlen >= sizeof(s.host))
                        return -EINVAL;
                memcpy(s.host, p + 1, hlen);
                p = host_end + 1;
                if (p < path && *p != ':')
                        return -EINVAL;
        } else {
                const char *colon = memchr(p, ':', (size_t) (path - p));
                host_end = colon ? colon : path;
                hlen = (size_t) (host_end - p);
                if (hlen == 0 || hlen >= sizeof(s.host))
                        return -EINVAL;
                memcpy(s.host, p, hlen);
                for (size_t i = 0; i < hlen; i++)
                        if (!isalnum((unsigned char) s.host[i]) && s.host[i] != '-' && s.host[i] != '.')
                                return -EINVAL;
                p = host_end;
        }
        if (p < path && *p == ':')
                port_s = p + 1;
        s.port = 443;
        if (port_s) {
                unsigned long v = 0;
                if (port_s == path)
                        return -EINVAL;
                for (const char *q = port_s; q < path; q++) {
                        if (!isdigit((unsigned char) *q))
                                return -EINVAL;
                        v = v * 10 + (unsigned long) (*q - '0');
                        if (v > 65535)
                                return -EINVAL;
                }
                if (v == 0)
                        return -EINVAL;
                s.port = (uint16_t) v;
        }
        unsigned char ip[16];
        s.host_is_ip = inet_pton(AF_INET, s.host, ip) == 1 || inet_pton(AF_INET6, s.host, ip) == 1;
        if (strchr(s.host, ':') && !s.host_is_ip)
                return -EINVAL;
        size_t plen = strlen(path);
        while (plen && path[plen - 1] == '/')
                plen--;
        if (plen >= sizeof(s.prefix))
                return -EINVAL;
        for (size_t i = 0; i < plen; i++)
                if ((unsigned char) path[i] <= 0x20 || (unsigned char) path[i] >= 0x7f)
                        return -EINVAL;
        memcpy(s.prefix, path, plen);
        *ret = s;
        return 0;
}

int api_escape(const char *s, char *out, size_t size) {
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                bool unreserved = isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
                size_t need = unreserved ? 1 : 3;
                if (o + need >= size)
                        return -E2BIG;
                if (unreserved)
                        out[o++] = (char) c;
                else {
                        out[o++] = '%';
                        out[o++] = hex[c >> 4];
                        out[o++] = hex[c & 15];
                }
        }
        if (o >= size)
                return -E2BIG;
        out[o] = '\0';
        return 0;
}

int api_path(const api_server *srv, const char *path, char *out, size_t size) {
        int n = snprintf(out, size, "%s%s", srv->prefix, path);
        return n < 0 || (size_t) n >= size ? -E2BIG : 0;
}

int api_device_path(const api_server *srv, const char *id, const char *suffix, char *out, size_t size) {
        char esc[API_PATH_MAX];
        if (!id || !*id)
                return -EINVAL;
        if (api_escape(id, esc, sizeof(esc)) < 0)
                return -E2BIG;
        int n = snprintf(out, size, "%s/v1/devices/%s%s%s", srv->prefix, esc, suffix ? "/" : "", suffix ? suffix : "");
        return n < 0 || (size_t) n >= size ? -E2BIG : 0;
}

int api_query_add(char *out, size_t size, const char *name, const char *value) {
        char esc[API_PATH_MAX];
        size_t have = strlen(out);
        if (api_escape(value, esc, sizeof(esc)) < 0)
                return -E2BIG;
        int n = snprintf(out + have, size - have, "%c%s=%s", strchr(out, '?') ? '&' : '?', name, esc);
        if (n < 0 || (size_t) n >= size - have) {
                out[have] = '\0';
                return -E2BIG;
        }
        return 0;
}

/* ---- TLS and HTTP ---- */

struct api_client {
        SSL_CTX *ctx;
        api_server srv;
};

const api_server *api_client_server(const api_client *c) {
        return &c->srv;
}

static int errf(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int errf(char *err, size_t errlen, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        return code;
}

static const char *ssl_err(char *buf, size_t size) {
        unsigned long e = ERR_get_error();
        if (!e)
                snprintf(buf, size, "no detail");
        else
                ERR_error_string_n(e, buf, size);
        ERR_clear_error();
        return buf;
}

int api_client_new(const api_config *cfg, api_client **ret, char *err, size_t errlen) {
        api_client *c;
        char e[256];
        if (!cfg->server || !cfg->cert || !cfg->key || !cfg->ca)
                return errf(err, errlen, -EINVAL, "--server, --cert, --key and --ca are required (or in --config)");
        c = calloc(1, sizeof(*c));
        if (!c)
                return errf(err, errlen, -ENOMEM, "out of memory");
        if (api_server_parse(cfg->server, &c->srv) < 0) {
                free(c);
                return errf(err, errlen, -EINVAL, "--server %s: not https://HOST[:PORT][/PREFIX]", cfg->server);
        }
        c->ctx = SSL_CTX_new(TLS_client_method());
        if (!c->ctx) {
                free(c);
                return errf(err, errlen, -ENOMEM, "out of memory");
        }
        /* docs/API.md: mutual TLS 1.3 only */
        SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION);
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION);
        int r = 0;
        if (SSL_CTX_load_verify_locations(c->ctx, cfg->ca, NULL) != 1)
                r = errf(err, errlen, -EIO, "--ca %s: cannot load CA certificates: %s", cfg->ca, ssl_err(e, sizeof(e)));
        else if (SSL_CTX_use_certificate_chain_file(c->ctx, cfg->cert) != 1)
                r = errf(err, errlen, -EIO, "--cert %s: cannot load the client certificate: %s", cfg->cert,
                         ssl_err(e, sizeof(e)));
        else if (SSL_CTX_use_PrivateKey_file(c->ctx, cfg->key, SSL_FILETYPE_PEM) != 1) {
                if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
                        ERR_clear_error();
                        r = errf(err, errlen, -EIO, "--key %s does not belong to --cert %s", cfg->key, cfg->cert);
                } else
                        r = errf(err, errlen, -EIO, "--key %s: cannot load the private key: %s", cfg->key,
                                 ssl_err(e, sizeof(e)));
        }
        else if (SSL_CTX_check_private_key(c->ctx) != 1)
                r = errf(err, errlen, -EIO, "--key %s does not belong to --cert %s", cfg->key, cfg->cert);
        if (r < 0) {
                api_client_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

api_client *api_client_free(api_client *c) {
        if (!c)
                return NULL;
        SSL_CTX_free(c->ctx);
        free(c);
        return NULL;
}

void api_response_done(api_response *r) {
        if (!r)
                return;
        free(r->body);
        *r = (api_response) { 0 };
}

/* One request in flight: its connection, and what came back. */
typedef struct call {
        api_client *c;
        struct event_base *base;
        struct bufferevent *bev;
        struct evhttp_connection *conn;
        api_response *resp;
        size_t max;                     /* body cap (non-stream) */
        /* streaming */
        bool streaming, stopped;
        vf_decoder dec;
        api_frame_fn fn;
        void *userdata;
        size_t err_have;
        /* outcome */
        int result;
        bool done;
        char *err;
        size_t errlen;
} call;

static void fail_call(call *k, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_call(call *k, int code, const char *fmt, ...) {
        if (k->result == 0) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(k->err, k->errlen, fmt, ap);
                va_end(ap);
                k->result = code;
        }
        k->done = true;
        event_base_loopbreak(k->base);
}

static void take_headers(call *k, struct evhttp_request *req) {
        k->resp->status = evhttp_request_get_response_code(req);
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        snprintf(k->resp->content_type, sizeof(k->resp->content_type), "%s", ct ? ct : "");
}

/* Keeps up to max bytes of in, drains it all; -E2BIG past max. */
static int keep_body(api_response *r, struct evbuffer *in, size_t max) {
        size_t n = evbuffer_get_length(in);
        if (n > max || r->len > max - n) {
                evbuffer_drain(in, n);
                return -E2BIG;
        }
        uint8_t *b = realloc(r->body, r->len + n + 1);
        if (!b)
                return -ENOMEM;
        r->body = b;
        evbuffer_remove(in, r->body + r->len, n);
        r->len += n;
        r->body[r->len] = '\0';
        return 0;
}

static void describe_failure(call *k, enum evhttp_request_error e) {
        char ebuf[256] = "";
        unsigned long ossl = k->bev ? bufferevent_get_openssl_error(k->bev) : 0;
        const SSL *ssl = k->bev ? bufferevent_openssl_get_ssl(k->bev) : NULL;
        /* libevent reports a failed TCP connect as SSL_ERROR_SYSCALL (no library, reason 5)
         * before the handshake began; errno is gone by now */
        if (ossl && ERR_GET_LIB(ossl) == 0 && ssl && SSL_in_before(ssl)) {
                fail_call(k, -ECONNREFUSED, "cannot connect to %s:%u (nothing listening, or unreachable)", k->c->srv.host,
                          k->c->srv.port);
                return;
        }
        if (ossl && ERR_GET_LIB(ossl) == 0) {
                fail_call(k, -EPROTO, "the connection to %s:%u was closed during the TLS handshake", k->c->srv.host,
                          k->c->srv.port);
                return;
        }
        if (ossl) {
                ERR_error_string_n(ossl, ebuf, sizeof(ebuf));
                long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
                if (vr != X509_V_OK)
                        fail_call(k, -EPROTO, "TLS handshake with %s:%u failed: server certificate not accepted: %s",
                                  k->c->srv.host, k->c->srv.port, X509_verify_cert_error_string(vr));
                else
                        fail_call(k, -EPROTO, "TLS with %s:%u failed: %s", k->c->srv.host, k->c->srv.port, ebuf);
                return;
        }
        switch (e) {
        case EVREQ_HTTP_TIMEOUT:
                fail_call(k, -ETIMEDOUT, "no answer from %s:%u within %d s", k->c->srv.host, k->c->srv.port, API_TIMEOUT_S);
                break;
        case EVREQ_HTTP_DATA_TOO_LONG:
                fail_call(k, -E2BIG, "the answer from %s:%u is over the limit of %zu bytes", k->c->srv.host, k->c->srv.port,
                          k->max);
                break;
        case EVREQ_HTTP_INVALID_HEADER:
                fail_call(k, -EPROTO, "invalid HTTP answer from %s:%u", k->c->srv.host, k->c->srv.port);
                break;
        default: {
                int se = EVUTIL_SOCKET_ERROR();
                if (se == ECONNREFUSED)
                        fail_call(k, -ECONNREFUSED, "cannot connect to %s:%u: %s", k->c->srv.host, k->c->srv.port,
                                  strerror(se));
                else
                        /* TLS 1.3: the client's side of the handshake is done before the
                         * server has looked at the client certificate */
                        fail_call(k, -EPROTO, "the connection to %s:%u was closed without an answer (a server that "
                                  "refuses the client certificate does this)", k->c->srv.host, k->c->srv.port);
        }
        }
}

static void on_error(enum evhttp_request_error e, void *arg) {
        call *k = arg;
        if (k->done)
                return;
        if (k->streaming && k->stopped) {
                k->done = true;
                event_base_loopbreak(k->base);
                return;
        }
        if (k->streaming && e == EVREQ_HTTP_EOF && k->resp->status == 200) {
                fail_call(k, -EPIPE, "the stream from %s:%u ended", k->c->srv.host, k->c->srv.port);
                return;
        }
        describe_failure(k, e);
}

static void on_done(struct evhttp_request *req, void *arg) {
        call *k = arg;
        if (k->done)
                return;
        if (!req) { /* libevent reports a failed connection this way when no error cb ran */
                describe_failure(k, EVREQ_HTTP_EOF);
                return;
        }
        if (evhttp_request_get_response_code(req) == 0) {
                describe_failure(k, EVREQ_HTTP_EOF);
                return;
        }
        take_headers(k, req);
        if (k->streaming) {
                if (k->resp->status == 200 && !k->stopped) {
                        fail_call(k, -EPIPE, "the stream from %s:%u ended", k->c->srv.host, k->c->srv.port);
                        return;
                }
        } else {
                int r = keep_body(k->resp, evhttp_request_get_input_buffer(req), k->max);
                if (r < 0) {
                        fail_call(k, r, r == -E2BIG ? "the answer is over the limit of %zu bytes" : "out of memory (%zu)",
                                  k->max);
                        return;
                }
        }
        k->done = true;
        event_base_loopbreak(k->base);
}

static int on_headers(struct evhttp_request *req, void *arg) {
        call *k = arg;
        take_headers(k, req);
        if (k->streaming && k->resp->status == 200)
                bufferevent_set_timeouts(k->bev, NULL, NULL); /* verdicts may be hours apart */
        return 0;
}

static void on_chunk(struct evhttp_request *req, void *arg) {
        call *k = arg;
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        if (k->done || k->stopped) {
                evbuffer_drain(in, evbuffer_get_length(in));
                return;
        }
        if (k->resp->status != 200) { /* an error body: keep its start for the message */
                size_t n = evbuffer_get_length(in);
                if (k->resp->len < API_ERROR_BODY_MAX) {
                        size_t take = API_ERROR_BODY_MAX - k->resp->len;
                        struct evbuffer *part = evbuffer_new();
                        if (part) {
                                evbuffer_remove_buffer(in, part, take < n ? take : n);
                                (void) keep_body(k->resp, part, API_ERROR_BODY_MAX);
                                evbuffer_free(part);
                        }
                }
                evbuffer_drain(in, evbuffer_get_length(in));
                return;
        }
        while (evbuffer_get_length(in) > 0 && !k->stopped && !k->done) {
                struct evbuffer_iovec v;
                if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                        break;
                uint8_t *frame = NULL;
                size_t flen = 0;
                long used = vf_decoder_feed(&k->dec, v.iov_base, v.iov_len, &frame, &flen);
                if (used < 0) {
                        fail_call(k, (int) used, used == -E2BIG ? "a stream frame is over the limit of %zu bytes"
                                                                : "out of memory (%zu)",
                                  k->dec.max_frame);
                        break;
                }
                evbuffer_drain(in, (size_t) used);
                if (frame) {
                        int r = k->fn(frame, flen, k->userdata, k->err, k->errlen);
                        free(frame);
                        if (r < 0) {
                                k->result = r;
                                k->done = true;
                                event_base_loopbreak(k->base);
                        } else if (r > 0) {
                                k->stopped = true;
                                event_base_loopbreak(k->base);
                        }
                }
        }
        evbuffer_drain(in, evbuffer_get_length(in));
}

static int run(api_client *c, call *k, const char *method, const char *path, const uint8_t *body, size_t body_len) {
        enum evhttp_cmd_type cmd;
        SSL *ssl = NULL;
        struct evhttp_request *req = NULL;
        char hostport[300];

        if (strcmp(method, "GET") == 0)
                cmd = EVHTTP_REQ_GET;
        else if (strcmp(method, "POST") == 0)
                cmd = EVHTTP_REQ_POST;
        else if (strcmp(method, "PUT") == 0)
                cmd = EVHTTP_REQ_PUT;
        else
                return errf(k->err, k->errlen, -EINVAL, "unsupported method %s", method);
        if (!c->srv.host_is_ip) {
                /* libevent resolves again, but says nothing useful when it fails */
                struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
                int g = getaddrinfo(c->srv.host, NULL, &hints, &ai);
                if (g != 0)
                        return errf(k->err, k->errlen, -EHOSTUNREACH, "cannot resolve %s: %s", c->srv.host, gai_strerror(g));
                freeaddrinfo(ai);
        }
        k->base = event_base_new();
        ssl = k->base ? SSL_new(c->ctx) : NULL;
        if (!ssl)
                return errf(k->err, k->errlen, -ENOMEM, "out of memory");
        /* the server's certificate must name the host of --server */
        if (c->srv.host_is_ip) {
                if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->srv.host) != 1) {
                        SSL_free(ssl);
                        return errf(k->err, k->errlen, -ENOMEM, "out of memory");
                }
        } else if (SSL_set1_host(ssl, c->srv.host) != 1 || SSL_set_tlsext_host_name(ssl, c->srv.host) != 1) {
                SSL_free(ssl);
                return errf(k->err, k->errlen, -ENOMEM, "out of memory");
        }
        /* the socket belongs to the bufferevent, the SSL too */
        k->bev = bufferevent_openssl_socket_new(k->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!k->bev) {
                SSL_free(ssl);
                return errf(k->err, k->errlen, -ENOMEM, "out of memory");
        }
        bufferevent_openssl_set_allow_dirty_shutdown(k->bev, 1);
        k->conn = evhttp_connection_base_bufferevent_new(k->base, NULL, k->bev, c->srv.host, c->srv.port);
        if (!k->conn) {
                bufferevent_free(k->bev);
                k->bev = NULL;
                return errf(k->err, k->errlen, -ENOMEM, "out of memory");
        }
        evhttp_connection_set_retries(k->conn, 0);
        evhttp_connection_set_max_headers_size(k->conn, 64 * 1024);
        /* the connection and the answer's headers in time; a stream is then unbounded as a
         * whole and without a read timeout (on_headers), each frame capped by the decoder */
        evhttp_connection_set_timeout(k->conn, API_TIMEOUT_S);
        if (!k->streaming)
                evhttp_connection_set_max_body_size(k->conn, (ev_ssize_t) k->max);
        req = evhttp_request_new(on_done, k);
        if (!req)
                return errf(k->err, k->errlen, -ENOMEM, "out of memory");
        evhttp_request_set_error_cb(req, on_error);
        evhttp_request_set_header_cb(req, on_headers);
        if (k->streaming)
                evhttp_request_set_chunked_cb(req, on_chunk);
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        if (c->srv.host_is_ip && strchr(c->srv.host, ':'))
                snprintf(hostport, sizeof(hostport), "[%s]:%u", c->srv.host, c->srv.port);
        else
                snprintf(hostport, sizeof(hostport), "%s:%u", c->srv.host, c->srv.port);
        evhttp_add_header(h, "Host", hostport);
        evhttp_add_header(h, "Accept", "application/x-protobuf");
        evhttp_add_header(h, "User-Agent", "vouchctl");
        if (body_len) {
                evhttp_add_header(h, "Content-Type", "application/x-protobuf");
                evbuffer_add(evhttp_request_get_output_buffer(req), body, body_len);
        }
        if (evhttp_make_request(k->conn, req, cmd, path) != 0) /* req is freed on failure */
                return errf(k->err, k->errlen, -EPROTO, "cannot send the request to %s:%u", c->srv.host, c->srv.port);
        event_base_dispatch(k->base);
        if (k->stopped && k->result == 0)
                return 0; /* the caller had what it wanted from the stream */
        if (!k->done && k->result == 0)
                return errf(k->err, k->errlen, -EPROTO, "the connection to %s:%u ended without an answer", c->srv.host,
                            c->srv.port);
        return k->result;
}

static void call_done(call *k) {
        /* a close_notify first (RFC 8446, 6.1): the server sees an orderly end, not a
         * truncated connection */
        SSL *ssl = k->bev ? bufferevent_openssl_get_ssl(k->bev) : NULL;
        if (ssl && SSL_is_init_finished(ssl))
                (void) SSL_shutdown(ssl);
        /* frees the request still queued on it, and the bufferevent (with its SSL and socket) */
        if (k->conn)
                evhttp_connection_free(k->conn);
        else if (k->bev)
                bufferevent_free(k->bev);
        if (k->base)
                event_base_free(k->base);
        if (k->streaming)
                vf_decoder_done(&k->dec);
        ERR_clear_error();
}

int api_call(api_client *c, const char *method, const char *path, const uint8_t *body, size_t body_len, size_t max,
             api_response *ret, char *err, size_t errlen) {
        call k = { .c = c, .resp = ret, .max = max, .err = err, .errlen = errlen };
        *ret = (api_response) { 0 };
        int r = run(c, &k, method, path, body, body_len);
        call_done(&k);
        if (r < 0)
                api_response_done(ret);
        return r;
}

int api_stream(api_client *c, const char *path, size_t max_frame, api_frame_fn fn, void *userdata, api_response *ret,
               char *err, size_t errlen) {
        call k = { .c = c, .resp = ret, .max = API_ERROR_BODY_MAX, .streaming = true, .fn = fn, .userdata = userdata,
                   .err = err, .errlen = errlen };
        *ret = (api_response) { 0 };
        vf_decoder_init(&k.dec, max_frame);
        int r = run(c, &k, "GET", path, NULL, 0);
        call_done(&k);
        if (r < 0)
                api_response_done(ret);
        return r;
}

static const char *status_reason(int status) {
        switch (status) {
        case 400: return " Bad Request";
        case 401: return " Unauthorized";
        case 403: return " Forbidden";
        case 404: return " Not Found";
        case 405: return " Method Not Allowed";
        case 409: return " Conflict";
        case 413: return " Payload Too Large";
        case 500: return " Internal Server Error";
        case 503: return " Service Unavailable";
        default: return "";
        }
}

const char *api_error_text(const api_response *r, char *buf, size_t size) {
        int n = snprintf(buf, size, "HTTP %d%s", r->status, status_reason(r->status));
        if (n < 0 || (size_t) n >= size)
                return buf;
        Vouch__V1__Error *e = NULL;
        if (r->len && strncmp(r->content_type, "application/x-protobuf", 22) == 0)
                e = vouch__v1__error__unpack(NULL, r->len, r->body);
        if (e && e->message && e->message[0]) {
                snprintf(buf + n, size - (size_t) n, ": %s", e->message);
        } else if (r->len) {
                /* not an Error message: the start of the body, printable characters only */
                size_t o = (size_t) n;
                if (o + 2 < size) {
                        buf[o++] = ':';
                        buf[o++] = ' ';
                }
                for (size_t i = 0; i < r->len && i < 200 && o + 1 < size; i++)
                        buf[o++] = (r->body[i] >= 0x20 && r->body[i] < 0x7f) ? (char) r->body[i] : ' ';
                while (o > (size_t) n && buf[o - 1] == ' ')
                        o--;
                buf[o] = '\0';
        }
        if (e)
                vouch__v1__error__free_unpacked(e, NULL);
        /* the server's text is a peer's: no control characters */
        for (char *p = buf; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = ' ';
        return buf;
}
