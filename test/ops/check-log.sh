#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vouchd and vouch-agent log in one format: "TIME PROGRAM LEVEL: message" with a UTC
# timestamp to the millisecond, or with --log-format json one JSON object per line with
# time, program, level and message (quotes and backslashes in a message escaped). A format
# that is neither is refused with exit 2. Each program is made to log an error at start
# (a missing file): no server, TPM or network needed.
set -euo pipefail
VOUCHD=$1 AGENT=$2
TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-log.XXXXXX")
trap 'rm -rf "$TOP"' EXIT
nfail=0
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
pass() { echo "ok   - $*"; }

run_vouchd() { # FORMAT: vouchd with an EK CA file whose name has a quote and a backslash
        : >"$TOP/ek\"ca\\.pem"
        "$VOUCHD" ${1:+--log-format "$1"} --state-dir "$TOP/state" --listen 127.0.0.1:1 --golden-dir "$TOP" \
                --default-golden x --ek-ca "$TOP/ek\"ca\\.pem" >/dev/null 2>"$TOP/vouchd.err" || true
}
run_agent() { # FORMAT: the agent with a TPM that cannot be reached
        "$AGENT" ${1:+--log-format "$1"} --server 127.0.0.1:1 --ca "$TOP/none.pem" --state-dir "$TOP/agent" \
                --tcti swtpm:host=127.0.0.1,port=1 --once >/dev/null 2>"$TOP/agent.err" || true
}

TEXT='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z (vouchd|vouch-agent) (error|warning|info|debug): .+$'
for fmt in "" text; do
        run_vouchd "$fmt"
        run_agent "$fmt"
        for p in vouchd agent; do
                if [[ -s $TOP/$p.err ]] && ! grep -Evq "$TEXT" "$TOP/$p.err"; then
                        pass "$p ${fmt:-(default)}: every line is TIME(ms, UTC) PROGRAM LEVEL: message"
                else
                        fail "$p ${fmt:-(default)} text lines: $(head -n 3 "$TOP/$p.err")"
                fi
        done
done
grep -q " vouchd error: .*ek\"ca\\\\.pem" "$TOP/vouchd.err" && pass "vouchd's error names the file" ||
        fail "vouchd's error: $(cat "$TOP/vouchd.err")"

run_vouchd json
run_agent json
for p in vouchd agent; do
        want=vouchd
        [[ $p == agent ]] && want=vouch-agent
        if python3 - "$TOP/$p.err" "$want" <<'PY'
import json, re, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert lines, "no line"
for l in lines:
    o = json.loads(l)
    assert set(o) == {"time", "program", "level", "message"}, o
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["time"]), o["time"]
    assert o["program"] == sys.argv[2], o
    assert o["level"] in ("error", "warning", "info", "debug"), o
    assert o["message"], o
if sys.argv[2] == "vouchd":
    assert any('ek"ca\\.pem' in json.loads(l)["message"] for l in lines), lines
PY
        then
                pass "$p --log-format json: one JSON object per line (time, program, level, message)"
        else
                fail "$p json lines: $(head -n 3 "$TOP/$p.err")"
        fi
done

rc=0
"$VOUCHD" --log-format xml --state-dir "$TOP/state" >/dev/null 2>"$TOP/bad.err" || rc=$?
[[ $rc == 2 ]] && grep -q 'log-format: "xml" is not text or json' "$TOP/bad.err" && pass "vouchd: --log-format xml refused" ||
        fail "vouchd --log-format xml: exit $rc $(cat "$TOP/bad.err")"
rc=0
"$AGENT" --log-format xml --server 127.0.0.1:1 --ca x --state-dir "$TOP/agent" >/dev/null 2>"$TOP/bad.err" || rc=$?
[[ $rc == 2 ]] && grep -q 'log-format: "xml" is not text or json' "$TOP/bad.err" && pass "vouch-agent: --log-format xml refused" ||
        fail "vouch-agent --log-format xml: exit $rc $(cat "$TOP/bad.err")"
((nfail == 0))
