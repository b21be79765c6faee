#!/usr/bin/env bash
# Regenerates the example golden sets in this folder from the real event logs they were
# created from, with vouchctl itself. test/golden/test-examples.sh runs it into a temp dir
# and requires byte-identical output, so the examples cannot rot.
#   golden/regenerate.sh [OUT_DIR]   (VOUCHCTL, VOUCH_SHARED_DIR as in the tests)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
vouchctl=${VOUCHCTL:-$here/../build/verifier/vouchctl/vouchctl}
logs=${VOUCH_SHARED_DIR:-$here/../../shared}/eventlogs
quotes=${VOUCH_SHARED_DIR:-$here/../../shared}/quotes
ccel=${VOUCH_SHARED_DIR:-$here/../../shared}/ccel
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Google Compute Engine, Container-Optimized OS 85 (the machine of the real quotes).
"$vouchctl" golden create --eventlog "$quotes/gce-cos-85-sha256/eventlog.bin" --name gce-cos-85 \
        --description "GCE Shielded VM, Container-Optimized OS 85 (real quote data)" >"$out/gce-cos-85.json"

# Ubuntu 21.04 on GCE, two images; the merge is the rollout of one to the other.
"$vouchctl" golden create --eventlog "$logs/go-tpm-tools/ubuntu-2104-no-dbx.bin" --name ubuntu-2104 \
        --description "Ubuntu 21.04 on GCE" >"$tmp/a.json"
"$vouchctl" golden create --eventlog "$logs/go-tpm-tools/ubuntu-2104-no-secure-boot.bin" --name ubuntu-2104 \
        --description "Ubuntu 21.04 on GCE" >"$tmp/b.json"
"$vouchctl" golden merge "$tmp/a.json" "$tmp/b.json" >"$out/ubuntu-2104.json"

# RHEL 8 with Secure Boot, shim and grub on GCE.
"$vouchctl" golden create --eventlog "$logs/go-tpm-tools/rhel8-uefi.bin" --name rhel8-uefi \
        --description "RHEL 8, UEFI Secure Boot, shim + grub" >"$out/rhel8-uefi.json"

# A laptop with Secure Boot (HIRS test profile).
"$vouchctl" golden create --eventlog "$logs/HIRS/laptop_default_binary_bios_measurements" --name hirs-laptop \
        --description "Laptop from the HIRS test profiles" >"$out/hirs-laptop.json"

# An Intel TDX confidential VM, Container-Optimized OS 113: a CCEL log, so a set of
# registers (RTMR0-2); the log is a copy of the firmware's log area, padded with 0xFF.
"$vouchctl" golden create --eventlog "$ccel/cos-113-intel-tdx.bin" --name tdx-cos-113 \
        --description "Intel TDX confidential VM, Container-Optimized OS 113 (CCEL registers)" >"$out/tdx-cos-113.json"
