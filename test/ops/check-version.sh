#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-version.sh VERSION BINARY...: each BINARY --version prints "NAME VERSION" (NAME its
# file name) on one line and exits 0, and its --help mentions --version.
set -euo pipefail
version=$1
shift
fails=0
for bin in "$@"; do
        name=${bin##*/}
        rc=0
        out=$("$bin" --version 2>&1) || rc=$?
        if [[ $rc != 0 || $out != "$name $version" ]]; then
                echo "FAIL - $name --version: exit $rc, printed \"$out\", expected \"$name $version\""
                fails=$((fails + 1))
        else
                echo "ok   - $name --version: $out"
        fi
        if ! "$bin" --help 2>&1 | grep -q -- '--version'; then
                echo "FAIL - $name --help does not mention --version"
                fails=$((fails + 1))
        fi
done
((fails == 0)) || exit 1
echo "$# passed, 0 failed"
