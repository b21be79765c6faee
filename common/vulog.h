/* SPDX-License-Identifier: Apache-2.0 */
/* The programs' log (vouchd, vouch-agent): one line per event on stderr, in one format for
 * both: "2026-12-06T17:51:45.123Z PROGRAM LEVEL: message" (UTC, milliseconds), or with
 * --log-format json one JSON object per line: {"time": "...", "program": "...", "level":
 * "...", "message": "..."} (for journald's or a collector's structured fields). A line is
 * written whole even when threads log at once. Any thread. */
#pragma once

#include <stdarg.h>

#define LOG_ERR 0
#define LOG_WARN 1
#define LOG_INFO 2
#define LOG_DEBUG 3

typedef enum vu_log_format {
        VU_LOG_TEXT = 0,
        VU_LOG_JSON = 1,
} vu_log_format;

/* Set once at start, before any thread: the program's name, the format, the level above
 * which lines are dropped. */
void vu_log_setup(const char *program, vu_log_format format);
extern int vu_log_level;
/* "text" or "json": 0, or -EINVAL. */
int vu_log_format_parse(const char *s, vu_log_format *ret);

void vu_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vu_logv(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
