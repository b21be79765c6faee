#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vouch-agent's device identity key (issue 19), end to end on 127.0.0.1: swtpm + vouchd +
# vouch-agent --key-out --cert-out, through vouch_client.py's recording proxy.
# Asserted: with a verifier that knows nothing of device keys the agent still gets its
# TRUSTED verdict; it makes the key once (state dir) and writes it as a TSS2 PRIVATE KEY
# file (mode 0600) that OpenSSL signs with through tpm2-openssl; each QuoteAnswer carries
# the key's TPMT_PUBLIC and a TPM2_Certify by the enrolled AK over SHA-256("vouch device
# key certify" || the challenge's nonce) that vc_certify_verify accepts; a restarted agent
# reloads the same key; a certificate chain the verifier sends with the verdict (added by
# the proxy, as vouchd will) is written to --cert-out as PEM and, with the key file, makes
# a mutual-TLS connection (openssl s_client through tpm2-openssl to an openssl s_server
# that demands a client certificate from that CA); a certificate for another key is not
# written. Then vouchd itself, with --trust-domain: the agent's --cert-out gets vouchd's
# certificate for the TPM key (SPIFFE ID, chaining to the state dir's device CA), listed by
# vouchctl cert list; the CRL on --http-listen is signed by the device CA; a TLS server
# checking it admits the device, and after vouchctl device revoke the certificate is on the
# CRL (vouchctl crl get) within 2 s and refused at the handshake.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}" "${AGENT_TPM_TEST:?}"
CLIENT=$here/vouch_client.py
require_tools swtpm swtpm_setup swtpm_ioctl tpm2_pcrextend tpm2_getcap openssl jq python3
require_shared_data
require_vouchctl
LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-arch-linux.bin
[[ -f $LOG ]] || skip_or_fail "shared data not found at $LOG"

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-devkey-test.XXXXXX")
T=$TOP/tpm
VOUCHD_PID=""
PROXY_PID=""
SERVER_PID=""
AGENT_PID=""
SWTPM_PID=""
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
cleanup() {
        local rc=$?
        set +e
        for p in "$AGENT_PID" "$SERVER_PID" "$PROXY_PID" "$VOUCHD_PID"; do
                [[ -n $p ]] && kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
        done
        stop_swtpm
        if ((rc != 0)); then
                echo "--- vouchd log ---"
                tail -n 20 "$TOP/vouchd.log" 2>/dev/null
                echo "--- agent log ---"
                tail -n 20 "$TOP/agent.err" 2>/dev/null
        fi
        rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

mkdir -p "$T" "$TOP/golden" "$TOP/agent"
: >"$T/tpm2.log"
provision_swtpm sha1,sha256
start_swtpm
cat "$T/ca/issuercert.pem" "$T/ca/swtpm-localca-rootca-cert.pem" >"$T/ekca.pem"
"$VOUCHCTL" eventlog show "$LOG" --json >"$TOP/show.json"
extend_log "$TOP/show.json" "sha1 sha256"
"$VOUCHCTL" golden create --eventlog "$LOG" --name arch >"$TOP/golden/arch.json"
"$VOUCHD" init --state-dir "$TOP/state" >/dev/null
VPORT=$(free_port)
"$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" --default-golden arch \
        --ek-ca "$T/ekca.pem" --interval 3600 --threads 1 >"$TOP/vouchd.out" 2>"$TOP/vouchd.log" &
VOUCHD_PID=$!
for ((i = 0; i < 100; i++)); do
        grep -q ready "$TOP/vouchd.out" && break
        kill -0 "$VOUCHD_PID" 2>/dev/null || die "vouchd exited: $(tail -n 5 "$TOP/vouchd.log")"
        sleep 0.1
done
grep -q ready "$TOP/vouchd.out" || die "vouchd did not start"

KEY=$TOP/out/device.key
CERT=$TOP/out/device.pem
mkdir -p "$TOP/out"
# agent: one attestation through the proxy, with --key-out and --cert-out; sets RC
agent() {
        RC=0
        timeout 60 "$VOUCH_AGENT" --server "127.0.0.1:$PPORT" --ca "$TOP/state/ca.pem" --tcti "$TPM2TOOLS_TCTI" \
                --eventlog "$LOG" --state-dir "$TOP/agent" --once --key-out "$KEY" --cert-out "$CERT" \
                --verdict-out "$TOP/out/verdict.bin" >"$TOP/agent.out" 2>"$TOP/agent.err" || RC=$?
}
PROV=(-provider tpm2 -provider default)
export TPM2OPENSSL_TCTI=$TPM2TOOLS_TCTI

# --- the first run: the key made, written, certified with the quote
proxy "$TOP/rec1" record-proxy
agent
[[ $RC == 0 ]] && grep -q "verdict: TRUSTED" "$TOP/agent.out" &&
        pass "a verifier without device key support: the agent's verdict is TRUSTED" ||
        fail "the agent did not get a TRUSTED verdict: exit $RC $(tail -n 3 "$TOP/agent.out" "$TOP/agent.err")"
grep -q "created a new device identity key" "$TOP/agent.err" && [[ -s $TOP/agent/devkey.pub && -s $TOP/agent/devkey.priv ]] &&
        pass "the device key is made once and kept in the state dir (devkey.pub, devkey.priv)" ||
        fail "no device key in the state dir: $(ls "$TOP/agent") $(cat "$TOP/agent.err")"
[[ $(stat -c %a "$TOP/agent/devkey.priv") == 600 ]] && pass "devkey.priv is mode 0600" ||
        fail "devkey.priv is mode $(stat -c %a "$TOP/agent/devkey.priv")"
if [[ -s $KEY ]] && head -n 1 "$KEY" | grep -qx -- '-----BEGIN TSS2 PRIVATE KEY-----' && [[ $(stat -c %a "$KEY") == 600 ]]; then
        pass "--key-out: a TSS2 PRIVATE KEY file, mode 0600"
else
        fail "--key-out: $(ls -l "$KEY" 2>&1) $(head -n 1 "$KEY" 2>&1)"
fi
[[ ! -e $CERT ]] && pass "--cert-out: nothing written without a certificate from the verifier" || fail "$CERT exists"
ls "$TOP/out" | grep -q '\.tmp\.' && fail "a temporary file was left in $TOP/out" || pass "no temporary file left beside them"
if openssl pkey "${PROV[@]}" -in "$KEY" -pubout -out "$TOP/device.spki.pem" 2>"$TOP/ossl.err" &&
        printf 'to be signed\n' >"$TOP/data" &&
        openssl dgst -sha256 "${PROV[@]}" -propquery '?provider=tpm2' -sign "$KEY" -out "$TOP/data.sig" "$TOP/data" \
                2>>"$TOP/ossl.err" &&
        openssl dgst -sha256 -verify "$TOP/device.spki.pem" -signature "$TOP/data.sig" "$TOP/data" >>"$TOP/ossl.err" 2>&1; then
        pass "OpenSSL signs with --key-out through tpm2-openssl, and the signature verifies"
else
        fail "OpenSSL with --key-out: $(tail -n 3 "$TOP/ossl.err")"
fi
[[ -z $(tpm2_getcap handles-transient 2>>"$T/tpm2.log") ]] && pass "nothing left in the TPM after the agent and OpenSSL" ||
        fail "transient objects left: $(tpm2_getcap handles-transient)"

# What the agent sent: the key and its certify with each QuoteAnswer, checked as vouchd will.
mkdir -p "$TOP/dk1"
got=$(python3 "$CLIENT" device-keys "$TOP/rec1/conn-1.agent" "$TOP/dk1")
[[ $got == "1 answers, 1 with the device key" ]] && pass "the QuoteAnswer carries device_key_public, _certify, _signature" ||
        fail "device key fields in the recording: $got"
cmp -s <(tail -c +3 "$TOP/dk1/0.pub") <(tail -c +3 "$TOP/agent/devkey.pub") &&
        pass "device_key_public is the TPMT_PUBLIC of the key in the state dir" || fail "device_key_public differs"
cp "$TOP/agent/ak.pub" "$TOP/dk1/ak.pub"
( cd "$TOP/dk1" && "$AGENT_TPM_TEST" verify-certify ak.pub 0.pub 0.attest 0.sig "$(cat 0.qd)" valid ) >"$TOP/v.out" 2>&1 &&
        pass "vc_certify_verify accepts the agent's certify (enrolled AK, the challenge's nonce)" ||
        fail "the agent's certify: $(cat "$TOP/v.out")"
( cd "$TOP/dk1" && "$AGENT_TPM_TEST" verify-certify ak.pub 0.pub 0.attest 0.sig "$(openssl rand -hex 32)" \
        qualifying-data ) >"$TOP/v.out" 2>&1 && pass "... and refuses it for another challenge" ||
        fail "the agent's certify for another challenge: $(cat "$TOP/v.out")"
cp "$KEY" "$TOP/key.first"

# --- a certificate chain from the verifier (a test CA here; vouchd's device CA later)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TOP/ca.key" -subj "/CN=device CA" \
        -days 2 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        -out "$TOP/ca.pem" 2>/dev/null
openssl req -new "${PROV[@]}" -key "$KEY" -subj "/CN=device-1" -out "$TOP/device.csr" 2>>"$TOP/ossl.err" ||
        die "openssl req with the device key: $(tail -n 3 "$TOP/ossl.err")"
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=clientAuth" >"$TOP/leaf.cnf"
openssl x509 -req -in "$TOP/device.csr" -CA "$TOP/ca.pem" -CAkey "$TOP/ca.key" -CAcreateserial -days 1 \
        -extfile "$TOP/leaf.cnf" -outform DER -out "$TOP/leaf.der" 2>/dev/null || die "cannot issue the test certificate"
openssl x509 -in "$TOP/ca.pem" -outform DER -out "$TOP/ca.der"

proxy "$TOP/rec2" cert-proxy "$TOP/leaf.der" "$TOP/ca.der"
agent
[[ $RC == 0 ]] && pass "the second run: TRUSTED" || fail "the second run: exit $RC $(tail -n 3 "$TOP/agent.err")"
grep -q "created a new device identity key" "$TOP/agent.err" && fail "the restarted agent made a new device key" ||
        pass "the restarted agent reloads the same device key (no new one made)"
cmp -s "$KEY" "$TOP/key.first" && pass "--key-out is the same file again" || fail "--key-out changed"
if [[ -s $CERT ]] && [[ $(grep -c 'BEGIN CERTIFICATE' "$CERT") == 2 ]] &&
        cmp -s <(openssl x509 -in "$CERT" -pubkey -noout) "$TOP/device.spki.pem" &&
        cmp -s <(openssl x509 -in "$CERT" -outform DER) "$TOP/leaf.der"; then
        pass "--cert-out: the chain as PEM, the device key's certificate first"
else
        fail "--cert-out: $(ls -l "$CERT" 2>&1) $(grep -c 'BEGIN CERTIFICATE' "$CERT" 2>&1)"
fi
grep -q "device certificate: .*CN=device-1.*written to $CERT" "$TOP/agent.err" &&
        pass "the agent logs the certificate it wrote" || fail "agent log: $(grep -i certificate "$TOP/agent.err")"

# mutual TLS with the key file and the certificate: s_server demands a client certificate
# from the test CA (-Verify), s_client presents the TPM key through tpm2-openssl.
# swtpm, like a TPM without a resource manager, has three object slots, and tpm2-openssl,
# when preferred, also verifies the peer's signatures and makes ECDHE keys in the TPM
# (objects of their own): so the server's key is Ed25519 and the group X25519, which the
# TPM does not do, and the default provider is loaded first. The device key's signature is
# the TPM's (?provider=tpm2), no digest is (tpm2.digest!=yes). With /dev/tpmrm0 (the
# kernel's resource manager) tpm2-openssl's documented options suffice.
openssl req -x509 -newkey ed25519 -nodes -keyout "$TOP/srv.key" -subj "/CN=127.0.0.1" -days 1 -out "$TOP/srv.pem" \
        2>/dev/null
SPORT=$(free_port)
openssl s_server -accept "127.0.0.1:$SPORT" -cert "$TOP/srv.pem" -key "$TOP/srv.key" -CAfile "$TOP/ca.pem" \
        -Verify 1 -verify_return_error -www >"$TOP/s_server.out" 2>&1 &
SERVER_PID=$!
for ((i = 0; i < 50; i++)); do
        grep -q ACCEPT "$TOP/s_server.out" && break
        sleep 0.1
done
# s_client KEY CERT: the page the server sends (its -www status page names the client
# certificate it verified)
s_client() {
        tpm2_flushcontext -t 2>>"$T/tpm2.log" || true
        printf 'GET / HTTP/1.0\r\n\r\n' | timeout 30 openssl s_client -provider default -provider tpm2 \
                -propquery '?provider=tpm2,tpm2.digest!=yes' -groups X25519 -connect "127.0.0.1:$SPORT" \
                -CAfile "$TOP/srv.pem" -cert "$2" -key "$1" -ign_eof 2>&1
}
out=$(s_client "$KEY" "$CERT" || true)
grep -q "Client certificate" <<<"$out" && grep -q "CN *= *device-1" <<<"$out" &&
        pass "mutual TLS with --key-out and --cert-out (tpm2-openssl): the server verified the device's certificate" ||
        fail "mutual TLS: $(head -c 3000 <<<"$out")"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TOP/soft.key" 2>/dev/null
out=$(s_client "$TOP/soft.key" "$CERT" || true)
grep -q "CN *= *device-1" <<<"$out" && fail "a software key with the device's certificate was accepted" ||
        pass "... a software key with the device's certificate is not"
kill -KILL "$SERVER_PID" 2>/dev/null
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

cp "$TOP/out/verdict.bin" "$TOP/verdict.nokey" # a verifier that proves no device key

# agent_bg LOG: vouch-agent attesting on (no --once) with --cert-out, in the background
agent_bg() {
        "$VOUCH_AGENT" --server "127.0.0.1:$PPORT" --ca "$1" --tcti "$TPM2TOOLS_TCTI" --eventlog "$LOG" \
                --state-dir "$TOP/agent" --key-out "$KEY" --cert-out "$CERT" >"$2.out" 2>"$2" &
        AGENT_PID=$!
}
agent_stop() {
        kill -TERM "$AGENT_PID" 2>/dev/null
        wait "$AGENT_PID" 2>/dev/null || true
        AGENT_PID=""
}

# --- the agent renews on its own: a certificate that runs out (8 s here) and no new one from
# the verifier (this one issues none): at three quarters of its life the agent connects again
python3 - "$TOP/device.csr" "$TOP/ca.pem" "$TOP/ca.key" "$TOP/short.der" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
csr = x509.load_pem_x509_csr(open(sys.argv[1], "rb").read())
ca = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
key = serialization.load_pem_private_key(open(sys.argv[3], "rb").read(), None)
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject).public_key(csr.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(seconds=60))
        .not_valid_after(now + datetime.timedelta(seconds=8))
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .sign(key, hashes.SHA256()))
open(sys.argv[4], "wb").write(cert.public_bytes(serialization.Encoding.DER))
PY
proxy "$TOP/rec5" cert-proxy "$TOP/short.der" "$TOP/ca.der"
agent_bg "$TOP/state/ca.pem" "$TOP/renew1.err"
for ((i = 0; i < 200; i++)); do
        [[ -s $TOP/rec5/conn-2.agent ]] && grep -q "connecting again to be attested" "$TOP/renew1.err" &&
                [[ $(grep -c "written to $CERT" "$TOP/renew1.err") -ge 2 ]] && break
        sleep 0.1
