/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

int vlog_level = LOG_INFO;

void vlog(int level, const char *fmt, ...) {
        static const char *const names[] = { "error", "warning", "info", "debug" };
        char ts[32];
        struct timespec now;
        struct tm tm;
        va_list ap;
        if (level > vlog_level || level < LOG_ERR)
                return;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        /* one line, whole, even when threads log at once */
        flockfile(stderr);
        fprintf(stderr, "%s.%03ldZ vouchd %s: ", ts, now.tv_nsec / 1000000, names[level]);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        funlockfile(stderr);
}
