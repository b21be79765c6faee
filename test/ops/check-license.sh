#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-license.sh SOURCE_ROOT: LICENSE is the Apache License 2.0 (the text Debian ships in
# /usr/share/common-licenses/Apache-2.0, when it is there), and every SPDX-License-Identifier
# of the tracked files, meson.build's license and debian/copyright say Apache-2.0.
set -euo pipefail
root=${1:?usage: check-license.sh SOURCE_ROOT}
cd "$root"
npass=0
nfail=0
pass() { npass=$((npass + 1)); }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }

if [[ -f LICENSE ]] && grep -q '^ *Apache License$' LICENSE && grep -q '^ *Version 2.0, January 2004$' LICENSE &&
        grep -q 'END OF TERMS AND CONDITIONS' LICENSE; then
        pass
else
        fail "LICENSE is missing or not the Apache License 2.0"
fi
if [[ -f /usr/share/common-licenses/Apache-2.0 ]]; then
        if cmp -s LICENSE /usr/share/common-licenses/Apache-2.0; then
                pass
        else
                fail "LICENSE differs from /usr/share/common-licenses/Apache-2.0"
        fi
fi
if grep -q "license : 'Apache-2.0'" meson.build; then pass; else fail "meson.build's license is not Apache-2.0"; fi
if [[ -f debian/copyright ]]; then
        if grep -q '^License: Apache-2.0$' debian/copyright && ! grep '^License:' debian/copyright | grep -vq 'Apache-2.0$'; then
                pass
        else
                fail "debian/copyright names a license other than Apache-2.0"
        fi
fi
# the identifiers in the sources (tracked files when this is a git checkout; this script's
# own mentions of the tag aside)
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        files() { git ls-files -z; }
else
        files() { find . \( -name 'build*' -o -name 'obj-*' -o -path ./debian \) -prune -o -type f -printf '%P\0'; }
fi
n=0
while IFS= read -r line; do
        [[ ${line%%:*} == test/ops/check-license.sh ]] && continue
        n=$((n + 1))
        [[ $line == *"SPDX-License-Identifier: Apache-2.0"* ]] || fail "not Apache-2.0: $line"
done < <(files | xargs -0 grep -I -H 'SPDX-License-Identifier:' 2>/dev/null || true)
if ((n > 100)); then pass; else fail "only $n SPDX-License-Identifier lines found"; fi
echo "$npass passed, $nfail failed"
((nfail == 0))
