#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The attestation service end to end with real processes on 127.0.0.1: a private swtpm
# whose PCRs replay a real machine's event log, vouchd with a temp state dir, vouch-agent.
# Enrollment and TRUSTED; an agent restart keeps the device id without re-enrolling; an
# extra PCR extension makes the next attestation UNTRUSTED; a TPM whose EK certificate is
# not from the configured CA is refused; an AK not bound to its EK is refused; misbehaving
# peers get an error and are closed while vouchd keeps serving; a vouchd restart keeps
# enrollments and verdict history; SIGTERM drains and exits 0.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}"
require_tools swtpm swtpm_setup swtpm_ioctl tpm2_createek tpm2_createak tpm2_pcrextend tpm2_nvread \
        tpm2_flushcontext jq python3 curl
require_shared_data
require_vouchctl
LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-arch-linux.bin
[[ -f $LOG ]] || skip_or_fail "shared data not found at $LOG"

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-service-test.XXXXXX")
VOUCHD_PID=""
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
cleanup() {
        local rc=$?
        set +e
        [[ -n $VOUCHD_PID ]] && kill -KILL "$VOUCHD_PID" 2>/dev/null
        for t in "$TOP"/tpm-*; do
                [[ -f $t/pid ]] && kill -KILL "$(cat "$t/pid")" 2>/dev/null
        done
        if ((rc != 0)); then
                echo "--- vouchd log ---"
                tail -n 30 "$TOP/vouchd.log" 2>/dev/null
        fi
        rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

# VOUCH_TEST_STORE_URL (set by test/pg/pg-harness.sh): the same checks on that store
STORE_ARGS=()
[[ -n ${VOUCH_TEST_STORE_URL:-} ]] && STORE_ARGS=(--store "$VOUCH_TEST_STORE_URL")

start_vouchd() {
        : >"$TOP/vouchd.out"
        "$VOUCHD" --state-dir "$TOP/state" "${STORE_ARGS[@]}" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" \
                --default-golden arch --ek-ca "$TOP/tpm-a/ekca.pem" --interval 3600 --hello-timeout 2 \
                --threads 2 --http-listen "127.0.0.1:$HPORT" >"$TOP/vouchd.out" 2>>"$TOP/vouchd.log" &
        VOUCHD_PID=$!
        wait_ready "$VOUCHD_PID" 100
}

# agent NAME -> runs vouch-agent --once against tpm NAME; sets RC, OUT, ERR
agent() {
        local t=$TOP/tpm-$1
        RC=0
        timeout 60 "$VOUCH_AGENT" --server "127.0.0.1:$VPORT" --ca "$TOP/state/ca.pem" --tcti "$(cat "$t/tcti")" \
                --eventlog "$LOG" --state-dir "$t/agent" --once --verdict-out "$t/verdict.pb" \
                >"$t/agent.out" 2>"$t/agent.err" || RC=$?
        OUT=$(cat "$t/agent.out")
        ERR=$(cat "$t/agent.err")
}

# --- a device whose TPM replays a real machine's log, and a golden set from that log
new_tpm a
"$VOUCHCTL" eventlog show "$LOG" --json >"$TOP/show.json"
extend_log "$TOP/show.json" "sha1 sha256"
mkdir -p "$TOP/golden"
"$VOUCHCTL" golden create --eventlog "$LOG" --name arch >"$TOP/golden/arch.json"
"$VOUCHD" init --state-dir "$TOP/state" "${STORE_ARGS[@]}" >/dev/null
[[ $(stat -c %a "$TOP/state/verdict.key") == 600 && $(stat -c %a "$TOP/state/server.key") == 600 ]] &&
        pass "vouchd init: keys are mode 0600" || fail "vouchd init: key modes $(stat -c %a "$TOP/state"/*.key)"
VPORT=$(free_port)
HPORT=$(free_port)
start_vouchd

# --http-listen: plain HTTP, no client certificate; GET /healthz only
h=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$HPORT/healthz" || true)
[[ $h == "ok"$'\n'" 200" ]] && pass "--http-listen: GET /healthz without a certificate: 200 ok" || fail "health port: [$h]"
h=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$HPORT/healthz" || true)
h2=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HPORT/v1/verdicts" || true)
[[ $h == 405 && $h2 == 404 ]] && pass "--http-listen serves GET /healthz only (POST 405, /v1/verdicts 404)" ||
        fail "health port: POST $h, /v1/verdicts $h2"
# a query it does not take is refused, not ignored (issue 20); HEAD has GET's headers, no body
h=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HPORT/healthz?verbose=1" || true)
h2=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HPORT/v1/crl?format=pem&x=1" || true)
h3=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HPORT/v1/crl?format=pem&format=der" || true)
head=$(printf 'HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
        timeout 5 python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read())
d = b""
while True:
    x = s.recv(4096)
    if not x:
        break
    d += x
h, _, rest = d.partition(b"\r\n\r\n")
print(len(rest), b"Content-Length: 3" in h)' "$HPORT" || true)
[[ $h == 400 && $h2 == 400 && $h3 == 400 && $head == "0 True" ]] &&
        pass "--http-listen: unknown or repeated query parameters 400; HEAD /healthz: Content-Length 3, no body" ||
        fail "health port: ?verbose $h, crl ?x $h2, format twice $h3, HEAD [$head]"

# a second vouchd on the same state dir (another port) refuses to start
rc2=0
timeout 20 "$VOUCHD" --state-dir "$TOP/state" "${STORE_ARGS[@]}" --listen "127.0.0.1:$(free_port)" --golden-dir "$TOP/golden" \
        --default-golden arch --ek-ca "$TOP/tpm-a/ekca.pem" >/dev/null 2>"$TOP/vouchd2.log" || rc2=$?
[[ $rc2 == 1 ]] && grep -q "another vouchd is running on this state dir" "$TOP/vouchd2.log" &&
        pass "a second vouchd on the same state dir refuses to start" ||
        fail "second vouchd: exit $rc2: $(tail -n 2 "$TOP/vouchd2.log")"
if [[ -n ${VOUCH_TEST_STORE_URL:-} ]]; then
        # ... and so does a second vouchd (its own state dir) on the same PostgreSQL store
        "$VOUCHD" init --state-dir "$TOP/state2" "${STORE_ARGS[@]}" >/dev/null 2>"$TOP/init2.log" ||
                fail "vouchd init of a second state dir on the running store: $(cat "$TOP/init2.log")"
        rc3=0
        timeout 20 "$VOUCHD" --state-dir "$TOP/state2" "${STORE_ARGS[@]}" --listen "127.0.0.1:$(free_port)" \
                --golden-dir "$TOP/golden" --default-golden arch --ek-ca "$TOP/tpm-a/ekca.pem" >/dev/null 2>"$TOP/vouchd3.log" || rc3=$?
        [[ $rc3 == 1 ]] && grep -q "running already" "$TOP/vouchd3.log" &&
                pass "a second vouchd on the same PostgreSQL store refuses to start" ||
                fail "second vouchd on the store: exit $rc3: $(tail -n 2 "$TOP/vouchd3.log")"
fi

agent a
if [[ $RC == 0 && $OUT == *"verdict: TRUSTED"* && $ERR == *enrolling* ]]; then
        pass "enrollment, then TRUSTED"
else
        fail "first attestation: exit $RC: $OUT $ERR"
fi
[[ -s $TOP/tpm-a/verdict.pb ]] && pass "the signed verdict is written for the device (--verdict-out)" ||
        fail "no verdict file"
ID=$(sed -n 's/.*(device \([0-9a-f]*\),.*/\1/p' <<<"$OUT")

agent a
if [[ $RC == 0 && $OUT == *"verdict: TRUSTED"* && $OUT == *"device $ID"* && $ERR != *enrolling* ]]; then
        pass "agent restart: same device id, no re-enrollment, TRUSTED"
else
        fail "agent restart: exit $RC: $OUT $ERR"
fi

# --- misbehaving peers: each gets an error or is dropped; vouchd stays up
C="python3 $here/vouch_client.py 127.0.0.1 $VPORT $TOP/state/ca.pem"
check_peer() { # mode expected-regex
        local got
        got=$($C "$1" 2>&1 | tail -n 1)
        if [[ $got =~ $2 ]]; then
                pass "peer '$1': $got"
        else
                fail "peer '$1': got '$got', want /$2/"
        fi
}
check_peer silent '^closed$'
check_peer silent-tls '^(error: .*silent.*|closed)$'
check_peer garbage '^error: .*not an AgentMessage'
check_peer oversized '^error: .*over the limit'
check_peer truncated '^(closed|error: .*)$'
check_peer out-of-order '^error: .*unexpected message'
check_peer bad-version '^error: .*protocol version 99'

# an AK not bound to its EK: a trusted EK (tpm a's) presented with another TPM's AK; the
# credential cannot be activated, the answer is wrong, and the enrollment stays as it was
new_tpm b
(
        export TPM2TOOLS_TCTI
        cd "$TOP/tpm-a/w"
        TPM2TOOLS_TCTI=$(cat "$TOP/tpm-a/tcti")
        tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null 2>&1
        tpm2_flushcontext -t >/dev/null 2>&1
        tpm2_nvread 0x01c00002 -C o -o ek.cert >/dev/null 2>&1
        cd "$TOP/tpm-b/w"
        TPM2TOOLS_TCTI=$(cat "$TOP/tpm-b/tcti")
        tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null 2>&1
        tpm2_flushcontext -t >/dev/null 2>&1
        tpm2_createak -C ek.ctx -c ak.ctx -G rsa -g sha256 -s rsassa -u ak.pub >/dev/null 2>&1
        tpm2_flushcontext -t >/dev/null 2>&1
        tpm2_flushcontext -s >/dev/null 2>&1
) || die "tpm2-tools failed preparing the unbound-AK case"
got=$($C wrong-activate "$TOP/tpm-a/w/ek.pub" "$TOP/tpm-a/w/ek.cert" "$TOP/tpm-b/w/ak.pub" 2>&1 | tail -n 1)
[[ $got =~ ^error:.*not\ bound ]] && pass "an AK not bound to its EK is refused: $got" ||
        fail "wrong ActivateCredential answer: got '$got'"

# the same TPM under a second identity: tpm a's EK public with userWithAuth flipped (the
# device id covers the whole public area; the certificate check and MakeCredential only
# the key) is refused at Hello, before any credential is made
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[9] ^= 0x40; open(sys.argv[2], "wb").write(b)' \
        "$TOP/tpm-a/w/ek.pub" "$TOP/tpm-a/w/ek-variant.pub"
got=$($C wrong-activate "$TOP/tpm-a/w/ek-variant.pub" "$TOP/tpm-a/w/ek.cert" "$TOP/tpm-b/w/ak.pub" 2>&1 | tail -n 1)
[[ $got =~ ^no\ credential\ challenge:\ error:\ enrollment\ refused:.*already\ enrolled\ as\ device\ [0-9a-f]{64} ]] &&
        pass "one TPM, a second identity (EK public with other attributes) is refused: ${got:0:110}..." ||
        fail "EK variant: got '$got'"

# a TPM2B_PUBLIC whose size field does not cover the rest (tss2-mu reads it all the same):
# refused at Hello, for the AK and for the EK, before any credential is made
for k in ak ek; do
        python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[0:2] = b"\x00\x01"; open(sys.argv[2], "wb").write(b)' \
                "$TOP/tpm-$([[ $k == ak ]] && echo b || echo a)/w/$k.pub" "$TOP/short-$k.pub"
done
got=$($C wrong-activate "$TOP/tpm-a/w/ek.pub" "$TOP/tpm-a/w/ek.cert" "$TOP/short-ak.pub" 2>&1 | tail -n 1)
[[ $got =~ ^no\ credential\ challenge:\ error:\ Hello\.ak_public.*whose\ size\ covers\ the\ rest ]] &&
        pass "an AK TPM2B_PUBLIC with a short size field is refused at Hello: ${got:0:100}..." ||
        fail "short AK size field: got '$got'"
got=$($C wrong-activate "$TOP/short-ek.pub" "$TOP/tpm-a/w/ek.cert" "$TOP/tpm-b/w/ak.pub" 2>&1 | tail -n 1)
[[ $got =~ ^no\ credential\ challenge:\ error:\ Hello\.ek_public.*whose\ size\ covers\ the\ rest ]] &&
        pass "an EK TPM2B_PUBLIC with a short size field is refused at Hello: ${got:0:100}..." ||
        fail "short EK size field: got '$got'"

agent b
if [[ $RC == 1 && $ERR == *"enrollment refused"* ]]; then
        pass "a TPM whose EK certificate is not from the configured CA is refused"
else
        fail "foreign EK: exit $RC: $OUT $ERR"
fi

agent a
[[ $RC == 0 && $OUT == *"verdict: TRUSTED"* ]] && pass "after all that, the enrolled device is still served" ||
        fail "after the bad peers: exit $RC: $OUT $ERR"

# --- a measurement the log does not show: UNTRUSTED
TPM2TOOLS_TCTI=$(cat "$TOP/tpm-a/tcti") tpm2_pcrextend "4:sha256=$(echo rogue | sha256sum | cut -d' ' -f1)" \
        >/dev/null 2>&1 || die "tpm2_pcrextend failed"
agent a
if [[ $RC == 1 && $OUT == *"verdict: UNTRUSTED"* && $OUT == *"PCR 4"* ]]; then
        pass "after an extra PCR 4 extension the next attestation is UNTRUSTED"
else
        fail "after the extension: exit $RC: $OUT $ERR"
fi

# --- vouchd restart keeps enrollments and verdict history; SIGTERM exits cleanly
kill -TERM "$VOUCHD_PID"
rc=0
wait "$VOUCHD_PID" || rc=$?
VOUCHD_PID=""
[[ $rc == 0 ]] && pass "SIGTERM: vouchd drained and exited 0" || fail "SIGTERM: exit $rc"
if [[ -n ${VOUCH_TEST_STORE_URL:-} ]]; then
        n=$("$VOUCH_TEST_PG_CTL" psql -Atc 'select count(*) from verdicts')
else
        n=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from verdicts').fetchone()[0])" \
                "$TOP/state/vouch.db")
fi
[[ $n -ge 4 ]] && pass "verdict history stored ($n verdicts)" || fail "verdict history: $n"
start_vouchd
agent a
if [[ $RC == 1 && $ERR != *enrolling* && $OUT == *"device $ID"* && $OUT == *"sequence $((n + 1))"* ]]; then
        pass "vouchd restart: enrollment and sequence kept (no re-enrollment)"
else
        fail "after vouchd restart: exit $RC: $OUT $ERR"
fi

# --- a reboot into a shorter log (another command line, boot entry or firmware update):
# the agent, challenged from where the old boot's log ended, past the end of its new one,
# sends its whole log, and the new boot is judged at the first challenge (such a device
# was refused until vouchd restarted)
T=$TOP/tpm-a
SWTPM_PID=$(cat "$T/pid")
TPM2TOOLS_TCTI=$(cat "$T/tcti")
PORT=${TPM2TOOLS_TCTI##*port=}
reboot_tpm() { # SHOW_JSON: a TPM Reset, then the boot's measurements
        stop_swtpm orderly
        start_swtpm
        echo "$SWTPM_PID" >"$T/pid"
        echo "$TPM2TOOLS_TCTI" >"$T/tcti"
        extend_log "$1" "sha1 sha256"
}
reboot_tpm "$TOP/show.json"
agent a
[[ $RC == 0 && $OUT == *"verdict: TRUSTED"* ]] && pass "after a reboot (the rogue extension gone) TRUSTED again" ||
        fail "after a reboot: exit $RC: $OUT $ERR"
head -c "$(jq '.events[-1].offset' "$TOP/show.json")" "$LOG" >"$TOP/short.bin"
"$VOUCHCTL" eventlog show "$TOP/short.bin" --json >"$TOP/show-short.json"
reboot_tpm "$TOP/show-short.json"
rechallenged=$(grep -c 'the device rebooted' "$TOP/vouchd.log" || true)
full_log=$LOG
LOG=$TOP/short.bin
agent a
LOG=$full_log
if [[ $RC == 0 && $OUT == *"verdict: TRUSTED"* && $OUT == *"device $ID"* &&
        $(grep -c 'the device rebooted' "$TOP/vouchd.log" || true) == "$rechallenged" ]]; then
        pass "a reboot into a shorter log: the agent sends its whole log, TRUSTED at the first challenge"
else
        fail "reboot into a shorter log: exit $RC: $OUT $ERR / $(grep 'rebooted\|offset' "$TOP/vouchd.log" | tail -n 2)"
fi
kill -TERM "$VOUCHD_PID"
wait "$VOUCHD_PID" || true
VOUCHD_PID=""
echo "$npass passed, $nfail failed"
((nfail == 0))
