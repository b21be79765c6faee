#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One deployment identity for several vouchd on one PostgreSQL store (issue 18,
# docs/scale-out.md): `vouchd init --join` gives a new state dir the deployment's CA and
# verdict keys and a server certificate of its own; a verdict signed by one instance
# verifies with the keys file (GET /v1/keys) of the other, also after a key rotation at one
# of them (and an EAR signed by the other with the first's JWK Set); the API of every
# instance takes the same client certificates; an instance with a CA of its own is refused;
# a golden set whose name and version the deployment holds with another content refuses an
# instance's start, and a SIGHUP keeps the old sets. Run by test/pg/pg-harness.sh
# (VOUCH_TEST_STORE_URL, VOUCH_TEST_PG_CTL).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}" "${VOUCH_TEST_STORE_URL:?run it through test/pg/pg-harness.sh}"
require_tools swtpm swtpm_setup swtpm_ioctl openssl python3 jq
require_shared_data
require_vouchctl
LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-arch-linux.bin
[[ -f $LOG ]] || skip_or_fail "shared data not found at $LOG"

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-ident-test.XXXXXX")
declare -A PID=()
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
cleanup() {
        local rc=$?
        set +e
        for p in "${PID[@]}"; do [[ -n $p ]] && kill -KILL "$p" 2>/dev/null; done
        for t in "$TOP"/tpm-*; do
                [[ -f $t/pid ]] && kill -KILL "$(cat "$t/pid")" 2>/dev/null
        done
        if ((rc != 0 || nfail != 0)); then
                for l in "$TOP"/*.log; do
                        echo "--- $l ---"
                        tail -n 20 "$l"
                done
        fi
        [[ -n ${VOUCH_KEEP_TMP:-} ]] && echo "kept $TOP" || rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

psql_q() { "$VOUCH_TEST_PG_CTL" psql -Atc "$1"; }

# start NAME [ARGS...]: vouchd instance NAME on state dir $TOP/NAME with its golden dir
# $TOP/golden-NAME, agents on ${VPORT[NAME]}, the API on ${APORT[NAME]}
declare -A VPORT=() APORT=()
start() {
        local n=$1
        shift
        VPORT[$n]=$(free_port)
        APORT[$n]=$(free_port)
        : >"$TOP/$n.out"
        "$VOUCHD" --state-dir "$TOP/$n" --store "$VOUCH_TEST_STORE_URL" --instance "$n" \
                --listen "127.0.0.1:${VPORT[$n]}" --golden-dir "$TOP/golden-$n" --default-golden arch \
                --ek-ca "$TOP/tpm-a/ekca.pem" --interval 3600 --threads 2 --api-listen "127.0.0.1:${APORT[$n]}" \
                --api-reader reader "$@" >"$TOP/$n.out" 2>>"$TOP/$n.log" &
        PID[$n]=$!
}

wait_ready() { # NAME
        for ((i = 0; i < 100; i++)); do
                grep -q ready "$TOP/$1.out" && return 0
                kill -0 "${PID[$1]}" 2>/dev/null || die "vouchd $1 exited: $(tail -n 5 "$TOP/$1.log")"
                sleep 0.1
        done
        die "vouchd $1 did not start"
}

refused() { # NAME: waits (10 s) for the instance to exit; its status in RC ("started" if it did not)
        for ((i = 0; i < 100; i++)); do
                kill -0 "${PID[$1]}" 2>/dev/null || break
                sleep 0.1
        done
        RC=0
        if kill -0 "${PID[$1]}" 2>/dev/null; then
                kill -KILL "${PID[$1]}"
                RC=started
        fi
        wait "${PID[$1]}" || [[ $RC == started ]] || RC=$?
        PID[$1]=""
}

stop() { # NAME: SIGTERM, and its exit status in STOP_RC
        STOP_RC=0
        kill -TERM "${PID[$1]}"
        wait "${PID[$1]}" || STOP_RC=$?
        PID[$1]=""
}

wait_log() { # NAME PATTERN [N]: until the instance's log has it more than N times (default 0; 10 s)
        local c
        for ((i = 0; i < 100; i++)); do
                c=$(grep -c "$2" "$TOP/$1.log" 2>/dev/null) || c=0
                ((c > ${3:-0})) && return 0
                sleep 0.1
        done
        return 1
}

PC() { # NAME args...: the policy client at instance NAME, with the reader's certificate (issued at a)
        local n=$1
        shift
        python3 "$here/policy_client.py" --server "127.0.0.1:${APORT[$n]}" --ca "$TOP/a/ca.pem" \
                --cert "$TOP/clients/reader.crt" --key "$TOP/clients/reader.key" "$@"
}

# agent NAME -> vouch-agent --once against instance NAME; sets RC, OUT, ERR; verdict in $TOP/verdict.pb
agent() {
        local t=$TOP/tpm-a
        RC=0
        timeout 60 "$VOUCH_AGENT" --server "127.0.0.1:${VPORT[$1]}" --ca "$TOP/a/ca.pem" --tcti "$(cat "$t/tcti")" \
                --eventlog "$LOG" --state-dir "$t/agent" --once --verdict-out "$TOP/verdict.pb" \
                >"$t/agent.out" 2>"$t/agent.err" || RC=$?
        OUT=$(cat "$t/agent.out")
        ERR=$(cat "$t/agent.err")
}

verify() { # KEYS VERDICT: vouchctl verdict verify's exit status in VRC, its output in VOUT
        VRC=0
        VOUT=$("$VOUCHCTL" verdict verify --keys "$1" "$2" 2>&1) || VRC=$?
}

key_ids() { jq -r '[.keys[].key_id] | sort | join(" ")'; }

# --- a TPM replaying a real log, its golden set; instance a, and b joined from it
T=$TOP/tpm-a
mkdir -p "$T/w" "$TOP/clients"
: >"$T/tpm2.log"
SWTPM_PID=""
provision_swtpm sha1,sha256
start_swtpm
echo "$SWTPM_PID" >"$T/pid"
echo "$TPM2TOOLS_TCTI" >"$T/tcti"
cat "$T/ca/issuercert.pem" "$T/ca/swtpm-localca-rootca-cert.pem" >"$T/ekca.pem"
"$VOUCHCTL" eventlog show "$LOG" --json >"$TOP/show.json"
extend_log "$TOP/show.json" "sha1 sha256"
mkdir -p "$TOP/golden-a" "$TOP/golden-b"
"$VOUCHCTL" golden create --eventlog "$LOG" --name arch >"$TOP/golden-a/arch.json"
cp "$TOP/golden-a/arch.json" "$TOP/golden-b/arch.json"
GV=$(jq .version "$TOP/golden-a/arch.json")

"$VOUCHD" init --state-dir "$TOP/a" --store "$VOUCH_TEST_STORE_URL" >/dev/null
"$VOUCHD" issue-client --state-dir "$TOP/a" --name reader --out "$TOP/clients/reader" >/dev/null
rc=0
"$VOUCHD" init --state-dir "$TOP/b" --join "$TOP/a" --san b.example --store "$VOUCH_TEST_STORE_URL" >"$TOP/init-b.out" \
        2>&1 || rc=$?
pub() { openssl pkey -in "$1" -pubout 2>/dev/null | sha256sum; }
if ((rc == 0)) && cmp -s "$TOP/a/ca.pem" "$TOP/b/ca.pem" && [[ $(pub "$TOP/a/ca.key") == $(pub "$TOP/b/ca.key") &&
        $(pub "$TOP/a/verdict.key") == $(pub "$TOP/b/verdict.key") && $(pub "$TOP/a/server.key") != $(pub "$TOP/b/server.key") &&
        $(stat -c %a "$TOP/b/ca.key") == 600 && $(stat -c %a "$TOP/b/verdict.key") == 600 &&
        $(stat -c %a "$TOP/b/server.key") == 600 && $(stat -c %a "$TOP/b") == 700 ]] &&
        openssl verify -CAfile "$TOP/a/ca.pem" "$TOP/b/server.pem" >/dev/null &&
        openssl x509 -in "$TOP/b/server.pem" -noout -ext subjectAltName | grep -q 'DNS:b.example'; then
        pass "init --join: the deployment's CA and verdict key, a server certificate of its own (its --san) under that CA, keys 0600"
else
        fail "init --join: exit $rc $(cat "$TOP/init-b.out")"
fi
rc=0
"$VOUCHD" init --state-dir "$TOP/x" --join "$TOP/clients" >/dev/null 2>"$TOP/init-x.err" || rc=$?
[[ $rc == 1 && $(cat "$TOP/init-x.err") == *"not an initialised state dir"* && ! -e $TOP/x/ca.key ]] &&
        pass "init --join of a dir that is not a state dir is refused: $(cat "$TOP/init-x.err")" ||
        fail "join of a non-state dir: exit $rc $(cat "$TOP/init-x.err")"
rc=0
"$VOUCHD" init --state-dir "$TOP/b" --join "$TOP/a" >/dev/null 2>"$TOP/init-b2.err" || rc=$?
[[ $rc == 1 && $(cat "$TOP/init-b2.err") == *"already holds"* ]] &&
        pass "init --join into an initialised state dir is refused" || fail "join again: exit $rc $(cat "$TOP/init-b2.err")"

# --- a attests the device; b starts after that (it loads the device)
start a
wait_ready a
agent a
[[ $RC == 0 && $OUT == *"verdict: TRUSTED"* ]] && pass "instance a: the device enrolls, TRUSTED" || fail "agent at a: $RC $OUT $ERR"
ID=$(sed -n 's/.*(device \([0-9a-f]*\),.*/\1/p' <<<"$OUT")
cp "$TOP/verdict.pb" "$TOP/v1.pb"
start b
wait_ready b
ka=$(PC a keys)
kb=$(PC b keys)
K1=$(jq -r '.keys[0].key_id' <<<"$ka")
[[ $(key_ids <<<"$ka") == "$K1" && $(key_ids <<<"$kb") == "$K1" && $(jq '.keys[0].active' <<<"$kb") == true ]] &&
        pass "both instances serve the one verdict key; b's API takes a client certificate issued at a" ||
        fail "keys: a $ka, b $kb"
PC b get /v1/keys --out "$TOP/keys-b1.pb" >/dev/null
verify "$TOP/keys-b1.pb" "$TOP/v1.pb"
((VRC == 0)) && pass "a's verdict verifies with b's GET /v1/keys" || fail "verify with b's keys: $VRC $VOUT"

# --- rotation at a: b's /v1/keys has a's new key without a SIGHUP at b
"$VOUCHD" rotate-key --state-dir "$TOP/a" >/dev/null
kill -HUP "${PID[a]}"
wait_log a "SIGHUP: verdicts are signed with key" || fail "a's SIGHUP not done"
agent a
cp "$TOP/verdict.pb" "$TOP/v2.pb"
K2=$(PC a verdict "/v1/devices/$ID/verdict" | jq -r .key_id)
PC b get /v1/keys --out "$TOP/keys-b2.pb" >/dev/null
PC b get "/v1/keys?format=pem" --out "$TOP/keys-b2.pem" >/dev/null
verify "$TOP/keys-b2.pb" "$TOP/v2.pb"
v2=$VRC
verify "$TOP/keys-b2.pem" "$TOP/v2.pb"
v2p=$VRC
verify "$TOP/keys-b2.pb" "$TOP/v1.pb"
v1=$VRC
verify "$TOP/keys-b1.pb" "$TOP/v2.pb"
old=$VRC
if [[ $RC == 0 && $K2 != "$K1" && $v2 == 0 && $v2p == 0 && $v1 == 0 && $old != 0 ]]; then
        pass "rotate-key + SIGHUP at a: its new verdicts verify with b's GET /v1/keys (protobuf and PEM), the old ones too; b's keys from before do not know the new key"
else
        fail "after a's rotation: agent $RC, $K1 -> $K2, verify new $v2 (pem $v2p), old $v1, with b's old keys $old: $VOUT"
fi
ka=$(PC a keys)
kb=$(PC b keys)
both=$(printf '%s\n' "$K1" "$K2" | sort | paste -sd ' ')
[[ $(key_ids <<<"$ka") == "$both" && $(key_ids <<<"$kb") == "$both" &&
        $(jq --arg k "$K1" '.keys[] | select(.key_id == $k) | .active' <<<"$ka") == true &&
        $(jq --arg k "$K2" '.keys[] | select(.key_id == $k) | .active' <<<"$kb") == true ]] &&
        pass "both instances serve both keys, each active (b still signs with the first)" ||
        fail "keys after a's rotation: a $ka, b $kb"

# --- rotation at b: an EAR b signs verifies with a's JWK Set
"$VOUCHD" rotate-key --state-dir "$TOP/b" >/dev/null
kill -HUP "${PID[b]}"
wait_log b "SIGHUP: verdicts are signed with key" || fail "b's SIGHUP not done"
PC b ear "/v1/devices/$ID/verdict?format=ear" "$TOP/ear" >/dev/null
PC a get /.well-known/jwks.json --out "$TOP/jwks-a.json" >/dev/null
pyjwt=python3
[[ -x /usr/bin/python3 ]] && pyjwt=/usr/bin/python3
if "$pyjwt" - "$TOP/jwks-a.json" "$TOP/ear/token" <<'PY'; then
import sys, jwt
keys = jwt.PyJWKSet.from_json(open(sys.argv[1]).read())
token = open(sys.argv[2]).read().strip()
kid = jwt.get_unverified_header(token)["kid"]
key = next(k for k in keys.keys if k.key_id == kid)
jwt.decode(token, key.key, algorithms=["ES256"], options={"verify_exp": True, "verify_iss": False})
PY
        n3=$(jq '.keys | length' "$TOP/jwks-a.json")
        pass "an EAR signed by b's rotated key verifies with a's /.well-known/jwks.json ($n3 keys)"
else
        fail "b's EAR with a's JWK Set: $(cat "$TOP/jwks-a.json")"
fi

# --- an instance with a CA of its own (init without --join) is not of this deployment
"$VOUCHD" init --state-dir "$TOP/e" --store "$VOUCH_TEST_STORE_URL" >/dev/null 2>"$TOP/init-e.err"
cp -r "$TOP/golden-a" "$TOP/golden-e"
start e
refused e
if [[ $RC == 1 && $(cat "$TOP/e.log") == *"is not the deployment's CA"*"--join"* &&
        $(cat "$TOP/init-e.err") == *"warning: the store belongs to a deployment with another CA"* &&
        $(psql_q "select count(*) from verdict_keys where instance='e'") == 0 ]]; then
        pass "an instance whose CA is not the deployment's is refused (init warns), publishing nothing: $(grep -m1 -o "ca.pem is not.*" "$TOP/e.log" | cut -c1-120)..."
else
        fail "instance e: exit $RC: $(tail -n 2 "$TOP/e.log")"
fi

# --- golden sets: one content per name and version
mkdir -p "$TOP/golden-c" "$TOP/golden-d"
jq -c . "$TOP/golden-a/arch.json" >"$TOP/golden-c/arch.json" # the same content, written otherwise
jq '.description = "changed, not re-versioned"' "$TOP/golden-a/arch.json" >"$TOP/golden-d/arch.json"
for n in c d; do
        "$VOUCHD" init --state-dir "$TOP/$n" --join "$TOP/a" --store "$VOUCH_TEST_STORE_URL" >/dev/null
done
start c
wait_ready c
stop c
[[ $STOP_RC == 0 ]] && pass "an instance whose golden set is the same content (reformatted) starts, and stops with exit 0" ||
        fail "instance c: exit $STOP_RC"
start d
refused d
stored=$(psql_q "select digest from golden_sets where name='arch' and version=$GV")
if [[ $RC == 1 && $(cat "$TOP/d.log") == *"golden set \"arch\" version $GV"*"registered by instance a"* &&
        $(cat "$TOP/d.log") == *"$stored"* && $(cat "$TOP/d.log") == *"not started"* ]]; then
        pass "an instance whose golden set has another content under the same name and version is refused: $(grep -m1 'not started' "$TOP/d.log" | cut -c1-200)..."
else
        fail "instance d: exit $RC: $(tail -n 3 "$TOP/d.log")"
fi
cp "$TOP/golden-d/arch.json" "$TOP/golden-a/arch.json"
kill -HUP "${PID[a]}"
wait_log a "SIGHUP: golden sets not reloaded" || true
agent a
if grep -q "SIGHUP: golden sets not reloaded: .*\"arch\" version $GV" "$TOP/a.log" && [[ $RC == 0 && $OUT == *"verdict: TRUSTED"* ]] &&
        [[ $(psql_q "select count(*) from golden_sets where name='arch'") == 1 ]]; then
        pass "SIGHUP with a changed set under the same version: not reloaded, the old sets stay (TRUSTED)"
else
        fail "SIGHUP with a changed set: $RC $OUT / $(grep SIGHUP "$TOP/a.log" | tail -n 2)"
fi
jq --argjson v $((GV + 1)) '.version = $v' "$TOP/golden-d/arch.json" >"$TOP/golden-a/arch.json"
# (the key rotation's SIGHUP above logged the same line: wait for one more)
reloads=$(grep -c "SIGHUP: 1 golden sets reloaded" "$TOP/a.log" || true)
kill -HUP "${PID[a]}"
wait_log a "SIGHUP: 1 golden sets reloaded" "$reloads" || true
[[ $(psql_q "select instance from golden_sets where name='arch' and version=$((GV + 1))") == a ]] &&
        pass "... and with a new version it is reloaded and registered" ||
        fail "re-versioned set: $(grep SIGHUP "$TOP/a.log" | tail -n 2)"

# --- a clean stop: a's active key is published until its verdicts have expired, not as active
stop a
[[ $STOP_RC == 0 ]] || fail "a stopped with exit $STOP_RC"
kb=$(PC b keys)
na=$(jq --arg k "$K2" '.keys[] | select(.key_id == $k) | .not_after' <<<"$kb")
now=$(date +%s)
if [[ $(jq --arg k "$K2" '.keys[] | select(.key_id == $k) | .active' <<<"$kb") == false ]] && ((na > now + 3 * 3600 - 60 &&
        na <= now + 3 * 3600 + 5)); then
        pass "after a's clean stop, b serves a's key as retired until a's verdicts expire (not_after now + 3 h)"
else
        fail "a's key after its stop: $kb"
fi
stop b
[[ $STOP_RC == 0 ]] && pass "b stops with exit 0" || fail "b stopped with exit $STOP_RC"
echo "$npass passed, $nfail failed"
((nfail == 0))
