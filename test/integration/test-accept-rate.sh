#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vouchd --accept-rate (docs/scale-out.md, "Reconnection storms"): with a cap of 10 new agent
# connections a second on one event loop, 60 connections opened at once are taken over
# about 6 s; the others wait in the listen backlog (the listener's Recv-Q in ss), and every
# one is taken in the end. Without the cap the backlog is empty at once. No TPM: the
# connections are plain TCP (the cap is applied at accept, before TLS).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}"
require_tools ss python3

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-accept-rate-test.XXXXXX")
VOUCHD_PID=""
CLIENT_PID=""
cleanup() {
        local rc=$?
        set +e
        [[ -n $CLIENT_PID ]] && kill "$CLIENT_PID" 2>/dev/null
        [[ -n $VOUCHD_PID ]] && kill -KILL "$VOUCHD_PID" 2>/dev/null
        if ((rc != 0)); then
                echo "--- vouchd log ---"
                tail -n 20 "$TOP/vouchd.log" 2>/dev/null
        fi
        rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

mkdir "$TOP/golden"
cp "$here/../../golden/rhel8-uefi.json" "$TOP/golden/"
"$VOUCHD" init --state-dir "$TOP/state" >/dev/null
PORT=$(free_port)

start_vouchd() { # ARGS...
        : >"$TOP/vouchd.out"
        "$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$PORT" --golden-dir "$TOP/golden" \
                --default-golden rhel8-uefi --ek-ca "$TOP/state/ca.pem" --threads 1 --hello-timeout 120 "$@" \
                >"$TOP/vouchd.out" 2>>"$TOP/vouchd.log" &
        VOUCHD_PID=$!
        wait_ready "$VOUCHD_PID"
}

stop_vouchd() {
        kill -TERM "$VOUCHD_PID"
        wait "$VOUCHD_PID" || die "vouchd did not stop cleanly"
        VOUCHD_PID=""
}

# 60 connections at once, held open (silent: no ClientHello) until killed
open_connections() {
        python3 - "$PORT" <<'EOF' &
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(60)]
print("open", flush=True)
time.sleep(300)
EOF
        CLIENT_PID=$!
}

backlog() { # the listener's accept queue: connections made and not yet accepted
        ss -Hltn "sport = :$PORT" | awk '{ s += $2 } END { print s + 0 }'
}

close_connections() {
        kill "$CLIENT_PID" 2>/dev/null || true
        wait "$CLIENT_PID" 2>/dev/null || true
        CLIENT_PID=""
}

log "capped: --accept-rate 10"
start_vouchd --accept-rate 10
t0=$(date +%s.%N)
open_connections
sleep 0.5
b=$(backlog)
log "backlog after 0.5 s: $b of 60"
((b >= 40)) || die "expected most of the 60 connections to wait in the backlog after 0.5 s at 10/s, $b did"
for ((i = 0; i < 300; i++)); do
        b=$(backlog)
        ((b == 0)) && break
        sleep 0.1
done
((b == 0)) || die "the backlog did not drain at 10/s within 30 s ($b left)"
t=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")
log "all 60 taken after $t s"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 4.0 else 1)" "$t" ||
        die "60 connections at 10/s were all taken in $t s: the cap did not hold (at least ~5.9 s expected)"
close_connections
stop_vouchd

log "no cap"
start_vouchd
open_connections
sleep 0.5
b=$(backlog)
log "backlog after 0.5 s: $b of 60"
((b == 0)) || die "without --accept-rate, $b connections were still in the backlog after 0.5 s"
close_connections
stop_vouchd
log "ok"
