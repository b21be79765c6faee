#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The relying party's check of a real signed verdict: swtpm + vouchd + vouch-agent
# (--verdict-out) on 127.0.0.1, then the passport is verified offline with the published
# keys, by `vouchctl verdict verify` and by the `openssl` command line (docs/API.md: ECDSA
# P-256 / SHA-256 over the verdict bytes, key id = SHA-256 of the DER SPKI). A flipped byte
# in the verdict or the signature fails both; an expired verdict, an unknown key, an
# UNTRUSTED verdict fail vouchctl; unusable input exits 2.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}"
require_tools swtpm swtpm_setup swtpm_ioctl tpm2_pcrextend openssl jq python3 sha256sum
require_shared_data
require_vouchctl
LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-arch-linux.bin
[[ -f $LOG ]] || skip_or_fail "shared data not found at $LOG"

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-verdict-test.XXXXXX")
VOUCHD_PID=""
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
cleanup() {
        local rc=$?
        set +e
        [[ -n $VOUCHD_PID ]] && kill -KILL "$VOUCHD_PID" 2>/dev/null
        [[ -f $TOP/tpm-a/pid ]] && kill -KILL "$(cat "$TOP/tpm-a/pid")" 2>/dev/null
        if ((rc != 0)); then
                echo "--- vouchd log ---"
                tail -n 30 "$TOP/vouchd.log" 2>/dev/null
        fi
        rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

# vc NAME ARGS...: runs vouchctl, keeps stdout/stderr in $TOP/NAME.{out,err}; sets RC
vc() {
        local name=$1
        shift
        RC=0
        "$VOUCHCTL" "$@" >"$TOP/$name.out" 2>"$TOP/$name.err" || RC=$?
}
# expect NAME RC REGEX DESCRIPTION: the last vc call's exit status, and stdout+stderr matching
expect() {
        local got
        got=$(cat "$TOP/$1.out" "$TOP/$1.err")
        if [[ $RC == "$2" && $got =~ $3 ]]; then
                pass "$4"
        else
                fail "$4: exit $RC (want $2), output: $(head -c 600 <<<"$got")"
        fi
}
# flip FILE OFFSET OUT: a copy of FILE with the byte at OFFSET inverted
flip() {
        python3 -c 'import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[int(sys.argv[2])] ^= 0xff
open(sys.argv[3], "wb").write(b)' "$1" "$2" "$3"
}
# ossl_verify KEY SIG DATA: openssl's opinion, "ok" or "bad"
ossl_verify() {
        if openssl dgst -sha256 -verify "$1" -signature "$2" "$3" >"$TOP/ossl.out" 2>&1 &&
                grep -q "Verified OK" "$TOP/ossl.out"; then
                echo ok
        else
                echo bad
        fi
}

# --- a real run: swtpm replaying a real machine's log, vouchd, the agent's passport
T=$TOP/tpm-a
mkdir -p "$T/w"
: >"$T/tpm2.log"
SWTPM_PID=""
provision_swtpm sha1,sha256
start_swtpm
echo "$SWTPM_PID" >"$T/pid"
cat "$T/ca/issuercert.pem" "$T/ca/swtpm-localca-rootca-cert.pem" >"$T/ekca.pem"
"$VOUCHCTL" eventlog show "$LOG" --json >"$TOP/show.json"
extend_log "$TOP/show.json" "sha1 sha256"
mkdir -p "$TOP/golden"
"$VOUCHCTL" golden create --eventlog "$LOG" --name arch >"$TOP/golden/arch.json"
"$VOUCHD" init --state-dir "$TOP/state" >/dev/null
VPORT=$(free_port)
"$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" --default-golden arch \
        --ek-ca "$T/ekca.pem" --interval 3600 --threads 1 >"$TOP/vouchd.out" 2>>"$TOP/vouchd.log" &
VOUCHD_PID=$!
for ((i = 0; i < 100; i++)); do
        grep -q ready "$TOP/vouchd.out" && break
        kill -0 "$VOUCHD_PID" 2>/dev/null || die "vouchd exited: $(tail -n 5 "$TOP/vouchd.log")"
        sleep 0.1
done
grep -q ready "$TOP/vouchd.out" || die "vouchd did not start"
agent() { # OUTFILE
        RC=0
        timeout 60 "$VOUCH_AGENT" --server "127.0.0.1:$VPORT" --ca "$TOP/state/ca.pem" --tcti "$TPM2TOOLS_TCTI" \
                --eventlog "$LOG" --state-dir "$T/agent" --once --verdict-out "$1" >"$T/agent.out" 2>"$T/agent.err" || RC=$?
}
agent "$TOP/trusted.pb"
[[ $RC == 0 && -s $TOP/trusted.pb ]] || die "the agent did not get a TRUSTED verdict: exit $RC $(cat "$T/agent.out" "$T/agent.err")"
ID=$(sed -n 's/.*(device \([0-9a-f]*\),.*/\1/p' "$T/agent.out")
KEYS=$TOP/state/verdict-keys.pem
V=$TOP/trusted.pb

# --- vouchctl verdict verify on the passport
vc ok verdict verify --keys "$KEYS" "$V"
expect ok 0 "signature: +valid.*device: +$ID.*status: +TRUSTED.*issued: +20[0-9-]+T[0-9:]+Z.*golden: +arch" \
        "vouchctl verdict verify: the agent's passport is valid and TRUSTED"
vc json verdict verify --keys "$KEYS" "$V" --json
expect json 0 '"accepted": true' "--json prints the check and the verdict"
KEY_ID=$(jq -r .key_id "$TOP/json.out")
EXPIRES=$(jq -r .verdict.expires_at "$TOP/json.out")
ISSUED=$(jq -r .verdict.issued_at "$TOP/json.out")
if [[ $(jq -r '.verdict.device_id, .verdict.status, .check.outcome' "$TOP/json.out" | tr '\n' ' ') == "$ID TRUSTED valid " &&
        $EXPIRES -gt $ISSUED ]]; then
        pass "JSON: device_id, status, outcome; expires_at after issued_at"
else
        fail "JSON: $(head -c 400 "$TOP/json.out")"
fi

# --- the same check with the openssl command line
vc x verdict verify --keys "$KEYS" "$V" --extract-verdict "$TOP/verdict.bin" --extract-signature "$TOP/sig.der"
[[ $RC == 0 && -s $TOP/verdict.bin && -s $TOP/sig.der ]] && pass "verdict bytes and signature extracted" ||
        fail "extract: exit $RC"
[[ $(ossl_verify "$KEYS" "$TOP/sig.der" "$TOP/verdict.bin") == ok ]] &&
        pass "openssl dgst -sha256 -verify verdict-keys.pem: Verified OK" || fail "openssl: $(cat "$TOP/ossl.out")"
openssl asn1parse -inform DER -in "$TOP/sig.der" >"$TOP/asn1.out" 2>&1 && grep -c INTEGER "$TOP/asn1.out" | grep -qx 2 &&
        pass "the signature is a DER ECDSA-Sig-Value (two INTEGERs)" || fail "signature DER: $(cat "$TOP/asn1.out")"
SPKI_ID=$(openssl pkey -pubin -in "$KEYS" -outform DER | sha256sum | cut -d' ' -f1)
[[ $KEY_ID == "$SPKI_ID" ]] && pass "key_id is the SHA-256 of the key's DER SPKI ($KEY_ID)" ||
        fail "key_id $KEY_ID, SHA-256 of the SPKI $SPKI_ID"
openssl pkey -pubin -in "$KEYS" -text -noout 2>/dev/null | grep -q "NIST CURVE: P-256" &&
        pass "the published key is EC P-256" || fail "the key is not P-256"

# --- a flipped byte fails both tools
VLEN=$(stat -c %s "$TOP/verdict.bin")
SLEN=$(stat -c %s "$TOP/sig.der")
flip "$TOP/verdict.bin" $((VLEN / 2)) "$TOP/verdict-flipped.bin"
[[ $(ossl_verify "$KEYS" "$TOP/sig.der" "$TOP/verdict-flipped.bin") == bad ]] &&
        pass "openssl: a flipped verdict byte fails" || fail "openssl accepted a flipped verdict byte"
flip "$TOP/sig.der" $((SLEN - 5)) "$TOP/sig-flipped.der"
[[ $(ossl_verify "$KEYS" "$TOP/sig-flipped.der" "$TOP/verdict.bin") == bad ]] &&
        pass "openssl: a flipped signature byte fails" || fail "openssl accepted a flipped signature byte"
# SignedVerdict layout: 0x0a len(verdict) verdict 0x12 len(sig) sig 0x1a len(key_id) key_id
hdr=$((VLEN < 128 ? 2 : 3))
flip "$V" $((hdr + VLEN / 2)) "$TOP/flipped-verdict.pb"
vc fv verdict verify --keys "$KEYS" "$TOP/flipped-verdict.pb" --extract-verdict "$TOP/fv.bin"
expect fv 1 "invalid \(bad-signature\)" "vouchctl: a flipped verdict byte fails (exit 1)"
cmp -s "$TOP/fv.bin" "$TOP/verdict-flipped.bin" && pass "... at the byte openssl was given" || fail "flipped at another offset"
flip "$V" $((hdr + VLEN + 2 + SLEN - 5)) "$TOP/flipped-sig.pb"
vc fs verdict verify --keys "$KEYS" "$TOP/flipped-sig.pb" --extract-signature "$TOP/fs.der"
expect fs 1 "invalid \(bad-signature\)" "vouchctl: a flipped signature byte fails (exit 1)"
cmp -s "$TOP/fs.der" "$TOP/sig-flipped.der" && pass "... at the byte openssl was given" || fail "flipped at another offset"
bad=0
for ((off = 0; off < VLEN; off += 7)); do
        flip "$V" $((hdr + off)) "$TOP/f.pb"
        rc=0
        "$VOUCHCTL" verdict verify --keys "$KEYS" "$TOP/f.pb" >/dev/null 2>&1 || rc=$?
        ((rc == 0)) && bad=$((bad + 1))
done
((bad == 0)) && pass "no flipped verdict byte (every 7th) is accepted" || fail "$bad flipped bytes accepted"

# --- expiry, clock skew
vc exp verdict verify --keys "$KEYS" "$V" --now "$EXPIRES"
expect exp 1 "invalid \(expired\): expired at" "--now expires_at: expired (exit 1)"
vc exp1 verdict verify --keys "$KEYS" "$V" --now $((EXPIRES - 1))
expect exp1 0 "status: +TRUSTED" "--now expires_at - 1: still valid"
RFC=$(date -u -d "@$EXPIRES" +%Y-%m-%dT%H:%M:%SZ)
vc rfc verdict verify --keys "$KEYS" "$V" --now "$RFC"
expect rfc 1 "expired" "--now in RFC 3339 ($RFC): expired"
vc early verdict verify --keys "$KEYS" "$V" --now $((ISSUED - 3600))
expect early 1 "invalid \(not-yet-valid\)" "a verdict issued an hour after --now is refused"
vc badnow verdict verify --keys "$KEYS" "$V" --now tomorrow
expect badnow 2 "--now" "--now that is no time: usage error (exit 2)"

# --- keys: unknown key, rotation, unusable files
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TOP/other.key" 2>/dev/null
openssl pkey -in "$TOP/other.key" -pubout -out "$TOP/other.pem"
vc unk verdict verify --keys "$TOP/other.pem" "$V"
expect unk 1 "invalid \(unknown-key\): key id $KEY_ID" "a keys file without the signing key: unknown key (exit 1)"
cat "$TOP/other.pem" "$KEYS" >"$TOP/rotated.pem"
vc rot verdict verify --keys "$TOP/rotated.pem" "$V"
expect rot 0 "status: +TRUSTED" "a keys file with a new key and the signing key (rotation): valid"
: >"$TOP/empty.pem"
vc nokeys verdict verify --keys "$TOP/empty.pem" "$V"
expect nokeys 2 "no public key" "an empty keys file: exit 2"
vc privkey verdict verify --keys "$TOP/other.key" "$V"
expect privkey 2 "not a keys file" "a private key as keys file: exit 2"
vc nofile verdict verify --keys "$KEYS" "$TOP/missing.pb"
expect nofile 2 "cannot open" "a missing verdict file: exit 2"
head -c 100 /dev/urandom >"$TOP/garbage.pb"
printf '\x0a\x05hello' >>"$TOP/garbage.pb"
vc garbage verdict verify --keys "$KEYS" "$TOP/garbage.pb"
expect garbage 2 "not a SignedVerdict" "garbage: not a SignedVerdict (exit 2)"
head -c 40 "$V" >"$TOP/truncated.pb"
vc trunc verdict verify --keys "$KEYS" "$TOP/truncated.pb"
expect trunc 2 "not a SignedVerdict" "a truncated SignedVerdict: exit 2"
cp "$TOP/verdict.bin" "$TOP/bare-verdict.pb"
vc bare verdict verify --keys "$KEYS" "$TOP/bare-verdict.pb"
expect bare 2 "not a SignedVerdict" "a bare Verdict (no signature): exit 2"

# --- the JSON form from docs/API.md; only the signed bytes count
hex() { od -An -tx1 -v "$1" | tr -d ' \n'; }
printf '{"verdict": {"device_id": "%s", "status": "TRUSTED"}, "verdict_bytes": "%s", "signature": "%s", "key_id": "%s"}\n' \
        "$ID" "$(hex "$TOP/verdict.bin")" "$(hex "$TOP/sig.der")" "$KEY_ID" >"$TOP/sv.json"
vc js verdict verify --keys "$KEYS" "$TOP/sv.json"
expect js 0 "status: +TRUSTED" "the JSON form verifies"
printf '{"verdict": {"device_id": "%s", "status": "TRUSTED"}, "verdict_bytes": "%s", "signature": "%s", "key_id": "%s"}\n' \
        "$ID" "$(hex "$TOP/verdict-flipped.bin")" "$(hex "$TOP/sig.der")" "$KEY_ID" >"$TOP/sv-flipped.json"
vc jsf verdict verify --keys "$KEYS" "$TOP/sv-flipped.json"
expect jsf 1 "bad-signature" "the JSON form with a flipped verdict byte fails"

# --- an UNTRUSTED verdict is valid, verifies with openssl, and is refused unless --any-status
TPM2TOOLS_TCTI=$TPM2TOOLS_TCTI tpm2_pcrextend "4:sha256=$(echo rogue | sha256sum | cut -d' ' -f1)" >/dev/null 2>&1 ||
        die "tpm2_pcrextend failed"
agent "$TOP/untrusted.pb"
[[ $RC == 1 && -s $TOP/untrusted.pb ]] || die "no UNTRUSTED verdict: exit $RC $(cat "$T/agent.out" "$T/agent.err")"
vc un verdict verify --keys "$KEYS" "$TOP/untrusted.pb" --extract-verdict "$TOP/u.bin" --extract-signature "$TOP/u.der"
expect un 1 "status: +UNTRUSTED.*PCR 4.*verdict is valid but the device is UNTRUSTED" \
        "an UNTRUSTED verdict: valid, refused (exit 1), findings shown"
[[ $(ossl_verify "$KEYS" "$TOP/u.der" "$TOP/u.bin") == ok ]] && pass "openssl verifies the UNTRUSTED verdict too" ||
        fail "openssl: $(cat "$TOP/ossl.out")"
vc any verdict verify --keys "$KEYS" "$TOP/untrusted.pb" --any-status
expect any 0 "status: +UNTRUSTED" "--any-status: a valid UNTRUSTED verdict exits 0"
U_EXPIRES=$("$VOUCHCTL" verdict verify --keys "$KEYS" "$TOP/untrusted.pb" --any-status --json | jq -r .verdict.expires_at)
vc anyexp verdict verify --keys "$KEYS" "$TOP/untrusted.pb" --any-status --now "$U_EXPIRES"
expect anyexp 1 "expired" "--any-status does not accept an expired verdict"

kill -TERM "$VOUCHD_PID"
wait "$VOUCHD_PID" || true
VOUCHD_PID=""
echo "$npass passed, $nfail failed"
((nfail == 0))
