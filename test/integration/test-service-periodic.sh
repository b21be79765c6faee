#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Periodic attestation with a long-running vouch-agent (not --once), real processes on
# 127.0.0.1: a private swtpm whose PCRs replay a real machine's log, vouchd challenging every
# $INTERVAL s without jitter, and the agent connected through a recording man in the middle
# (vouch_client.py record-proxy, which holds the verifier's own server certificate).
# Asserted: the first verdicts are TRUSTED, on one connection, an interval apart; between
# rounds the agent holds nothing in the TPM (no transient object, no session: swtpm, like a
# TPM without a resource manager, has three object slots) and tpm2-tools can use it; a QuoteAnswer recorded in an earlier round and replayed to a new
# challenge (as is, and with the new nonce pasted in) is refused with an error naming the
# nonce and no verdict, vouchd stays up and the real agent's session and verdicts go on; SIGHUP reloads
# the golden sets: a set that no longer matches makes the next verdicts UNTRUSTED, a broken
# file keeps the sets loaded before, the matching set back makes them TRUSTED; an extra value
# extended into PCR 4 makes the next periodic verdict UNTRUSTED naming PCR 4; --verdict-out
# holds the latest signed verdict and its signature verifies with vouchd's verdict key;
# SIGTERM stops the agent at once with exit 0 (and, in the ASan build, no leak).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}"
require_tools swtpm swtpm_setup swtpm_ioctl tpm2_pcrextend tpm2_pcrread tpm2_getcap jq python3 openssl timeout
require_shared_data
require_vouchctl
LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-arch-linux.bin
OTHER_LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-uefiservices.bin
[[ -f $LOG && -f $OTHER_LOG ]] || skip_or_fail "shared data not found at $LOG or $OTHER_LOG"
INTERVAL=3

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-periodic-test.XXXXXX")
VOUCHD_PID="" AGENT_PID="" PROXY_PID=""
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
cleanup() {
        local rc=$?
        set +e
        for p in "$AGENT_PID" "$PROXY_PID" "$VOUCHD_PID"; do
                [[ -n $p ]] && kill -KILL "$p" 2>/dev/null
        done
        [[ -f $TOP/tpm-a/pid ]] && kill -KILL "$(cat "$TOP/tpm-a/pid")" 2>/dev/null
        if ((rc != 0)); then
                echo "--- vouchd log ---"
                tail -n 30 "$TOP/vouchd.log" 2>/dev/null
                echo "--- agent stderr ---"
                tail -n 30 "$TOP/agent.err" 2>/dev/null
        fi
        rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

CLIENT=$here/vouch_client.py

# --- the device: a swtpm that replays a real machine's log; golden set "arch" from that log
T=$TOP/tpm-a
mkdir -p "$T"
: >"$T/tpm2.log"
SWTPM_PID=""
provision_swtpm sha1,sha256
start_swtpm
echo "$SWTPM_PID" >"$T/pid"
cat "$T/ca/issuercert.pem" "$T/ca/swtpm-localca-rootca-cert.pem" >"$T/ekca.pem"
"$VOUCHCTL" eventlog show "$LOG" --json >"$TOP/show.json"
extend_log "$TOP/show.json" "sha1 sha256"

# golden_set LOG VERSION OUT: the set "arch" made from LOG, with the given version
golden_set() {
        "$VOUCHCTL" golden create --eventlog "$1" --name arch | jq --argjson v "$2" '.version = $v' >"$3"
}
mkdir -p "$TOP/golden"
golden_set "$LOG" 1 "$TOP/golden/arch.json"
# (vouchd reads *.json only: the sets are written beside and renamed into place)
golden_set "$OTHER_LOG" 2 "$TOP/arch-v2.tmp"
golden_set "$LOG" 3 "$TOP/arch-v3.tmp"

# --- vouchd challenging every INTERVAL s, no jitter
"$VOUCHD" init --state-dir "$TOP/state" >/dev/null
VPORT=$(free_port)
"$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" --default-golden arch \
        --ek-ca "$T/ekca.pem" --interval "$INTERVAL" --jitter 0 --threads 2 >"$TOP/vouchd.out" 2>"$TOP/vouchd.log" &
VOUCHD_PID=$!
for ((i = 0; i < 100; i++)); do
        grep -q ready "$TOP/vouchd.out" && break
        kill -0 "$VOUCHD_PID" 2>/dev/null || die "vouchd exited: $(tail -n 5 "$TOP/vouchd.log")"
        sleep 0.1
done
grep -q ready "$TOP/vouchd.out" || die "vouchd did not start"

# --- the recording man in the middle, on a port it picks itself
mkdir -p "$TOP/rec"
python3 "$CLIENT" 127.0.0.1 "$VPORT" "$TOP/state/ca.pem" record-proxy "$TOP/state/server.pem" \
        "$TOP/state/server.key" "$TOP/rec" 2>"$TOP/proxy.err" &
PROXY_PID=$!
for ((i = 0; i < 100; i++)); do
        [[ -s $TOP/rec/port ]] && break
        kill -0 "$PROXY_PID" 2>/dev/null || die "the recording proxy exited: $(cat "$TOP/proxy.err")"
        sleep 0.1
done
[[ -s $TOP/rec/port ]] || die "the recording proxy did not start"
PPORT=$(cat "$TOP/rec/port")

# --- the long-running agent
: >"$TOP/agent.out"
"$VOUCH_AGENT" --server "127.0.0.1:$PPORT" --ca "$TOP/state/ca.pem" --tcti "$TPM2TOOLS_TCTI" --eventlog "$LOG" \
        --state-dir "$TOP/agent" --verdict-out "$TOP/verdict.pb" >"$TOP/agent.out" 2>"$TOP/agent.err" &
AGENT_PID=$!

# The agent prints "verdict: STATUS (device ID, sequence N, golden NAME version V)" and one
# "  [rule] explanation" line per finding.
max_seq() { sed -n 's/^verdict: .*, sequence \([0-9]*\),.*/\1/p' "$TOP/agent.out" | sort -n | tail -n 1; }
# verdict SEQ: that verdict's line and its findings (empty when not received)
verdict() {
        awk -v want="sequence $1," '/^verdict: / { on = index($0, want) > 0 } on' "$TOP/agent.out"
}
# wait_seq SEQ [SECONDS]: waits until the agent receives a verdict with sequence >= SEQ;
# sets GOT to the first such sequence (others may have gone to other connections of the
# device) and V to that verdict (its line and findings). Dies when the agent or vouchd is
# gone.
wait_seq() {
        local want=$1 limit=${2:-$((4 * INTERVAL + 20))} i m
        for ((i = 0; i < limit * 10; i++)); do
                m=$(max_seq)
                if [[ -n $m ]] && ((m >= want)); then
                        GOT=$(sed -n 's/^verdict: .*, sequence \([0-9]*\),.*/\1/p' "$TOP/agent.out" |
                                awk -v w="$want" '$1 >= w' | sort -n | head -n 1)
                        V=$(verdict "$GOT")
                        return 0
                fi
                kill -0 "$AGENT_PID" 2>/dev/null || die "the agent exited: $(tail -n 5 "$TOP/agent.err")"
                kill -0 "$VOUCHD_PID" 2>/dev/null || die "vouchd exited: $(tail -n 5 "$TOP/vouchd.log")"
                sleep 0.1
        done
        die "no verdict $want within $limit s (last: ${m:-none}): $(tail -n 3 "$TOP/agent.err")"
}
# issued SEQ: the verdict's issued_at (Unix seconds) from vouchd's store
issued() {
        python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select issued_at from verdicts where sequence = ?",
      (int(sys.argv[2]),)).fetchone()[0])' "$TOP/state/vouch.db" "$1"
}

