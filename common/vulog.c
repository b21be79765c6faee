/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vulog.h"

int vu_log_level = LOG_INFO;
static const char *program = "vouch";
static vu_log_format format = VU_LOG_TEXT;

void vu_log_setup(const char *name, vu_log_format f) {
        program = name;
        format = f;
}

int vu_log_format_parse(const char *s, vu_log_format *ret) {
        if (strcmp(s, "text") == 0)
                *ret = VU_LOG_TEXT;
        else if (strcmp(s, "json") == 0)
                *ret = VU_LOG_JSON;
        else
                return -EINVAL;
        return 0;
}

void vu_logv(int level, const char *fmt, va_list ap) {
        static const char *const names[] = { "error", "warning", "info", "debug" };
        char ts[40], msg[4096];
        struct timespec now;
        struct tm tm;
        if (level > vu_log_level || level < LOG_ERR)
                return;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
        if (format == VU_LOG_TEXT) {
                flockfile(stderr);
                fprintf(stderr, "%s %s %s: ", ts, program, names[level]);
                vfprintf(stderr, fmt, ap);
                fputc('\n', stderr);
                funlockfile(stderr);
                return;
        }
        /* JSON: the message formatted first (a longer one is cut, and says so), then escaped */
        int len = vsnprintf(msg, sizeof(msg), fmt, ap);
        if (len >= (int) sizeof(msg))
                memcpy(msg + sizeof(msg) - 16, " ... [cut]", 11);
        json_object *o = json_object_new_object();
        const char *line = NULL;
        if (o && json_object_object_add(o, "time", json_object_new_string(ts)) == 0 &&
            json_object_object_add(o, "program", json_object_new_string(program)) == 0 &&
            json_object_object_add(o, "level", json_object_new_string(names[level])) == 0 &&
            json_object_object_add(o, "message", json_object_new_string(len < 0 ? fmt : msg)) == 0)
                line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        flockfile(stderr);
        if (line)
                fprintf(stderr, "%s\n", line);
        else /* out of memory: the text form rather than nothing */
                fprintf(stderr, "%s %s %s: %s\n", ts, program, names[level], len < 0 ? fmt : msg);
        funlockfile(stderr);
        json_object_put(o);
}

void vu_log(int level, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vu_logv(level, fmt, ap);
        va_end(ap);
}
