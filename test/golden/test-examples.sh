#!/usr/bin/env bash
# The example golden sets in golden/ are what vouchctl creates today from their logs
# (byte for byte), each accepts its own machine's log, and rejects another machine's.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
: "${VOUCHCTL:?}" "${VOUCH_SHARED_DIR:?}"
if [[ ! -d $VOUCH_SHARED_DIR/eventlogs ]]; then
        if [[ ${CI:-} == true ]]; then
                echo "FAIL: shared data not found at $VOUCH_SHARED_DIR (CI=true)"
                exit 1
        fi
        echo "*** SKIPPED: shared data not found at $VOUCH_SHARED_DIR ***"
        exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$src/golden/regenerate.sh" "$tmp"
fail=0
for f in "$src"/golden/*.json; do
        n=$(basename "$f")
        if ! cmp -s "$f" "$tmp/$n"; then
                echo "FAIL: golden/$n differs from what golden/regenerate.sh creates now:"
                diff -u "$f" "$tmp/$n" | head -20
                fail=1
        else
                echo "ok: golden/$n is current"
        fi
done
check() { # expected-exit golden log
        local rc=0
        "$VOUCHCTL" golden check --golden "$src/golden/$2" --eventlog "$3" >"$tmp/out" 2>&1 || rc=$?
        if [[ $rc != "$1" ]]; then
                echo "FAIL: golden check $2 on $3: exit $rc, expected $1"
                cat "$tmp/out"
                fail=1
        else
                echo "ok: $2 on $(basename "$3"): exit $rc ($(head -1 "$tmp/out"))"
        fi
}
L=$VOUCH_SHARED_DIR/eventlogs
check 0 gce-cos-85.json "$VOUCH_SHARED_DIR/quotes/gce-cos-85-sha256/eventlog.bin"
check 0 ubuntu-2104.json "$L/go-tpm-tools/ubuntu-2104-no-dbx.bin"
check 0 ubuntu-2104.json "$L/go-tpm-tools/ubuntu-2104-no-secure-boot.bin"
check 0 rhel8-uefi.json "$L/go-tpm-tools/rhel8-uefi.bin"
check 0 hirs-laptop.json "$L/HIRS/laptop_default_binary_bios_measurements"
check 1 rhel8-uefi.json "$L/go-tpm-tools/ubuntu-2104-no-dbx.bin"
check 1 gce-cos-85.json "$L/go-tpm-tools/cos-101-amd-sev.bin"
check 1 hirs-laptop.json "$L/HIRS/TpmLog.bin"
check 0 tdx-cos-113.json "$VOUCH_SHARED_DIR/ccel/cos-113-intel-tdx.bin"
check 1 tdx-cos-113.json "$VOUCH_SHARED_DIR/quotes/gce-cos-85-sha256/eventlog.bin"
check 1 gce-cos-85.json "$VOUCH_SHARED_DIR/ccel/cos-113-intel-tdx.bin"
# unusable input: exit 2
check 2 rhel8-uefi.json /nonexistent
printf '{"name": "x", "version": 1, "bank": "sha256", "pcrs": [0], "rules": {}}' >"$tmp/bad.json"
rc=0
"$VOUCHCTL" golden check --golden "$tmp/bad.json" --eventlog "$L/HIRS/TpmLog.bin" 2>"$tmp/err" || rc=$?
if [[ $rc != 2 ]] || ! grep -q 'rules: empty rule' "$tmp/err"; then
        echo "FAIL: an empty rule set must be refused (exit 2 naming \$.rules), got $rc: $(cat "$tmp/err")"
        fail=1
else
        echo "ok: empty rule set refused: $(cat "$tmp/err")"
fi
# JSON output of a failing check names the rule and the event
rc=0
"$VOUCHCTL" golden check --golden "$src/golden/rhel8-uefi.json" --eventlog "$L/go-tpm-tools/ubuntu-2104-no-dbx.bin" --json \
        >"$tmp/j" || rc=$?
python3 - "$tmp/j" <<'PY' || fail=1
import json, sys
o = json.load(open(sys.argv[1]))
assert o["trust"] == "UNTRUSTED", o["trust"]
assert o["golden"] == {"name": "rhel8-uefi", "version": 1}
f = o["findings"]
assert f and all({"rule", "pcr", "event", "expected", "actual", "explanation"} <= set(x) for x in f)
print("ok: --json lists", len(f), "findings, first:", f[0]["explanation"][:100])
PY
# CCEL logs (../shared/ccel): vouchctl reads them by structure, reports the format and the
# padding, replays the registers to .pcrs.json, refuses them as TPM logs, and makes golden
# sets of registers that accept them and judge no TPM log.
for c in "$VOUCH_SHARED_DIR"/ccel/*.bin; do
        [[ -f $c ]] || { [[ ${CI:-} == true ]] && { echo "FAIL: no CCEL log"; fail=1; }; continue; }
        n=$(basename "$c")
        "$VOUCHCTL" eventlog show "$c" >"$tmp/show" 2>"$tmp/err"
        if ! head -1 "$tmp/show" | grep -q '^Format: ccel' || ! grep -Eq '^[0-9]+ bytes of padding after event [0-9]+' "$tmp/show"; then
                echo "FAIL: eventlog show $n: no 'Format: ccel' or padding line"; fail=1
        else
                echo "ok: show $n: $(head -1 "$tmp/show"); $(grep -E 'bytes of padding' "$tmp/show")"
        fi
        "$VOUCHCTL" eventlog show "$c" --json 2>/dev/null | jq -e '.format == "ccel" and .padding > 0' >/dev/null ||
                { echo "FAIL: show --json $n"; fail=1; }
        "$VOUCHCTL" eventlog replay "$c" --json >"$tmp/replay.json" 2>/dev/null
        if [[ $(jq -S . "$tmp/replay.json") != $(jq -S . "$c.pcrs.json") ]]; then
                echo "FAIL: replay --json $n differs from $n.pcrs.json"; fail=1
        else
                echo "ok: replay --json $n equals $n.pcrs.json"
        fi
        rc=0
        "$VOUCHCTL" eventlog replay "$c" --format tpm >/dev/null 2>"$tmp/err" || rc=$?
        if [[ $rc != 2 ]] || ! grep -q 'Spec ID event in PCR' "$tmp/err"; then
                echo "FAIL: $n read as a TPM log: exit $rc, expected 2"; fail=1
        else
                echo "ok: $n refused as a TPM log: $(cat "$tmp/err")"
        fi
        "$VOUCHCTL" golden create --eventlog "$c" --name tdx >"$tmp/tdx.json" 2>/dev/null || { echo "FAIL: golden create $n"; fail=1; }
        jq -e '.log == "ccel"' "$tmp/tdx.json" >/dev/null || { echo "FAIL: golden create $n: not a ccel set"; fail=1; }
        rc=0
        "$VOUCHCTL" golden check --golden "$tmp/tdx.json" --eventlog "$c" >"$tmp/out" 2>&1 || rc=$?
        [[ $rc == 0 ]] && echo "ok: golden set of $n accepts it" || { echo "FAIL: golden check $n: exit $rc"; cat "$tmp/out"; fail=1; }
        rc=0
        "$VOUCHCTL" golden check --golden "$tmp/tdx.json" --eventlog "$L/HIRS/TpmLog.bin" >"$tmp/out" 2>&1 || rc=$?
        if [[ $rc != 1 ]] || ! grep -q '\[log\]' "$tmp/out"; then
                echo "FAIL: the CCEL set must judge a TPM log UNTRUSTED ([log]), got $rc"; cat "$tmp/out"; fail=1
        else
                echo "ok: the CCEL set refuses a TPM log: $(grep '\[log\]' "$tmp/out")"
        fi
done
exit $fail
