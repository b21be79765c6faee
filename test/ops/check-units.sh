#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-units.sh UNIT_DIR MAN_DIR BINDIR VOUCHD VOUCH_AGENT: the systemd units the build
# made (UNIT_DIR/vouchd.service, vouch-agent.service) pass `systemd-analyze verify` with no
# message at all (their ExecStart= pointed from BINDIR at the built binaries, their
# Documentation= at the built man pages), have the settings vouch relies on (Type=notify
# when built with libsystemd, LimitNOFILE=, the hardening), and stay below an exposure of
# 2.0 (vouchd) and 2.5 (vouch-agent) by `systemd-analyze security --offline`. A unit with a
# mistyped setting is caught (systemd-analyze only warns about it, exit 0).
set -euo pipefail
unit_dir=$1 man_dir=$2 bindir=$3 vouchd=$4 agent=$5
command -v systemd-analyze >/dev/null || {
        [[ ${CI:-} == true ]] && { echo "FAIL - systemd-analyze is not installed (package systemd)"; exit 1; }
        echo "*** check-units: SKIPPED: systemd-analyze is not installed (package systemd) ***"
        exit 77
}
npass=0
nfail=0
pass() { npass=$((npass + 1)); }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/man/man8"
cp "$man_dir/vouchd.8" "$man_dir/vouch-agent.8" "$T/man/man8/"
sed "s#^ExecStart=$bindir/vouchd #ExecStart=$vouchd #" "$unit_dir/vouchd.service" >"$T/vouchd.service"
sed "s#^ExecStart=$bindir/vouch-agent #ExecStart=$agent #" "$unit_dir/vouch-agent.service" >"$T/vouch-agent.service"

# verify UNIT...: no message, exit 0
verify() {
        local out rc=0
        out=$(cd "$T" && MANPATH=$T/man systemd-analyze verify "$@" 2>&1) || rc=$?
        [[ $rc == 0 && -z $out ]] || { echo "systemd-analyze verify $*: exit $rc: $out"; return 1; }
}
for u in vouchd.service vouch-agent.service; do
        if msg=$(verify "$u"); then pass; else fail "$msg"; fi
done

# has UNIT LINE_REGEX WHAT
has() { if grep -qE "^$2\$" "$T/$1"; then pass; else fail "$1: no $3 ($2)"; fi; }
type=notify
[[ ${VOUCH_SD_NOTIFY_BUILT:-1} == 1 ]] || type=exec
for u in vouchd.service vouch-agent.service; do
        has "$u" "Type=$type" "Type=$type"
        has "$u" 'LimitNOFILE=[0-9]+' "file limit"
        has "$u" 'ProtectSystem=strict' "read-only file system"
        has "$u" 'NoNewPrivileges=yes' "NoNewPrivileges"
        has "$u" 'CapabilityBoundingSet=' "empty capability set"
        has "$u" 'StateDirectory=[a-z-]+' "state dir"
        has "$u" 'StateDirectoryMode=0700' "private state dir"
        has "$u" 'PrivateTmp=yes' "private /tmp"
        has "$u" 'ProtectHome=yes' "ProtectHome"
        has "$u" 'ConditionPathExists=/etc/vouch/[a-z-]+\.conf' "start condition on its settings"
done
has vouchd.service 'ExecReload=/bin/kill -HUP \$MAINPID' "SIGHUP reload"
has vouchd.service 'User=vouchd' "own user"
has vouchd.service 'ExecStart=[^ ]+ --config /etc/vouch/vouchd.conf --state-dir /var/lib/vouchd' "config and state dir"
has vouchd.service 'StateDirectory=vouchd' "state dir /var/lib/vouchd"
has vouch-agent.service 'SupplementaryGroups=tss' "the TPM's group"
has vouch-agent.service 'ExecStart=[^ ]+ --server \$\{SERVER\} --ca \$\{CA\} --state-dir /var/lib/vouch-agent .*' "settings"

# exposure (systemd-analyze's 0-10 scale; --threshold in tenths)
for ut in vouchd.service:20 vouch-agent.service:25; do
        u=${ut%:*}
        if out=$(cd "$T" && systemd-analyze security --offline=true --threshold="${ut#*:}" "$u" 2>&1); then
                pass
        else
                fail "$u: exposure above $((${ut#*:} / 10)).$((${ut#*:} % 10)): $(grep 'Overall exposure' <<<"$out")"
        fi
        echo "$u: $(grep -o 'Overall exposure level.*' <<<"$out")"
done

# the checks catch what they should: a mistyped setting, a binary that is not there
sed 's/^Type=/Tpye=/' "$T/vouchd.service" >"$T/typo.service"
if verify typo.service >/dev/null; then fail "a unit with Tpye= passed verify"; else pass; fi
sed "s#^ExecStart=[^ ]*#ExecStart=$T/no-such-vouchd#" "$T/vouchd.service" >"$T/nobin.service"
if verify nobin.service >/dev/null; then fail "a unit whose binary is missing passed verify"; else pass; fi
echo "$npass passed, $nfail failed"
((nfail == 0))
