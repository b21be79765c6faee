#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the libFuzzer harnesses with clang (ASan + UBSan) and runs each for a while on its
# seed corpus plus the real data of the shared dir. Fails when any harness crashes, leaks,
# hits undefined behaviour, times out or breaks an invariant.
#
# Usage: run-fuzzers.sh [SECONDS [BUILDDIR [HARNESS...]]]
#   SECONDS   per harness (default 60)
#   BUILDDIR  clang build dir (default build-fuzz-clang in the project root); configured
#             here with -Dfuzzing=true -Db_sanitize=none if it does not exist yet (the
#             harnesses bring their own sanitizer flags; a global b_sanitize would only
#             slow the rest of the build down)
#   HARNESS   fuzz-eventlog, fuzz-quote, fuzz-certify, fuzz-pcrs, fuzz-devpath, fuzz-golden, fuzz-verdict, fuzz-devnames
#             (default: all)
# Environment: VOUCH_SHARED_DIR (default: ../shared next to the project), CC (default clang),
# FUZZ_OUT (results; default BUILDDIR/fuzz-results), FUZZ_ARGS (more libFuzzer flags).
#
# The repository is not modified: each harness fuzzes a temporary copy of its seed corpus,
# and the shared data is read in place. Crash inputs are kept in FUZZ_OUT/HARNESS/; add a
# reproducer to test/fuzz/corpus/HARNESS/ once the bug is fixed (the replay test then
# guards against its return).

set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${1:-60}
builddir=${2:-$root/build-fuzz-clang}
shift $(( $# > 2 ? 2 : $# ))
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(fuzz-eventlog fuzz-quote fuzz-certify fuzz-pcrs fuzz-devpath fuzz-golden fuzz-verdict fuzz-devnames)
shared=${VOUCH_SHARED_DIR:-$root/../shared}
out=${FUZZ_OUT:-$builddir/fuzz-results}
export CC=${CC:-clang}

case $seconds in
        ''|*[!0-9]*) echo "run-fuzzers: SECONDS must be a number, got '$seconds'" >&2; exit 2 ;;
esac

declare -A max_len=([fuzz-eventlog]=65536 [fuzz-quote]=16384 [fuzz-certify]=8192 [fuzz-pcrs]=16384 [fuzz-devpath]=4096
                   [fuzz-golden]=65536 [fuzz-verdict]=16384 [fuzz-devnames]=8192)
# seed corpora each harness starts from (test/fuzz/corpus/*, copied), other seeds of the
# project (read in place) and real data (folders of the shared dir; read recursively)
declare -A seeds=([fuzz-eventlog]="fuzz-eventlog" [fuzz-quote]="fuzz-quote" [fuzz-certify]="fuzz-certify"
                  [fuzz-pcrs]="fuzz-pcrs" [fuzz-devpath]="fuzz-devpath" [fuzz-golden]="fuzz-golden fuzz-eventlog"
                  [fuzz-verdict]="fuzz-verdict" [fuzz-devnames]="fuzz-devnames")
declare -A project=([fuzz-golden]="golden")
declare -A real=([fuzz-eventlog]="eventlogs quotes ccel" [fuzz-pcrs]="eventlogs quotes ccel" [fuzz-golden]="eventlogs quotes ccel")

for h in "${harnesses[@]}"; do
        [ -n "${max_len[$h]+x}" ] || { echo "run-fuzzers: unknown harness $h" >&2; exit 2; }
done

# ---- build
if [ ! -f "$builddir/build.ninja" ]; then
        meson setup "$builddir" "$root" -Dfuzzing=true -Db_sanitize=none
else
        meson configure "$builddir" -Dfuzzing=true -Db_sanitize=none
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("test/fuzz/$h"); done
ninja -C "$builddir" "${targets[@]}"
for h in "${harnesses[@]}"; do
        if ! nm "$builddir/test/fuzz/$h" 2>/dev/null | grep LLVMFuzzerRunDriver >/dev/null; then
                echo "run-fuzzers: $builddir/test/fuzz/$h is not a libFuzzer binary;" \
                     "is $builddir a clang build (CC=clang)?" >&2
                exit 2
        fi
done

if [ ! -d "$shared/eventlogs" ]; then
        if [ "${CI:-}" = true ]; then
                echo "run-fuzzers: no shared data at $shared (set VOUCH_SHARED_DIR)" >&2
                exit 2
        fi
        echo "run-fuzzers: WARNING: no shared data at $shared: fuzzing from the seed corpus only" >&2
fi

# ---- run
work=$(mktemp -d "${TMPDIR:-/tmp}/vouch-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
failed=()
summary=()

for h in "${harnesses[@]}"; do
        corpus=$work/$h
        mkdir -p "$corpus" "$out/$h"
        for s in ${seeds[$h]}; do
                [ -d "$root/test/fuzz/corpus/$s" ] && cp "$root/test/fuzz/corpus/$s/"* "$corpus/"
        done
        inputs=("$corpus")
        for sub in ${project[$h]:-}; do
                inputs+=("$root/$sub")
        done
        for sub in ${real[$h]:-}; do
                [ -d "$shared/$sub" ] && inputs+=("$shared/$sub")
        done
        log=$out/$h.log
        echo "== $h: ${seconds}s, -max_len=${max_len[$h]}, inputs: ${inputs[*]}"
        set +e
        # -timeout: one input taking 10 s is a bug (every parser is linear and capped);
        # -rss_limit_mb also caps a single malloc, which catches an unchecked size.
        # shellcheck disable=SC2086
        "$builddir/test/fuzz/$h" \
                -max_total_time="$seconds" -max_len="${max_len[$h]}" -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$out/$h/" ${FUZZ_ARGS:-} \
                "${inputs[@]}" >"$log" 2>&1
        rc=$?
        set -e
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        cov=$(grep -a -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 || true)
        if [ $rc -ne 0 ]; then
                failed+=("$h")
                echo "!! $h FAILED (exit $rc); log: $log" >&2
                grep -a -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*invariant violated|.* in text "|artifact_prefix)' \
                        "$log" | cut -c1-300 | head -20 >&2 || true
                summary+=("$h: FAILED (exit $rc), ${execs:-?} runs; artifacts in $out/$h/")
        else
                summary+=("$h: ok, ${execs:-?} runs, ${rate:-?} exec/s, $cov")
        fi
done

echo
echo "== summary (${seconds}s per harness; logs and artifacts in $out)"
printf '   %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
        echo "run-fuzzers: ${#failed[@]} harness(es) failed: ${failed[*]}" >&2
        exit 1
fi
