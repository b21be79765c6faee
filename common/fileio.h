/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a whole small file: the one helper every program outside core uses (core does no
 * I/O). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Reads the whole of path (relative to dirfd, or AT_FDCWD; "-" is standard input) into a
 * new buffer with a NUL byte after the last one (not counted in *ret_len), so a text file can
 * be used as a string. Never cut short: a file larger than max is -EFBIG. Returns 0, or
 * -errno of the open or read that failed, -EFBIG or -ENOMEM; *ret is untouched on error.
 * The caller says what failed and where (strerror(-r) and the path). */
int vu_read_file(int dirfd, const char *path, size_t max, uint8_t **ret, size_t *ret_len);
