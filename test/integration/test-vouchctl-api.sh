#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vouchctl's API commands (verdict get|list|watch, device list|approve|revoke|assign,
# keys get) against a real vouchd --api-listen on 127.0.0.1, with three swtpm devices
# attested by vouch-agent: mutual TLS 1.3 with certificates from `vouchd issue-client`,
# --config files and flags overriding them, pages followed, the watch stream (a PCR
# tampering shows up as UNTRUSTED; --since resumes without repeats), offline verification
# of what was fetched, roles (a reader calling admin endpoints, a CN without a role, a
# client certificate from another CA), and servers that must not be trusted (another CA,
# a certificate for another name, nothing listening).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}"
require_tools swtpm swtpm_setup swtpm_ioctl tpm2_pcrextend openssl jq sha256sum python3
require_shared_data
require_vouchctl
LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-arch-linux.bin
[[ -f $LOG ]] || skip_or_fail "shared data not found at $LOG"

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouchctl-api-test.XXXXXX")
VOUCHD_PID=""
BG_PIDS=()
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
cleanup() {
        local rc=$?
        set +e
        [[ -n $VOUCHD_PID ]] && kill -KILL "$VOUCHD_PID" 2>/dev/null
        for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
        for t in "$TOP"/tpm-*; do
                [[ -f $t/pid ]] && kill -KILL "$(cat "$t/pid")" 2>/dev/null
        done
        if ((rc != 0 || nfail != 0)); then
                echo "--- vouchd log ---"
                tail -n 40 "$TOP/vouchd.log" 2>/dev/null
        fi
        rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

new_device() {
        new_tpm "$1"
        extend_log "$TOP/show.json" "sha1 sha256"
        cat "$T/ekca.pem" >>"$TOP/ekca.pem"
}

# agent NAME: one attestation; sets RC and DEV_<NAME> (the device id)
agent() {
        local t=$TOP/tpm-$1 id
        RC=0
        timeout 60 "$VOUCH_AGENT" --server "127.0.0.1:$VPORT" --ca "$TOP/state/ca.pem" --tcti "$(cat "$t/tcti")" \
                --eventlog "$LOG" --state-dir "$t/agent" --once >"$t/agent.out" 2>"$t/agent.err" || RC=$?
        id=$(sed -n 's/.*(device \([0-9a-f]*\),.*/\1/p' "$t/agent.out")
        [[ -n $id ]] || die "agent $1: no verdict: exit $RC $(cat "$t/agent.out" "$t/agent.err")"
        printf -v "DEV_$1" '%s' "$id"
}

# unhex: hex on stdin to bytes on stdout
unhex() { python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))'; }

# vc NAME ARGS...: runs vouchctl (at most 30 s), output in $TOP/NAME.{out,err}; sets RC
vc() {
        local name=$1
        shift
        RC=0
        timeout 30 "$VOUCHCTL" "$@" >"$TOP/$name.out" 2>"$TOP/$name.err" || RC=$?
}
# expect NAME RC REGEX DESCRIPTION
expect() {
        local got
        got=$(cat "$TOP/$1.out" "$TOP/$1.err")
        if [[ $RC == "$2" && $got =~ $3 ]]; then
                if ((RC != 0)); then
                        pass "$4 [$(head -n 1 "$TOP/$1.err" | cut -c1-160)]"
                else
                        pass "$4"
                fi
        else
                fail "$4: exit $RC (want $2), output: $(head -c 800 <<<"$got")"
        fi
}

# --- three devices whose TPMs replay a real machine's log; one golden set from that log
"$VOUCHCTL" eventlog show "$LOG" --json >"$TOP/show.json"
: >"$TOP/ekca.pem"
new_device a
new_device b
new_device c
mkdir -p "$TOP/golden"
"$VOUCHCTL" golden create --eventlog "$LOG" --name arch >"$TOP/golden/arch.json"
"$VOUCHCTL" golden create --eventlog "$LOG" --name arch2 >"$TOP/golden/arch2.json"
"$VOUCHD" init --state-dir "$TOP/state" >/dev/null
"$VOUCHD" issue-client --state-dir "$TOP/state" --name ops --out "$TOP/ops" >/dev/null
"$VOUCHD" issue-client --state-dir "$TOP/state" --name pe --out "$TOP/pe" >/dev/null
"$VOUCHD" issue-client --state-dir "$TOP/state" --name stranger --out "$TOP/stranger" >/dev/null
[[ $(stat -c %a "$TOP/ops.key") == 600 ]] || die "issue-client: key mode $(stat -c %a "$TOP/ops.key")"
# a client certificate and a server certificate from another CA
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TOP/other-ca.key" \
        -out "$TOP/other-ca.pem" -subj "/CN=other CA" -days 2 -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=keyCertSign >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TOP/other.key" -out "$TOP/other.csr" \
        -subj "/CN=ops" >/dev/null 2>&1
