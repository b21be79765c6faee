#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The agent's TPM layer (agent/tpm.c) against a private swtpm with its own EK CA, checked
# with the verifier's core (agent-tpm-test.c does the checks): EK certificates for RSA and
# ECC EKs, AK attributes, credential activation, quotes and PCR reads, and the saved AK
# reloaded after a TPM restart that needs TPM2_Startup from the agent. A second swtpm
# provides "another TPM's" CA, EK and certificate. Then the device identity key (issue 19):
# made and certified by the agent's TPM layer and checked by vc_certify_verify, its TSS2
# PRIVATE KEY file used by OpenSSL through tpm2-openssl, and certifies tpm2-tools made of
# a TPM key, an exportable key and a software key loaded with TPM2_LoadExternal.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${AGENT_TPM_TEST:?}"
require_tools swtpm swtpm_setup swtpm_ioctl swtpm_localca tpm2_shutdown tpm2_pcrread tpm2_nvdefine tpm2_nvwrite \
        tpm2_createek tpm2_createak tpm2_createprimary tpm2_create tpm2_load tpm2_loadexternal tpm2_certify \
        tpm2_readpublic tpm2_getcap openssl

T=$(mktemp -d "${TMPDIR:-/tmp}/vouch-agent-tpm-test.XXXXXX")
T_MAIN=$T
SWTPM_PID=""
OTHER_PID=""
stop_other() {
        [[ -n $OTHER_PID ]] || return 0
        kill -TERM "$OTHER_PID" 2>/dev/null || true
        wait "$OTHER_PID" 2>/dev/null || true
        OTHER_PID=""
}
trap 'T=$T_MAIN; stop_swtpm; stop_other; rm -rf "$T_MAIN"' EXIT
mkdir -p "$T/state-agent" "$T/other"
: >"$T/tpm2.log"

# The other swtpm, with a CA of its own (provisioned in the background while ours is).
T=$T_MAIN/other
provision_swtpm sha256 &
other_setup=$!
T=$T_MAIN
provision_swtpm sha1,sha256
wait "$other_setup" || die "provisioning the other swtpm failed"
T=$T_MAIN/other
: >"$T/tpm2.log"
start_swtpm
OTHER_PID=$SWTPM_PID
OTHER_TCTI=$TPM2TOOLS_TCTI
SWTPM_PID=""
T=$T_MAIN
start_swtpm

# Our swtpm also carries its EK chain in NV, as some TPM makers store it (EK Credential
# Profile 2.5, 2.2.1.5.2): the issuer in 0x01c00100, in an index 32 bytes larger than it
# (the rest reads as unwritten padding), and the root in 0x01c00101 (one index holds at
# most 2048 bytes on swtpm: not both).
openssl x509 -in "$T/ca/issuercert.pem" -outform DER -out "$T/chain-0.der"
openssl x509 -in "$T/ca/swtpm-localca-rootca-cert.pem" -outform DER -out "$T/chain-1.der"
for i in 0 1; do
        t2 tpm2_nvdefine 0x01c0010$i -C o -s $(($(stat -c %s "$T/chain-$i.der") + 32 * (1 - i))) \
                -a "ownerread|ownerwrite|authread|authwrite" >/dev/null
        t2 tpm2_nvwrite 0x01c0010$i -C o -i "$T/chain-$i.der"
done

total_pass=0
total_fail=0
# verdict WHAT: an ok/FAIL line of the script's own, counted with the test program's.
pass() { echo "ok   - $*"; total_pass=$((total_pass + 1)); }
fail() { echo "FAIL - $*"; total_fail=$((total_fail + 1)); }

