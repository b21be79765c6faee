#!/usr/bin/env bash
# The main job, end to end on this machine (the README's first set-up command):
# installs the packages, builds vouch, starts a private swtpm (temp dir, free ports, its
# own EK CA) and measures a real machine's boot into it (its event log extended event by
# event), creates the golden set from that known-good log, starts vouchd (embedded SQLite
# store in a temp state dir), and runs vouch-agent against the swtpm: the agent enrolls
# (EK certificate chain, ActivateCredential), is challenged with a fresh nonce and gets its
# signed verdict, printed here, and a certificate for its device key, a key in its TPM
# (vouchd --trust-domain, the agent's --key-out and --cert-out), checked against the device
# CA and its CRL. Then a rogue boot application is measured into the TPM: the next
# attestation is UNTRUSTED, and the certificate is on the next CRL (openssl verify: revoked).
# VOUCH_DEMO_SKIP_INSTALL=1 skips the apt-get step; VOUCH_DEMO_BIN=DIR runs the vouchd,
# vouch-agent and vouchctl installed in DIR (/usr/bin from the Debian packages) instead of
# building them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [[ ${VOUCH_DEMO_SKIP_INSTALL:-} != 1 ]]; then
        echo "== installing packages (apt-get)"
        bash .ci/install-packages
fi
if [[ -n ${VOUCH_DEMO_BIN:-} ]]; then
        # installed binaries (the Debian packages: VOUCH_DEMO_BIN=/usr/bin) instead of a build
        echo "== using the installed vouchd, vouch-agent and vouchctl in $VOUCH_DEMO_BIN"
        VOUCHCTL=$VOUCH_DEMO_BIN/vouchctl
        VOUCHD=$VOUCH_DEMO_BIN/vouchd
        VOUCH_AGENT=$VOUCH_DEMO_BIN/vouch-agent
        for b in "$VOUCHCTL" "$VOUCHD" "$VOUCH_AGENT"; do
                [[ -x $b ]] || { echo "demo: $b is not an executable (VOUCH_DEMO_BIN=$VOUCH_DEMO_BIN)" >&2; exit 1; }
        done
        "$VOUCHCTL" --version | sed 's/^/   /'
else
        echo "== building"
        [[ -d build-demo ]] || meson setup build-demo --buildtype=release >/dev/null
        ninja -C build-demo >/dev/null
        VOUCHCTL=$root/build-demo/verifier/vouchctl/vouchctl
        VOUCHD=$root/build-demo/verifier/server/vouchd
        VOUCH_AGENT=$root/build-demo/agent/vouch-agent
fi

# shellcheck source=../test/integration/lib.sh
. test/integration/lib.sh
# shellcheck source=../test/integration/swtpm.sh
. test/integration/swtpm.sh
T=$(mktemp -d "${TMPDIR:-/tmp}/vouch-demo.XXXXXX")
SWTPM_PID=""
VOUCHD_PID=""
trap '[[ -n $VOUCHD_PID ]] && kill "$VOUCHD_PID" 2>/dev/null; stop_swtpm; rm -rf "$T"' EXIT
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

echo "== measuring the boot into the TPM"
"$VOUCHCTL" eventlog show "$LOG" --json >show.json
extend_log show.json "sha1 sha256"
echo "   extended $EXTENDED events"
"$VOUCHCTL" eventlog show "$LOG" | sed -n '1p;/EV_EFI_BOOT_SERVICES_APPLICATION/,+5p' | head -8 | sed 's/^/   /'

echo "== golden set from the known-good log"
mkdir -p golden
"$VOUCHCTL" golden create --eventlog "$LOG" --name demo --description "known-good demo device" >golden/demo.json
jq -c '{name, version, bank, pcrs, rules: (.rules | keys)}' golden/demo.json | sed 's/^/   /'

echo "== starting vouchd"
cat "$T/ca/issuercert.pem" "$T/ca/swtpm-localca-rootca-cert.pem" >ekca.pem
"$VOUCHD" init --state-dir "$T/vouchd" | sed 's/^/   /'
vport=$(free_port)
hport=$(free_port)
"$VOUCHD" --state-dir "$T/vouchd" --listen "127.0.0.1:$vport" --golden-dir golden --default-golden demo \
        --ek-ca ekca.pem --interval 60 --trust-domain demo.vouch.example --http-listen "127.0.0.1:$hport" \
        >vouchd.out 2>vouchd.log &
VOUCHD_PID=$!
for ((i = 0; i < 100; i++)); do
        grep -q ready vouchd.out && break
        sleep 0.1
done
grep -q ready vouchd.out || die "vouchd did not start: $(tail -n 5 vouchd.log)"
echo "   vouchd on 127.0.0.1:$vport (state dir $T/vouchd, store vouch.db), the device CA's CRL on" \
        "http://127.0.0.1:$hport/v1/crl"

attest() {
        echo "== vouch-agent attests ($1)"
        local rc=0
        "$VOUCH_AGENT" --server "127.0.0.1:$vport" --ca "$T/vouchd/ca.pem" --tcti "$TPM2TOOLS_TCTI" \
                --eventlog "$LOG" --state-dir "$T/agent" --once --verdict-out verdict.pb --key-out device.key \
                --cert-out device.pem 2>agent.err || rc=$?
        sed 's/^.*vouch-agent [a-z]*: /   agent: /' agent.err
        echo "   (agent exit status $rc)"
}

attest "the device as booted"
passport() {
        echo "== a relying party checks the device's signed verdict offline (vouchctl verdict verify)"
        local rc=0
        "$VOUCHCTL" verdict verify --keys "$T/vouchd/verdict-keys.pem" verdict.pb >verify.out 2>&1 || rc=$?
        sed 's/^/   /' verify.out
        echo "   (exit status $rc: 0 only for a valid, unexpired TRUSTED verdict)"
}
passport
# crl_check: device.pem's certificate against the device CA and the CRL vouchd serves now
crl_check() {
        curl -sf "http://127.0.0.1:$hport/v1/crl?format=pem" -o devices.crl || die "cannot fetch the CRL"
        openssl verify -crl_check -CRLfile devices.crl -CAfile "$T/vouchd/device-ca.pem" device-cert.pem >verify.out 2>&1
}
echo "== the device's certificate, for its key in the TPM (vouchd --trust-domain, agent --cert-out)"
openssl x509 -in device.pem -out device-cert.pem || die "no device certificate in device.pem"
echo "   subject:  $(openssl x509 -in device-cert.pem -noout -subject -nameopt RFC2253 | sed 's/^subject=//')"
echo "   SAN:      $(openssl x509 -in device-cert.pem -noout -ext subjectAltName | sed -n 's/^ *//; 2p')"
echo "   notAfter: $(openssl x509 -in device-cert.pem -noout -enddate | sed 's/^notAfter=//') (the verdict's expiry)"
crl_check || true
echo "   openssl verify -crl_check, the device CA and the CRL of GET /v1/crl: $(tr '\n' ' ' <verify.out | sed 's/ *$//')"
echo "== a rogue boot application is measured into PCR 4 (the log does not show it)"
t2 tpm2_pcrextend "4:sha256=$(echo rogue | sha256sum | cut -d' ' -f1)"
attest "after the rogue measurement"
passport
echo "== the device's certificate after the UNTRUSTED verdict: on the next CRL"
for ((i = 0; i < 20; i++)); do
        crl_check || break
        sleep 0.1
done
sed 's/^/   /' verify.out
echo "== vouchd's log"
sed 's/^/   /' vouchd.log