openssl x509 -req -in "$TOP/other.csr" -CA "$TOP/other-ca.pem" -CAkey "$TOP/other-ca.key" -CAcreateserial \
        -out "$TOP/other.crt" -days 2 >/dev/null 2>&1
[[ -s $TOP/other.crt ]] || die "openssl could not make the other CA's certificate"

VPORT=$(free_port)
APORT=$(free_port)
[[ $APORT != "$VPORT" ]] || APORT=$((VPORT + 1))
"$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" --api-listen "127.0.0.1:$APORT" \
        --api-admin ops --api-reader pe --golden-dir "$TOP/golden" --default-golden arch --ek-ca "$TOP/ekca.pem" \
        --interval 3600 --threads 2 >"$TOP/vouchd.out" 2>>"$TOP/vouchd.log" &
VOUCHD_PID=$!
for ((i = 0; i < 100; i++)); do
        grep -q ready "$TOP/vouchd.out" && break
        kill -0 "$VOUCHD_PID" 2>/dev/null || die "vouchd exited: $(tail -n 5 "$TOP/vouchd.log")"
        sleep 0.1
done
grep -q ready "$TOP/vouchd.out" || die "vouchd did not start"
agent a
agent b
agent c
[[ $DEV_a != "$DEV_b" && $DEV_b != "$DEV_c" ]] || die "device ids are not distinct"

SRV="https://127.0.0.1:$APORT"
printf '%s\n' "# the reader" "server = $SRV" "cert = $TOP/pe.crt" "key = $TOP/pe.key" "ca = $TOP/state/ca.pem" \
        >"$TOP/reader.conf"
printf '%s\n' "server = $SRV" "cert = $TOP/ops.crt" "key = $TOP/ops.key" "ca = $TOP/state/ca.pem" >"$TOP/admin.conf"
R=(--config "$TOP/reader.conf")
A=(--config "$TOP/admin.conf")

# --- keys
vc keys keys get "${R[@]}"
KID=$(openssl pkey -pubin -in "$TOP/state/verdict-keys.pem" -outform DER | sha256sum | cut -d' ' -f1)
expect keys 0 "^key $KID +active" "keys get: the active key, its id the SHA-256 of its SPKI"
vc keysj keys get "${R[@]}" --json
[[ $RC == 0 && $(jq -r '.keys[0].key_id' "$TOP/keysj.out") == "$KID" &&
        $(jq -r '.keys[0].spki' "$TOP/keysj.out" | unhex | sha256sum | cut -d' ' -f1) == "$KID" ]] &&
        pass "keys get --json: key_id and spki" || fail "keys get --json: $(cat "$TOP/keysj.out" "$TOP/keysj.err")"
vc pem keys get "${R[@]}" --pem
cp "$TOP/pem.out" "$TOP/keys.pem"
[[ $RC == 0 ]] && cmp -s "$TOP/keys.pem" "$TOP/state/verdict-keys.pem" &&
        pass "keys get --pem: the same file as STATE_DIR/verdict-keys.pem" || fail "keys get --pem: exit $RC"
vc vk keys get "${R[@]}" --verdict-keys
cp "$TOP/vk.out" "$TOP/keys.pb"
[[ $RC == 0 && -s $TOP/keys.pb && $(head -c 1 "$TOP/keys.pb") != "-" ]] &&
        pass "keys get --verdict-keys: a VerdictKeys file (used by verdict verify below)" ||
        fail "keys get --verdict-keys: exit $RC $(cat "$TOP/vk.err")"
vc vkboth keys get "${R[@]}" --verdict-keys --pem
expect vkboth 2 "choose one" "keys get: --pem and --verdict-keys together is a usage error"