# The device key's file with OpenSSL 3 and Debian's tpm2-openssl provider on this swtpm:
# a signature (openssl dgst) and a CSR (openssl req) made with the TPM key verify with the
# public key taken from its TPMT_PUBLIC, and the provider leaves no object behind.
devkey_openssl() {
        local key=$T/state-agent/devkey.tss2.pem pub=$T/state-agent/devkey.spki.pem out
        local -a prov=(-provider tpm2 -provider default)
        # (the provider connects to the TPM when it is loaded)
        if ! TPM2OPENSSL_TCTI=$TPM2TOOLS_TCTI openssl list -providers "${prov[@]}" >>"$T/tpm2.log" 2>&1; then
                fail "OpenSSL cannot load the tpm2 provider (apt-get install tpm2-openssl)"
                return
        fi
        head -n 1 "$key" | grep -qx -- '-----BEGIN TSS2 PRIVATE KEY-----' &&
                pass "devkey.tss2.pem is a TSS2 PRIVATE KEY PEM file" ||
                fail "devkey.tss2.pem: $(head -n 1 "$key")"
        printf 'a TLS handshake transcript, say\n' >"$T/devkey.data"
        if TPM2OPENSSL_TCTI=$TPM2TOOLS_TCTI openssl dgst -sha256 "${prov[@]}" -propquery '?provider=tpm2' \
                -sign "$key" -out "$T/devkey.sig" \
                "$T/devkey.data" >>"$T/tpm2.log" 2>&1; then
                out=$(openssl dgst -sha256 -verify "$pub" -signature "$T/devkey.sig" "$T/devkey.data" 2>&1)
                [[ $out == "Verified OK" ]] &&
                        pass "openssl dgst -sign with the key file through tpm2-openssl: the signature verifies with the TPMT_PUBLIC's key" ||
                        fail "the tpm2-openssl signature does not verify with the device key's public key: $out"
                printf 'another transcript\n' >"$T/devkey.other"
                out=$(openssl dgst -sha256 -verify "$pub" -signature "$T/devkey.sig" "$T/devkey.other" 2>&1) &&
                        fail "the signature verifies for other data too: $out" ||
                        pass "... and not for other data"
        else
                fail "openssl dgst -sign with the device key file failed: $(tail -n 3 "$T/tpm2.log" | tr '\n' ' ')"
        fi
        if TPM2OPENSSL_TCTI=$TPM2TOOLS_TCTI openssl req -new "${prov[@]}" -key "$key" -subj "/CN=vouch device" \
                -out "$T/devkey.csr" >>"$T/tpm2.log" 2>&1 &&
                openssl req -in "$T/devkey.csr" -verify -noout >>"$T/tpm2.log" 2>&1 &&
                cmp -s <(openssl req -in "$T/devkey.csr" -pubkey -noout) "$pub"; then
                pass "openssl req -new -key with the key file: the CSR is self-signed by the TPM key and carries its public key"
        else
                fail "openssl req with the device key file: $(tail -n 3 "$T/tpm2.log" | tr '\n' ' ')"
        fi
        out=$(tpm2_getcap handles-transient 2>>"$T/tpm2.log")
        [[ -z $out ]] && pass "no transient object left in the swtpm after OpenSSL used the key" ||
                fail "transient objects left in the swtpm: $out"
}