done
agent_stop
if grep -q "device certificate: valid until .* and no new one came: connecting again to be attested for a new one" \
        "$TOP/renew1.err" && [[ -s $TOP/rec5/conn-2.agent ]] && [[ $(grep -c "written to $CERT" "$TOP/renew1.err") -ge 2 ]]; then
        pass "the agent renews on its own: a certificate at 3/4 of its life and none new, it connects again and gets one"
else
        fail "the agent's own renewal: $(grep -i "certificate\|connect" "$TOP/renew1.err" | tail -n 5)"
fi

# --- a certificate for another key: not written (the one written before stays)
openssl req -new -key "$TOP/soft.key" -subj "/CN=someone else" -out "$TOP/soft.csr" 2>/dev/null
openssl x509 -req -in "$TOP/soft.csr" -CA "$TOP/ca.pem" -CAkey "$TOP/ca.key" -CAcreateserial -days 1 \
        -extfile "$TOP/leaf.cnf" -outform DER -out "$TOP/soft.der" 2>/dev/null
cp "$CERT" "$TOP/cert.before"
proxy "$TOP/rec3" cert-proxy "$TOP/soft.der" "$TOP/ca.der"
agent
[[ $RC == 0 ]] && grep -q "not used: the first certificate is not for this device key" "$TOP/agent.err" &&
        cmp -s "$CERT" "$TOP/cert.before" &&
        pass "a certificate for another key is refused (logged) and --cert-out is left as it was" ||
        fail "a certificate for another key: exit $RC $(grep -i certificate "$TOP/agent.err")"