# --- verdict get
vc get verdict get "$DEV_a" "${R[@]}"
expect get 0 "signature: +not checked.*device: +$DEV_a.*status: +TRUSTED.*golden: +arch" \
        "verdict get: the device's latest verdict, TRUSTED (exit 0)"
vc getk verdict get "$DEV_a" "${R[@]}" --keys "$TOP/keys.pem"
expect getk 0 "signature: +valid \(key $KID\).*status: +TRUSTED" "verdict get --keys: the signature verifies"
vc getj verdict get "$DEV_a" "${R[@]}" --json
[[ $RC == 0 && $(jq -r '.verdict.device_id + " " + .verdict.status + " " + .key_id' "$TOP/getj.out") == "$DEV_a TRUSTED $KID" ]] &&
        pass "verdict get --json: the API's JSON form" || fail "verdict get --json: $(head -c 400 "$TOP/getj.out")"
# the fetched bytes verify offline, with vouchctl and openssl
jq -r .verdict_bytes "$TOP/getj.out" | unhex >"$TOP/get-verdict.bin"
jq -r .signature "$TOP/getj.out" | unhex >"$TOP/get-sig.der"
openssl dgst -sha256 -verify "$TOP/keys.pem" -signature "$TOP/get-sig.der" "$TOP/get-verdict.bin" 2>&1 |
        grep -q "Verified OK" && pass "the fetched verdict verifies with openssl" || fail "openssl on the fetched verdict"
vc getjv verdict verify --keys "$TOP/keys.pem" "$TOP/getj.out"
expect getjv 0 "status: +TRUSTED" "verdict get --json output is a valid input of verdict verify"
vc getjvk verdict verify --keys "$TOP/keys.pb" "$TOP/getj.out"
expect getjvk 0 "status: +TRUSTED" "verdict verify --keys with the VerdictKeys file"
vc getjvd verdict verify --keys "$TOP/keys.pem" "$TOP/getj.out" --device "$DEV_a"
expect getjvd 0 "status: +TRUSTED" "verdict verify --device: the verdict's own device"
vc getjvo verdict verify --keys "$TOP/keys.pem" "$TOP/getj.out" --device "$(printf '0%.0s' {1..64})"
expect getjvo 1 "wrong-device.*about device $DEV_a, not 0000" \
        "verdict verify --device: a genuine verdict of another device is refused (exit 1)"
vc get404 verdict get "$(printf '0%.0s' {1..64})" "${R[@]}"
expect get404 2 "HTTP 404 Not Found: no device" "verdict get of an unknown device: HTTP 404 and the server's message (exit 2)"
vc getbad verdict get "../../v1/keys" "${R[@]}"
expect getbad 2 "HTTP 404" "a device id is one escaped path segment (../ does not reach /v1/keys)"

# flags override the config file
printf '%s\n' "server = https://127.0.0.1:1" "cert = $TOP/nonexistent.crt" "key = $TOP/pe.key" \
        "ca = $TOP/state/ca.pem" >"$TOP/broken.conf"
vc over verdict get "$DEV_b" --config "$TOP/broken.conf" --server "$SRV" --cert "$TOP/pe.crt"
expect over 0 "device: +$DEV_b" "--server and --cert override the config file"
vc flags verdict get "$DEV_b" --server "https://localhost:$APORT" --cert "$TOP/pe.crt" --key "$TOP/pe.key" \
        --ca "$TOP/state/ca.pem"
expect flags 0 "device: +$DEV_b" "flags only, by host name (localhost is in the server certificate)"
vc bconf verdict get "$DEV_b" --config "$TOP/broken.conf"
expect bconf 2 "--cert .*nonexistent.crt" "a missing client certificate: exit 2, named"
printf 'server = %s\nport = 1\n' "$SRV" >"$TOP/typo.conf"
vc typo verdict get "$DEV_b" --config "$TOP/typo.conf"
expect typo 2 "typo.conf:2:" "an unknown config line: exit 2, with its line number"
vc noserver verdict get "$DEV_b" --cert "$TOP/pe.crt" --key "$TOP/pe.key" --ca "$TOP/state/ca.pem"
expect noserver 2 "--server, --cert, --key and --ca are required" "no server: usage error"