# Certifies made by tpm2-tools (another implementation of TPM2_Certify; its 5.4 takes no
# qualifying data and always passes 00ff55aa, which is expected here), checked as vouchd would: a TPM key with the device
# key's attributes is valid (and refused for a challenge's qualifying data); a key made to
# be exported (no fixedTPM/fixedParent) is refused; so is a software key that the TPM took
# with TPM2_LoadExternal and certified all the same: an external key cannot have fixedTPM.
devkey_foreign_certifies() {
        (
                cd "$T/other" || exit 1
                create_ek
                create_ak ak rsa sha256 rsassa || die "tpm2_createak failed"
                t2f tpm2_createprimary -C o -g sha256 -G ecc256:aes128cfb -c srk.ctx >>"$T/tpm2.log"
                # certify KEYCTX NAME: tpm2_certify by the AK, and the key's TPM2B_PUBLIC
                certify() {
                        t2f tpm2_readpublic -c "$1" -o "$2.pub" >>"$T/tpm2.log"
                        t2f tpm2_certify -c "$1" -C ak.ctx -g sha256 -o "$2.attest" -s "$2.sig" >>"$T/tpm2.log"
                }
                verify() { "$AGENT_TPM_TEST" verify-certify ak.pub "$1.pub" "$1.attest" "$1.sig" "$2" "$3" || true; }
                t2f tpm2_create -C srk.ctx -G ecc256 -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign" \
                        -u tk.pub -r tk.priv >>"$T/tpm2.log"
                t2f tpm2_load -C srk.ctx -u tk.pub -r tk.priv -c tk.ctx >>"$T/tpm2.log"
                certify tk.ctx tpmkey
                verify tpmkey 00ff55aa valid
                verify tpmkey "$(openssl rand -hex 32)" qualifying-data
                t2f tpm2_create -C srk.ctx -G ecc256 -a "sensitivedataorigin|userwithauth|sign" \
                        -u xk.pub -r xk.priv >>"$T/tpm2.log"
                t2f tpm2_load -C srk.ctx -u xk.pub -r xk.priv -c xk.ctx >>"$T/tpm2.log"
                certify xk.ctx exportable
                verify exportable 00ff55aa key-attributes
                openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out soft.pem 2>>"$T/tpm2.log"
                t2f tpm2_loadexternal -C n -G ecc -r soft.pem -a "userwithauth|sign" -c soft.ctx >>"$T/tpm2.log"
                certify soft.ctx software
                verify software 00ff55aa key-attributes
        ) >"$T/foreign.out" 2>&1 || fail "the tpm2-tools certifies stopped: $(tail -n 3 "$T/foreign.out" | tr '\n' ' ')"
        local line
        while IFS= read -r line; do
                case $line in
                ok*) pass "${line#ok   - }" ;;
                FAIL*) fail "${line#FAIL - }" ;;
                *" passed, "*" failed") ;;
                *) echo "  $line" ;;
                esac
        done <"$T/foreign.out"
        grep -q 'software.pub' "$T/foreign.out" || fail "the tpm2-tools certifies did not all run"
}
# run PHASE ARGS...: the test program, its output shown, its counts added up.
run() {
        local rc=0 out last
        out=$("$AGENT_TPM_TEST" "$@" 2>&1) || rc=$?
        printf '%s\n' "$out"
        last=$(printf '%s\n' "$out" | tail -n 1)
        if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
                total_pass=$((total_pass + BASH_REMATCH[1]))
                total_fail=$((total_fail + BASH_REMATCH[2]))
        else
                echo "FAIL - agent-tpm-test $1 ended abnormally ($(describe_status "$rc"))"
                total_fail=$((total_fail + 1))
        fi
        if ((rc != 0)) && [[ $last =~ \ 0\ failed$ ]]; then
                echo "FAIL - agent-tpm-test $1 exited with $(describe_status "$rc") after passing"
                total_fail=$((total_fail + 1))
        fi
}

echo "# phase 1: enrollment (EK certificates, AKs, credentials, quotes)"
run enroll "$TPM2TOOLS_TCTI" "$T/ca" "$OTHER_TCTI" "$T/other/ca" "$T/state-agent"
stop_other

# A reboot: orderly shutdown and a new swtpm process on the same state, then TPM2_Shutdown
# and a power cycle (CMD_INIT), so the TPM waits for the TPM2_Startup that va_tpm_open sends.
stop_swtpm orderly
start_swtpm
t2 tpm2_shutdown -c
swtpm_ioctl --tcp "127.0.0.1:$((PORT + 1))" -i >>"$T/tpm2.log" 2>&1 || die "swtpm_ioctl -i failed"

if tpm2_pcrread sha256:0 >>"$T/tpm2.log" 2>&1; then
        echo "FAIL - the power-cycled swtpm answers before TPM2_Startup: va_tpm_open's Startup goes untested"
        total_fail=$((total_fail + 1))
else
        echo "ok   - the power-cycled swtpm refuses commands until TPM2_Startup (which va_tpm_open sends)"
        total_pass=$((total_pass + 1))
fi
echo "# phase 2: after a TPM restart (saved AKs reloaded, 20 rounds)"
run reload "$TPM2TOOLS_TCTI" "$T/state-agent"

echo "# phase 3: the device identity key (issue 19)"
run devkey "$TPM2TOOLS_TCTI" "$T/state-agent"
devkey_openssl
devkey_foreign_certifies
stop_swtpm orderly

echo "$total_pass passed, $total_fail failed"
((total_fail == 0))
