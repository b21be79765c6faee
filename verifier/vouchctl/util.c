/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vouchctl.h"

int read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len) {
        int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
        size_t len = 0, cap = 0;
        uint8_t *buf = NULL;

        if (fd < 0) {
                fprintf(stderr, "vouchctl: cannot open %s: %s\n", path, strerror(errno));
                return -errno;
        }
        for (;;) {
                if (len == cap) {
                        if (cap > max) {
                                fprintf(stderr, "vouchctl: %s is larger than the limit of %zu bytes\n", path, max);
                                free(buf);
                                if (fd != STDIN_FILENO)
                                        close(fd);
                                return -E2BIG;
                        }
                        size_t ncap = cap ? cap * 2 : 65536;
                        uint8_t *nb = realloc(buf, ncap + 1);
                        if (!nb) {
                                free(buf);
                                if (fd != STDIN_FILENO)
                                        close(fd);
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
                        fprintf(stderr, "vouchctl: cannot read %s: %s\n", path, strerror(e));
                        free(buf);
                        if (fd != STDIN_FILENO)
                                close(fd);
                        return -e;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (fd != STDIN_FILENO)
                close(fd);
        if (len > max) {
                fprintf(stderr, "vouchctl: %s is larger than the limit of %zu bytes\n", path, max);
                free(buf);
                return -E2BIG;
        }
        buf[len] = '\0'; /* room was reserved: text parsers may rely on it */
        *ret = buf;
        *ret_len = len;
        return 0;
}
