#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check-man.sh MAN_DIR VOUCHD VOUCH_AGENT VOUCHCTL: the manual pages vouchd.8, vouch-agent.8
# and vouchctl.1 in MAN_DIR format without a warning (groff -ww, man --warnings), name the
# version, and mention every option that the program's --help (and each vouchctl command's
# --help) lists.
set -euo pipefail
man_dir=$1 vouchd=$2 agent=$3 vouchctl=$4
npass=0
nfail=0
pass() { npass=$((npass + 1)); }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
export LC_ALL=C.UTF-8 MANWIDTH=100

# the --option words of a help text on stdin
options_of() { grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u; }

# check_page PAGE HELP_COMMAND...: each HELP_COMMAND is one string, run with word splitting
check_page() {
        local page=$man_dir/$1 text err opt cmd
        shift
        [[ -f $page ]] || { fail "$page is missing"; return; }
        if err=$(groff -ww -z -man "$page" 2>&1) && [[ -z $err ]]; then
                pass
        else
                fail "groff -ww -z -man $page: ${err:-exit status not 0}"
        fi
        if err=$(man --warnings -l "$page" 2>&1 >/dev/null) && [[ -z $err ]]; then
                pass
        else
                fail "man --warnings -l $page: ${err:-exit status not 0}"
        fi
        # the rendered text, with ASCII hyphens (\- renders as "-")
        text=$(man -E ascii -l "$page" 2>/dev/null | col -b)
        if grep -q "vouch $version" <<<"$text"; then
                pass
        else
                fail "$page does not name vouch $version"
        fi
        for cmd in "$@"; do
                # shellcheck disable=SC2086 # a command line with its arguments
                for opt in $($cmd 2>&1 | options_of); do
                        if grep -qE -- "(^|[^a-z0-9-])$opt([^a-z0-9-]|\$)" <<<"$text"; then
                                pass
                        else
                                fail "$page does not mention $opt (in '$cmd')"
                        fi
                done
        done
}

version=$("$vouchctl" --version | cut -d' ' -f2)
check_page vouchd.8 "$vouchd --help"
check_page vouch-agent.8 "$agent --help"
vc=()
for c in "" "eventlog show" "eventlog replay" "golden create" "golden merge" "golden check" "quote verify" \
        "ek fingerprint" "verdict verify" "verdict get" "verdict list" "verdict watch" "device list" \
        "device approve" "keys get" "cert list" "crl get"; do
        vc+=("$vouchctl $c --help")
done
check_page vouchctl.1 "${vc[@]}"

# a page that leaves an option out is caught (the check is not vacuous)
cut=$(mktemp -d)
trap 'rm -rf "$cut"' EXIT
grep -v 'nonce\\-timeout' "$man_dir/vouchd.8" >"$cut/vouchd.8"
if (man_dir=$cut check_page vouchd.8 "$vouchd --help" | grep -q 'does not mention --nonce-timeout'); then
        pass
else
        fail "a vouchd.8 without --nonce-timeout was not caught"
fi
echo "$npass passed, $nfail failed"
((nfail == 0))
