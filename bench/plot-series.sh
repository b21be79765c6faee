#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A soak over time, from the CSV that bench/run --series wrote: vouchd's RSS and the
# database / WAL sizes (top), attestations per second and the share of attestations stored
# within 50 ms of their challenge (bottom). Needs gnuplot (Debian: gnuplot-nox); not used
# by CI.
#   bench/plot-series.sh OUT.png SERIES.csv [SCENARIO]
set -euo pipefail
if (($# < 2)); then
        echo "usage: $0 OUT.png SERIES.csv [SCENARIO]" >&2
        exit 2
fi
command -v gnuplot >/dev/null || { echo "$0: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 2; }
out=$1 csv=$2 scen=${3:-}
head -n1 "$csv" | grep -q '^scenario,t_s,vouchd_rss_kib,' || { echo "$0: $csv is not a bench/run --series CSV" >&2; exit 2; }
data=$(mktemp)
trap 'rm -f "$data"' EXIT
# t rss_mib db_mib wal_mib att_per_s within_50ms_pct connected
tail -n +2 "$csv" | awk -F, -v s="$scen" '(s == "" || $1 == s) && $10 != "" {
        printf "%s %.1f %.1f %.1f %s %.2f %s\n", $2, $3 / 1024, $12 / 1024, $13 / 1024, $7, 100 * $10, $5 }' >"$data"
[[ -s $data ]] || { echo "$0: no samples${scen:+ of scenario $scen}" >&2; exit 2; }
agents=$(awk 'NR == 1 { print $7 }' "$data")
gnuplot <<GP
set terminal pngcairo size 900,700 noenhanced font ",10"
set output "$out"
set multiplot layout 2,1 title "vouchd soak: $agents connected agents (bench/run --series)"
set grid
set key center right
set xlabel "seconds into the window"
set ylabel "MiB"
set yrange [0:*]
plot "$data" using 1:2 with linespoints pt 7 title "vouchd RSS", \
     "$data" using 1:3 with linespoints pt 5 title "database file", \
     "$data" using 1:4 with linespoints pt 9 title "WAL file"
set ylabel "attestations per second"
set y2label "% stored within 50 ms"
set yrange [0:*]
set y2range [90:100.5]
set ytics nomirror
set y2tics
plot "$data" using 1:5 with linespoints pt 7 title "attestations/s" axes x1y1, \
     "$data" using 1:6 with linespoints pt 5 title "% within 50 ms" axes x1y2
unset multiplot
GP
echo "$out"
