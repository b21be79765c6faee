/* SPDX-License-Identifier: Apache-2.0 */
/* Readiness: whether vouchd can commit verdicts now, for GET /healthz on the API (mutual TLS)
 * and on --http-listen, a plain-HTTP port without client certificates for load balancers
 * and orchestrators, which also serves GET /v1/crl, the device CRL (devcert.h; health.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct vouchd vouchd;

/* True when verdicts can be committed; otherwise why (n bytes) says what is wrong. */
bool health_ready(vouchd *d, char *why, size_t n);
/* The plain-HTTP health port (d->cfg.http_listen; nothing when not set): a thread of its
 * own serving GET /healthz (200 "ok", 503 "not ready: WHY") and GET /v1/crl. <0 after logging. */
int health_start(vouchd *d);
void health_stop(vouchd *d);
