/* SPDX-License-Identifier: Apache-2.0 */
/* Tells the service manager how a long-running program is doing (systemd's Type=notify:
 * sd_notify(3), "READY=1", "STOPPING=1", "STATUS=..."), when built with libsystemd (meson
 * -Dsystemd, which adds sd_notify_dep and its VOUCH_HAVE_LIBSYSTEMD). Without libsystemd, or
 * when NOTIFY_SOCKET is not set (not started by systemd), it does nothing: a program never
 * fails because nobody listens. The arguments are a printf format and its values. */
#pragma once

#ifdef VOUCH_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#define vu_notify(...) ((void) sd_notifyf(0, __VA_ARGS__))
#else
#define vu_notify(...) ((void) 0)
#endif
