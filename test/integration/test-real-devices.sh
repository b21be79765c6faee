#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# TPMs without an EK certificate in NV (firmware TPMs, old ones), with swtpm manufactured
# without one (swtpm_setup without --create-ek-cert), the real agent and vouchd (issue 21):
# refused by default, naming the EK key fingerprint; enrolled key-anchored when that
# fingerprint (vouchctl ek fingerprint, from tpm2_createek's output) is on the allowlist;
# enrolled with the agent's --ek-cert FILE; enrolled with a certificate vouchd fetches from
# a loopback stand-in for Intel's service (JSON) and AMD's (DER), kept in the store; and a
# certificate for another key, one from an unknown CA, a redirect, a slow, a huge and a
# missing answer refused with clear errors.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}"
require_tools swtpm swtpm_setup tpm2_createek tpm2_flushcontext openssl python3 jq sqlite3
require_shared_data
require_vouchctl
LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-arch-linux.bin
[[ -f $LOG ]] || skip_or_fail "shared data not found at $LOG"

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-realdev-test.XXXXXX")
VOUCHD_PID=""
SVC_PID=""
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
cleanup() {
        local rc=$?
        set +e
        [[ -n $VOUCHD_PID ]] && kill -KILL "$VOUCHD_PID" 2>/dev/null
        [[ -n $SVC_PID ]] && kill -KILL "$SVC_PID" 2>/dev/null
        for t in "$TOP"/tpm-*; do
                [[ -f $t/pid ]] && kill -KILL "$(cat "$t/pid")" 2>/dev/null
        done
        if ((rc != 0 || nfail != 0)); then
                echo "--- vouchd log ---"
                tail -n 30 "$TOP/vouchd.log" 2>/dev/null
        fi
        [[ -n ${VOUCH_KEEP_TMP:-} ]] && echo "kept $TOP" || rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

# A swtpm whose maker stored no EK certificate: swtpm_setup --createek without --create-ek-cert.
new_tpm_nocert() {
        T=$TOP/tpm-$1
        mkdir -p "$T/state" "$T/tmp"
        : >"$T/tpm2.log"
        SWTPM_PID=""
        TMPDIR="$T/tmp" swtpm_setup --tpm2 --tpm-state "$T/state" --createek --pcr-banks sha1,sha256 --overwrite \
                --logfile "$T/swtpm_setup.log" >>"$T/swtpm.out" 2>&1 ||
                die "swtpm_setup failed: $(tail -n 5 "$T/swtpm_setup.log")"
        ! grep -q 'Successfully created EK certificate' "$T/swtpm_setup.log" || die "swtpm_setup made an EK certificate"
        start_swtpm
        echo "$SWTPM_PID" >"$T/pid"
        echo "$TPM2TOOLS_TCTI" >"$T/tcti"
        extend_log "$TOP/show.json" "sha1 sha256"
        # the EK's public part as an operator reads it (the TCG default RSA template, as the agent's)
        t2 tpm2_createek -c "$T/ek.ctx" -G rsa -u "$T/ek.pub"
        t2 tpm2_flushcontext -t
        t2 tpm2_createek -c "$T/ek2.ctx" -G rsa -u "$T/ek.pem" -f pem
        t2 tpm2_flushcontext -t
}
t2() { TPM2TOOLS_TCTI=$(cat "$T/tcti") "$@" >>"$T/tpm2.log" 2>&1 || die "$* failed: $(tail -n 3 "$T/tpm2.log")"; }

# ek_cert TPM CA OUT: an EK certificate (TCG EK profile) for TPM's EK, issued by CA
ek_cert() {
        local tpm=$TOP/tpm-$1 ca=$TOP/$2
        printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,keyEncipherment" \
                "extendedKeyUsage=2.23.133.8.1" >"$TOP/ek-ext.cnf"
        openssl req -new -newkey rsa:2048 -nodes -keyout "$TOP/dummy.key" -subj "/CN=EK $1" -out "$TOP/ek.csr" 2>/dev/null
        openssl x509 -req -in "$TOP/ek.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 30 \
                -force_pubkey "$tpm/ek.pem" -extfile "$TOP/ek-ext.cnf" -outform DER -out "$3" 2>/dev/null ||
                die "cannot make an EK certificate for $1"
}

make_ca() {
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TOP/$1.key" -out "$TOP/$1.pem" -subj "/CN=$1" -days 30 \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

start_vouchd() {
        : >"$TOP/vouchd.out"
        "$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" \
                --default-golden arch --ek-ca "$TOP/ekca.pem" --interval 30 --threads 2 \
                --api-listen "127.0.0.1:$APORT" --api-admin admin --api-reader reader "$@" \
                >"$TOP/vouchd.out" 2>>"$TOP/vouchd.log" &
        VOUCHD_PID=$!
        wait_ready "$VOUCHD_PID" 100
}
stop_vouchd() {
        kill -TERM "$VOUCHD_PID" 2>/dev/null || true
        wait "$VOUCHD_PID" 2>/dev/null || true
        VOUCHD_PID=""
}

agent() { # NAME [ARGS...]: one attestation from a fresh agent state (so it enrolls); RC OUT ERR
        local t=$TOP/tpm-$1
        shift
        rm -rf "$t/agent"
        RC=0
        timeout 60 "$VOUCH_AGENT" --server "127.0.0.1:$VPORT" --ca "$TOP/state/ca.pem" --tcti "$(cat "$t/tcti")" \
                --eventlog "$LOG" --state-dir "$t/agent" --once --verdict-out "$t/verdict.pb" "$@" \
                >"$t/agent.out" 2>"$t/agent.err" || RC=$?
        OUT=$(cat "$t/agent.out")
        ERR=$(cat "$t/agent.err")
}
PC() {
        local who=$1
        shift
        python3 "$here/policy_client.py" --server "127.0.0.1:$APORT" --ca "$TOP/state/ca.pem" \
                --cert "$TOP/clients/$who.crt" --key "$TOP/clients/$who.key" "$@"
}
anchor_of() { # ID -> "DeviceInfo-anchor verdict-anchor" (the enum names, EK_ANCHOR_ left out)
        PC admin get "/v1/devices?format=json" --out "$TOP/devs.json" >/dev/null
        echo "$(jq -r --arg d "$1" '.devices[] | select(.id == $d) | .ek_anchor | ltrimstr("EK_ANCHOR_")' "$TOP/devs.json") $(
                PC reader verdict "/v1/devices/$1/verdict" | jq -r '.verdict.ek_anchor | ltrimstr("EK_ANCHOR_")')"
}
id_of() { sed -n 's/.*(device \([0-9a-f]*\),.*/\1/p' <<<"$1"; }

# --- set-up
"$VOUCHCTL" eventlog show "$LOG" --json >"$TOP/show.json"
mkdir -p "$TOP/golden" "$TOP/clients" "$TOP/svc"
"$VOUCHCTL" golden create --eventlog "$LOG" --name arch >"$TOP/golden/arch.json"
make_ca test-ek-ca
make_ca other-ca
cp "$TOP/test-ek-ca.pem" "$TOP/ekca.pem"
"$VOUCHD" init --state-dir "$TOP/state" >/dev/null
for who in admin reader; do
        "$VOUCHD" issue-client --state-dir "$TOP/state" --name "$who" --out "$TOP/clients/$who" >/dev/null
done
for n in k c d; do new_tpm_nocert "$n"; done
VPORT=$(free_port)
APORT=$(free_port)

# --- the EK key fingerprint, from tpm2_createek's output in both formats
fp=$("$VOUCHCTL" ek fingerprint "$TOP/tpm-k/ek.pub")
fp_pem=$("$VOUCHCTL" ek fingerprint "$TOP/tpm-k/ek.pem")
[[ ${#fp} == 64 && $fp == "$fp_pem" ]] && pass "vouchctl ek fingerprint: the same from TPM2B_PUBLIC and PEM ($fp)" ||
        fail "ek fingerprint: [$fp] [$fp_pem]"
rc=0
"$VOUCHCTL" ek fingerprint "$TOP/ekca.pem" >/dev/null 2>"$TOP/fp.err" || rc=$?
[[ $rc == 2 && $(cat "$TOP/fp.err") == *"not an RSA or ECC"* ]] && pass "vouchctl ek fingerprint refuses a certificate file" ||
        fail "ek fingerprint of a certificate: $rc $(cat "$TOP/fp.err")"

# --- 1. no certificate, nothing else: refused, naming the fingerprint to list
start_vouchd
agent k
if [[ $RC != 0 && $ERR == *"sent no EK certificate"* && $ERR == *"$fp"* && $ERR == *"--ek-cert-fetch"* ]]; then
        pass "a TPM without an EK certificate is refused by default; the error names its EK key fingerprint"
else
        fail "no certificate, default: $RC $ERR"
fi
grep -q "no EK certificate in NV" "$TOP/tpm-k/agent.err" && pass "the agent says its TPM has no EK certificate in NV" ||
        fail "agent message: $ERR"
stop_vouchd

# --- 2. approval by EK key: the fingerprint on the allowlist (also with --approval auto)
echo "$fp  # tpm-k, read with tpm2_createek at provisioning" >"$TOP/allow.txt"
for mode in allowlist auto; do
        start_vouchd --approval "$mode" --allowlist "$TOP/allow.txt"
        agent k
        IDK=$(id_of "$OUT")
        if [[ $RC == 0 && $OUT == *"verdict: TRUSTED"* && $(anchor_of "$IDK") == "KEY KEY" ]]; then
                pass "--approval $mode: the EK key on the allowlist enrolls it key-anchored (DeviceInfo and verdict say KEY)"
        else
                fail "key allowlist ($mode): $RC $ERR / anchor [$(anchor_of "$IDK")]"
        fi
        stop_vouchd
done
grep -q "anchored by:  its EK key" < <("$VOUCHCTL" verdict verify --keys "$TOP/state/verdict-keys.pem" "$TOP/tpm-k/verdict.pb" --any-status) &&
        pass "vouchctl verdict verify shows a key-anchored verdict as such" || fail "verdict verify: no anchor line"

# --- 3. the agent's --ek-cert FILE (from provisioning)
ek_cert c test-ek-ca "$TOP/tpm-c/ek-cert.der"
openssl x509 -inform DER -in "$TOP/tpm-c/ek-cert.der" -out "$TOP/tpm-c/ek-cert.pem"
start_vouchd
agent c --ek-cert "$TOP/tpm-c/ek-cert.pem"
IDC=$(id_of "$OUT")
[[ $RC == 0 && $OUT == *"verdict: TRUSTED"* && $(anchor_of "$IDC") == "CERTIFICATE CERTIFICATE" ]] &&
        pass "--ek-cert FILE (PEM) enrolls a TPM without one in NV, certificate-anchored" || fail "--ek-cert: $RC $ERR"
agent c --ek-cert "$TOP/tpm-c/ek-cert.der"
[[ $RC == 0 ]] && pass "--ek-cert FILE (DER)" || fail "--ek-cert DER: $RC $ERR"
ek_cert k test-ek-ca "$TOP/tpm-k/ek-cert.der"
agent c --ek-cert "$TOP/tpm-k/ek-cert.der"
[[ $RC != 0 && $ERR == *"enrollment refused: the EK certificate from the agent's --ek-cert file"* ]] &&
        pass "--ek-cert with another TPM's certificate is refused" || fail "--ek-cert wrong key: $RC $ERR"
stop_vouchd

# --- 4. fetched from the maker's service (a loopback stand-in): Intel's JSON and AMD's DER
python3 "$here/ekcert_service.py" "$TOP/svc" &
SVC_PID=$!
for ((i = 0; i < 100; i++)); do [[ -f $TOP/svc/port ]] && break; sleep 0.1; done
SVC=http://127.0.0.1:$(cat "$TOP/svc/port")
read -r intel_key amd_key < <(python3 - "$TOP/tpm-d/ek.pem" <<'PY'
import base64, hashlib, sys
from cryptography.hazmat.primitives import serialization
k = serialization.load_pem_public_key(open(sys.argv[1], "rb").read()).public_numbers()
n = k.n.to_bytes((k.n.bit_length() + 7) // 8, "big")
intel = base64.b64encode(hashlib.sha256(n + b"\x01\x00\x01").digest()).decode()
intel = intel.replace("+", "-").replace("/", "_").replace("=", "%3D")
amd = hashlib.sha256(b"\0\0\x22\x22" + k.e.to_bytes(4, "big") + n).hexdigest()[:32]
print(intel, amd)
PY
)
ek_cert d test-ek-ca "$TOP/tpm-d/ek-cert.der"
ek_cert d other-ca "$TOP/tpm-d/ek-cert-other-ca.der"
routes() { # DER-FILE: what both forms of the service answer for tpm-d's key
        printf '{"/intel/%s": {"kind": "json", "der": "%s"}, "/amd/%s": {"kind": "der", "der": "%s"}}\n' \
                "$intel_key" "$1" "$amd_key" "$1" >"$TOP/svc/routes.json"
}
forget() { sqlite3 "$TOP/state/vouch.db" "delete from ek_certs"; }
routes "$TOP/tpm-d/ek-cert.der"
# swtpm reports manufacturer "IBM": mapped to each form for the test
start_vouchd --ek-cert-fetch "IBM=intel:$SVC/intel/"
agent d
IDD=$(id_of "$OUT")
if [[ $RC == 0 && $OUT == *"verdict: TRUSTED"* && $(anchor_of "$IDD") == "CERTIFICATE CERTIFICATE" &&
        $(tail -n 1 "$TOP/svc/requests.log") == "/intel/$intel_key" ]]; then
        pass "Intel form: vouchd fetches the EK certificate by base64url(SHA-256 of the key), checks it, enrolls"
else
        fail "fetch (Intel): $RC $ERR / requests $(tail -n 1 "$TOP/svc/requests.log" 2>/dev/null) expected /intel/$intel_key"
fi
nreq=$(wc -l <"$TOP/svc/requests.log")
echo notfound >"$TOP/svc/mode"
agent d
[[ $RC == 0 && $(wc -l <"$TOP/svc/requests.log") == "$nreq" ]] &&
        pass "a fetched certificate is kept in the store: enrolling again asks the service nothing" ||
        fail "cache: $RC $ERR, requests $nreq -> $(wc -l <"$TOP/svc/requests.log")"
rm -f "$TOP/svc/mode"
stop_vouchd
forget
start_vouchd --ek-cert-fetch "IBM=amd:$SVC/amd/"
agent d
[[ $RC == 0 && $(tail -n 1 "$TOP/svc/requests.log") == "/amd/$amd_key" ]] &&
        pass "AMD form: fetched by the hex prefix of SHA-256(00002222 || exponent || modulus), DER answer" ||
        fail "fetch (AMD): $RC $ERR / $(tail -n 1 "$TOP/svc/requests.log") expected /amd/$amd_key"
stop_vouchd

# --- 5. what the service answers must be right, and come quickly from where it was asked
refused_fetch() { # LABEL EXPECTED-TEXT: device d refused with that text in the error
        forget
        start_vouchd --ek-cert-fetch "IBM=intel:$SVC/intel/"
        local t0=$SECONDS
        agent d
        if [[ $RC != 0 && $ERR == *"$2"* ]]; then
                pass "$1 is refused ($((SECONDS - t0)) s): ...${2}..."
        else
                fail "$1: $RC $ERR"
        fi
        stop_vouchd
}
routes "$TOP/tpm-k/ek-cert.der"
refused_fetch "a fetched certificate for another TPM's key" "the EK certificate from $SVC/intel/"
routes "$TOP/tpm-d/ek-cert-other-ca.der"
refused_fetch "a fetched certificate from a CA not in --ek-ca" "the EK certificate from $SVC/intel/"
routes "$TOP/tpm-d/ek-cert.der"
echo redirect >"$TOP/svc/mode"
refused_fetch "a redirect to a URL that is not configured" "redirected (HTTP 302) to http://127.0.0.1:1/elsewhere: not followed"
echo slow >"$TOP/svc/mode"
refused_fetch "a service slower than 5 s" "did not answer within 5000 ms"
echo huge >"$TOP/svc/mode"
refused_fetch "an answer of 100 KiB" "answered with more than 65536 bytes"
echo notfound >"$TOP/svc/mode"
refused_fetch "a service without a certificate for the key" "answered HTTP 404 (the service has no certificate"
# a failed lookup is not asked again at once (a spray of made-up EKs, or an agent retrying)
forget
start_vouchd --ek-cert-fetch "IBM=intel:$SVC/intel/"
agent d
n0=$(wc -l <"$TOP/svc/requests.log")
agent d
[[ $RC != 0 && $ERR == *"failed less than 120 s ago: not asked again"* && $(wc -l <"$TOP/svc/requests.log") == "$n0" ]] &&
        pass "a lookup that failed is not asked again for 120 s" || fail "negative cache: $RC $ERR ($n0 -> $(wc -l <"$TOP/svc/requests.log"))"
stop_vouchd
# one fetch at a time per address: a second TPM's enrollment from the same host while the
# first one's fetch waits on a slow service
echo slow >"$TOP/svc/mode"
start_vouchd --ek-cert-fetch "IBM=intel:$SVC/intel/"
rm -rf "$TOP/tpm-d/agent"
timeout 60 "$VOUCH_AGENT" --server "127.0.0.1:$VPORT" --ca "$TOP/state/ca.pem" --tcti "$(cat "$TOP/tpm-d/tcti")" \
        --eventlog "$LOG" --state-dir "$TOP/tpm-d/agent" --once >/dev/null 2>&1 &
first=$!
sleep 1.5
agent k
wait "$first" 2>/dev/null || true
[[ $RC != 0 && $ERR == *"an EK certificate fetch for 127.0.0.1 is under way already: one at a time per address"* ]] &&
        pass "one EK certificate fetch at a time per client address" || fail "per-address limit: $RC $ERR"
stop_vouchd
rm -f "$TOP/svc/mode"
rc=0
"$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" --default-golden arch \
        --ek-ca "$TOP/ekca.pem" --ek-cert-fetch "IBM=ftp://x/" >/dev/null 2>"$TOP/bad.err" || rc=$?
[[ $rc == 2 && $(cat "$TOP/bad.err") == *"must start with https://"* ]] && pass "--ek-cert-fetch refuses a URL that is not http(s)" ||
        fail "bad --ek-cert-fetch: $rc $(cat "$TOP/bad.err")"

echo "$npass passed, $nfail failed"
((nfail == 0))