# and garbage where a certificate belongs
printf 'not a certificate' >"$TOP/garbage.der"
proxy "$TOP/rec4" cert-proxy "$TOP/garbage.der"
agent
[[ $RC == 0 ]] && grep -q "not used: certificate 0 is not one DER certificate" "$TOP/agent.err" &&
        cmp -s "$CERT" "$TOP/cert.before" &&
        pass "bytes that are not a certificate are refused and --cert-out is left as it was" ||
        fail "garbage certificate: exit $RC $(grep -i certificate "$TOP/agent.err")"

# --- vouchd issues the certificate itself (issue 19): --trust-domain, the state dir's device
# CA (made by vouchd init), the CRL on --http-listen and the API
kill -TERM "$VOUCHD_PID" 2>/dev/null
wait "$VOUCHD_PID" 2>/dev/null || true
VOUCHD_PID=""
kill -KILL "$PROXY_PID" 2>/dev/null
wait "$PROXY_PID" 2>/dev/null || true
PROXY_PID=""
[[ -s $TOP/state/device-ca.pem && $(stat -c %a "$TOP/state/device-ca.key") == 600 ]] &&
        pass "vouchd init made the device CA (device-ca.pem, device-ca.key mode 0600)" ||
        fail "no device CA in the state dir: $(ls -l "$TOP/state")"
