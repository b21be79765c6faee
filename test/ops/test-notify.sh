#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# systemd's Type=notify (sd_notify(3)), with a stand-in for systemd's notification socket
# (notify-listen.py): vouchd sends READY=1 once its port accepts connections, RELOADING=1
# and READY=1 around a SIGHUP reload, STOPPING=1 when SIGTERM drains it; it runs the same
# with NOTIFY_SOCKET naming no socket. vouch-agent (against a private swtpm) sends READY=1
# once it has read its TPM keys, its verdict as STATUS=, and STOPPING=1 on SIGTERM. Every
# message must come from the main process (systemd's NotifyAccess=main).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source=../integration/lib.sh
. "$src/test/integration/lib.sh"
# shellcheck source=../integration/swtpm.sh
. "$src/test/integration/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}"
require_vouchctl
if [[ ${VOUCH_SD_NOTIFY_BUILT:-1} != 1 ]]; then
        skip_or_fail "built without libsystemd (meson -Dsystemd=disabled, or libsystemd-dev missing): nothing to notify"
fi
require_tools python3 jq swtpm swtpm_setup swtpm_ioctl tpm2_pcrextend

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-notify-test.XXXXXX")
PIDS=()
SWTPM_PID=""
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
cleanup() {
        local rc=$? p
        set +e
        for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
        stop_swtpm
        if ((rc != 0 || nfail != 0)); then
                for f in "$TOP"/*.log "$TOP"/*.err; do
                        [[ -f $f ]] && { echo "--- $f"; tail -n 20 "$f"; }
                done
        fi
        rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

# listen NAME: a notification socket $TOP/NAME.sock, its messages in $TOP/NAME.log
listen() {
        python3 "$here/notify-listen.py" "$TOP/$1.sock" >"$TOP/$1.log" 2>&1 &
        PIDS+=($!)
        for ((i = 0; i < 100; i++)); do
                grep -q LISTENING "$TOP/$1.log" && return 0
                sleep 0.05
        done
        die "notify-listen.py did not start: $(cat "$TOP/$1.log")"
}

# fields NAME PID: the fields PID sent to NAME, one per line, in order
fields() { awk -v pid="$2" '$1 == pid { sub(/^[0-9]+ /, ""); print }' "$TOP/$1.log"; }

# await NAME PID FIELD_REGEX [COUNT]: until PID has sent COUNT (default 1) matching fields (10 s)
await() {
        local n=${4:-1} i
        for ((i = 0; i < 200; i++)); do
                (($(fields "$1" "$2" | grep -cE "$3" || true) >= n)) && return 0
                sleep 0.05
        done
        return 1
}

# foreign NAME PID: fields from anyone but PID (and the listener's own line)
foreign() { awk -v pid="$2" '$1 != pid && $2 != "LISTENING"' "$TOP/$1.log"; }

# stop PID: SIGTERM, then its exit status in RC
stop() {
        kill -TERM "$1"
        RC=0
        wait "$1" || RC=$?
}

# ---- vouchd, with the golden sets and EK CAs of the source tree (no agent) ----
"$VOUCHD" init --state-dir "$TOP/state" >/dev/null
VPORT=$(free_port)
listen d
NOTIFY_SOCKET=$TOP/d.sock "$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" \
        --golden-dir "$src/golden" --default-golden rhel8-uefi --ek-ca "$src/ekca" --threads 1 \
        >"$TOP/vouchd.out" 2>"$TOP/vouchd.err" &
D=$!
PIDS+=("$D")
if await d "$D" '^READY=1$'; then
        pass "vouchd: READY=1 from its main process"
else
        fail "vouchd sent no READY=1 within 10 s (got: $(fields d "$D" | tr '\n' ' '))"
fi
grep -q "ready on 127.0.0.1:$VPORT" "$TOP/vouchd.out" && pass "vouchd: printed ready before notifying" ||
        fail "vouchd: READY=1 without \"ready on\" on stdout"
if (exec 3<>"/dev/tcp/127.0.0.1/$VPORT") 2>/dev/null; then
        pass "vouchd: the agents' port accepts connections once READY=1 is sent"
else
        fail "vouchd: READY=1 sent, but the port $VPORT refuses connections"
fi
fields d "$D" | grep -q '^STATUS=verifying agents on ' && pass "vouchd: STATUS= says what it does" ||
        fail "vouchd: no STATUS="
kill -HUP "$D"
if await d "$D" '^READY=1$' 2 && [[ $(fields d "$D" | grep -E '^(READY|RELOADING)=1$' | tr '\n' ' ') == "READY=1 RELOADING=1 READY=1 " ]]; then
        pass "vouchd: SIGHUP: RELOADING=1, then READY=1"
else
        fail "vouchd: SIGHUP: expected RELOADING=1 then READY=1, got: $(fields d "$D" | tr '\n' ' ')"
fi
stop "$D"
[[ $RC == 0 ]] && pass "vouchd: SIGTERM: exit 0" || fail "vouchd: SIGTERM: exit $RC"
# the listener writes what it receives asynchronously: the datagram may be logged a moment
# after the process exited
await d "$D" '^STOPPING=1$' && pass "vouchd: STOPPING=1 on SIGTERM" ||
        fail "vouchd: no STOPPING=1 on SIGTERM (got: $(fields d "$D" | tr '\n' ' '))"
[[ -z $(foreign d "$D") ]] && pass "vouchd: every message from the main process" ||
        fail "vouchd: messages from another process: $(foreign d "$D")"

# no one listening: vouchd runs all the same
: >"$TOP/vouchd.out"
NOTIFY_SOCKET=$TOP/nobody.sock "$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" \
        --golden-dir "$src/golden" --default-golden rhel8-uefi --ek-ca "$src/ekca" --threads 1 \
        >"$TOP/vouchd.out" 2>>"$TOP/vouchd.err" &
D=$!
PIDS+=("$D")
for ((i = 0; i < 100; i++)); do
        grep -q "ready on" "$TOP/vouchd.out" && break
        sleep 0.1
done
stop "$D"
grep -q "ready on" "$TOP/vouchd.out" && [[ $RC == 0 ]] && pass "vouchd: runs and stops when nobody listens on NOTIFY_SOCKET" ||
        fail "vouchd with NOTIFY_SOCKET naming no socket: exit $RC, stdout: $(cat "$TOP/vouchd.out")"

# ---- vouch-agent, against a private swtpm that measured a (synthetic) boot ----
T=$TOP/tpm
mkdir -p "$T/w"
: >"$T/tpm2.log"
provision_swtpm sha1,sha256
start_swtpm
cd "$T/w"
python3 "$src/scripts/demo-log.py" >"$TOP/boot.bin"
"$VOUCHCTL" eventlog show "$TOP/boot.bin" --json >show.json
extend_log show.json "sha1 sha256"
mkdir -p "$TOP/golden"
"$VOUCHCTL" golden create --eventlog "$TOP/boot.bin" --name demo >"$TOP/golden/demo.json"
cat "$T/ca/issuercert.pem" "$T/ca/swtpm-localca-rootca-cert.pem" >"$TOP/ekca.pem"
: >"$TOP/vouchd.out"
"$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" --default-golden demo \
        --ek-ca "$TOP/ekca.pem" --threads 1 >"$TOP/vouchd.out" 2>>"$TOP/vouchd.err" &
D=$!
PIDS+=("$D")
for ((i = 0; i < 100; i++)); do
        grep -q "ready on" "$TOP/vouchd.out" && break
        sleep 0.1
done
grep -q "ready on" "$TOP/vouchd.out" || die "vouchd did not start: $(tail -n 5 "$TOP/vouchd.err")"

listen a
NOTIFY_SOCKET=$TOP/a.sock "$VOUCH_AGENT" --server "127.0.0.1:$VPORT" --ca "$TOP/state/ca.pem" \
        --tcti "$TPM2TOOLS_TCTI" --eventlog "$TOP/boot.bin" --state-dir "$TOP/agent" \
        >"$TOP/agent.out" 2>"$TOP/agent.err" &
A=$!
PIDS+=("$A")
if await a "$A" '^READY=1$'; then
        pass "vouch-agent: READY=1 from its main process"
else
        fail "vouch-agent sent no READY=1 within 10 s (got: $(fields a "$A" | tr '\n' ' '))"
fi
if await a "$A" '^STATUS=TRUSTED \(sequence [0-9]+, golden demo version [0-9]+\)$'; then
        pass "vouch-agent: its verdict as STATUS=: $(fields a "$A" | grep TRUSTED | head -n 1)"
else
        fail "vouch-agent: no STATUS=TRUSTED (got: $(fields a "$A" | tr '\n' ' '))"
fi
[[ $(fields a "$A" | grep -nE '^(READY=1|STATUS=TRUSTED)' | head -n 1) == *READY=1 ]] &&
        pass "vouch-agent: READY=1 before the first verdict" || fail "vouch-agent: a verdict before READY=1"
grep -q 'verdict: TRUSTED' "$TOP/agent.out" && pass "vouch-agent: printed the TRUSTED verdict" ||
        fail "vouch-agent: no TRUSTED verdict on stdout"
stop "$A"
[[ $RC == 0 ]] && pass "vouch-agent: SIGTERM: exit 0" || fail "vouch-agent: SIGTERM: exit $RC"
await a "$A" '^STOPPING=1$' && pass "vouch-agent: STOPPING=1 on SIGTERM" ||
        fail "vouch-agent: no STOPPING=1 (got: $(fields a "$A" | tr '\n' ' '))"
[[ -z $(foreign a "$A") ]] && pass "vouch-agent: every message from the main process" ||
        fail "vouch-agent: messages from another process: $(foreign a "$A")"
stop "$D"

echo "$npass passed, $nfail failed"
((nfail == 0))