# --- 1. immediately after connecting, then every interval, on the same connection
wait_seq 1
V1=$V
if [[ $V1 == "verdict: TRUSTED"* && $(cat "$TOP/agent.err") == *enrolling* ]]; then
        pass "enrollment, then the first verdict (right after connecting) is TRUSTED"
else
        fail "first verdict: '$V1' $(tail -n 3 "$TOP/agent.err")"
fi
ID=$(sed -n 's/.*(device \([0-9a-f]*\),.*/\1/p' <<<"$V1")
wait_seq 2
if [[ $V == "verdict: TRUSTED (device $ID, sequence 2,"* ]]; then
        pass "the second (periodic) verdict is TRUSTED"
else
        fail "second verdict: '$V'"
fi
wait_seq 3
gap=$(($(issued 3) - $(issued 2)))
if ((gap >= INTERVAL - 1 && gap <= INTERVAL + 10)); then
        pass "periodic: verdicts 2 and 3 issued $gap s apart (interval $INTERVAL s, no jitter)"
else
        fail "periodic: verdicts 2 and 3 issued $gap s apart, interval $INTERVAL s"
fi
if [[ $V == "verdict: TRUSTED"* && $(cat "$TOP/agent.err") != *reconnecting* &&
        $(ls "$TOP/rec"/conn-*.agent | wc -l) == 1 ]]; then
        pass "three TRUSTED verdicts on one connection (the agent never reconnected)"
