#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Several vouchd instances on one PostgreSQL store behind HAProxy (issue 18), real processes on
# 127.0.0.1, run by test/pg/pg-harness.sh (VOUCH_TEST_STORE_URL, VOUCH_TEST_PG_CTL):
# three instances (the second and third joined from the first: vouchd init --join), HAProxy in
# TCP mode passing TLS through, three periodic agents with swtpm devices that know only
# HAProxy's address. Asserted: every device TRUSTED, each held by exactly one instance (its
# lease), the verdict visible at every instance; a second connection of a held device at
# another instance refused naming the holder; GET /v1/keys the same at every instance and every
# verdict verifies with it; the instance holding a device killed with SIGKILL: the device's
# agent is attested at another instance within 60 s; a revocation at an instance that does not
# hold the device closes its session at the holder within a second or two and the UNTRUSTED
# verdict is everywhere; PostgreSQL stopped under load: /healthz not ready, no verdict, every
# instance recovers by itself once it is back; the holder of a device cut off from the
# database (its relay, pg_relay.py, stopped): the device is taken over by another instance
# once the lease lapses, and the cut-off instance is ready again once the partition heals;
# a watch stream at one instance resumed at another delivers every
# verdict of the store exactly once, in global order; every verdict an agent received is in
# the database byte for byte; SIGTERM stops the survivors with exit 0.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}"
require_tools swtpm swtpm_setup swtpm_ioctl tpm2_pcrextend jq haproxy od curl
require_shared_data
require_vouchctl
[[ -n ${VOUCH_TEST_STORE_URL:-} && -n ${VOUCH_TEST_PG_CTL:-} ]] ||
        skip_or_fail "no PostgreSQL (run through test/pg/pg-harness.sh)"
LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-arch-linux.bin
[[ -f $LOG ]] || skip_or_fail "shared data not found at $LOG"
INTERVAL=4

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-multi-test.XXXXXX")
declare -A VPID AGENT_PID
HAPROXY_PID="" WATCH_PID=""
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
cleanup() {
        local rc=$?
        set +e
        for p in "${RELAY_PID[@]}"; do
                kill -CONT "$p" 2>/dev/null
        done
        for p in "${AGENT_PID[@]}" "${VPID[@]}" "${RELAY_PID[@]}" "$HAPROXY_PID" "$WATCH_PID"; do
                [[ -n $p ]] && kill -KILL "$p" 2>/dev/null
        done
        for t in "$TOP"/tpm-*; do
                [[ -f $t/pid ]] && kill -KILL "$(cat "$t/pid")" 2>/dev/null
        done
        if ((rc != 0)); then
                for i in 1 2 3; do
                        echo "--- vouchd v$i log ---"
                        tail -n 25 "$TOP/v$i.log" 2>/dev/null
                done
                for t in a b c; do
                        echo "--- agent $t ---"
                        tail -n 10 "$TOP/tpm-$t/agent.err" 2>/dev/null
                done
        fi
        rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

psql_q() { "$VOUCH_TEST_PG_CTL" psql -At -c "$1"; }

# new_device NAME: new_tpm (swtpm.sh) replaying LOG in $TOP/tpm-NAME
new_device() {
        new_tpm "$1"
        extend_log "$TOP/show.json" "sha1 sha256"
}

start_instance() { # N: vouchd --instance vN on its state dir, its agent port and API port
        local n=$1
        : >"$TOP/v$n.out"
        "$VOUCHD" --state-dir "$TOP/s$n" --store "${STORE_URL[$n]}" --instance "v$n" \
                --listen "127.0.0.1:${VPORT[$n]}" --api-listen "127.0.0.1:${APORT[$n]}" --api-admin ops \
                --http-listen "127.0.0.1:${HPORT_[$n]}" \
                --api-reader pe --golden-dir "$TOP/golden" --default-golden arch --ek-ca "$TOP/ekca.pem" \
                --interval "$INTERVAL" --jitter 0 --verdict-ttl 3 --threads 1 >"$TOP/v$n.out" 2>>"$TOP/v$n.log" &
        VPID[$n]=$!
        for ((i = 0; i < 100; i++)); do
                grep -q ready "$TOP/v$n.out" && return 0
                kill -0 "${VPID[$n]}" 2>/dev/null || die "vouchd v$n exited: $(tail -n 5 "$TOP/v$n.log")"
                sleep 0.1
        done
        die "vouchd v$n did not start"
}

start_agent() { # NAME: a periodic agent that knows only HAProxy's address
        local t=$TOP/tpm-$1
        "$VOUCH_AGENT" --server "127.0.0.1:$HPORT" --ca "$TOP/s1/ca.pem" --tcti "$(cat "$t/tcti")" \
                --eventlog "$LOG" --state-dir "$t/agent" --verdict-out "$t/verdict.pb" >"$t/agent.out" 2>"$t/agent.err" &
        AGENT_PID[$1]=$!
}

vc() { # NAME INSTANCE ROLE args...: vouchctl against instance INSTANCE's API; sets RC
        local name=$1 n=$2 role=$3
        shift 3
        RC=0
        timeout 30 "$VOUCHCTL" "$@" --server "https://127.0.0.1:${APORT[$n]}" --ca "$TOP/s1/ca.pem" \
                --cert "$TOP/$role.crt" --key "$TOP/$role.key" >"$TOP/$name.out" 2>"$TOP/$name.err" || RC=$?
}

device_of() { # NAME: the device id its agent printed
        sed -n 's/.*(device \([0-9a-f]*\),.*/\1/p' "$TOP/tpm-$1/agent.out" | head -n 1
}
holder_of() { psql_q "SELECT instance FROM leases WHERE device = '$1'"; }
latest_status() { # DEVICE INSTANCE: the status GET shows at that instance
        vc st "$2" pe verdict get "$1" --json
        jq -r .verdict.status "$TOP/st.out" 2>/dev/null || echo "?"
}

# --- the devices, their golden set, three state dirs of one deployment
"$VOUCHCTL" eventlog show "$LOG" --json >"$TOP/show.json"
new_device a
new_device b
new_device c
cat "$TOP"/tpm-*/ekca.pem >"$TOP/ekca.pem"
mkdir -p "$TOP/golden"
"$VOUCHCTL" golden create --eventlog "$LOG" --name arch >"$TOP/golden/arch.json"
"$VOUCHD" init --state-dir "$TOP/s1" --store "$VOUCH_TEST_STORE_URL" >/dev/null
for n in 2 3; do
        "$VOUCHD" init --state-dir "$TOP/s$n" --join "$TOP/s1" --store "$VOUCH_TEST_STORE_URL" >/dev/null 2>"$TOP/join$n.err" ||
                die "vouchd init --join: $(cat "$TOP/join$n.err")"
done
cmp -s "$TOP/s1/ca.pem" "$TOP/s2/ca.pem" && cmp -s "$TOP/s1/ca.pem" "$TOP/s3/ca.pem" &&
        pass "vouchd init --join: the joined state dirs have the deployment's CA" || fail "the CA differs after --join"
for who in ops pe; do
        "$VOUCHD" issue-client --state-dir "$TOP/s1" --name "$who" --out "$TOP/$who" >/dev/null
done
declare -A VPORT APORT HPORT_ RELAY_PID STORE_URL
# each instance reaches the database through a relay of its own (pg_relay.py), so that one
# instance can be cut off from it while the others keep it
PGDIR=$(sed -n 's/.*[?&]host=\([^&]*\).*/\1/p' <<<"$VOUCH_TEST_STORE_URL")
[[ -S $PGDIR/.s.PGSQL.5432 ]] || die "no PostgreSQL socket in $PGDIR"
for n in 1 2 3; do
        VPORT[$n]=$(free_port)
        APORT[$n]=$(free_port)
        HPORT_[$n]=$(free_port)
        python3 "$here/pg_relay.py" "$PGDIR" "$TOP/relay$n.port" &
        RELAY_PID[$n]=$!
        for ((i = 0; i < 50; i++)); do [[ -s $TOP/relay$n.port ]] && break; sleep 0.1; done
        [[ -s $TOP/relay$n.port ]] || die "the database relay did not start"
        STORE_URL[$n]="postgresql://vouch@127.0.0.1:$(cat "$TOP/relay$n.port")/vouch"
done
for n in 1 2 3; do
        start_instance "$n"
done
pass "three instances run on one store (v1, v2, v3)"

# the same name twice is refused
rc=0
timeout 20 "$VOUCHD" --state-dir "$TOP/s1x" --store "$VOUCH_TEST_STORE_URL" --instance v2 --listen "127.0.0.1:$(free_port)" \
        --golden-dir "$TOP/golden" --default-golden arch --ek-ca "$TOP/ekca.pem" >/dev/null 2>"$TOP/dup.err" || rc=$?
[[ $rc != 0 ]] && grep -q "running already" "$TOP/dup.err" &&
        pass "a second vouchd under a running instance's name is refused" || fail "duplicate instance: exit $rc $(tail -n 2 "$TOP/dup.err")"

# --- HAProxy: TCP mode, TLS passed through, the instances as its servers
HPORT=$(free_port)
cat >"$TOP/haproxy.cfg" <<EOF
global
        maxconn 1000
defaults
        mode tcp
        timeout connect 2s
        timeout client 1h
        timeout server 1h
        retries 3
        option redispatch
frontend agents
        bind 127.0.0.1:$HPORT
        default_backend vouchd
backend vouchd
        balance roundrobin
        option httpchk GET /healthz
        server v1 127.0.0.1:${VPORT[1]} check port ${HPORT_[1]} inter 500ms fall 1 rise 2
        server v2 127.0.0.1:${VPORT[2]} check port ${HPORT_[2]} inter 500ms fall 1 rise 2
        server v3 127.0.0.1:${VPORT[3]} check port ${HPORT_[3]} inter 500ms fall 1 rise 2
EOF
haproxy -c -f "$TOP/haproxy.cfg" >/dev/null 2>&1 || die "haproxy rejects its configuration: $(haproxy -c -f "$TOP/haproxy.cfg" 2>&1 | tail -n 3)"
haproxy -db -f "$TOP/haproxy.cfg" >"$TOP/haproxy.log" 2>&1 &
HAPROXY_PID=$!
sleep 1.2

# the watch stream at v1, from the start
WATCH_OUT=$TOP/watch1.jsonl
timeout 600 "$VOUCHCTL" verdict watch --since 0 --json --server "https://127.0.0.1:${APORT[1]}" --ca "$TOP/s1/ca.pem" \
        --cert "$TOP/pe.crt" --key "$TOP/pe.key" >"$WATCH_OUT" 2>"$TOP/watch1.err" &
WATCH_PID=$!

for t in a b c; do
        start_agent "$t"
done
declare -A DEV
for ((i = 0; i < 300; i++)); do
        ok=0
        for t in a b c; do
                grep -q "verdict: TRUSTED" "$TOP/tpm-$t/agent.out" 2>/dev/null && ok=$((ok + 1))
        done
        ((ok == 3)) && break
        sleep 0.2
done
for t in a b c; do
        DEV[$t]=$(device_of "$t")
done
((ok == 3)) && pass "three agents through HAProxy: TRUSTED" ||
        fail "not every agent TRUSTED: $(for t in a b c; do tail -n 2 "$TOP/tpm-$t/agent.err"; done)"

declare -A HOLDER
spread=""
for t in a b c; do
        HOLDER[$t]=$(holder_of "${DEV[$t]}")
        spread+="${DEV[$t]:0:8}=${HOLDER[$t]} "
done
[[ ${HOLDER[a]} == v? && ${HOLDER[b]} == v? && ${HOLDER[c]} == v? ]] && pass "each device is held by one instance: $spread" ||
        fail "leases: $spread"

# every instance shows every device's verdict (GET reads what others committed)
bad=""
sleep 1
for n in 1 2 3; do
        for t in a b c; do
                s=$(latest_status "${DEV[$t]}" "$n")
                [[ $s == TRUSTED ]] || bad+="v$n:$t=$s "
        done
done
[[ -z $bad ]] && pass "GET at every instance shows every device TRUSTED" || fail "GET across instances: $bad"

# one keys file: the same at every instance, and every agent's verdict verifies with v3's
vc k1 1 pe keys get --pem
vc k3 3 pe keys get --pem
cmp -s "$TOP/k1.out" "$TOP/k3.out" && pass "GET /v1/keys is the same at v1 and v3" || fail "keys differ between instances"
bad=""
for t in a b c; do
        "$VOUCHCTL" verdict verify --keys "$TOP/k3.out" "$TOP/tpm-$t/verdict.pb" >/dev/null 2>"$TOP/verify.err" ||
                bad+="$t($(head -c 120 "$TOP/verify.err")) "
done
[[ -z $bad ]] && pass "every agent's verdict verifies with v3's keys file" || fail "verify: $bad"

# a second connection of a held device at another instance: refused, naming the holder
other=v1
[[ ${HOLDER[a]} == v1 ]] && other=v2
t=$TOP/tpm-a
rc=0
timeout 60 "$VOUCH_AGENT" --server "127.0.0.1:${VPORT[${other#v}]}" --ca "$TOP/s1/ca.pem" --tcti "$(cat "$t/tcti")" \
        --eventlog "$LOG" --state-dir "$t/agent" --once >"$TOP/second.out" 2>"$TOP/second.err" || rc=$?
[[ $rc != 0 ]] && grep -q "${HOLDER[a]}" "$TOP/second.err" &&
        pass "a second connection of device a at $other is refused, naming ${HOLDER[a]}" ||
        fail "second connection at $other: exit $rc: $(tail -n 3 "$TOP/second.err")"

# --- the instance holding device a is killed
victim=${HOLDER[a]#v}
kill -KILL "${VPID[$victim]}"
wait "${VPID[$victim]}" 2>/dev/null || true
unset "VPID[$victim]"
killed_at=$SECONDS
moved=""
for ((i = 0; i < 120; i++)); do
        h=$(holder_of "${DEV[a]}")
        if [[ -n $h && $h != "v$victim" ]] && (($(grep -c "verdict: TRUSTED" "$TOP/tpm-a/agent.out") >= 2)); then
                moved=$h
                break
        fi
        sleep 0.5
done
took=$((SECONDS - killed_at))
[[ -n $moved && $took -le 60 ]] && pass "v$victim killed (SIGKILL): device a attested at $moved after ${took} s" ||
        fail "device a not taken over within 60 s of v$victim's death (holder $(holder_of "${DEV[a]}"))"

# --- a revocation at an instance that does not hold device b
hb=$(holder_of "${DEV[b]}")
adm=""
for n in 1 2 3; do
        [[ -n ${VPID[$n]:-} && v$n != "$hb" ]] && { adm=$n; break; }
done
before=$(wc -l <"$TOP/tpm-b/agent.err")
t0=$(date +%s%N)
vc rev "$adm" ops device revoke "${DEV[b]}"
[[ $RC == 0 ]] || fail "device revoke at v$adm: $(cat "$TOP/rev.err")"
closed=""
for ((i = 0; i < 40; i++)); do
        # the session ends: the agent says why (an error from the verifier, or the connection lost)
        if tail -n +$((before + 1)) "$TOP/tpm-b/agent.err" | grep -q "refused\|connection to .* lost\|reconnecting"; then
                closed=yes
                break
        fi
        sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
[[ -n $closed ]] && pass "revoked at v$adm: the holder $hb ended device b's session after ${ms} ms" ||
        fail "revocation at v$adm did not reach $hb within 4 s: $(tail -n 3 "$TOP/tpm-b/agent.err")"
sleep 1.5
bad=""
for n in 1 2 3; do
        [[ -n ${VPID[$n]:-} ]] || continue
        s=$(latest_status "${DEV[b]}" "$n")
        [[ $s == UNTRUSTED ]] || bad+="v$n=$s "
done
[[ -z $bad ]] && pass "the revoked device is UNTRUSTED at every live instance" || fail "after revoke: $bad"

# the watch stream at v1 stops here (if v1 was not the instance killed, which ended it);
# it is resumed at another instance at the end, when more verdicts have been stored
kill -TERM "$WATCH_PID" 2>/dev/null || true
wait "$WATCH_PID" 2>/dev/null || true
WATCH_PID=""
last=$(jq -r .verdict.global_sequence "$WATCH_OUT" | tail -n 1)

# --- PostgreSQL stopped under load, then started again
health() { # N: the status code of GET /healthz at instance N (its plain-HTTP health port)
        curl -s -o "$TOP/health.out" -w '%{http_code}' "http://127.0.0.1:${HPORT_[$1]}/healthz" || true
}
metric() { # N NAME: a metric's value at instance N
        curl -s --cacert "$TOP/s1/ca.pem" --cert "$TOP/pe.crt" --key "$TOP/pe.key" "https://127.0.0.1:${APORT[$1]}/metrics" |
                awk -v m="$2" '$1 == m { print $2 }'
}
verdicts_of() { grep -c "verdict:" "$TOP/tpm-$1/agent.out" || true; }
"$VOUCH_TEST_PG_CTL" stop
sleep 2
bad=""
for n in 1 2 3; do
        [[ -n ${VPID[$n]:-} ]] || continue
        code=$(health "$n")
        [[ $code == 503 ]] && grep -q "not ready: the store is unavailable" "$TOP/health.out" || bad+="v$n:healthz=$code "
done
[[ -z $bad ]] && pass "PostgreSQL stopped: /healthz says not ready at every instance" || fail "with PostgreSQL stopped: $bad"
na=$(verdicts_of a)
nc=$(verdicts_of c)
sleep $((2 * INTERVAL + 4))
[[ $(verdicts_of a) == "$na" && $(verdicts_of c) == "$nc" ]] &&
        pass "no verdict while nothing can be committed ($((2 * INTERVAL + 4)) s)" ||
        fail "verdicts while PostgreSQL was stopped: a $na -> $(verdicts_of a), c $nc -> $(verdicts_of c)"
alive=""
for n in 1 2 3; do
        [[ -n ${VPID[$n]:-} ]] && { kill -0 "${VPID[$n]}" 2>/dev/null && alive+="v$n " || fail "v$n died without its database"; }
done
"$VOUCH_TEST_PG_CTL" start
back=$SECONDS
for ((i = 0; i < 240; i++)); do
        (($(verdicts_of a) > na && $(verdicts_of c) > nc)) && break
        sleep 0.5
done
(($(verdicts_of a) > na && $(verdicts_of c) > nc)) &&
        pass "PostgreSQL back: devices a and c attested again after $((SECONDS - back)) s, no instance restarted ($alive)" ||
        fail "not attested again within 120 s of PostgreSQL's start: $(tail -n 3 "$TOP/tpm-a/agent.err")"
bad=""
for n in 1 2 3; do
        [[ -n ${VPID[$n]:-} ]] || continue
        code=$(health "$n")
        r=$(metric "$n" vouch_store_reconnects_total)
        [[ $code == 200 && ${r:-0} -ge 1 ]] || bad+="v$n:healthz=$code,reconnects=$r "
done
[[ -z $bad ]] && pass "every instance ready again, its reconnection counted" || fail "after PostgreSQL's start: $bad"

# --- a partition: the instance holding device c cut off from the database (its relay stopped)
hc=$(holder_of "${DEV[c]}")
x=${hc#v}
nc=$(verdicts_of c)
kill -STOP "${RELAY_PID[$x]}"
cut=$SECONDS
moved=""
for ((i = 0; i < 180; i++)); do
        h=$(holder_of "${DEV[c]}")
        if [[ -n $h && $h != "$hc" ]] && (($(verdicts_of c) > nc)); then
                moved=$h
                break
        fi
        sleep 0.5
done
took=$((SECONDS - cut))
[[ -n $moved && $took -le 60 ]] && pass "$hc cut off from the database: device c taken over by $moved after ${took} s" ||
        fail "device c not taken over within 60 s of $hc's partition (holder $(holder_of "${DEV[c]}"))"
kill -0 "${VPID[$x]}" 2>/dev/null && pass "$hc kept running while partitioned" || fail "$hc died while partitioned"
kill -CONT "${RELAY_PID[$x]}"
healed=""
for ((i = 0; i < 120; i++)); do
        [[ $(health "$x") == 200 ]] && { healed=yes; break; }
        sleep 0.5
done
[[ -n $healed ]] && pass "$hc ready again once the partition healed" || fail "$hc not ready 60 s after the partition healed: $(cat "$TOP/health.out")"

# --- the agents stop; the watch stream stopped at v1 is resumed at another live instance
sleep $((INTERVAL + 1))
for t in a b c; do
        kill -TERM "${AGENT_PID[$t]}" 2>/dev/null || true
        wait "${AGENT_PID[$t]}" 2>/dev/null || true
done
AGENT_PID=()
sleep 1
res=""
for n in 3 2; do
        [[ -n ${VPID[$n]:-} ]] && { res=$n; break; }
done
stored=$(psql_q "SELECT gseq FROM verdicts ORDER BY gseq" | tr '\n' ' ')
after=$(psql_q "SELECT count(*) FROM verdicts WHERE gseq > ${last:-0}")
((after > 0)) || fail "no verdict stored after the watch stopped at $last: nothing to resume"
vc w2 "$res" pe verdict watch --since "$last" --json --count "$after"
seen=$(cat "$WATCH_OUT" "$TOP/w2.out" | jq -r .verdict.global_sequence | tr '\n' ' ')
[[ -n $stored && $seen == "$stored" ]] &&
        pass "watch at v1, resumed at v$res with since=$last: every stored verdict once, in order ($(wc -w <<<"$stored"), $after after the resumption)" ||
        fail "watch: seen [$seen] stored [$stored]"

# --- every verdict an agent holds is in the database, byte for byte
bad=""
for t in a b c; do
        hex=$(od -An -tx1 -v "$TOP/tpm-$t/verdict.pb" | tr -d " \n")
        n=$(psql_q "SELECT count(*) FROM verdicts WHERE encode(record, 'hex') = '$hex'")
        [[ $n == 1 ]] || bad+="$t "
done
[[ -z $bad ]] && pass "the agents' latest verdicts are in the database byte for byte" || fail "not in the database: $bad"

# --- stop: every live instance with SIGTERM (exit 0)
for n in 1 2 3; do
        [[ -n ${VPID[$n]:-} ]] || continue
        rc=0
        kill -TERM "${VPID[$n]}"
        wait "${VPID[$n]}" || rc=$?
        unset "VPID[$n]"
        ((rc == 0)) && pass "v$n stopped with SIGTERM: exit 0" || fail "v$n stopped with $(describe_status "$rc")"
done
left=$(psql_q "SELECT count(*) FROM leases")
[[ $left == 0 ]] && pass "the stopped instances released their leases" || fail "$left leases left after every instance stopped"

echo "# $npass passed, $nfail failed"
((nfail == 0))