# --- verdict list: every page
vc list verdict list "${R[@]}"
[[ $RC == 0 && $(grep -c ' TRUSTED ' "$TOP/list.out") == 3 ]] && pass "verdict list: the three devices, TRUSTED" ||
        fail "verdict list: exit $RC $(cat "$TOP/list.out" "$TOP/list.err")"
vc list1 verdict list "${R[@]}" --page-size 1 --json
if [[ $RC == 0 && $(jq -r '[.verdicts[].verdict.device_id] | join(" ")' "$TOP/list1.out") == \
        "$(printf '%s\n' "$DEV_a" "$DEV_b" "$DEV_c" | sort | tr '\n' ' ' | sed 's/ $//')" ]]; then
        pass "verdict list --page-size 1: three pages followed, ordered by device id"
else
        fail "verdict list --page-size 1: exit $RC $(head -c 600 "$TOP/list1.out") $(cat "$TOP/list1.err")"
fi
vc listu verdict list "${R[@]}" --status untrusted
expect listu 0 "^no verdicts" "verdict list --status UNTRUSTED: none yet"
vc listbad verdict list "${R[@]}" --page-size 1001
expect listbad 2 "--page-size: 1..1000" "--page-size over 1000: usage error"

# --- verdict watch: history, then a tampering live, then resume
vc w0 verdict watch "${R[@]}" --since 0 --count 3 --json
[[ $RC == 0 && $(wc -l <"$TOP/w0.out") == 3 ]] && pass "verdict watch --since 0 --count 3: three verdicts, one JSON line each" ||
        fail "watch history: exit $RC $(cat "$TOP/w0.out" "$TOP/w0.err")"
LAST=$(jq -r .verdict.global_sequence "$TOP/w0.out" | tail -n 1)
jq -r .verdict.global_sequence "$TOP/w0.out" | sort -c -n -u 2>/dev/null && pass "in increasing global_sequence order" ||
        fail "watch order: $(jq -r .verdict.global_sequence "$TOP/w0.out" | tr '\n' ' ')"
timeout 60 "$VOUCHCTL" verdict watch "${R[@]}" --since "$LAST" --count 1 >"$TOP/live.out" 2>"$TOP/live.err" &
BG_PIDS+=($!)
WATCH=$!
sleep 6 # past the idle stream's first heartbeat (5 s), which vouchctl skips
kill -0 "$WATCH" 2>/dev/null && [[ ! -s $TOP/live.out ]] &&
        pass "the watch waits for new verdicts (nothing after $LAST yet), over a heartbeat" ||
        fail "the watch ended early: $(cat "$TOP/live.out" "$TOP/live.err")"
TPM2TOOLS_TCTI=$(cat "$TOP/tpm-a/tcti") tpm2_pcrextend "4:sha256=$(echo rogue | sha256sum | cut -d' ' -f1)" \
        >/dev/null 2>&1 || die "tpm2_pcrextend failed"
agent a
rc=0
wait "$WATCH" || rc=$?
if [[ $rc == 0 ]] && grep -Eq "^$DEV_a +UNTRUSTED " "$TOP/live.out" && (($(grep -c "^$DEV_a " "$TOP/live.out") == 1)); then
        pass "a PCR tampering shows up on the watch stream as UNTRUSTED"
else
        fail "live watch: exit $rc $(cat "$TOP/live.out" "$TOP/live.err")"
fi
vc resume verdict watch "${R[@]}" --since "$LAST" --count 1 --json
NEXT=$(jq -r .verdict.global_sequence "$TOP/resume.out" 2>/dev/null || echo none)
[[ $RC == 0 && $NEXT == $((LAST + 1)) && $(jq -r .verdict.status "$TOP/resume.out") == UNTRUSTED ]] &&
        pass "resume --since $LAST: the next verdict ($NEXT), nothing repeated" ||
        fail "resume: exit $RC next=$NEXT $(cat "$TOP/resume.err")"
vc getu verdict get "$DEV_a" "${R[@]}" --keys "$TOP/keys.pem"
expect getu 1 "status: +UNTRUSTED.*PCR 4.*verdict is valid but the device is UNTRUSTED" \
        "verdict get of the tampered device: UNTRUSTED, exit 1"
