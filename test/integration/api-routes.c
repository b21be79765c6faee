/* SPDX-License-Identifier: Apache-2.0 */
/* Prints the policy-engine API's endpoints as vouchd routes them (api_routes), one
 * "METHOD PATH" a line: what test-api-forms.sh holds docs/openapi.yaml against. */
#include <stdio.h>

#include "api.h"

int main(void) {
        static const char *const names[] = { [API_METHOD_GET] = "GET", [API_METHOD_POST] = "POST",
                                             [API_METHOD_PUT] = "PUT" };
        size_t n;
        const api_route *r = api_routes(&n);
        for (size_t i = 0; i < n; i++) {
                if ((size_t) r[i].method >= sizeof(names) / sizeof(names[0]) || !names[r[i].method])
                        return 1;
                printf("%s %s\n", names[r[i].method], r[i].path);
        }
        return fflush(stdout) == 0 ? 0 : 1;
}
