#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The agent's TPM layer (agent/tpm.c) against a private swtpm with its own EK CA, checked
# with the verifier's core (agent-tpm-test.c does the checks): EK certificates for RSA and
# ECC EKs, AK attributes, credential activation, quotes and PCR reads, and the saved AK
# reloaded after a TPM restart that needs TPM2_Startup from the agent. A second swtpm
# provides "another TPM's" CA, EK and certificate.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${AGENT_TPM_TEST:?}"
require_tools swtpm swtpm_setup swtpm_ioctl swtpm_localca tpm2_shutdown tpm2_pcrread tpm2_nvdefine tpm2_nvwrite \
        openssl

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
stop_swtpm orderly

echo "$total_pass passed, $total_fail failed"
((total_fail == 0))
