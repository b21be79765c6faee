#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# vouch against tpm2-tools' tpm2_eventlog on every real event log in
# $VOUCH_SHARED_DIR/eventlogs (all files but *.json and *.md).
#
# For each log, run `tpm2_eventlog FILE` (with a timeout) and record whether it fails (a
# non-zero exit, a signal such as SIGSEGV, or the timeout), then `vouchctl eventlog
# replay FILE --json`.
# Asserts:
#   * where tpm2_eventlog fails, vouch handles the log: either exit 0 with valid JSON that
#     equals every bank/PCR of FILE.pcrs.json when that file exists, or exit 2 with a
#     non-empty message on stderr; never a crash (exit > 128) or a timeout;
#   * where tpm2_eventlog succeeds, vouch succeeds too (exit 0).
# Not asserted, shown in the table: whether tpm2_eventlog's PCR values agree with vouch's
# (banks both report) and whether vouch matches FILE.pcrs.json where tpm2_eventlog works.
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

require_tools tpm2_eventlog jq timeout
require_shared_data
require_vouchctl

readonly TOOL_TIMEOUT=60
start_time=$SECONDS
T=$(mktemp -d "${TMPDIR:-/tmp}/vouch-eventlog-compat.XXXXXX")
cleanup() {
        local rc=$?
        trap - EXIT ERR
        rm -rf "$T"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
trap 'echo "$ts_name: FATAL: command failed (line $LINENO): $BASH_COMMAND" >&2' ERR

root=$VOUCH_SHARED_DIR/eventlogs
mapfile -d '' files < <(find "$root" -type f ! -name '*.json' ! -name '*.md' -print0 | sort -z)
((${#files[@]} > 0)) || skip_or_fail "shared data not found at $root (no event logs in it)"

first_line() { grep -m 1 -v '^[[:space:]]*$' "$1" | cut -c 1-"${2:-70}" || true; }

npass=0
nfail=0
failures=()
tool_failed=()
rows=()

for f in "${files[@]}"; do
        rel=${f#"$root"/}
        rm -f "$T"/*

        # tpm2_eventlog
        trc=0
        timeout -k 5 "$TOOL_TIMEOUT" tpm2_eventlog "$f" >"$T/tool.out" 2>"$T/tool.err" || trc=$?
        if ((trc == 0)); then
                tres="ok"
        else
                tres="FAILS: $(describe_status "$trc")"
                why=$(grep -m 1 'ERROR' "$T/tool.err" | cut -c 1-60 || true)
                [[ -n $why ]] && tres+=" ($why)"
                tool_failed+=("$rel: $tres")
        fi

        # vouchctl
        vrc=0
        timeout -k 5 "$TOOL_TIMEOUT" "$VOUCHCTL" eventlog replay "$f" --json >"$T/vouch.json" 2>"$T/vouch.err" || vrc=$?
        problem=""
        vres=""
        if ((vrc == 0)); then
                if ! jq -e 'type == "object" and ([.[] | type == "object"] | all)' "$T/vouch.json" >/dev/null 2>&1; then
                        problem="exit 0 but the output is not a JSON object of banks"
                        vres="exit 0, bad JSON"
                elif [[ -f $f.pcrs.json ]]; then
                        bad=$(pcr_json_mismatches "$f.pcrs.json" "$T/vouch.json" | tr '\n' ' ')
                        total=$(jq '[.[] | length] | add // 0' "$f.pcrs.json")
                        if [[ -z $bad ]]; then
                                vres="ok, $total/$total expected PCRs match"
                        else
                                vres="ok, but differs from .pcrs.json at: $bad"
                                # Asserted only where tpm2_eventlog fails (see the header).
                                ((trc == 0)) || problem="replay differs from $rel.pcrs.json at: $bad"
                        fi
                else
                        vres="ok (no .pcrs.json)"
                fi
        elif ((vrc == 2)); then
                msg=$(first_line "$T/vouch.err" 60)
                vres="exit 2: ${msg:-<empty stderr>}"
                if ((trc == 0)); then
                        problem="tpm2_eventlog parses it but vouch rejects it: $(first_line "$T/vouch.err" 200)"
                elif [[ -z $msg ]]; then
                        problem="exit 2 with an empty error message"
                fi
        else
                vres="$(describe_status "$vrc")"
                if ((vrc > 128)); then
                        problem="vouchctl crashed: $vres; stderr: $(first_line "$T/vouch.err" 200)"
                else
                        problem="unexpected $vres; stderr: $(first_line "$T/vouch.err" 200)"
                fi
        fi

        # Informational: do tpm2_eventlog's PCR values agree with vouch's?
        agree="-"
        if ((trc == 0 && vrc == 0)); then
                sed -n '/^pcrs:/,$p' "$T/tool.out" | pcr_listing_to_json >"$T/tool.json" 2>/dev/null || echo '{}' >"$T/tool.json"
                # Only the banks both report.
                jq --slurpfile v "$T/vouch.json" 'with_entries(select(.key as $k | $v[0] | has($k)))' \
                        "$T/tool.json" >"$T/tool.common.json"
                jq --slurpfile t "$T/tool.json" 'with_entries(select(.key as $k | $t[0] | has($k)))' \
                        "$T/vouch.json" >"$T/vouch.common.json"
                diffs=$( (pcr_json_mismatches "$T/vouch.common.json" "$T/tool.common.json"
                        pcr_json_mismatches "$T/tool.common.json" "$T/vouch.common.json") | sort -u -V | tr '\n' ' ')
                if [[ -n $diffs ]]; then
                        agree="differ: $diffs"
                elif [[ $(jq 'length' "$T/tool.common.json") == 0 ]]; then
                        agree="no common bank"
                else
                        agree="same"
                fi
        fi

        if [[ -z $problem ]]; then
                npass=$((npass + 1))
                mark=ok
        else
                nfail=$((nfail + 1))
                mark=FAIL
                failures+=("$rel: $problem")
        fi
        rows+=("$(printf '%-4s %-58s | %-45s | %s | %s' "$mark" "$rel" "$tres" "$vres" "$agree")")
done

echo
printf '%-4s %-58s | %-45s | %s | %s\n' "" "file" "tpm2_eventlog $(tpm2_eventlog --version 2>/dev/null | grep -o 'version="[^"]*"' | tr -d '"' || true)" "vouchctl eventlog replay" "tpm2_eventlog PCRs vs vouch"
printf '%s\n' "${rows[@]}"
echo
if ((${#tool_failed[@]})); then
        echo "tpm2_eventlog fails on ${#tool_failed[@]} of ${#files[@]} logs:"
        printf '  %s\n' "${tool_failed[@]}"
else
        echo "tpm2_eventlog fails on none of the ${#files[@]} logs."
fi
if ((nfail)); then
        echo
        echo "FAILURES:"
        printf '  %s\n' "${failures[@]}"
fi
echo
log "${#files[@]} logs: $npass ok, $nfail failed ($((SECONDS - start_time)) s)"
((nfail == 0))
