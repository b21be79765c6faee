#!/usr/bin/env bash
# The main job, end to end on this machine (the README's first set-up command):
# installs the packages, builds vouch, starts a private swtpm (temp dir, free ports, its
# own EK CA), creates an EK and an attestation key, measures a real machine's boot into the
# TPM (its event log extended event by event), creates the golden set from that known-good
# log, challenges the TPM with a fresh nonce, and verifies quote + event log + golden set
# with vouchctl, printing the verdict. Then it measures a rogue boot application and shows
# the verdict turn UNTRUSTED. (Until vouchd and vouch-agent exist this runs the verifier
# offline; the network service follows.)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [[ ${VOUCH_DEMO_SKIP_INSTALL:-} != 1 ]]; then
        echo "== installing packages (apt-get)"
        # shellcheck source=../.ci/packages
        . .ci/packages
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends "${VOUCH_PACKAGES[@]}" >/dev/null
fi
echo "== building"
[[ -d build-demo ]] || meson setup build-demo --buildtype=release >/dev/null
ninja -C build-demo >/dev/null
VOUCHCTL=$root/build-demo/verifier/vouchctl/vouchctl

# shellcheck source=../test/integration/lib.sh
. test/integration/lib.sh
# shellcheck source=../test/integration/swtpm.sh
. test/integration/swtpm.sh
T=$(mktemp -d "${TMPDIR:-/tmp}/vouch-demo.XXXXXX")
SWTPM_PID=""
trap 'stop_swtpm; rm -rf "$T"' EXIT
mkdir -p "$T/w"
cd "$T/w"
: >"$T/tpm2.log"

shared=${VOUCH_SHARED_DIR:-$root/../shared}
LOG=$shared/eventlogs/tpm2-tools/event-arch-linux.bin
if [[ -f $LOG ]]; then
        echo "== the device: an Arch Linux workstation's real boot ($LOG)"
else
        LOG=$T/demo-eventlog.bin
        python3 "$root/scripts/demo-log.py" >"$LOG"
        echo "== the device: a synthetic UEFI boot (../shared not found; scripts/demo-log.py)"
fi

echo "== starting a private swtpm"
provision_swtpm sha1,sha256
start_swtpm
echo "   swtpm on 127.0.0.1:$PORT, state and EK CA in $T"
create_ek
create_ak ak rsa sha256 rsassa || die "tpm2_createak failed"

echo "== measuring the boot into the TPM"
"$VOUCHCTL" eventlog show "$LOG" --json >show.json
extend_log show.json "sha1 sha256"
"$VOUCHCTL" eventlog replay "$LOG" --json >replay.json 2>/dev/null
sel=$(jq -r '{sha256} | to_entries | map("\(.key):" + (.value | keys | map(tonumber) | sort | map(tostring) | join(","))) | join("+")' replay.json)
echo "   extended $EXTENDED events; quoting $sel"
"$VOUCHCTL" eventlog show "$LOG" | sed -n '1p;/EV_EFI_BOOT_SERVICES_APPLICATION/,+5p' | head -8 | sed 's/^/   /'

echo "== golden set from the known-good log"
"$VOUCHCTL" golden create --eventlog "$LOG" --name demo --description "known-good demo device" >golden.json
jq -c '{name, version, bank, pcrs, rules: (.rules | keys)}' golden.json | sed 's/^/   /'

attest() { # label: quote with a fresh nonce; verify quote + event log + golden set; verdict
        local nonce verdict=TRUSTED
        nonce=$(od -An -v -tx1 -N 32 /dev/urandom | tr -d ' \n')
        t2f tpm2_quote -c ak.ctx -l "$sel" -q "$nonce" -m q.msg -s q.sig -o q.pcrs -g sha256 >/dev/null
        echo "== attestation ($1): nonce $nonce"
        "$VOUCHCTL" quote verify --ak ak.pub --msg q.msg --sig q.sig --pcrs q.pcrs --nonce "$nonce" \
                --eventlog "$LOG" --golden golden.json >verify.out 2>&1 || verdict=UNTRUSTED
        sed 's/^/   /' verify.out | head -6
        echo "VERDICT: $verdict"
}

attest "the device as booted"
echo "== a rogue boot application is measured into PCR 4 (the log does not show it)"
t2 tpm2_pcrextend "4:sha256=$(echo rogue | sha256sum | cut -d' ' -f1)"
attest "after the rogue measurement"
stop_swtpm orderly
