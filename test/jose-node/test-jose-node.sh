#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test-jose-node.sh TEST-API-HANDLE-BINARY: the meson test 'jose-node', test-jose.mjs (npm
# jose as the EAR relying party) under node. node comes from .ci/install-packages, jose from
# `npm ci` in this directory (.ci/run does it; nothing is downloaded here). Without them the
# test is skipped (77) with the command that installs them, and fails under CI=true.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
missing() {
        if [[ ${CI:-} == true ]]; then
                echo "FAIL - jose-node: $*"
                exit 1
        fi
        echo "*** jose-node: SKIPPED: $* ***"
        exit 77
}
command -v node >/dev/null 2>&1 || missing "node is not installed (bash .ci/install-packages: Debian's nodejs and npm)"
[[ -f $here/node_modules/jose/package.json ]] ||
        missing "npm jose is not installed in $here (cd test/jose-node && npm ci --no-audit --no-fund; .ci/run does it)"
exec node "$here/test-jose.mjs" "$@"