vc getua verdict get "$DEV_a" "${R[@]}" --keys "$TOP/keys.pem" --any-status
expect getua 0 "status: +UNTRUSTED" "... exit 0 with --any-status"
vc listu2 verdict list "${R[@]}" --status UNTRUSTED
[[ $RC == 0 && $(grep -c ' UNTRUSTED ' "$TOP/listu2.out") == 1 ]] && grep -q "^$DEV_a " "$TOP/listu2.out" &&
        pass "verdict list --status UNTRUSTED: the tampered device only" || fail "list --status: $(cat "$TOP/listu2.out")"

# --- roles
vc rdev device list "${R[@]}"
expect rdev 2 "HTTP 403 Forbidden: client \"pe\" is a reader" "a reader listing devices: HTTP 403 (exit 2)"
vc rrev device revoke "$DEV_b" "${R[@]}"
expect rrev 2 "HTTP 403 Forbidden" "a reader revoking a device: HTTP 403"
vc strg verdict get "$DEV_b" --config "$TOP/reader.conf" --cert "$TOP/stranger.crt" --key "$TOP/stranger.key"
expect strg 2 "HTTP 403 Forbidden: client \"stranger\" has no role" "a client whose CN has no role: HTTP 403"
vc oca verdict get "$DEV_b" --config "$TOP/reader.conf" --cert "$TOP/other.crt" --key "$TOP/other.key"
expect oca 2 "closed without an answer|alert" "a client certificate from another CA (CN ops!) is refused in the handshake"
vc mism verdict get "$DEV_b" --config "$TOP/reader.conf" --cert "$TOP/pe.crt" --key "$TOP/ops.key"
expect mism 2 "does not belong" "a key that does not match the certificate: exit 2"
grep -q 'refused.*"pe" is a reader' "$TOP/vouchd.log" && grep -q '"stranger" has no role' "$TOP/vouchd.log" &&
        pass "vouchd logged the refusals" || fail "refusals not logged"

# --- servers not to trust
vc sca keys get "${R[@]}" --ca "$TOP/other-ca.pem"
expect sca 2 "server certificate not accepted" "a server whose certificate is not from --ca: refused"
# a TLS 1.3 server with a certificate from the trusted CA's sibling: openssl s_server with
# a certificate for another name, issued by the other CA, trusted via --ca
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TOP/imp.key" -out "$TOP/imp.csr" \
        -subj "/CN=impostor" >/dev/null 2>&1
printf 'subjectAltName=DNS:impostor.example\n' >"$TOP/imp.ext"
openssl x509 -req -in "$TOP/imp.csr" -CA "$TOP/other-ca.pem" -CAkey "$TOP/other-ca.key" -CAcreateserial \
        -out "$TOP/imp.crt" -days 2 -extfile "$TOP/imp.ext" >/dev/null 2>&1
IPORT=$(free_port)
openssl s_server -quiet -tls1_3 -accept "127.0.0.1:$IPORT" -cert "$TOP/imp.crt" -key "$TOP/imp.key" -www \
        >"$TOP/s_server.out" 2>&1 &
BG_PIDS+=($!)
for ((i = 0; i < 50; i++)); do
        port_busy "$IPORT" && break
        sleep 0.1
done
vc name keys get --server "https://127.0.0.1:$IPORT" --ca "$TOP/other-ca.pem" --cert "$TOP/pe.crt" --key "$TOP/pe.key"
expect name 2 "server certificate not accepted.*(IP address mismatch|mismatch)" \
        "a server certificate from the trusted CA but for another name: refused"
vc name2 keys get --server "https://impostor.invalid:$IPORT" --ca "$TOP/other-ca.pem" --cert "$TOP/pe.crt" \
        --key "$TOP/pe.key"
expect name2 2 "cannot resolve impostor.invalid" "a host name that does not resolve: exit 2, named"
# control: the same kind of server with a certificate that names 127.0.0.1 gets past TLS
# (so the refusal above was the name check), and its answer is not taken for protobuf
printf 'subjectAltName=IP:127.0.0.1\n' >"$TOP/ok.ext"
openssl x509 -req -in "$TOP/imp.csr" -CA "$TOP/other-ca.pem" -CAkey "$TOP/other-ca.key" -CAcreateserial \
        -out "$TOP/ok.crt" -days 2 -extfile "$TOP/ok.ext" >/dev/null 2>&1
