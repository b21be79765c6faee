/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Exit codes shared by every command (the interface other tools rely on). */
enum {
        EXIT_OK = 0,
        EXIT_INVALID = 1,  /* evidence is invalid / untrusted */
        EXIT_USAGE = 2,    /* usage error, unreadable or unusable input */
};

/* Reads a whole file (or "-" for stdin) in chunks: securityfs reports size 0, so the size
 * is never trusted. Refuses files over max bytes. Prints the error itself. */
int read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len);

int cmd_eventlog(int argc, char **argv);
int cmd_quote(int argc, char **argv);
