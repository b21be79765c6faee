/* SPDX-License-Identifier: Apache-2.0 */
/* vouchd's log: one line per event on stderr, UTC timestamp to the millisecond, a level.
 * The edge logs once per failure; library code (core, store) never logs. Any thread. */
#pragma once

#define LOG_ERR 0
#define LOG_WARN 1
#define LOG_INFO 2
#define LOG_DEBUG 3

/* Lines above this level are dropped (set once at start, before any thread). */
extern int vlog_level;

void vlog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
