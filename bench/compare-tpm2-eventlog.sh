#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Whole-process comparison: `vouchctl eventlog replay FILE --json` against tpm2-tools'
# `tpm2_eventlog FILE` on the same real event log, output to /dev/null, RUNS runs of each
# in sequence. Prints mean wall and CPU milliseconds per run and the speed ratio, with
# /bin/true measured the same way as the machine's cost of starting any process.
#
# The runs are split into ROUNDS blocks that alternate between the tools (vouchctl first in
# even rounds, tpm2_eventlog first in odd ones), so that load from other processes on a
# shared machine falls on both alike. Besides the mean over all runs, the best (lowest) block
# mean of each is printed: the least disturbed estimate of what a run costs.
#
# A benchmark: it never fails on timing. Exit 0 with numbers; 77 (skip) when tpm2_eventlog
# is not installed; 1 when the data cannot be read or no log is handled by both tools;
# 2 on a usage error.
#
# Usage: compare-tpm2-eventlog.sh [-n RUNS] [-r ROUNDS] [-m perf|hyperfine|time] [FILE]
#   FILE       default: keylime/binary_bios_measurements (49088 bytes) under
#              $VOUCH_SHARED_DIR/eventlogs, or if one of the tools fails on it, the log
#              closest to 50 KB that both handle
#   -n RUNS    runs per tool (default 200)
#   -r ROUNDS  blocks the runs are split into (default 5)
#   -m METHOD  perf: `perf stat -r` (wall: time elapsed, CPU: task-clock); hyperfine;
#              time: bash `time` around a loop (wall: real, CPU: user + sys). Default: perf
#              if `perf stat` works here, else hyperfine if installed, else time.
# Environment: VOUCHCTL (the vouchctl binary), VOUCH_SHARED_DIR (folder holding eventlogs/),
#              TPM2_EVENTLOG (default tpm2_eventlog).
set -euo pipefail

# Defaults substituted by meson (configure_file) in the build dir's copy of this script.
default_vouchctl='@VOUCHCTL@'
default_shared='@SHARED_DIR@'
case "$default_vouchctl" in @*) default_vouchctl=vouchctl ;; esac
case "$default_shared" in @*) default_shared="$(cd "$(dirname "$0")/../.." && pwd)/shared" ;; esac

VOUCHCTL="${VOUCHCTL:-$default_vouchctl}"
SHARED="${VOUCH_SHARED_DIR:-$default_shared}"
TPM2_EVENTLOG="${TPM2_EVENTLOG:-tpm2_eventlog}"
TARGET_RATIO=3
runs=200
rounds=5
method=
file=

usage() {
        sed -n '/^# Usage:/,/^set -euo/{/^set /d; s/^# \{0,1\}//p}' "$0"
}

positive() {
        case "$2" in
        '' | *[!0-9]* | 0) echo "compare-tpm2-eventlog: $1 needs a positive number, not '$2'" >&2; exit 2 ;;
        esac
}

while getopts "n:r:m:h" opt; do
        case "$opt" in
        n) positive -n "$OPTARG"; runs="$OPTARG" ;;
        r) positive -r "$OPTARG"; rounds="$OPTARG" ;;
        m) method="$OPTARG" ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
        esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || { usage >&2; exit 2; }
[ $# -eq 1 ] && file="$1"
case "$method" in '' | perf | hyperfine | time) ;; *) echo "compare-tpm2-eventlog: unknown method '$method'" >&2; exit 2 ;; esac
[ "$rounds" -le "$runs" ] || rounds="$runs"
per_round=$(((runs + rounds - 1) / rounds))
runs=$((per_round * rounds))

if ! command -v "$TPM2_EVENTLOG" >/dev/null 2>&1; then
        echo "compare-tpm2-eventlog: $TPM2_EVENTLOG not installed (tpm2-tools): skipped"
        exit 77
fi
if ! command -v "$VOUCHCTL" >/dev/null 2>&1; then
        echo "compare-tpm2-eventlog: vouchctl not found at '$VOUCHCTL' (set VOUCHCTL)" >&2
        exit 1
fi
VOUCHCTL="$(command -v "$VOUCHCTL")"
TPM2_EVENTLOG="$(command -v "$TPM2_EVENTLOG")"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# "ok", or why the command failed (exit status and stderr, or the signal that killed it).
status_of() {
        local rc=0
        "$@" >/dev/null 2>"$tmp/stderr" || rc=$?
        if [ "$rc" -eq 0 ]; then
                echo ok
        elif [ "$rc" -gt 128 ]; then
                echo "killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
        else
                echo "exit status $rc: $(head -c 200 "$tmp/stderr" | tr '\n' ' ')"
        fi
}

# Tries a file with both tools; says which failed and returns 1 unless both handle it.
both_handle() {
        local f="$1" v t
        [ -r "$f" ] || { echo "note: cannot read $f"; return 1; }
        v="$(status_of "$VOUCHCTL" eventlog replay "$f" --json)"
        t="$(status_of "$TPM2_EVENTLOG" "$f")"
        [ "$v" = ok ] || echo "note: vouchctl fails on $f: $v"
        [ "$t" = ok ] || echo "note: tpm2_eventlog fails on $f: $t"
        [ "$v" = ok ] && [ "$t" = ok ]
}

