#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The documentation pages hold together: every relative link in README.md, docs/*.md,
# golden/README.md, ekca/SOURCES.md and BENCHMARKS.md names a file that exists, and
# docs/architecture.svg is what Graphviz makes of docs/architecture.dot.
set -euo pipefail
root=${1:?usage: check-docs.sh SOURCE_ROOT}
cd "$root"
npass=0
nfail=0
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
for page in README.md docs/*.md golden/README.md ekca/SOURCES.md BENCHMARKS.md; do
        dir=$(dirname "$page")
        # [text](target) with a relative target; anchors and URLs aside
        while read -r target; do
                file=${target%%#*}
                [[ -z $file ]] && continue
                if [[ -e $dir/$file ]]; then
                        npass=$((npass + 1))
                else
                        fail "$page links to $target, which does not exist"
                fi
        done < <(grep -oE '\]\([^)#][^)]*\)' "$page" | sed 's/^](\(.*\))$/\1/' | grep -vE '^(https?|mailto):' || true)
done
if command -v dot >/dev/null 2>&1; then
        if dot -Tsvg docs/architecture.dot | cmp -s - docs/architecture.svg; then
                npass=$((npass + 1))
        else
                fail "docs/architecture.svg is not what docs/architecture.dot makes: dot -Tsvg docs/architecture.dot -o docs/architecture.svg"
        fi
elif [[ ${CI:-} == true ]]; then
        fail "Graphviz (dot) is not installed"
else
        echo "*** check-docs: SKIPPED the picture check: Graphviz (dot) is not installed ***"
fi
echo "$npass passed, $nfail failed"
((nfail == 0))
