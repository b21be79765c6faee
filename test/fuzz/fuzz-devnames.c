/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the parser of vouchd's --device-names file (verifier/server/devnames.h): the
 * operator's DNS names for device certificates. The input is the whole file. Checks the
 * error contract, that every error says what and where, and that what a parse keeps are
 * only DNS host names within the limits, found again by their device id. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "devnames.h"
#include "fuzz.h"

static int hexval(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        devnames *names = (devnames *) 1; /* must be left alone on failure */
        char err[512];
        int r = devnames_parse((const char *) data, size, &names, err, sizeof(err));
        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EEXIST || r == -E2BIG || r == -ENOMEM);
        if (r < 0) {
                FUZZ_CHECK(names == (devnames *) 1);
                FUZZ_CHECK(err[0] && memchr(err, 0, sizeof(err)));
                FUZZ_CHECK_TEXT(err);
                return 0;
        }
        size_t found = 0;
        /* every line that starts with an id: its names, each a lowercase host name */
        for (size_t pos = 0; pos < size;) {
                const char *s = (const char *) data + pos;
                const char *nl = memchr(s, '\n', size - pos);
                size_t l = nl ? (size_t) (nl - s) : size - pos, k = 0;
                pos += l + 1;
                while (k < l && (s[k] == ' ' || s[k] == '\t'))
                        k++;
                if (l - k < DEVNAMES_ID_LEN)
                        continue;
                char id[DEVNAMES_ID_LEN + 1];
                bool ok = true;
                for (size_t i = 0; ok && i < DEVNAMES_ID_LEN; i++)
                        ok = hexval(s[k + i]);
                if (!ok)
                        continue;
                memcpy(id, s + k, DEVNAMES_ID_LEN);
                id[DEVNAMES_ID_LEN] = 0;
                const char *const *list = NULL;
                size_t n = devnames_find(names, id, &list);
                FUZZ_CHECK(n > 0 && n <= DEVNAMES_PER_DEVICE);
                found++;
                for (size_t i = 0; i < n; i++) {
                        size_t len = strlen(list[i]);
                        FUZZ_CHECK(len > 0 && len <= DEVNAMES_NAME_MAX);
                        for (size_t j = 0; j < len; j++) {
                                char c = list[i][j];
                                FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
                        }
                        FUZZ_CHECK(list[i][0] != '.' && list[i][0] != '-' && list[i][len - 1] != '.');
                }
        }
        FUZZ_CHECK(found == devnames_count(names));
        devnames_free(names);
        return 0;
}