"$VOUCHD" issue-client --state-dir "$TOP/state" --name ops --out "$TOP/ops" >/dev/null
HPORT=$(free_port)
APORT=$(free_port)
"$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" --default-golden arch \
        --ek-ca "$T/ekca.pem" --interval 3600 --threads 1 --trust-domain example.org --http-listen "127.0.0.1:$HPORT" \
        --api-listen "127.0.0.1:$APORT" --api-admin ops >"$TOP/vouchd.out" 2>"$TOP/vouchd.log" &
VOUCHD_PID=$!
for ((i = 0; i < 100; i++)); do
        grep -q ready "$TOP/vouchd.out" && break
        kill -0 "$VOUCHD_PID" 2>/dev/null || die "vouchd exited: $(tail -n 5 "$TOP/vouchd.log")"
        sleep 0.1
done
grep -q ready "$TOP/vouchd.out" || die "vouchd did not start with --trust-domain"
PPORT=$VPORT # the agent to vouchd itself
rm -f "$CERT"
agent
[[ $RC == 0 ]] && grep -q "verdict: TRUSTED" "$TOP/agent.out" && pass "vouchd with --trust-domain: TRUSTED" ||
        fail "vouchd with --trust-domain: exit $RC $(tail -n 3 "$TOP/agent.err")"
