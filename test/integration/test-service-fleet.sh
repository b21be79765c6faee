#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# 50 agents, each with its own swtpm, enroll and attest concurrently against one vouchd;
# all get a TRUSTED verdict. (VOUCH_FLEET_AGENTS changes the count.)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}"
require_tools swtpm swtpm_setup swtpm_ioctl tpm2_pcrextend jq
require_shared_data
require_vouchctl
N=${VOUCH_FLEET_AGENTS:-50}
LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-uefiservices.bin
[[ -f $LOG ]] || skip_or_fail "shared data not found at $LOG"

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-fleet-test.XXXXXX")
VOUCHD_PID=""
cleanup() {
        local rc=$?
        set +e
        [[ -n $VOUCHD_PID ]] && kill -KILL "$VOUCHD_PID" 2>/dev/null
        for p in "$TOP"/tpm-*/pid; do
                [[ -f $p ]] && kill -KILL "$(cat "$p")" 2>/dev/null
        done
        ((rc != 0)) && tail -n 20 "$TOP/vouchd.log" 2>/dev/null
        rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

"$VOUCHCTL" eventlog show "$LOG" --json >"$TOP/show.json"
mkdir -p "$TOP/golden"
"$VOUCHCTL" golden create --eventlog "$LOG" --name fleet >"$TOP/golden/fleet.json"

# one provisioned swtpm with the log measured, in $TOP/tpm-$1 (runs in a subshell)
make_tpm() (
        T=$TOP/tpm-$1
        mkdir -p "$T"
        : >"$T/tpm2.log"
        SWTPM_PID=""
        provision_swtpm sha1,sha256
        start_swtpm
        echo "$SWTPM_PID" >"$T/pid"
        echo "$TPM2TOOLS_TCTI" >"$T/tcti"
        extend_log "$TOP/show.json" "sha1 sha256"
        cat "$T/ca/issuercert.pem" "$T/ca/swtpm-localca-rootca-cert.pem" >"$T/ekca.pem"
)

start=$SECONDS
for ((i = 0; i < N; i += 2)); do
        make_tpm "$i" &
        ((i + 1 < N)) && make_tpm $((i + 1)) &
        wait
done
log "$N swtpms provisioned in $((SECONDS - start)) s"
cat "$TOP"/tpm-*/ekca.pem >"$TOP/ekca.pem"

"$VOUCHD" init --state-dir "$TOP/state" >/dev/null
VPORT=$(free_port)
"$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" --default-golden fleet \
        --ek-ca "$TOP/ekca.pem" --interval 3600 >"$TOP/vouchd.out" 2>"$TOP/vouchd.log" &
VOUCHD_PID=$!
for ((i = 0; i < 100; i++)); do
        grep -q ready "$TOP/vouchd.out" && break
        sleep 0.1
done
grep -q ready "$TOP/vouchd.out" || die "vouchd did not start"

start=$SECONDS
agents=()
for ((i = 0; i < N; i++)); do
        t=$TOP/tpm-$i
        (timeout 120 "$VOUCH_AGENT" --server "127.0.0.1:$VPORT" --ca "$TOP/state/ca.pem" --tcti "$(cat "$t/tcti")" \
                --eventlog "$LOG" --state-dir "$t/agent" --once >"$t/out" 2>"$t/err"
         echo $? >"$t/rc") &
        agents+=($!)
done
wait "${agents[@]}"
ok=0
ids=()
for ((i = 0; i < N; i++)); do
        t=$TOP/tpm-$i
        if [[ $(cat "$t/rc") == 0 ]] && grep -q "verdict: TRUSTED" "$t/out"; then
                ok=$((ok + 1))
                ids+=("$(sed -n 's/.*(device \([0-9a-f]*\),.*/\1/p' "$t/out")")
        else
                echo "FAIL - agent $i: exit $(cat "$t/rc"): $(cat "$t/out" "$t/err" | tail -n 3)"
        fi
done
distinct=$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)
log "$ok of $N agents TRUSTED in $((SECONDS - start)) s, $distinct distinct device ids"
kill -TERM "$VOUCHD_PID"
rc=0
wait "$VOUCHD_PID" || rc=$?
VOUCHD_PID=""
fails=$((N - ok))
[[ $distinct == "$ok" ]] || fails=$((fails + 1))
[[ $rc == 0 ]] || { echo "FAIL - vouchd exited $rc"; fails=$((fails + 1)); }
echo "$ok passed, $fails failed"
((fails == 0))