OPORT=$(free_port)
openssl s_server -quiet -tls1_3 -accept "127.0.0.1:$OPORT" -cert "$TOP/ok.crt" -key "$TOP/imp.key" -www \
        >"$TOP/s_server2.out" 2>&1 &
BG_PIDS+=($!)
for ((i = 0; i < 50; i++)); do
        port_busy "$OPORT" && break
        sleep 0.1
done
vc name3 keys get --server "https://127.0.0.1:$OPORT" --ca "$TOP/other-ca.pem" --cert "$TOP/pe.crt" --key "$TOP/pe.key"
expect name3 2 "the answer is 'text/html', not application/x-protobuf" \
        "control: a certificate naming 127.0.0.1 passes TLS; an HTML answer is refused"
CPORT=$(free_port)
vc refused keys get "${R[@]}" --server "https://127.0.0.1:$CPORT"
expect refused 2 "cannot connect to 127.0.0.1:$CPORT|connection to 127.0.0.1:$CPORT failed" \
        "nothing listening: exit 2, named"
vc http keys get "${R[@]}" --server "http://127.0.0.1:$APORT"
expect http 2 "not https://" "an http:// URL is refused"

# --- admin: devices
vc dlist device list "${A[@]}"
[[ $RC == 0 && $(grep -cE "^($DEV_a|$DEV_b|$DEV_c) " "$TOP/dlist.out") == 3 ]] &&
        pass "device list (admin): the three devices" || fail "device list: exit $RC $(cat "$TOP/dlist.out" "$TOP/dlist.err")"
vc dlistj device list "${A[@]}" --page-size 2 --json
[[ $RC == 0 && $(jq '.devices | length' "$TOP/dlistj.out") == 3 ]] && pass "device list --page-size 2 --json: every page" ||
        fail "device list pages: $(head -c 400 "$TOP/dlistj.out") $(cat "$TOP/dlistj.err")"
vc assign device assign "$DEV_b" arch2 "${A[@]}" --json
[[ $RC == 0 && $(jq -r .golden "$TOP/assign.out") == arch2 && $(jq -r .id "$TOP/assign.out") == "$DEV_b" ]] &&
        pass "device assign: golden arch2" || fail "assign: exit $RC $(cat "$TOP/assign.out" "$TOP/assign.err")"
vc assign404 device assign "$DEV_b" nosuch "${A[@]}"
expect assign404 2 "HTTP 404 Not Found: no golden set \"nosuch\"" "device assign of an unknown golden set: HTTP 404"
agent b
vc getb verdict get "$DEV_b" "${R[@]}"
expect getb 0 "golden: +arch2" "the next verdict of the device is evaluated against arch2"
vc reset device assign "$DEV_b" "" "${A[@]}"
expect reset 0 "\(default\)" "device assign ID \"\": back to the default set"
vc revoke device revoke "$DEV_c" "${A[@]}"
expect revoke 0 "$DEV_c +[A-Z]+ +no +yes" "device revoke: revoked"
vc getc verdict get "$DEV_c" "${R[@]}" --keys "$TOP/keys.pem"
expect getc 1 "status: +UNTRUSTED.*\[revoked\].*device is UNTRUSTED" "a revoked device's verdict: UNTRUSTED, finding revoked"
vc approve device approve "$DEV_c" "${A[@]}" --json
[[ $RC == 0 && $(jq -r '[.approved, .revoked] | join(" ")' "$TOP/approve.out") == "true false" ]] &&
        pass "device approve: approved, no longer revoked" || fail "approve: $(cat "$TOP/approve.out" "$TOP/approve.err")"
agent c
vc getc2 verdict get "$DEV_c" "${R[@]}"
expect getc2 0 "status: +TRUSTED" "after approval and a new attestation: TRUSTED again"
vc dbad device approve "$(printf 'f%.0s' {1..64})" "${A[@]}"
expect dbad 2 "HTTP 404" "approve of an unknown device: HTTP 404"

kill -TERM "$VOUCHD_PID"
wait "$VOUCHD_PID" || true
VOUCHD_PID=""
echo "$npass passed, $nfail failed"
((nfail == 0))
