/* SPDX-License-Identifier: Apache-2.0 */
/* vouchd's log: the programs' one format (common/vulog.h: UTC timestamp to the millisecond,
 * a level; text or JSON lines). The edge logs once per failure; library code (core, store)
 * never logs. Any thread. */
#pragma once

#include "vulog.h"

#define vlog vu_log
#define vlog_level vu_log_level
