#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vc_make_credential (software MakeCredential) against a real TPM's ActivateCredential:
# for RSA and ECC EKs, the swtpm recovers the secret for the AK it was made for, and
# refuses a credential made for another key's name or under another EK.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VC_MAKECRED:?}"
require_tools swtpm swtpm_setup swtpm_ioctl tpm2_createek tpm2_createak tpm2_activatecredential \
        tpm2_startauthsession tpm2_policysecret tpm2_flushcontext

T=$(mktemp -d "${TMPDIR:-/tmp}/vouch-cred-test.XXXXXX")
SWTPM_PID=""
trap 'stop_swtpm; rm -rf "$T"' EXIT
mkdir -p "$T/w"
cd "$T/w"
: >"$T/tpm2.log"
provision_swtpm sha256
start_swtpm
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }

# activate AK EK CRED OUT: TPM2_ActivateCredential with the EK's policy (PolicySecret
# on the endorsement hierarchy). Returns the tool's status.
activate() {
        local ak=$1 ek=$2 cred=$3 out=$4 rc=0
        tpm2_startauthsession --policy-session -S session.ctx >>"$T/tpm2.log" 2>&1
        tpm2_policysecret -S session.ctx -c e >>"$T/tpm2.log" 2>&1
        tpm2_activatecredential -c "$ak.ctx" -C "$ek.ctx" -i "$cred" -o "$out" -P "session:session.ctx" \
                >>"$T/tpm2.log" 2>&1 || rc=$?
        tpm2_flushcontext session.ctx >>"$T/tpm2.log" 2>&1 || true
        tpm2_flushcontext -t >>"$T/tpm2.log" 2>&1 || true
        tpm2_flushcontext -s >>"$T/tpm2.log" 2>&1 || true
        return $rc
}

for alg in rsa ecc; do
        t2f tpm2_createek -c "ek-$alg.ctx" -G "$alg" -u "ek-$alg.pub" >/dev/null
        flush_sessions
        for ak in a b; do
                t2f tpm2_createak -C "ek-$alg.ctx" -c "ak-$alg-$ak.ctx" -G rsa -g sha256 -s rsassa \
                        -u "ak-$alg-$ak.pub" -n "ak-$alg-$ak.name" -r "ak-$alg-$ak.priv" >/dev/null
                flush_sessions
        done
        secret=$(od -An -v -tx1 -N 32 /dev/urandom | tr -d ' \n')
        "$VC_MAKECRED" "ek-$alg.pub" "ak-$alg-a.name" "$secret" cred.bin
        if activate "ak-$alg-a" "ek-$alg" cred.bin got.bin &&
                [[ $(od -An -v -tx1 got.bin | tr -d ' \n') == "$secret" ]]; then
                pass "$alg EK: the TPM recovers the secret for the AK it was made for"
        else
                fail "$alg EK: ActivateCredential did not recover the secret: $(tail -n 3 "$T/tpm2.log" | tr '\n' ' ')"
        fi
        "$VC_MAKECRED" "ek-$alg.pub" "ak-$alg-b.name" "$secret" cred-b.bin
        if activate "ak-$alg-a" "ek-$alg" cred-b.bin got-b.bin; then
                fail "$alg EK: a credential for another AK's name was activated"
        else
                pass "$alg EK: a credential for another AK's name is refused"
        fi
done
# under the RSA EK, activated with the ECC EK
"$VC_MAKECRED" ek-rsa.pub ak-ecc-a.name 00112233445566778899aabbccddeeff cred-x.bin
if activate ak-ecc-a ek-ecc cred-x.bin got-x.bin; then
        fail "a credential made under another EK was activated"
else
        pass "a credential made under another EK is refused"
fi
stop_swtpm orderly
echo "$npass passed, $nfail failed"
((nfail == 0))
