#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Latency percentiles (p50, p99, max) against attestation rate, from one or more CSVs that
# bench/run --csv wrote (e.g. a sweep of --agents). Needs gnuplot (Debian: gnuplot-nox);
# not used by CI.
#   bench/plot.sh OUT.png A.csv [B.csv ...]
set -euo pipefail
if (($# < 2)); then
        echo "usage: $0 OUT.png RUN.csv [RUN.csv ...]" >&2
        exit 2
fi
command -v gnuplot >/dev/null || { echo "$0: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 2; }
out=$1
shift
data=$(mktemp)
trap 'rm -f "$data"' EXIT
# rows other than enroll (its latency is an enrollment's), sorted by rate:
# rate p50 p99 max scenario agents
for f in "$@"; do
        head -n1 "$f" | grep -q '^scenario,agents,attestations_per_s,' || { echo "$0: $f is not a bench/run CSV" >&2; exit 2; }
        tail -n +2 "$f"
done | awk -F, '$1 != "enroll" && $3 > 0 { print $3, $7, $8, $9, $1, $2 }' | sort -n >"$data"
[[ -s $data ]] || { echo "$0: no attestation rows" >&2; exit 2; }
gnuplot <<GP
set terminal pngcairo size 900,560 noenhanced font ",10"
set output "$out"
set title "vouchd: latency challenge received -> verdict received, against attestation rate"
set xlabel "attestations per second (achieved)"
set ylabel "latency (ms)"
set logscale y
set grid
set key top left
plot "$data" using 1:2 with linespoints pt 7 title "p50", \
     "$data" using 1:3 with linespoints pt 5 title "p99", \
     "$data" using 1:4 with linespoints pt 9 title "max", \
     "$data" using 1:3:(sprintf("%s %s", stringcolumn(5), stringcolumn(6))) with labels offset 0,1 font ",8" notitle
GP
echo "$out"
