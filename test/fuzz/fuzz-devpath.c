/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the UEFI device path printer, vc_devpath_to_text (UEFI 2.10 section 10), which reads
 * device paths from EV_EFI_BOOT_SERVICES_APPLICATION events and Boot#### variables. The
 * input is one device path. Also feeds the same bytes to vc_utf16_to_utf8, which renders
 * file path nodes and variable names. Checks the text cap and the error contract. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "uefi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = (char *) data; /* must be left alone on failure */
        int r = vc_devpath_to_text(data, size, &text);

        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -E2BIG || r == -ENOMEM);
        if (r == 0) {
                FUZZ_CHECK(text && text != (char *) data);
                FUZZ_CHECK(strlen(text) < VC_DEVPATH_MAX_TEXT);
                FUZZ_CHECK_TEXT(text);
                free(text);
        } else
                FUZZ_CHECK(text == (char *) data);

        char *s = vc_utf16_to_utf8(data, size / 2);
        if (s) {
                /* at most 3 bytes of UTF-8 per code unit */
                FUZZ_CHECK(strlen(s) <= size / 2 * 3);
                free(s);
        }
        if (size >= 16) {
                char g[VC_GUID_STR_LEN];
                uint8_t back[16];
                vc_guid_to_string(data, g);
                FUZZ_CHECK(strlen(g) == VC_GUID_STR_LEN - 1);
                FUZZ_CHECK(vc_guid_from_string(g, back) == 0 && memcmp(back, data, 16) == 0);
        }
        return 0;
}