else
        fail "one connection: '$V'; recordings: $(ls "$TOP/rec"); $(grep reconnecting "$TOP/agent.err" | head -n 1)"
fi

# --- 2. between rounds the agent holds nothing in the TPM: right after a verdict (the
# round's TPM commands are over; the next challenge is an interval away) the swtpm lists no
# transient object and no session, and serves tpm2-tools
m=$(max_seq)
wait_seq $((m + 1))
held=$(for h in handles-transient handles-loaded-session handles-saved-session; do
        timeout 10 tpm2_getcap "$h" 2>>"$T/tpm2.log" || echo "tpm2_getcap $h failed"
done)
if [[ -z $held ]]; then
        pass "between rounds the agent holds no transient object and no session in the TPM"
else
        fail "between rounds the TPM holds: $(tr '\n' ' ' <<<"$held")"
fi
if timeout 10 tpm2_pcrread sha256:4 >"$TOP/pcr4.txt" 2>>"$T/tpm2.log" && grep -q '4 *: *0x' "$TOP/pcr4.txt"; then
        pass "between rounds tpm2-tools use the TPM while the agent waits for its next challenge"
else
        fail "tpm2_pcrread could not use the swtpm between rounds"
fi
kill -0 "$AGENT_PID" 2>/dev/null && pass "the agent keeps running" || fail "the agent exited"

# --- 3. evidence replayed from an earlier round: the recorded Hello (the enrolled device)
# and a recorded QuoteAnswer, sent on a new connection to a new challenge
REC=$TOP/rec/conn-1.agent
replay_check() { # ROUND [renonce] what
        local got
        got=$(timeout 30 python3 "$CLIENT" 127.0.0.1 "$VPORT" "$TOP/state/ca.pem" replay "$REC" "$1" ${2:+"$2"} 2>&1 |
                tail -n 1)
        if [[ $got =~ ^error:.*no\ verdict.*nonce ]]; then
                pass "$3 is rejected with an error, no verdict: $got"
        else
                fail "$3: got '$got', want an error naming the nonce (and no verdict for the device)"
        fi
}
replay_check 0 "" "the QuoteAnswer of round 1 replayed to a new challenge"
replay_check -1 "" "the QuoteAnswer of the latest round replayed to a new challenge"
replay_check 0 renonce "round 1's QuoteAnswer with the new challenge's nonce pasted in"
kill -0 "$VOUCHD_PID" 2>/dev/null && pass "vouchd stays up after the replays" || fail "vouchd is gone"
# The replays never held the device's session (public keys prove nothing; only a quote
# signed by the device's AK over a live nonce binds a session): the agent keeps its
# connection and its next verdict is TRUSTED; the rejected answers changed nothing.
m=$(max_seq)
wait_seq $((m + 1)) $((6 * INTERVAL + 30))
if [[ $V == "verdict: TRUSTED"* && $(cat "$TOP/agent.err") != *"replaced by a newer connection"* ]]; then
        pass "after the replays the agent's session is untouched and its next verdict is TRUSTED"
else
        fail "after the replays: '$V' $(tail -n 3 "$TOP/agent.err")"
fi

# --- 4. SIGHUP reloads the golden sets
# every verdict so far came from version 1 and was TRUSTED
if [[ -z $(grep '^verdict: ' "$TOP/agent.out" | grep -v 'golden arch version 1)' || true) &&
        -z $(grep '^verdict: ' "$TOP/agent.out" | grep -v '^verdict: TRUSTED' || true) ]]; then
        pass "before the reload: every verdict is TRUSTED under golden arch version 1"
