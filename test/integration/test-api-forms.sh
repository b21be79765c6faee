#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The policy-engine API's standard forms (issue 20) against a real swtpm + vouchd + vouch-agent
# run: one device TRUSTED (with a device certificate), one UNTRUSTED (a PCR tampered:
# findings), then
# api_conformance.py reads every JSON body with google.protobuf.json_format (Debian
# python3-protobuf, proto/vouch.proto compiled by protoc here), walks every path with every
# method for the HTTP details, checks the watch stream's heartbeat and since= past the head,
# and holds docs/openapi.yaml (PyYAML) against the server's routes and every answer it saw.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}" "${API_ROUTES:?}" "${VOUCH_SOURCE_ROOT:?}"
require_tools swtpm swtpm_setup swtpm_ioctl tpm2_pcrextend openssl jq protoc
require_shared_data
require_vouchctl
# Debian's python3-protobuf and python3-yaml are installed for /usr/bin/python3 (not for a
# python3 of pyenv or a venv)
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
"$PY" -c 'import google.protobuf, yaml' 2>/dev/null ||
        skip_or_fail "python3-protobuf or python3-yaml missing (apt-get install python3-protobuf python3-yaml)"
LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-arch-linux.bin
[[ -f $LOG ]] || skip_or_fail "shared data not found at $LOG"

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-api-forms.XXXXXX")
VOUCHD_PID=""
cleanup() {
        local rc=$?
        set +e
        [[ -n $VOUCHD_PID ]] && kill -KILL "$VOUCHD_PID" 2>/dev/null
        for t in "$TOP"/tpm-*; do
                [[ -f $t/pid ]] && kill -KILL "$(cat "$t/pid")" 2>/dev/null
        done
        if ((rc != 0)); then
                echo "--- vouchd log ---"
                tail -n 30 "$TOP/vouchd.log" 2>/dev/null
        fi
        [[ -n ${VOUCH_KEEP_TMP:-} ]] && echo "kept $TOP" || rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

agent() { # NAME [ARGS]: vouch-agent --once against tpm NAME; sets RC, OUT
        local t=$TOP/tpm-$1
        shift
        RC=0
        timeout 60 "$VOUCH_AGENT" --server "127.0.0.1:$VPORT" --ca "$TOP/state/ca.pem" --tcti "$(cat "$t/tcti")" \
                --eventlog "$LOG" --state-dir "$t/agent" --once "$@" >"$t/agent.out" 2>"$t/agent.err" || RC=$?
        OUT=$(cat "$t/agent.out" "$t/agent.err")
}

new_tpm a
"$VOUCHCTL" eventlog show "$LOG" --json >"$TOP/show.json"
extend_log "$TOP/show.json" "sha1 sha256"
new_tpm b
extend_log "$TOP/show.json" "sha1 sha256"
TPM2TOOLS_TCTI=$(cat "$TOP/tpm-b/tcti") tpm2_pcrextend "4:sha256=$(echo rogue | sha256sum | cut -d' ' -f1)" \
        >/dev/null 2>&1 || die "tpm2_pcrextend failed"
cat "$TOP/tpm-a/ekca.pem" "$TOP/tpm-b/ekca.pem" >"$TOP/ekca.pem"
mkdir -p "$TOP/golden" "$TOP/clients"
"$VOUCHCTL" golden create --eventlog "$LOG" --name arch >"$TOP/golden/arch.json"
"$VOUCHD" init --state-dir "$TOP/state" >/dev/null
for who in admin reader nobody; do
        "$VOUCHD" issue-client --state-dir "$TOP/state" --name "$who" --out "$TOP/clients/$who" >/dev/null
done
VPORT=$(free_port)
APORT=$(free_port)
"$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" \
        --default-golden arch --ek-ca "$TOP/ekca.pem" --interval 60 --jitter 0 --threads 2 --trust-domain example.org \
        --api-listen "127.0.0.1:$APORT" --api-admin admin --api-reader reader \
        >"$TOP/vouchd.out" 2>>"$TOP/vouchd.log" &
VOUCHD_PID=$!
for ((i = 0; i < 100; i++)); do
        grep -q ready "$TOP/vouchd.out" && break
        kill -0 "$VOUCHD_PID" 2>/dev/null || die "vouchd exited: $(tail -n 5 "$TOP/vouchd.log")"
        sleep 0.1
done
# device a with a device key: vouchd issues it a certificate (GET .../certificates lists one)
agent a --key-out "$TOP/tpm-a/device.key" --cert-out "$TOP/tpm-a/device.pem"
[[ $RC == 0 && $OUT == *"verdict: TRUSTED"* && -s $TOP/tpm-a/device.pem ]] || die "device a: $RC $OUT"
IDA=$(sed -n 's/.*(device \([0-9a-f]*\),.*/\1/p' <<<"$OUT" | head -n 1)
agent b
[[ $OUT == *UNTRUSTED* ]] || die "device b: $RC $OUT"
IDB=$(sed -n 's/.*(device \([0-9a-f]*\),.*/\1/p' <<<"$OUT" | head -n 1)
[[ -n $IDA && -n $IDB ]] || die "no device ids: $OUT"
"$API_ROUTES" >"$TOP/routes.txt"

rc=0
"$PY" "$here/api_conformance.py" --server "127.0.0.1:$APORT" --ca "$TOP/state/ca.pem" --clients "$TOP/clients" \
        --trusted "$IDA" --untrusted "$IDB" --proto "$VOUCH_SOURCE_ROOT/proto/vouch.proto" \
        --openapi "$VOUCH_SOURCE_ROOT/docs/openapi.yaml" --routes "$TOP/routes.txt" || rc=$?
kill -TERM "$VOUCHD_PID"
wait "$VOUCHD_PID" || { echo "FAIL - vouchd stopped with $(describe_status $?)"; rc=1; }
VOUCHD_PID=""
exit $rc