if [ -n "$file" ]; then
        [ -r "$file" ] || { echo "compare-tpm2-eventlog: cannot read $file" >&2; exit 1; }
        both_handle "$file" || { echo "compare-tpm2-eventlog: both tools must handle $file" >&2; exit 1; }
else
        logs="$SHARED/eventlogs"
        [ -d "$logs" ] || { echo "compare-tpm2-eventlog: no event logs at $logs (set VOUCH_SHARED_DIR)" >&2; exit 1; }
        preferred="$logs/keylime/binary_bios_measurements"
        # The preferred file first, then every other log by distance from 50 KB.
        candidates="$( { [ -f "$preferred" ] && echo "0 $preferred"
                find "$logs" -type f ! -name '*.json' ! -name '*.md' ! -path "$preferred" -printf '%s %p\n' |
                        awk '{ d = $1 - 50000; if (d < 0) d = -d; print d + 1, $2 }' | sort -n; } | cut -d' ' -f2-)"
        while IFS= read -r f; do
                [ -n "$f" ] || continue
                if both_handle "$f"; then
                        file="$f"
                        break
                fi
        done <<<"$candidates"
        [ -n "$file" ] || { echo "compare-tpm2-eventlog: no log under $logs is handled by both tools" >&2; exit 1; }
fi

# Both tools should arrive at the same PCR values, or the comparison is of different work.
# Not a failure (this is a benchmark), but said.
"$VOUCHCTL" eventlog replay "$file" --json |
        awk -F'"' '/^  "[a-z0-9_]+": \{/ { bank = $2 } /^    "[0-9]+": "/ { print bank "/" $2, $4 }' |
        LC_ALL=C sort >"$tmp/v.pcrs"
"$TPM2_EVENTLOG" "$file" |
        awk '/^pcrs:/ { p = 1; next } p && /^  [a-z0-9_]+:/ { bank = $1; sub(":", "", bank) }
             p && /^    [0-9]+ *: 0x/ { v = $3; sub("^0x", "", v); print bank "/" $1, tolower(v) }' |
        LC_ALL=C sort >"$tmp/t.pcrs"
# "bank/pcr" of every value that differs or that only one tool reports.
differing="$(LC_ALL=C join -a1 -a2 -e none -o 0,1.2,2.2 "$tmp/v.pcrs" "$tmp/t.pcrs" |
        awk '$2 != $3 { printf "%s ", $1 }')"
differing="${differing% }"
if [ ! -s "$tmp/v.pcrs" ]; then
        pcr_check="WARNING: no PCR values read from vouchctl"
elif [ -z "$differing" ]; then
        pcr_check="both tools compute the same $(wc -l <"$tmp/v.pcrs") PCR values"
elif [ -z "$(tr ' ' '\n' <<<"$differing" | grep -v '/0$' || true)" ] &&
        "$VOUCHCTL" eventlog show "$file" >"$tmp/show" 2>/dev/null && grep -q 'StartupLocality' "$tmp/show"; then
        # tpm2-tools 5.4 extends the StartupLocality EV_NO_ACTION event's zero digest into a
        # zero PCR 0; PFP 1.05 10.4.5 never extends EV_NO_ACTION and 10.4.5.3 starts PCR 0 at
        # the locality. The same work for both tools, a different rule.
        pcr_check="same PCR values except $differing: the log has a StartupLocality event, which tpm2_eventlog 5.4 extends into PCR 0"
else
        pcr_check="WARNING: PCR values differ between the tools: $differing"
fi

if [ -z "$method" ]; then
        if command -v perf >/dev/null 2>&1 && perf stat -e task-clock -o /dev/null -- true >/dev/null 2>&1; then
                method=perf
        elif command -v hyperfine >/dev/null 2>&1; then
                method=hyperfine
        else
                method="time"
        fi
fi