else
        fail "before the reload: $(grep '^verdict: ' "$TOP/agent.out" | sort -u | head -n 3)"
fi
# sighup: sends SIGHUP and waits for vouchd to log what it did with the golden sets (HUP_LOG)
sighup_lines() { grep -c 'SIGHUP: .*golden sets' "$TOP/vouchd.log" || true; }
sighup() {
        local before i
        before=$(sighup_lines)
        kill -HUP "$VOUCHD_PID"
        for ((i = 0; i < 100; i++)); do
                (($(sighup_lines) > before)) && break
                sleep 0.1
        done
        HUP_LOG=$(grep 'SIGHUP: .*golden sets' "$TOP/vouchd.log" | tail -n 1)
}
# first_with VERSION: waits for the first verdict evaluated under golden arch VERSION
first_with() {
        local i line
        for ((i = 0; i < (4 * INTERVAL + 20) * 10; i++)); do
                line=$(grep -m 1 "^verdict: .*golden arch version $1)" "$TOP/agent.out" || true)
                if [[ -n $line ]]; then
                        V=$(verdict "$(sed -n 's/.*, sequence \([0-9]*\),.*/\1/p' <<<"$line")")
                        return 0
                fi
                sleep 0.1
        done
        V=""
}
mv "$TOP/arch-v2.tmp" "$TOP/golden/arch.json"
sighup
[[ $HUP_LOG == *"golden sets reloaded"* ]] && pass "SIGHUP: $HUP_LOG" || fail "SIGHUP: '$HUP_LOG'"
first_with 2
if [[ $V == "verdict: UNTRUSTED"* && $V == *"["* ]]; then
        pass "after SIGHUP with a golden set that no longer matches, the next verdict is UNTRUSTED: $(head -n 2 <<<"$V" | tr '\n' ' ')"
else
        fail "no UNTRUSTED verdict under golden version 2 after SIGHUP: '$V'"
fi
# a broken file in the golden dir: the reload is refused, the sets loaded before stay
cp "$TOP/arch-v3.tmp" "$TOP/golden/arch.json"
echo '{ "name": ' >"$TOP/golden/broken.json"
sighup
[[ $HUP_LOG == *"not reloaded"* ]] && pass "SIGHUP with a broken set: $HUP_LOG" || fail "broken set: '$HUP_LOG'"
m=$(max_seq)
wait_seq $((m + 2))
V1=$(verdict $((m + 1)))
[[ $GOT == $((m + 2)) && -n $V1 ]] || fail "verdicts $((m + 1)) and $((m + 2)) did not both go to the agent"
if [[ $V1 == "verdict: UNTRUSTED"*"golden arch version 2)"* && $V == "verdict: UNTRUSTED"*"golden arch version 2)"* ]] &&
        kill -0 "$VOUCHD_PID" 2>/dev/null; then
        pass "after the refused reload the verdicts still come from golden version 2"
else
        fail "after the refused reload: '$V1' / '$V'"
fi
rm -f "$TOP/golden/broken.json"
sighup
[[ $HUP_LOG == *"golden sets reloaded"* ]] || fail "SIGHUP (matching set back): '$HUP_LOG'"
first_with 3
if [[ $V == "verdict: TRUSTED"* ]]; then
        pass "after SIGHUP with the matching set back (version 3), the next verdict is TRUSTED"
else
        fail "no TRUSTED verdict under golden version 3: '$V'"
fi
# reload signals in a burst (one arriving while the last is handled): vouchd stays up. Before
# the fix, the store's thread did not block them and the second SIGHUP ended the process.
before=$(sighup_lines)
for ((i = 0; i < 30; i++)); do kill -HUP "$VOUCHD_PID"; done
for ((i = 0; i < 20; i++)); do
        (($(sighup_lines) > before)) && break
        sleep 0.1
done
sleep 0.5
if kill -0 "$VOUCHD_PID" 2>/dev/null && (($(sighup_lines) > before)); then
        pass "30 SIGHUPs in a burst: vouchd stays up ($(($(sighup_lines) - before)) reloads logged)"
else
        fail "30 SIGHUPs in a burst: vouchd $(kill -0 "$VOUCHD_PID" 2>/dev/null && echo "is up but logged no reload" || echo died)"
fi

