# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Helpers shared by the integration test scripts (sourced, not run).
#
# Environment (set by test/meson.build):
#   VOUCHCTL          full path of the vouchctl binary
#   VOUCH_SHARED_DIR  folder holding eventlogs/ and quotes/
#   CI                "true": missing data or tools fail the test instead of skipping it

# Meson's exit status for a skipped test.
readonly EXIT_SKIP=77

ts_name=${0##*/}

log() { printf '%s: %s\n' "$ts_name" "$*"; }

die() {
        printf '%s: FATAL: %s\n' "$ts_name" "$*" >&2
        exit 1
}

# A missing prerequisite: a loud skip, or a failure under CI.
# wait_ready PID [TENTHS]: until the vouchd started as PID has printed "ready" into
# $TOP/vouchd.out; the test dies when it exits first (the last lines of $TOP/vouchd.log) or is
# not ready within TENTHS tenths of a second (default 150)
wait_ready() {
        local pid=$1 n=${2:-150} i
        for ((i = 0; i < n; i++)); do
                grep -q ready "$TOP/vouchd.out" && return 0
                kill -0 "$pid" 2>/dev/null || die "vouchd exited: $(tail -n 5 "$TOP/vouchd.log")"
                sleep 0.1
        done
        die "vouchd did not start"
}

skip_or_fail() {
        if [[ ${CI:-} == true ]]; then
                printf '%s: FAILED (CI=true): %s\n' "$ts_name" "$*" >&2
                exit 1
        fi
        printf '\n*** %s: SKIPPED: %s ***\n\n' "$ts_name" "$*" >&2
        exit "$EXIT_SKIP"
}

require_shared_data() {
        local dir=${VOUCH_SHARED_DIR:-}
        if [[ -z $dir ]]; then
                skip_or_fail "shared data not found at <VOUCH_SHARED_DIR unset>"
        fi
        if [[ ! -d $dir/eventlogs ]]; then
                skip_or_fail "shared data not found at $dir (no eventlogs/ folder)"
        fi
}

require_tools() {
        local t missing=()
        for t in "$@"; do
                command -v "$t" >/dev/null 2>&1 || missing+=("$t")
        done
        if ((${#missing[@]})); then
                skip_or_fail "required tools not installed: ${missing[*]}"
        fi
}

require_vouchctl() {
        VOUCHCTL=${VOUCHCTL:-}
        [[ -n $VOUCHCTL ]] || die "VOUCHCTL is not set (run through 'meson test')"
        [[ -x $VOUCHCTL ]] || die "VOUCHCTL=$VOUCHCTL is not an executable file"
}

# Describe an exit status: "exit 0", "exit 2", "signal 11 (SEGV)", "timeout".
describe_status() {
        local rc=$1
        if ((rc == 124)); then
                echo "timeout"
        elif ((rc > 128)); then
                echo "signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
        else
                echo "exit $rc"
        fi
}

# Turn tpm2-tools' PCR listing (tpm2_pcrread, the "pcrs:" part of tpm2_quote or
# tpm2_eventlog) on stdin into the JSON that vouchctl reads:
# {"sha256": {"0": "hex", ...}, ...}, hex in lower case.
pcr_listing_to_json() {
        jq -R -n '
          reduce inputs as $l ({bank: null, out: {}};
            if ($l | test("^\\s+[a-z][a-z0-9_]*:\\s*$")) then
              .bank = ($l | gsub("[\\s:]"; "")) | .out[.bank] = {}
            elif .bank != null and ($l | test("^\\s+[0-9]+\\s*:\\s*0x[0-9a-fA-F]+\\s*$")) then
              ($l | capture("^\\s+(?<p>[0-9]+)\\s*:\\s*0x(?<v>[0-9a-fA-F]+)")) as $c
              | .out[.bank][$c.p] = ($c.v | ascii_downcase)
            else . end)
          | .out'
}

# Print "bank:pcr" for every value of the expected JSON file ($1) that the actual JSON
# file ($2) lacks or holds differently (hex compared case-insensitively). Empty: all equal.
pcr_json_mismatches() {
        jq -r -n --slurpfile exp "$1" --slurpfile act "$2" '
          $exp[0] | to_entries[] | .key as $b | .value | to_entries[]
          | select(((($act[0][$b] // {})[.key] // "") | ascii_downcase) != (.value | ascii_downcase))
          | "\($b):\(.key)"'
}

# proxy DIR MODE [ARGS...]: vouch_client.py's recording proxy in front of vouchd at VPORT
# (its CA and server key in $TOP/state): record-proxy, cert-proxy DER... (adds the
# certificates to each verdict) or certify-proxy ATTEST SIG; replaces a proxy running
# (PROXY_PID); sets PPORT, where the agent connects.
proxy() {
        local dir=$1 mode=$2 i
        shift 2
        [[ -z ${PROXY_PID:-} ]] || { kill -KILL "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null || true; }
        mkdir -p "$dir"
        python3 "$(dirname "${BASH_SOURCE[0]}")/vouch_client.py" 127.0.0.1 "$VPORT" "$TOP/state/ca.pem" "$mode" \
                "$TOP/state/server.pem" "$TOP/state/server.key" "$dir" "$@" 2>"$dir/proxy.err" &
        PROXY_PID=$!
        for ((i = 0; i < 100; i++)); do
                [[ -s $dir/port ]] && break
                kill -0 "$PROXY_PID" 2>/dev/null || die "the proxy exited: $(cat "$dir/proxy.err")"
                sleep 0.1
        done
        [[ -s $dir/port ]] || die "the proxy did not start"
        PPORT=$(cat "$dir/port")
}