openssl x509 -in "$CERT" -out "$TOP/leaf.pem" 2>/dev/null
DEV=$(openssl x509 -in "$TOP/leaf.pem" -noout -subject -nameopt multiline 2>/dev/null | sed -n 's/^ *commonName *= *//p')
if [[ -s $CERT && $(grep -c 'BEGIN CERTIFICATE' "$CERT") == 2 ]] &&
        openssl verify -CAfile "$TOP/state/device-ca.pem" -purpose sslclient "$TOP/leaf.pem" >"$TOP/verify.out" 2>&1 &&
        cmp -s <(openssl x509 -in "$TOP/leaf.pem" -pubkey -noout) "$TOP/device.spki.pem" &&
        openssl x509 -in "$TOP/leaf.pem" -noout -ext subjectAltName 2>/dev/null | grep -q "URI:spiffe://example.org/device/$DEV" &&
        grep -q "$DEV" "$TOP/vouchd.log"; then
        pass "--cert-out: vouchd's certificate for the TPM key (spiffe://example.org/device/$DEV), chain to device-ca.pem"
else
        fail "vouchd's certificate: $(cat "$TOP/verify.out" 2>&1) $(openssl x509 -in "$CERT" -noout -text 2>&1 | head -n 30)"
fi
grep -q "device certificate: .*written to $CERT" "$TOP/agent.err" && pass "the agent wrote vouchd's chain" ||
        fail "agent log: $(grep -i certificate "$TOP/agent.err")"
