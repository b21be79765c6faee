#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Faults that must never leave vouchd more trusting than before (issue 16; docs/failure-behaviour.md:
# what vouchd does), with swtpm + vouchd + vouch-agent as real processes: a revocation whose
# verdict cannot be stored, a revoked device with a TRUSTED verdict in the store, an
# UNTRUSTED verdict that could not be stored and a restart, a damaged database page, the
# database deleted or truncated while vouchd runs or before it starts, garbled keys, an
# unsafe state dir and a planted retired key, a second vouchd on the agents' port, the wall
# clock stepped back (libfaketime), an EK CA bundle over 1 MiB, a full disk at start
# (tmpfs), a bad numeric flag, and vouchd stopped (SIGSTOP) while a quote is on its way.
# The store's failpoints (meson -Dfailpoints=true) stand in for a disk that fails a write.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}"
require_tools swtpm swtpm_setup swtpm_ioctl tpm2_pcrextend openssl python3 jq faketime sqlite3
require_shared_data
require_vouchctl
[[ ${VOUCH_FAILPOINTS_BUILT:-0} == 1 ]] || skip_or_fail "vouchd built without failpoints (meson -Dfailpoints=true)"
LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-arch-linux.bin
[[ -f $LOG ]] || skip_or_fail "shared data not found at $LOG"
LIBFAKETIME=$(find /usr/lib -name 'libfaketime.so.1' 2>/dev/null | grep -v MT | head -n 1)
[[ -n $LIBFAKETIME ]] || skip_or_fail "libfaketime.so.1 not found (Debian package faketime)"

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-faults-test.XXXXXX")
VOUCHD_PID=""
OTHER_PIDS=()
MNT=""
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
cleanup() {
        local rc=$?
        set +e
        [[ -n $VOUCHD_PID ]] && kill -CONT "$VOUCHD_PID" 2>/dev/null && kill -KILL "$VOUCHD_PID" 2>/dev/null
        for p in "${OTHER_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
        for t in "$TOP"/tpm-*; do
                [[ -f $t/pid ]] && kill -KILL "$(cat "$t/pid")" 2>/dev/null
        done
        [[ -n $MNT ]] && umount "$MNT" 2>/dev/null
        if ((rc != 0 || nfail != 0)); then
                echo "--- vouchd log ---"
                tail -n 40 "$TOP/vouchd.log" 2>/dev/null
        fi
        [[ -n ${VOUCH_KEEP_TMP:-} ]] && echo "kept $TOP" || rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

INTERVAL=3
STATE=$TOP/state
EKCA=$TOP/ekca.pem
# vouchd_cmd ARGS...: the command line (into CMD) for the state dir $STATE
vouchd_cmd() {
        CMD=("$VOUCHD" --state-dir "$STATE" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden"
                --default-golden arch --ek-ca "$EKCA" --interval "$INTERVAL" --jitter 0 --verdict-ttl 2
                --threads 2 --nonce-timeout 4 --api-listen "127.0.0.1:$APORT" --api-admin admin --api-reader reader "$@")
}

start_vouchd() { # ARGS...: started and ready, or the test dies
        vouchd_cmd "$@"
        : >"$TOP/vouchd.out"
        "${CMD[@]}" >"$TOP/vouchd.out" 2>>"$TOP/vouchd.log" &
        VOUCHD_PID=$!
        wait_ready "$VOUCHD_PID"
}

stop_vouchd() { # SIGNAL (TERM by default): a TERM stop must exit 0 (under ASan: no leak)
        [[ -n $VOUCHD_PID ]] || return 0
        local rc=0
        kill -"${1:-TERM}" "$VOUCHD_PID" 2>/dev/null || true
        wait "$VOUCHD_PID" 2>/dev/null || rc=$?
        VOUCHD_PID=""
        if [[ ${1:-TERM} == TERM ]] && ((rc != 0)); then
                fail "vouchd stopped with exit $rc (SIGTERM): $(grep -E 'ERROR: LeakSanitizer|runtime error|SUMMARY' "$TOP/vouchd.log" | tail -n 2)"
        fi
}

refused_start() { # ARGS...: vouchd must exit non-zero before it is ready; its stderr in $REFUSAL
        vouchd_cmd "$@"
        local rc=0
        timeout 30 "${CMD[@]}" >"$TOP/refused.out" 2>"$TOP/refused.err" || rc=$?
        REFUSAL=$(cat "$TOP/refused.err")
        ((rc != 0 && rc != 124)) && ! grep -q ready "$TOP/refused.out"
}

agent() { # NAME -> one attestation (--once); sets RC, OUT, ERR
        local t=$TOP/tpm-$1
        RC=0
        timeout 60 "$VOUCH_AGENT" --server "127.0.0.1:$VPORT" --ca "$STATE/ca.pem" --tcti "$(cat "$t/tcti")" \
                --eventlog "$LOG" --state-dir "$t/agent" --once >"$t/agent.out" 2>"$t/agent.err" || RC=$?
        OUT=$(cat "$t/agent.out")
        ERR=$(cat "$t/agent.err")
}

PC() { # ROLE args...: the policy client with ROLE's certificate
        local who=$1
        shift
        python3 "$here/policy_client.py" --server "127.0.0.1:$APORT" --ca "$STATE/ca.pem" \
                --cert "$TOP/clients/$who.crt" --key "$TOP/clients/$who.key" "$@"
}
status_of() { PC reader verdict "/v1/devices/$1/verdict" | jq -r .verdict.status; }
finding_of() { PC reader verdict "/v1/devices/$1/verdict" | jq -r '.verdict.findings[0].rule // ""'; }
device_row() { # ID -> "revoked status" from the device list
        PC admin get "/v1/devices?format=json" --out "$TOP/devs.json" >/dev/null
        jq -r --arg d "$1" '.devices[] | select(.id == $d) | "\(.revoked) \(.status)"' "$TOP/devs.json"
}
tamper() { # NAME: extend PCR 4 of its TPM, so its next quote does not match the golden set
        TPM2TOOLS_TCTI=$(cat "$TOP/tpm-$1/tcti") tpm2_pcrextend \
                "4:sha256=$(echo "rogue $RANDOM" | sha256sum | cut -d' ' -f1)" >/dev/null 2>&1 ||
                die "tpm2_pcrextend failed"
}

# --- set-up: two TPMs replaying a real log, its golden set, vouchd with the API
new_tpm a
"$VOUCHCTL" eventlog show "$LOG" --json >"$TOP/show.json"
extend_log "$TOP/show.json" "sha1 sha256"
new_tpm b
extend_log "$TOP/show.json" "sha1 sha256"
cat "$TOP/tpm-a/ekca.pem" "$TOP/tpm-b/ekca.pem" >"$EKCA"
mkdir -p "$TOP/golden" "$TOP/clients"
"$VOUCHCTL" golden create --eventlog "$LOG" --name arch >"$TOP/golden/arch.json"
"$VOUCHD" init --state-dir "$STATE" >/dev/null
[[ -s $STATE/vouch.db ]] && pass "vouchd init creates the store" || fail "vouchd init: no vouch.db"
for who in admin reader; do
        "$VOUCHD" issue-client --state-dir "$STATE" --name "$who" --out "$TOP/clients/$who" >/dev/null
done
VPORT=$(free_port)
APORT=$(free_port)
start_vouchd
agent a
IDA=$(sed -n 's/.*(device \([0-9a-f]*\),.*/\1/p' <<<"$OUT")
agent b
IDB=$(sed -n 's/.*(device \([0-9a-f]*\),.*/\1/p' <<<"$OUT")
[[ -n $IDA && -n $IDB && $(status_of "$IDA") == TRUSTED && $(status_of "$IDB") == TRUSTED ]] ||
        die "set-up: devices not TRUSTED: $OUT $ERR"

# --- 1. a revocation whose verdict cannot be stored changes nothing (one transaction); a
# restart shows no revoked device as TRUSTED
stop_vouchd
VOUCH_FAILPOINTS=store-verdict start_vouchd
r=$(PC admin get "/v1/devices/$IDA/revoke" --method POST --out "$TOP/revoke.out")
stop_vouchd KILL
start_vouchd
row=$(device_row "$IDA")
if [[ $r == 503* && $row != "true TRUSTED" && $(sqlite3 "$STATE/vouch.db" "select revoked from devices where id='$IDA'") == 0 ]]; then
        pass "a revocation whose verdict cannot be stored is not stored either (503; after a restart: $row)"
else
        fail "revocation without its verdict: $r, after a restart [$row], stored revoked=$(sqlite3 "$STATE/vouch.db" "select revoked from devices where id='$IDA'")"
fi
agent a
r=$(PC admin get "/v1/devices/$IDA/revoke" --method POST)
stop_vouchd KILL
n=$(sqlite3 "$STATE/vouch.db" "select count(*) from devices d join verdicts v on v.device = d.id where d.id='$IDA' and d.revoked = 1 and v.status = 2 and v.sequence = (select max(sequence) from verdicts where device = d.id)")
[[ $r == 200* && $n == 1 ]] && pass "a revocation and its UNTRUSTED verdict are stored together (kill -9 right after)" ||
        fail "revocation: $r, stored revoked with UNTRUSTED latest: $n"

# a revoked device whose latest stored verdict is TRUSTED (a store written by an older
# vouchd, or edited): UNTRUSTED whatever is stored
agent b >/dev/null 2>&1 || true
start_vouchd
agent b
stop_vouchd
sqlite3 "$STATE/vouch.db" "update devices set revoked = 1, approved = 0 where id = '$IDB'"
start_vouchd
row=$(device_row "$IDB")
st=$(status_of "$IDB")
if [[ $row == "true UNTRUSTED" && $st == UNTRUSTED && $(finding_of "$IDB") == revoked ]]; then
        pass "a revoked device with a TRUSTED verdict in the store is served UNTRUSTED (finding revoked)"
else
        fail "revoked with a stored TRUSTED verdict: device list [$row], GET $st"
fi
r1=$(PC admin get "/v1/devices/$IDA/approve" --method POST)
r2=$(PC admin get "/v1/devices/$IDB/approve" --method POST)
[[ $r1 == 200* && $r2 == 200* ]] || die "approve: $r1 $r2"
agent a
agent b

# --- 3. an UNTRUSTED verdict that could not be stored, then a restart: not TRUSTED
[[ $(status_of "$IDA") == TRUSTED ]] || die "device a not TRUSTED before the failed UNTRUSTED"
stop_vouchd
VOUCH_FAILPOINTS=store-verdict start_vouchd
tamper a
agent a
shown=$(status_of "$IDA")
gshown=$(PC reader verdict "/v1/devices/$IDA/verdict" | jq .verdict.global_sequence)
stop_vouchd
start_vouchd
after=$(status_of "$IDA")
gafter=$(PC reader verdict "/v1/devices/$IDA/verdict" | jq .verdict.global_sequence)
((gafter > gshown)) && pass "after an unclean run, global sequence numbers jump past any shown but not stored ($gafter > $gshown)" ||
        fail "global sequence reused after an unclean run: $gafter <= $gshown"
if [[ $shown == UNTRUSTED && $after == STALE && $(finding_of "$IDA") == restart && $(status_of "$IDB") == STALE ]] &&
        grep -q "the previous run did not close it cleanly" "$TOP/vouchd.log"; then
        pass "an UNTRUSTED verdict the store could not take: shown, and after a restart no device is TRUSTED until it attests (STALE, finding restart)"
else
        fail "failed UNTRUSTED then restart: shown $shown, after the restart $after ($(finding_of "$IDA"))"
fi
agent b
[[ $(status_of "$IDB") == TRUSTED ]] && pass "after that restart a device is TRUSTED again once it attests" ||
        fail "device b after the restart: $(status_of "$IDB")"
stop_vouchd
start_vouchd
[[ $(status_of "$IDB") == TRUSTED ]] && pass "after a clean stop, TRUSTED verdicts are served at start" ||
        fail "clean restart: device b $(status_of "$IDB")"

# --- 4. the database deleted, or its WAL deleted, while vouchd runs: noticed, nothing more
# acknowledged; an initialised state dir without its store is refused at start
cp "$STATE/vouch.db" "$TOP/backup.db" 2>/dev/null || true
stop_vouchd
cp "$STATE/vouch.db" "$TOP/backup.db"
start_vouchd
rm "$STATE/vouch.db"
agent b
PC reader get /metrics --out "$TOP/metrics.txt" >/dev/null
sleep 1.5 # the sweep's report
if [[ $RC != 0 && $OUT != *"verdict: TRUSTED"* ]] && grep -q '^vouch_store_lost 1' "$TOP/metrics.txt" &&
        grep -q "vouch.db was deleted, renamed or replaced while vouchd ran" "$TOP/vouchd.log"; then
        pass "vouch.db deleted while vouchd runs: no verdict acknowledged, vouch_store_lost 1, logged"
else
        fail "deleted store: agent $RC [$OUT], metrics $(grep vouch_store_lost "$TOP/metrics.txt"), log $(grep -c 'deleted' "$TOP/vouchd.log")"
fi
stop_vouchd KILL
if refused_start && [[ $REFUSAL == *"vouch.db is missing"*"--fresh-store"* ]]; then
        pass "an initialised state dir whose vouch.db is missing is refused at start (names --fresh-store)"
else
        fail "missing store at start: $REFUSAL"
fi
: >"$STATE/vouch.db"
refused_start && [[ $REFUSAL == *"empty"* ]] && pass "an empty (0 bytes) vouch.db is refused at start" ||
        fail "empty store at start: $REFUSAL"
start_vouchd --fresh-store
ndev=$(PC admin get "/v1/devices?format=json" --out "$TOP/devs.json" >/dev/null && jq '.devices | length' "$TOP/devs.json")
[[ $ndev == 0 ]] && pass "--fresh-store starts with an empty store, as the operator said" || fail "--fresh-store: $ndev devices"
stop_vouchd
cp "$TOP/backup.db" "$STATE/vouch.db"
rm -f "$STATE/vouch.db-wal" "$STATE/vouch.db-shm"
start_vouchd
rm "$STATE/vouch.db-wal" "$STATE/vouch.db-shm"
agent b
sleep 1.5 # the sweep's report
if [[ $RC != 0 ]] && grep -q "vouch.db-wal is gone" "$TOP/vouchd.log"; then
        pass "the WAL deleted while vouchd runs: noticed, nothing more acknowledged"
else
        fail "deleted WAL: agent $RC, log: $(grep -c 'wal' "$TOP/vouchd.log")"
fi
stop_vouchd KILL
cp "$TOP/backup.db" "$STATE/vouch.db"
rm -f "$STATE/vouch.db-wal" "$STATE/vouch.db-shm"

# --- 2. a damaged page: refused at start with how to check and recover it
cp "$STATE/vouch.db" "$TOP/good.db"
pages=$(($(stat -c %s "$STATE/vouch.db") / 4096))
dd if=/dev/urandom of="$STATE/vouch.db" bs=4096 seek=$((pages / 2)) count=1 conv=notrunc 2>/dev/null
if refused_start && [[ $REFUSAL == *"is damaged"*"integrity_check"*".recover"* ]]; then
        pass "a store with a damaged page is refused at start, saying how to check and recover it"
else
        fail "damaged store at start: $REFUSAL"
fi
cp "$TOP/good.db" "$STATE/vouch.db"

# --- 5. garbled keys are refused, never replaced
for f in verdict.key ca.pem ca.key; do
        cp "$STATE/$f" "$TOP/$f.good"
        printf 'garbage\n' >"$STATE/$f"
        if refused_start && [[ $REFUSAL == *"$STATE/$f cannot be used"* && $(cat "$STATE/$f") == garbage ]]; then
                pass "a garbled $f is refused at start, naming it, and left as it is"
        else
                fail "garbled $f: $REFUSAL / now $(head -c 40 "$STATE/$f")"
        fi
        cp "$TOP/$f.good" "$STATE/$f"
done
rm "$STATE/verdict.key"
refused_start && [[ $REFUSAL == *"verdict.key is missing"* && ! -e $STATE/verdict.key ]] &&
        pass "a missing verdict.key in an initialised state dir is refused, not made anew" ||
        fail "missing verdict.key: $REFUSAL"
cp "$TOP/verdict.key.good" "$STATE/verdict.key"

# --- 6. the state dir's owner and modes; a retired key planted by someone else
chmod 0777 "$STATE"
refused_start && [[ $REFUSAL == *"mode 0777"* ]] && pass "a world-writable state dir is refused" ||
        fail "0777 state dir: $REFUSAL"
rc=0
"$VOUCHD" rotate-key --state-dir "$STATE" >/dev/null 2>"$TOP/rotate.err" || rc=$?
[[ $rc != 0 && $(cat "$TOP/rotate.err") == *"mode 0777"* ]] && pass "rotate-key refuses a world-writable state dir" ||
        fail "rotate-key on 0777: $rc $(cat "$TOP/rotate.err")"
chmod 0700 "$STATE"
chmod 0644 "$STATE/verdict.key"
refused_start && [[ $REFUSAL == *"verdict.key has mode 0644"* ]] && pass "a verdict.key readable by others is refused" ||
        fail "0644 verdict.key: $REFUSAL"
chmod 0600 "$STATE/verdict.key"
# a public key planted in retired/ by another user
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TOP/planted.key" 2>/dev/null
openssl pkey -in "$TOP/planted.key" -pubout -out "$TOP/planted.pem" 2>/dev/null
pid=$(openssl pkey -pubin -in "$TOP/planted.pem" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
mkdir -p "$STATE/retired"
chmod 0700 "$STATE/retired"
cp "$TOP/planted.pem" "$STATE/retired/$pid.pem"
echo 4102444800 >"$STATE/retired/$pid.not_after"
chown 65534 "$STATE/retired/$pid.pem" "$STATE/retired/$pid.not_after"
start_vouchd
if ! PC reader keys | jq -e --arg k "$pid" '.keys[] | select(.key_id == $k)' >/dev/null &&
        ! grep -q "$(sed -n 2p "$TOP/planted.pem")" "$STATE/verdict-keys.pem" && grep -q "owned by uid 65534" "$TOP/vouchd.log"; then
        pass "a retired key owned by another user is not published"
else
        fail "planted retired key published: $(PC reader keys | jq -c '[.keys[].key_id]')"
fi
rm -f "$STATE/retired/$pid.pem" "$STATE/retired/$pid.not_after"

# vouchd init beside a running vouchd (it would mark the store's run clean under it)
rc=0
"$VOUCHD" init --state-dir "$STATE" >/dev/null 2>"$TOP/init.err" || rc=$?
[[ $rc != 0 && $(cat "$TOP/init.err") == *"another vouchd is running on this state dir"* ]] &&
        pass "vouchd init is refused while vouchd runs on the state dir" || fail "init beside vouchd: $rc $(cat "$TOP/init.err")"

# --- 8. a second vouchd (another state dir) on the same agents' port is refused
"$VOUCHD" init --state-dir "$TOP/state2" >/dev/null
rc=0
timeout 20 "$VOUCHD" --state-dir "$TOP/state2" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" \
        --default-golden arch --ek-ca "$EKCA" >"$TOP/second.out" 2>"$TOP/second.err" || rc=$?
[[ $rc != 0 && $rc != 124 && $(cat "$TOP/second.err") == *"in use by another process"* ]] &&
        pass "a second vouchd on the agents' port is refused" || fail "second vouchd: $rc $(cat "$TOP/second.err")"
stop_vouchd

# --- 11. an EK CA bundle over 1 MiB is read whole (device b's CA after 1.2 MiB of comments)
{
        head -c 1300000 /dev/zero | tr '\0' '#' | fold -w 64
        echo
        cat "$TOP/tpm-a/ekca.pem" "$TOP/tpm-b/ekca.pem"
} >"$TOP/big-ekca.pem"
rm -rf "$TOP/tpm-b/agent" # enrolls again
EKCA=$TOP/big-ekca.pem start_vouchd
EKCA=$TOP/big-ekca.pem
agent b
[[ $RC == 0 && $OUT == *TRUSTED* ]] && pass "an EK CA bundle of $(stat -c %s "$EKCA") bytes is read whole: its last CA enrolls a device" ||
        fail "big EK CA bundle: $RC $ERR"
stop_vouchd
# --ek-ca DIR: the TPM makers' CAs shipped in ekca/ and the swtpm's, one file each
mkdir -p "$TOP/ekca.d"
cp "${VOUCH_EKCA_DIR:?}"/*.pem "$TOP/ekca.d/"
cp "$TOP/tpm-a/ekca.pem" "$TOP/ekca.d/zz-swtpm-a.pem"
cp "$TOP/tpm-b/ekca.pem" "$TOP/ekca.d/zz-swtpm-b.pem"
printf 'not a certificate\n' >"$TOP/ekca.d/README.txt" # not *.pem: not read
rm -rf "$TOP/tpm-b/agent"
EKCA=$TOP/ekca.d start_vouchd
EKCA=$TOP/ekca.d
agent b
[[ $RC == 0 && $OUT == *TRUSTED* ]] &&
        pass "--ek-ca DIR: the vendors' $(ls "${VOUCH_EKCA_DIR}"/*.pem | wc -l) CA files and the swtpm's load, a device enrolls" ||
        fail "--ek-ca DIR: $RC $ERR"
stop_vouchd
EKCA=$TOP/ekca.pem

# --- 12. a bad numeric flag is reported under its own name
refused_start --interval 0 && [[ $REFUSAL == *"--interval: \"0\""* ]] && pass "--interval 0 is reported as --interval" ||
        fail "bad flag: $REFUSAL"

# --- 13. vouchd stopped (SIGSTOP) while a quote is on its way: said so
mkdir -p "$TOP/hold"
start_vouchd
python3 "$here/vouch_client.py" 127.0.0.1 "$VPORT" "$STATE/ca.pem" record-proxy "$STATE/server.pem" \
        "$STATE/server.key" "$TOP/hold" 2 2>"$TOP/hold/proxy.err" &
OTHER_PIDS+=($!)
for ((i = 0; i < 100; i++)); do [[ -f $TOP/hold/port ]] && break; sleep 0.1; done
"$VOUCH_AGENT" --server "127.0.0.1:$(cat "$TOP/hold/port")" --ca "$STATE/ca.pem" --tcti "$(cat "$TOP/tpm-b/tcti")" \
        --eventlog "$LOG" --state-dir "$TOP/tpm-b/agent" --once >"$TOP/hold/agent.out" 2>"$TOP/hold/agent.err" &
OTHER_PIDS+=($!)
for ((i = 0; i < 300; i++)); do [[ -s $TOP/hold/holding ]] && break; sleep 0.1; done
kill -STOP "$VOUCHD_PID"
sleep 9 # past the nonce timeout (4 s) by more than 2 s; the held quote is sent meanwhile
kill -CONT "$VOUCHD_PID"
sleep 2
if grep -q "vouchd itself was not running" "$TOP/vouchd.log"; then
        pass "a quote in flight while vouchd was stopped: the log says vouchd was not running, not that the agent was silent"
else
        fail "SIGSTOP: $(grep -E 'expired|silent' "$TOP/vouchd.log" | tail -n 2)"
fi
stop_vouchd

# --- 2 (watch). a store read that fails ends a watch stream with an error, never a hang
VOUCH_FAILPOINTS=store-read-since start_vouchd
read -r outcome secs has_error < <(python3 - "$STATE/ca.pem" "$TOP/clients/reader.crt" "$TOP/clients/reader.key" "$APORT" <<'PY'
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[4]))), server_hostname="127.0.0.1")
s.sendall(b"GET /v1/watch?since=0&format=json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
s.settimeout(8)
data, t0, outcome = b"", time.time(), "timeout"
try:
    while True:
        d = s.recv(65536)
        if not d:
            outcome = "eof"
            break
        data += d
        if data.endswith(b"\r\n0\r\n\r\n"):
            outcome = "clean-end"
            break
except socket.timeout:
    outcome = "timeout"
except (ssl.SSLError, ConnectionError):
    outcome = "reset"
print(outcome, round(time.time() - t0, 1), "error-line" if b'"code"' in data and b'reconnect with since=' in data else "no-error-line")
PY
)
sleep 0.3
if [[ ($outcome == eof || $outcome == reset) && $has_error == error-line ]] &&
        grep -q "a watch stream (after global sequence 0) ends: the store cannot be read" "$TOP/vouchd.log"; then
        pass "a watch stream whose store read fails ends at once ($secs s) with an error line, unfinished, and is logged"
else
        fail "watch with a failing read: $outcome after $secs s, $has_error"
fi
stop_vouchd

# --- 9. the wall clock stepped back 20 minutes with no agent: STALE after the verdict's
# lifetime (monotonic), as without the step
echo "+0" >"$TOP/faketime"
LD_PRELOAD=$LIBFAKETIME FAKETIME_TIMESTAMP_FILE=$TOP/faketime FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 \
        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 start_vouchd
agent b
[[ $(status_of "$IDB") == TRUSTED ]] || fail "clock step: device b not TRUSTED first ($RC $ERR)"
echo "-20m" >"$TOP/faketime"
sleep $((INTERVAL * 2 + 3)) # the verdict's lifetime (ttl 2 intervals), and the sweep
row=$(device_row "$IDB")
if [[ $row == "false STALE" && $(status_of "$IDB") == STALE ]]; then
        pass "the wall clock stepped back 20 minutes: the device still turns STALE when its verdict's lifetime is over"
else
        fail "clock stepped back: device list [$row], GET $(status_of "$IDB")"
fi
stop_vouchd

# --- 10. a full disk at start is reported as what it is
MNT=$TOP/small
mkdir -p "$MNT"
if mount -t tmpfs -o size=2m tmpfs "$MNT" 2>/dev/null; then
        cp -a "$STATE" "$MNT/state"
        rm -f "$MNT/state/vouchd.lock"
        dd if=/dev/zero of="$MNT/fill" bs=4096 2>/dev/null || true
        rc=0
        timeout 20 "$VOUCHD" --state-dir "$MNT/state" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" \
                --default-golden arch --ek-ca "$EKCA" >/dev/null 2>"$TOP/full.err" || rc=$?
        if [[ $rc != 0 && $(cat "$TOP/full.err") == *"No space left on device"* && $(cat "$TOP/full.err") != *"vouchd init"* ]]; then
                pass "a full disk at start is reported as 'No space left on device'"
        else
                fail "full disk at start: $rc $(cat "$TOP/full.err")"
        fi
        umount "$MNT"
        MNT=""
elif [[ ${CI:-} == true ]]; then
        fail "cannot mount a tmpfs for the full-disk check (CI runs as root)"
else
        log "SKIPPED the full-disk check: cannot mount a tmpfs here (not root?)"
fi

echo "$npass passed, $nfail failed"
((nfail == 0))
