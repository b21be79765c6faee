/* SPDX-License-Identifier: Apache-2.0 */
/* store.h on PostgreSQL: not yet. */
#include <errno.h>
#include <stdio.h>

#include "store-backend.h"

static int pg_open(vs_store *s, const char *url, unsigned flags, vs_open_info *info, char *err, size_t errlen) {
        snprintf(err, errlen, "%s: the PostgreSQL store is not built yet", url);
        return -ENOTSUP;
}

const vs_backend vs_backend_pg = {
        .name = "postgresql",
        .open = pg_open,
};
