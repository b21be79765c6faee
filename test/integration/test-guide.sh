#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Follows docs/real-devices.md end to end (issue 21): every fenced sh block the guide marks
# with <!-- run --> is executed, in order, in one shell, with swtpm standing in for the
# device's TPM (manufactured with an EK certificate from a CA that is put in the EK CA
# directory as a maker's would be), temp dirs for /etc/vouch and /var/lib/vouchd, the
# source tree's ekca/ for the installed one, and two real logs from ../shared for the
# known-good machine and its firmware update. Passes when the guide's steps run without
# an error and end with the device TRUSTED, so the guide cannot rot.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}" "${VOUCH_EKCA_DIR:?}"
require_tools swtpm swtpm_setup tpm2_createek tpm2_flushcontext tpm2_pcrextend openssl python3 jq
require_shared_data
require_vouchctl
guide=$here/../../docs/real-devices.md
[[ -f $guide ]] || die "$guide is missing"
KNOWN_GOOD=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-arch-linux.bin
FW2=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-uefivar.bin
[[ -f $KNOWN_GOOD && -f $FW2 ]] || skip_or_fail "shared data not found at $KNOWN_GOOD"

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-guide-test.XXXXXX")
cleanup() {
        local rc=$?
        set +e
        pkill -KILL -f "vouchd --state-dir $TOP/" 2>/dev/null
        [[ -f $TOP/tpm/pid ]] && kill -KILL "$(cat "$TOP/tpm/pid")" 2>/dev/null
        if ((rc != 0)); then
                echo "--- guide run ---"
                tail -n 30 "$TOP/run.log" 2>/dev/null
                echo "--- vouchd log ---"
                tail -n 20 "$TOP/work/vouchd.log" 2>/dev/null
        fi
        [[ -n ${VOUCH_KEEP_TMP:-} ]] && echo "kept $TOP" || rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

# the device: a swtpm that booted the known-good log
T=$TOP/tpm
mkdir -p "$T"
: >"$T/tpm2.log"
provision_swtpm sha1,sha256
start_swtpm
echo "$SWTPM_PID" >"$T/pid"
"$VOUCHCTL" eventlog show "$KNOWN_GOOD" --json >"$TOP/show.json"
extend_log "$TOP/show.json" "sha1 sha256"

# what the guide's readers have: the binaries on PATH, the installed ekca/, the logs
mkdir -p "$TOP/bin" "$TOP/share/vouch" "$TOP/work"
ln -s "$VOUCHD" "$TOP/bin/vouchd"
ln -s "$VOUCHCTL" "$TOP/bin/vouchctl"
ln -s "$VOUCH_AGENT" "$TOP/bin/vouch-agent"
cp -r "$VOUCH_EKCA_DIR" "$TOP/share/vouch/ekca"
cp "$KNOWN_GOOD" "$TOP/work/model-x.bin"
cp "$FW2" "$TOP/work/model-x-fw2.bin"

# the guide's run blocks, in order
awk '/^<!-- run -->$/ { want = 1; next }
     want && /^```sh$/ { inblock = 1; want = 0; print "# ---- block " ++n; next }
     inblock && /^```$/ { inblock = 0; next }
     inblock { print }
     !/^[[:space:]]*$/ && !/^```/ { want = want && /^<!--/ }' "$guide" >"$TOP/steps.sh"
nblocks=$(grep -c '^# ---- block' "$TOP/steps.sh" || true)
((nblocks >= 6)) || die "only $nblocks run blocks found in $guide"
log "running $nblocks blocks of docs/real-devices.md"

VPORT=$(free_port)
APORT=$(free_port)
# the swtpm stands in for the maker: its EK CA goes where the guide puts the makers' CAs
# (after the guide's own ekca step, before vouchd starts: an extra file the guide allows)
sed -i "/^vouchd --state-dir/i cat '$T/ca/issuercert.pem' '$T/ca/swtpm-localca-rootca-cert.pem' >\"\$VOUCH_ETC/ekca/swtpm-test-maker.pem\"" \
        "$TOP/steps.sh"
rc=0
(
        cd "$TOP/work"
        export PATH=$TOP/bin:$PATH VOUCH_ETC=$TOP/etc VOUCH_STATE=$TOP/state VOUCH_SHARE=$TOP/share/vouch \
                VERIFIER=127.0.0.1:$VPORT API=127.0.0.1:$APORT TPM_TCTI=$TPM2TOOLS_TCTI EVENTLOG=$KNOWN_GOOD
        bash -euo pipefail "$TOP/steps.sh"
) >"$TOP/run.log" 2>&1 || rc=$?
npass=0
nfail=0
if ((rc == 0)); then
        npass=$((npass + 1))
        echo "ok   - the guide's $nblocks run blocks ran without an error"
else
        nfail=$((nfail + 1))
        echo "FAIL - the guide's steps failed (exit $rc): $(tail -n 3 "$TOP/run.log")"
fi
if grep -q "verdict: TRUSTED" "$TOP/run.log" && grep -q "TRUSTED" <(grep -v "verdict: " "$TOP/run.log"); then
        npass=$((npass + 1))
        echo "ok   - following the guide, the device attests TRUSTED and vouchctl verdict list shows it"
else
        nfail=$((nfail + 1))
        echo "FAIL - no TRUSTED verdict at the end of the guide: $(grep -i verdict "$TOP/run.log" | tail -n 3)"
fi
if grep -q "key-anchored\|EK key .* is on the allowlist" "$TOP/work/vouchd.log"; then
        nfail=$((nfail + 1))
        echo "FAIL - the device (it has an EK certificate) was enrolled by its key alone"
else
        npass=$((npass + 1))
        echo "ok   - the device enrolled with its EK certificate through the guide's EK CA directory"
fi
echo "$npass passed, $nfail failed"
((nfail == 0))
