/* SPDX-License-Identifier: Apache-2.0 */
/* The policy-engine API (api.c; docs/API.md). */
#pragma once

typedef struct vouchd vouchd;


int api_start(vouchd *d);
void api_stop(vouchd *d);
void api_free(vouchd *d);