API=(--server "https://127.0.0.1:$APORT" --cert "$TOP/ops.crt" --key "$TOP/ops.key" --ca "$TOP/state/ca.pem")
SERIAL=$(openssl x509 -in "$TOP/leaf.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
"$VOUCHCTL" cert list "$DEV" "${API[@]}" >"$TOP/certs.out" 2>&1 && grep -q "^$SERIAL .* valid" "$TOP/certs.out" &&
        pass "vouchctl cert list: the certificate, valid" || fail "vouchctl cert list: $(cat "$TOP/certs.out")"
curl -sf "http://127.0.0.1:$HPORT/v1/crl" -o "$TOP/crl.der" &&
        openssl crl -inform DER -in "$TOP/crl.der" -CAfile "$TOP/state/device-ca.pem" -noout 2>&1 | grep -q "verify OK" &&
        pass "GET /v1/crl on --http-listen: a DER CRL signed by the device CA" || fail "GET /v1/crl: $(ls -l "$TOP/crl.der" 2>&1)"
curl -sf "http://127.0.0.1:$HPORT/v1/crl?format=pem" -o "$TOP/crl.pem" &&
        openssl verify -crl_check -CRLfile "$TOP/crl.pem" -CAfile "$TOP/state/device-ca.pem" "$TOP/leaf.pem" >/dev/null 2>&1 &&
        pass "... (PEM) and the certificate is not on it" || fail "the certificate with the CRL: $(openssl verify -crl_check \
        -CRLfile "$TOP/crl.pem" -CAfile "$TOP/state/device-ca.pem" "$TOP/leaf.pem" 2>&1)"
# the passport bound to the key: vouchctl verdict verify with the device certificate
VV=("$VOUCHCTL" verdict verify --keys "$TOP/state/verdict-keys.pem")
DC=(--device-cert "$CERT" --device-ca "$TOP/state/device-ca.pem")
"${VV[@]}" "$TOP/out/verdict.bin" "${DC[@]}" --crl "$TOP/crl.der" >"$TOP/vv.out" 2>&1 &&
        grep -q "^device key: *[0-9a-f]\{64\}" "$TOP/vv.out" &&
        pass "verdict verify --device-cert: the verdict proves the certificate's key (Verdict.device_key)" ||
        fail "verdict verify --device-cert: $(cat "$TOP/vv.out")"
rc=0
"${VV[@]}" "$TOP/verdict.nokey" "${DC[@]}" >"$TOP/vv.out" 2>&1 || rc=$?
[[ $rc == 1 ]] && grep -q "wrong-key.*proves no device key" "$TOP/vv.out" &&
        pass "... a verdict that proves no key is refused with the certificate (exit 1)" ||
        fail "a verdict without device_key: exit $rc $(cat "$TOP/vv.out")"
rc=0
"${VV[@]}" "$TOP/out/verdict.bin" --device-cert "$TOP/leaf.pem" --device-ca "$TOP/ca.pem" >"$TOP/vv.out" 2>&1 || rc=$?
[[ $rc == 1 ]] && grep -q "not valid with" "$TOP/vv.out" &&
        pass "... a certificate that does not chain to the device CA is refused (exit 1)" ||
        fail "another CA: exit $rc $(cat "$TOP/vv.out")"
openssl req -x509 -key "$TOP/soft.key" -subj "/CN=$DEV" -addext "subjectAltName=URI:spiffe://example.org/device/$DEV" \
        -addext "extendedKeyUsage=clientAuth" -days 1 -out "$TOP/self.pem" 2>/dev/null
rc=0
"${VV[@]}" "$TOP/out/verdict.bin" --device-cert "$TOP/self.pem" --device-ca "$TOP/self.pem" >"$TOP/vv.out" 2>&1 || rc=$?
[[ $rc == 1 ]] && grep -q "wrong-key.*another device key" "$TOP/vv.out" &&
        pass "... a certificate of the same device id for a software key is refused (wrong-key, exit 1)" ||
        fail "a software key's certificate: exit $rc $(cat "$TOP/vv.out")"
rc=0
"${VV[@]}" "$TOP/out/verdict.bin" "${DC[@]}" --device other >"$TOP/vv.out" 2>&1 || rc=$?
[[ $rc == 1 ]] && grep -q "certificate of device $DEV, not other" "$TOP/vv.out" &&
        pass "... --device must name the certificate's device" || fail "--device other: exit $rc $(cat "$TOP/vv.out")"
rc=0
"${VV[@]}" "$TOP/out/verdict.bin" --device-cert "$CERT" >"$TOP/vv.out" 2>&1 || rc=$?
[[ $rc == 2 ]] && pass "... --device-cert without --device-ca is a usage error (exit 2)" ||
        fail "--device-cert alone: exit $rc $(cat "$TOP/vv.out")"

# crl_server CRL: an s_server demanding a client certificate of the device CA, checked
# against CRL (as an enforcement point with the CRL file vouchd serves)
crl_server() {
        [[ -z $SERVER_PID ]] || { kill -KILL "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; }
        SPORT=$(free_port)
        openssl s_server -accept "127.0.0.1:$SPORT" -cert "$TOP/srv.pem" -key "$TOP/srv.key" \
                -CAfile "$TOP/state/device-ca.pem" -CRL "$1" -crl_check -Verify 1 -verify_return_error -www \
                >"$TOP/s_server.out" 2>&1 &
        SERVER_PID=$!
        for ((i = 0; i < 50; i++)); do
                grep -q ACCEPT "$TOP/s_server.out" && break
                sleep 0.1
        done
}
crl_server "$TOP/crl.pem"
out=$(s_client "$KEY" "$CERT" || true)
grep -q "Client certificate" <<<"$out" && grep -q "CN *= *$DEV" <<<"$out" &&
        pass "mutual TLS with vouchd's certificate and the TPM key, against the device CA and its CRL" ||
        fail "mutual TLS with vouchd's certificate: $(head -c 3000 <<<"$out")"
"$VOUCHCTL" device revoke "$DEV" "${API[@]}" >/dev/null 2>&1 || fail "vouchctl device revoke failed"
listed=""
for ((i = 0; i < 20; i++)); do
        sleep 0.1
        "$VOUCHCTL" crl get --pem --out "$TOP/crl2.pem" "${API[@]}" >"$TOP/crlget.out" 2>&1 || continue
        if ! openssl verify -crl_check -CRLfile "$TOP/crl2.pem" -CAfile "$TOP/state/device-ca.pem" "$TOP/leaf.pem" \
                >"$TOP/verify2.out" 2>&1; then
                listed=$(((i + 1) * 100))
                break
        fi
done
[[ -n $listed ]] && grep -q "certificate revoked" "$TOP/verify2.out" &&
        pass "revoked: on the CRL (vouchctl crl get --out) within ${listed} ms, refused by openssl verify -crl_check" ||
        fail "revocation not on the CRL: $(cat "$TOP/crlget.out" "$TOP/verify2.out" 2>&1)"
crl_server "$TOP/crl2.pem"
out=$(s_client "$KEY" "$CERT" || true)
if grep -q "CN *= *$DEV" <<<"$out"; then
        fail "a revoked device's certificate was accepted: $(head -c 2000 <<<"$out")"
elif grep -q "certificate revoked" "$TOP/s_server.out"; then
        pass "... and refused at the handshake once it is on the CRL (the server: certificate revoked)"
else
        fail "the handshake with a revoked certificate: $(head -c 2000 "$TOP/s_server.out")"
fi
kill -KILL "$SERVER_PID" 2>/dev/null
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
rc=0
"${VV[@]}" "$TOP/out/verdict.bin" "${DC[@]}" --crl "$TOP/crl2.pem" >"$TOP/vv.out" 2>&1 || rc=$?
[[ $rc == 1 ]] && grep -q "certificate revoked" "$TOP/vv.out" &&
        pass "verdict verify --device-cert --crl: a revoked certificate is refused (exit 1)" ||
        fail "verdict verify with the revoked certificate: exit $rc $(cat "$TOP/vv.out")"
grep -q "CRL number .*1 revoked.*written to $TOP/crl2.pem" "$TOP/crlget.out" && pass "vouchctl crl get says what it wrote" ||
        fail "vouchctl crl get: $(cat "$TOP/crlget.out")"
"$VOUCHCTL" cert list "$DEV" "${API[@]}" >"$TOP/certs.out" 2>&1 && grep -q "^$SERIAL .* revoked" "$TOP/certs.out" &&
        pass "vouchctl cert list: revoked" || fail "vouchctl cert list after the revocation: $(cat "$TOP/certs.out")"

# --- vouchd renews a certificate shorter-lived than the interval (--device-cert-ttl 30,
# --interval 3600): it challenges again at two thirds of its life, before the agent would
kill -TERM "$VOUCHD_PID" 2>/dev/null
wait "$VOUCHD_PID" 2>/dev/null || true
"$VOUCHD" init --state-dir "$TOP/state2" >/dev/null
"$VOUCHD" --state-dir "$TOP/state2" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" --default-golden arch \
        --ek-ca "$T/ekca.pem" --interval 3600 --threads 1 --trust-domain example.org --device-cert-ttl 30 \
        >"$TOP/vouchd.out" 2>"$TOP/vouchd.log" &
VOUCHD_PID=$!
for ((i = 0; i < 100; i++)); do
        grep -q ready "$TOP/vouchd.out" && break
        sleep 0.1
done
PPORT=$VPORT
rm -f "$CERT"
agent_bg "$TOP/state2/ca.pem" "$TOP/renew2.err"
for ((i = 0; i < 400; i++)); do
        [[ $(grep -c "written to $CERT" "$TOP/renew2.err") -ge 2 ]] && break
        sleep 0.1
done
agent_stop
mapfile -t at < <(grep "written to $CERT" "$TOP/renew2.err" | head -n 2 | awk '{print $1}')
if ((${#at[@]} == 2)); then
        gap=$(($(date -d "${at[1]}" +%s) - $(date -d "${at[0]}" +%s)))
        ((gap >= 17 && gap <= 23)) && ! grep -q "connecting again" "$TOP/renew2.err" &&
                pass "vouchd renews a 30 s certificate after ${gap} s (two thirds of its life), the interval being an hour" ||
                fail "vouchd's renewal: ${gap} s between certificates; $(grep -i "connecting again" "$TOP/renew2.err")"
else
        fail "vouchd's renewal: $(grep -c "written to" "$TOP/renew2.err") certificate(s) in 40 s: $(tail -n 3 "$TOP/renew2.err")"
fi

echo "$npass passed, $nfail failed"
((nfail == 0))
