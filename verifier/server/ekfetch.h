/* SPDX-License-Identifier: Apache-2.0 */
/* EK certificates from the TPM makers' services, fetched off the event loops (ekfetch.c). */
#pragma once

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ekcert.h"

typedef struct vouchd vouchd;


/* "intel", "amd" (the makers' public services) or MANUFACTURER=[intel:|amd:]URL. */
int ekfetch_parse(const char *spec, ek_service *ret, char *err, size_t n);
const ek_service *ekfetch_service_for(const vouchd *d, uint32_t manufacturer);
int ekfetch_init(vouchd *d);
/* After the loops stopped: waits (at most 10 s) for fetch threads to hand back. */
void ekfetch_fini(vouchd *d);
/* On base's loop once the fetch is over: error 0 and the DER certificate (the callee copies
 * what it keeps), or error < 0 and why. */
typedef void (*ekfetch_done_fn)(int error, const char *why, const uint8_t *der, size_t der_len, const char *url,
                                void *userdata);
/* peer: the client's address ("host:port"): one fetch at a time per host. Errors (err set):
 * -EBUSY (too many under way, or one for this host), -EAGAIN (this lookup failed less than
 * two minutes ago), -ENOTSUP / -EINVAL (no lookup key for this EK), -ENOMEM. */
int ekfetch_start(vouchd *d, struct event_base *base, const char *peer, const ek_service *svc,
                  const TPMT_PUBLIC *ek, ekfetch_done_fn done, void *userdata, char *err, size_t n);