# --- 5. an extra value extended into PCR 4 between two rounds: the next periodic verdict
# is UNTRUSTED. The extension follows a verdict at once, an interval before the next
# challenge (and the swtpm serves one client at a time: it cannot land inside a round).
m=$(max_seq)
wait_seq $((m + 1))
S=$GOT
t0=$SECONDS
timeout 10 tpm2_pcrextend "4:sha256=$(echo rogue | sha256sum | cut -d' ' -f1)" >>"$T/tpm2.log" 2>&1 ||
        die "tpm2_pcrextend failed (is the swtpm held by the agent?)"
((SECONDS - t0 < INTERVAL)) || log "note: the extension took $((SECONDS - t0)) s"
wait_seq $((S + 1))
if [[ $GOT == $((S + 1)) && $V == "verdict: UNTRUSTED"*"golden arch version 3)"* && $V == *"PCR 4"* ]]; then
        pass "after an extra PCR 4 extension the next periodic verdict is UNTRUSTED: $(sed -n 2p <<<"$V")"
else
        fail "the verdict after the extension (sequence $GOT, want $((S + 1))): '$V'"
fi
[[ $(verdict "$S") == "verdict: TRUSTED"* ]] && pass "the verdict before it was TRUSTED" ||
        fail "the verdict before the extension: '$(verdict "$S")'"

# --- 6. the passport: --verdict-out holds the latest signed verdict
sleep 0.5
L=$(max_seq)
mkdir -p "$TOP/passport"
cp "$TOP/verdict.pb" "$TOP/passport/verdict.pb"
P=$(python3 "$CLIENT" decode-verdict "$TOP/passport/verdict.pb" "$TOP/passport")
if [[ $P == "UNTRUSTED sequence $L golden arch version 3 "* || $P == "UNTRUSTED sequence $((L + 1)) golden arch version 3 "* ]]; then
        pass "--verdict-out holds the latest verdict: $(head -n 1 <<<"$P")"
else
        fail "--verdict-out: '$(head -n 2 <<<"$P")', the agent printed sequence $L last"
fi
if openssl dgst -sha256 -verify "$TOP/state/verdict-keys.pem" -signature "$TOP/passport/verdict.sig" \
        "$TOP/passport/verdict.bin" >/dev/null 2>&1; then
        pass "its signature verifies with vouchd's verdict key"
else
        fail "the verdict file's signature does not verify"
fi
printf 'x' >>"$TOP/passport/verdict.bin"
if openssl dgst -sha256 -verify "$TOP/state/verdict-keys.pem" -signature "$TOP/passport/verdict.sig" \
        "$TOP/passport/verdict.bin" >/dev/null 2>&1; then
        fail "a modified verdict still verifies"
else
        pass "a modified verdict does not verify"
fi

# --- 7. SIGTERM: the agent stops at once (it is waiting for a challenge), exit 0
t0=$SECONDS
kill -TERM "$AGENT_PID"
rc=0
wait "$AGENT_PID" || rc=$?
AGENT_PID=""
if ((rc == 0 && SECONDS - t0 <= 3)); then
        pass "SIGTERM: the agent exited 0 in $((SECONDS - t0)) s"
else
        fail "SIGTERM: the agent exited with $(describe_status $rc) after $((SECONDS - t0)) s: $(tail -n 5 "$TOP/agent.err")"
fi
kill -TERM "$PROXY_PID" 2>/dev/null || true
wait "$PROXY_PID" 2>/dev/null || true
PROXY_PID=""
kill -TERM "$VOUCHD_PID"
rc=0
wait "$VOUCHD_PID" || rc=$?
VOUCHD_PID=""
[[ $rc == 0 ]] && pass "SIGTERM: vouchd drained and exited 0" || fail "vouchd: $(describe_status $rc)"
# counted once both have stopped: an agent stopped between two rounds got every verdict
# but perhaps the last one committed
n_store=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from verdicts').fetchone()[0])" \
        "$TOP/state/vouch.db")
n_agent=$(grep -c '^verdict: ' "$TOP/agent.out")
((n_store >= n_agent && n_store <= n_agent + 1)) && pass "vouchd stored $n_store verdicts ($n_agent to the agent, none for the replays)" ||
        fail "stored $n_store verdicts, the agent got $n_agent"
stop_swtpm
echo "$npass passed, $nfail failed"
((nfail == 0))