# measure NAME CMD...: runs CMD per_round times and appends "wall_ms cpu_ms" (means per
# run) to $tmp/NAME.
measure() {
        local name="$1"
        shift
        case "$method" in
        perf)
                perf stat -r "$per_round" -e task-clock -o "$tmp/out.perf" -- "$@" >/dev/null 2>&1
                awk '/msec task-clock/ { cpu = $1 } /seconds time elapsed/ { wall = $1 * 1000 }
                     END { printf "%.4f %.4f\n", wall, cpu }' "$tmp/out.perf" >>"$tmp/$name"
                ;;
        hyperfine)
                local cmd="" a
                for a in "$@"; do cmd+="$(printf '%q ' "$a")"; done
                hyperfine -N --runs "$per_round" --export-json "$tmp/out.json" -- "$cmd" >/dev/null 2>&1
                # user + system is the CPU time of the process, per run
                awk -F'[:,]' '/"mean"/ { m = $2 } /"user"/ { u = $2 } /"system"/ { s = $2 }
                              END { printf "%.4f %.4f\n", m * 1000, (u + s) * 1000 }' "$tmp/out.json" >>"$tmp/$name"
                ;;
        time)
                local TIMEFORMAT='%R %U %S' i
                { time (for ((i = 0; i < per_round; i++)); do "$@" >/dev/null 2>&1; done); } 2>"$tmp/out.time"
                awk -v n="$per_round" '{ printf "%.4f %.4f\n", $1 * 1000 / n, ($2 + $3) * 1000 / n }' \
                        "$tmp/out.time" >>"$tmp/$name"
                ;;
        esac
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
vouchctl_cmd=("$VOUCHCTL" eventlog replay "$file" --json)
tpm2_cmd=("$TPM2_EVENTLOG" "$file")
# Warm-up: page cache, dynamic loader caches.
"${vouchctl_cmd[@]}" >/dev/null 2>&1
"${tpm2_cmd[@]}" >/dev/null 2>&1
for ((k = 0; k < rounds; k++)); do
        if ((k % 2 == 0)); then
                measure vouchctl "${vouchctl_cmd[@]}"
                measure tpm2 "${tpm2_cmd[@]}"
        else
                measure tpm2 "${tpm2_cmd[@]}"
                measure vouchctl "${vouchctl_cmd[@]}"
        fi
        measure true /bin/true
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"

# "mean_wall mean_cpu best_wall best_cpu" over the blocks of NAME (blocks are equal in size).
summary() {
        awk '{ w += $1; c += $2; if (NR == 1 || $1 < bw) bw = $1; if (NR == 1 || $2 < bc) bc = $2 }
             END { printf "%.3f %.3f %.3f %.3f\n", w / NR, c / NR, bw, bc }' "$tmp/$1"
}
read -r v_wall v_cpu v_best_wall v_best_cpu <<<"$(summary vouchctl)"
read -r t_wall t_cpu t_best_wall t_best_cpu <<<"$(summary tpm2)"
read -r z_wall z_cpu z_best_wall z_best_cpu <<<"$(summary true)"

echo "compare-tpm2-eventlog: whole process, output to /dev/null, $runs runs of each in $rounds alternating rounds"
case "$method" in
perf) echo "method:        perf stat -r (wall: time elapsed, CPU: task-clock)" ;;
hyperfine) echo "method:        hyperfine -N (wall: mean, CPU: user + system)" ;;
time) echo "method:        bash time around a loop (wall: real, CPU: user + sys, divided by the runs)" ;;
esac
echo "file:          $file ($(stat -c %s "$file") bytes)"
echo "vouchctl:      $VOUCHCTL ($("$VOUCHCTL" --version 2>/dev/null | head -1 || true))"
echo "tpm2_eventlog: $TPM2_EVENTLOG ($("$TPM2_EVENTLOG" --version 2>/dev/null | head -1 || true))"
echo "replay check:  $pcr_check"
echo "load average:  $load_before before, $load_after after ($(nproc) CPUs)"
echo
printf '%-34s %10s %10s %10s %10s\n' "ms per run" "mean wall" "mean CPU" "best wall" "best CPU"
printf '%-34s %10.3f %10.3f %10.3f %10.3f\n' "vouchctl eventlog replay --json" "$v_wall" "$v_cpu" "$v_best_wall" "$v_best_cpu"
printf '%-34s %10.3f %10.3f %10.3f %10.3f\n' "tpm2_eventlog" "$t_wall" "$t_cpu" "$t_best_wall" "$t_best_cpu"
printf '%-34s %10.3f %10.3f %10.3f %10.3f\n' "/bin/true (cost of any process)" "$z_wall" "$z_cpu" "$z_best_wall" "$z_best_cpu"
awk -v vw="$v_wall" -v vc="$v_cpu" -v tw="$t_wall" -v tc="$t_cpu" -v bvw="$v_best_wall" -v bvc="$v_best_cpu" \
        -v btw="$t_best_wall" -v btc="$t_best_cpu" -v zw="$z_wall" -v zc="$z_cpu" -v bzw="$z_best_wall" \
        -v bzc="$z_best_cpu" -v target="$TARGET_RATIO" '
function ratio(a, b) { return b > 0 ? a / b : 0 }
BEGIN {
        rw = ratio(tw, vw)
        printf "%-34s %9.2fx %9.2fx %9.2fx %9.2fx\n", "ratio tpm2_eventlog / vouchctl", rw, ratio(tc, vc),
                ratio(btw, bvw), ratio(btc, bvc)
        # What the programs add to starting a process: both minus /bin/true.
        printf "%-34s %9.2fx %9.2fx %9.2fx %9.2fx\n", "  the same, each minus /bin/true", ratio(tw - zw, vw - zw),
                ratio(tc - zc, vc - zc), ratio(btw - bzw, bvw - bzw), ratio(btc - bzc, bvc - bzc)
        printf "\ntarget vouchctl >= %gx faster than tpm2_eventlog (mean wall): %s (%.2fx)\n", target,
                (rw >= target ? "met" : "NOT met"), rw
}'
exit 0
