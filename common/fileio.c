/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"

static int read_fd(int fd, size_t max, uint8_t **ret, size_t *ret_len) {
        size_t len = 0, cap = 0;
        uint8_t *buf = NULL;

        for (;;) {
                if (len == cap) {
                        /* one byte past max is enough to know the file is too large */
                        if (cap > max) {
                                free(buf);
                                return -EFBIG;
                        }
                        size_t ncap = cap ? cap * 2 : 16384;
                        if (ncap > max + 1)
                                ncap = max + 1;
                        if (ncap <= cap)
                                ncap = cap + 1;
                        uint8_t *nb = realloc(buf, ncap + 1);
                        if (!nb) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = nb;
                        cap = ncap;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int e = errno;
                        free(buf);
                        return -e;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len > max) {
                free(buf);
                return -EFBIG;
        }
        buf[len] = 0;
        *ret = buf;
        *ret_len = len;
        return 0;
}

int vu_read_file(int dirfd, const char *path, size_t max, uint8_t **ret, size_t *ret_len) {
        if (strcmp(path, "-") == 0)
                return read_fd(STDIN_FILENO, max, ret, ret_len);
        int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        int r = read_fd(fd, max, ret, ret_len);
        close(fd);
        return r;
}
