/* SPDX-License-Identifier: Apache-2.0 */
/* Operator-assigned DNS names for device certificates (vouchd --device-names FILE, issue 19):
 * besides the device id and its SPIFFE ID, which vouchd derives itself, an operator may name
 * a device (its host names) so that servers that check a client's DNS name can use the
 * certificate. The names come from the operator's file, never from the device.
 *
 * The file: one device per line, "DEVICE_ID NAME [NAME...]" separated by spaces or tabs;
 * blank lines and lines starting with '#' are ignored. DEVICE_ID is the device's id (64
 * lowercase hex digits, GET /v1/devices); each NAME a DNS host name (RFC 1123 labels of
 * letters, digits and '-', 1-63 characters, not starting or ending with '-'; 253 characters
 * at most; no trailing dot, no wildcard), kept in lowercase. At most DEVNAMES_PER_DEVICE
 * names per device; a device listed twice, a name listed twice for one device, a NUL byte
 * or a file over DEVNAMES_FILE_MAX bytes make the whole file unusable. Pure: no I/O. */
#pragma once
#include <stddef.h>

#define DEVNAMES_FILE_MAX (16u << 20)
#define DEVNAMES_PER_DEVICE 8
#define DEVNAMES_NAME_MAX 253
#define DEVNAMES_ID_LEN 64

typedef struct devnames devnames;

/* Parses text (len bytes, no NUL needed). On success *ret is allocated (devnames_free).
 * Errors, with "line N: what, expected vs found" in err: -EBADMSG a malformed line,
 * -EEXIST a device or a device's name twice, -E2BIG over a limit, -ENOMEM. */
int devnames_parse(const char *text, size_t len, devnames **ret, char *err, size_t err_size);

/* The names of device id (*ret: an array of them, valid while names lives); 0 when the file
 * does not list it (or names is NULL). */
size_t devnames_find(const devnames *names, const char *id, const char *const **ret);

/* Devices listed. */
size_t devnames_count(const devnames *names);

devnames *devnames_free(devnames *names);
