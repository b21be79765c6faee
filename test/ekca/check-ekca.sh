#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ekca/: every *.pem is one certificate OpenSSL reads, a CA certificate, listed in
# SOURCES.md with its SHA-256 fingerprint and validity; one past its end date is called out
# there (status "expired" or "expires DATE"); every row of the table names a file that is
# here. And vouchd's --ek-ca takes the directory (test-faults.sh enrolls a device with one).
set -euo pipefail
dir=${1:?usage: check-ekca.sh EKCA_DIR}
src=$dir/SOURCES.md
npass=0
nfail=0
pass() { npass=$((npass + 1)); }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
[[ -f $src ]] || { echo "FAIL - $src is missing"; echo "0 passed, 1 failed"; exit 1; }
now=$(date +%s)
shopt -s nullglob
files=("$dir"/*.pem)
((${#files[@]} > 0)) || fail "no *.pem in $dir"
for f in "${files[@]}"; do
        b=${f##*/}
        n=$(grep -c -- '-----BEGIN CERTIFICATE-----' "$f" || true)
        if [[ $n != 1 ]] || ! openssl x509 -in "$f" -noout 2>/dev/null; then
                fail "$b: not exactly one PEM certificate OpenSSL reads ($n)"
                continue
        fi
        if ! openssl x509 -in "$f" -noout -ext basicConstraints 2>/dev/null | grep -q 'CA:TRUE'; then
                fail "$b: not a CA certificate (basicConstraints CA:TRUE)"
        fi
        fp=$(openssl x509 -in "$f" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
        row=$(grep -F "| \`$b\` |" "$src" || true)
        if [[ -z $row ]]; then
                fail "$b: not listed in SOURCES.md"
                continue
        fi
        [[ $row == *"\`$fp\`"* ]] || fail "$b: SOURCES.md gives another fingerprint (the file's is $fp)"
        nb=$(date -u -d "$(openssl x509 -in "$f" -noout -startdate | cut -d= -f2)" +%Y-%m-%d)
        na_s=$(date -u -d "$(openssl x509 -in "$f" -noout -enddate | cut -d= -f2)" +%s)
        na=$(date -u -d "@$na_s" +%Y-%m-%d)
        [[ $row == *"| $nb | $na |"* ]] || fail "$b: SOURCES.md gives another validity (the file's: $nb to $na)"
        if ((na_s < now)) && [[ $row != *"| expired |"* && $row != *"| expires $na |"* ]]; then
                fail "$b: expired on $na, and SOURCES.md does not call it out (status: expired)"
        fi
        pass
done
# no row without its file
while read -r b; do
        [[ -f $dir/$b ]] || fail "SOURCES.md lists $b, which is not in $dir"
done < <(sed -n 's/^| `\([^`]*\.pem\)` |.*/\1/p' "$src")
echo "${#files[@]} certificates checked"
echo "$npass passed, $nfail failed"
((nfail == 0))
