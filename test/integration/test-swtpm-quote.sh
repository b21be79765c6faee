#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# End-to-end quote verification against a real (software) TPM: a private swtpm with its
# own EK CA, EK and AKs made by tpm2-tools, quotes made by tpm2_quote, checked by
# `vouchctl quote verify`.
#
# Asserts (each "ok"/"FAIL" line below is one check):
#   * valid quotes verify (exit 0) for an RSA AK (rsassa, and rsapss when tpm2_createak
#     supports it) and ECC AKs (ecdsa P-256, and P-384 when supported), with the AK given
#     as TPM2B_PUBLIC (tpm2_createak -u), as PEM (tpm2_readpublic -f pem) and as
#     TPMT_PUBLIC, and the PCR values given as tpm2_quote's -o serialized file and as JSON
#     built from tpm2_pcrread; for one bank, for two banks (sha1+sha256) and for two banks
#     over 18 PCRs (three TPML_DIGESTs in the serialized layout);
#   * exit 1 for: a wrong or missing nonce, another AK's public key (same algorithm, and
#     another algorithm), a tampered signature, a tampered quote message, PCR values
#     re-read after a PCR 16 extend that followed the quote, a quote by an unrestricted
#     signing key and the EK given as the AK (both as TPM2B_PUBLIC);
#   * event logs: after the swtpm's PCRs are extended with a real log's digests (log
#     order, every active bank the log carries), its PCRs equal `vouchctl eventlog replay`,
#     `quote verify --eventlog LOG` exits 0 (PCR values as the -o file, as JSON from
#     tpm2_pcrread and as the replay JSON itself), exits 1 with another log, and exits 1 after
#     one more extend into a PCR the log covers (while the same quote without --eventlog
#     still verifies).
#
# Always stops its swtpm and removes its temp dir (trap on EXIT). Set VOUCH_KEEP_TMP=1 to
# keep the temp dir of a failed run for inspection.
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"

require_tools swtpm swtpm_setup swtpm_ioctl swtpm_localca certtool \
        tpm2_createek tpm2_createak tpm2_quote tpm2_pcrread tpm2_pcrextend tpm2_readpublic \
        tpm2_flushcontext tpm2_shutdown tpm2_getcap tpm2_createprimary jq od dd stat
require_shared_data
require_vouchctl

# Logs whose PCR 0 starts at locality 0 (no StartupLocality, no H-CRTM) and whose banks
# are among the swtpm's (sha1, sha256): the swtpm can reproduce them exactly.
EVENTLOGS=(
        tpm2-tools/event-uefiservices.bin    # sha1+sha256, PCR 2, one event
        tpm2-tools/event-arch-linux.bin      # sha1+sha256, PCRs 0-8, 24 events
        tpm2-tools/event-sd-boot-fedora37.bin # sha256 only, PCRs 0-7, 9, 12
)
for l in "${EVENTLOGS[@]}"; do
        [[ -f $VOUCH_SHARED_DIR/eventlogs/$l ]] ||
                skip_or_fail "shared data not found at $VOUCH_SHARED_DIR/eventlogs/$l"
done

start_time=$SECONDS
T=$(mktemp -d "${TMPDIR:-/tmp}/vouch-swtpm-test.XXXXXX")
SWTPM_PID=""
PORT=""
npass=0
nfail=0

cleanup() {
        local rc=$?
        trap - EXIT ERR
        set +e
        stop_swtpm
        if ((rc != 0)) && [[ -d $T ]]; then
                echo "--- last lines of the tpm2-tools log ---" >&2
                tail -n 15 "$T/tpm2.log" >&2 2>/dev/null
                echo "--- last lines of the swtpm logs ---" >&2
                tail -n 15 "$T/swtpm.log" "$T/swtpm.out" >&2 2>/dev/null
        fi
        if ((rc != 0)) && [[ ${VOUCH_KEEP_TMP:-} == 1 ]]; then
                echo "kept temp dir $T" >&2
        else
                rm -rf "$T"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
trap 'echo "$ts_name: FATAL: command failed (line $LINENO): $BASH_COMMAND" >&2' ERR

mkdir -p "$T/state" "$T/ca" "$T/tmp" "$T/w"
cd "$T/w"
: >"$T/tpm2.log"

pass() {
        npass=$((npass + 1))
        echo "ok   - $*"
}
fail() {
        nfail=$((nfail + 1))
        echo "FAIL - $*"
}

same_json() { jq -e -n --slurpfile a "$1" --slurpfile b "$2" '$a == $b' >/dev/null; }

rand_hex() { od -An -v -tx1 -N "$1" /dev/urandom | tr -d ' \n'; }

# Copy $1 to $2 with the byte at offset $3 (negative: from the end) inverted.
flip_byte() {
        local src=$1 dst=$2 off=$3 size b
        size=$(stat -c %s "$src")
        ((off >= 0)) || off=$((size + off))
        ((off >= 0 && off < size)) || die "flip_byte: offset $off outside $src ($size bytes)"
        cp "$src" "$dst"
        b=$(od -An -tu1 -j "$off" -N 1 "$src" | tr -d ' ')
        # shellcheck disable=SC2059
        printf "$(printf '\\%03o' $((b ^ 0xff)))" | dd of="$dst" bs=1 seek="$off" conv=notrunc status=none
        ! cmp -s "$src" "$dst" || die "flip_byte: $dst unchanged"
}

be16_at() { od -An -tu1 -j "$2" -N 2 "$1" | awk '{print $1 * 256 + $2}'; }

# Offset of clockInfo in a TPMS_ATTEST: magic (4), type (2), qualifiedSigner (TPM2B_NAME),
# extraData (TPM2B_DATA), then clockInfo.
attest_clock_offset() {
        local off=6 n
        n=$(be16_at "$1" "$off")
        off=$((off + 2 + n))
        n=$(be16_at "$1" "$off")
        echo $((off + 2 + n))
}

# quote AK SEL NONCE OUT [extra tpm2_quote args]: OUT.msg, OUT.sig, OUT.pcrs (serialized),
# OUT.json (JSON from tpm2_pcrread's listing), cross-checked against tpm2_pcrread -o
# values and the PCR listing tpm2_quote printed.
quote() {
        local ak=$1 sel=$2 nonce=$3 out=$4 halg
        shift 4
        halg=$(cat "$ak.halg")
        t2f tpm2_quote -c "$ak.ctx" -l "$sel" -q "$nonce" -m "$out.msg" -s "$out.sig" -o "$out.pcrs" \
                -g "$halg" "$@" >"$out.quote.yaml"
        read_pcrs "$sel" "$out"
        sed -n '/^pcrs:/,/^[a-zA-Z]/p' "$out.quote.yaml" | pcr_listing_to_json >"$out.quoted.json"
        same_json "$out.quoted.json" "$out.json" ||
                die "PCR values changed between tpm2_quote and tpm2_pcrread ($out)"
}

# read_pcrs SEL OUT: OUT.json from tpm2_pcrread's listing, OUT.ser (-F serialized).
read_pcrs() {
        local sel=$1 out=$2 a b
        t2 tpm2_pcrread -F values -o "$out.raw" "$sel" >"$out.pcrread"
        pcr_listing_to_json <"$out.pcrread" >"$out.json"
        a=$(jq -r '[.[] | .[]] | join("")' "$out.json")
        b=$(od -An -v -tx1 "$out.raw" | tr -d ' \n')
        [[ -n $a && $a == "$b" ]] || die "JSON built from tpm2_pcrread ($out.json) differs from its -o values"
        t2 tpm2_pcrread -F serialized -o "$out.ser" "$sel" >/dev/null
}

# expect_verify WANT REASON_ERE LABEL ARGS...: run `vouchctl quote verify ARGS`, want exit
# WANT and, when REASON_ERE is not empty, a matching stderr.
expect_verify() {
        local want=$1 reason=$2 label=$3 rc=0 msg err
        shift 3
        "$VOUCHCTL" quote verify "$@" >"$T/v.out" 2>"$T/v.err" || rc=$?
        err=$(<"$T/v.err")
        msg=$(<"$T/v.out")
        msg="${err:+$err${msg:+ }}$msg"
        msg=${msg//$'\n'/ }
        msg=${msg:0:400}
        if ((rc != want)); then
                fail "$label: $(describe_status "$rc"), want exit $want; output: $msg"
                echo "       command: $VOUCHCTL quote verify $*"
        elif [[ -n $reason && ! $err =~ $reason ]]; then
                fail "$label: exit $rc as wanted but stderr does not match /$reason/: $msg"
        else
                pass "$label${msg:+  [$msg]}"
        fi
}

# ---------------------------------------------------------------------------------------
log "temp dir $T"
provision_swtpm sha1,sha256
start_swtpm
log "swtpm pid $SWTPM_PID on 127.0.0.1:$PORT (ctrl $((PORT + 1)))"
if ! tpm2_getcap properties-fixed >/dev/null 2>>"$T/tpm2.log"; then
        skip_or_fail "tpm2-tools cannot talk to the swtpm through TCTI $TPM2TOOLS_TCTI (libtss2-tcti-swtpm missing?): $(tail -n 2 "$T/tpm2.log" | tr '\n' ' ')"
fi
create_ek

SEL_ONE="sha256:0,1,2,3,4,5,6,7,16"
SEL_TWO="sha1:0,1,16+sha256:0,1,16"
SEL_TWO_LARGE="sha1:0,1,2,3,4,5,6,7,16+sha256:0,1,2,3,4,5,6,7,16"

# kind  key-alg  hash  sig-scheme  required
AK_KINDS=(
        "rsassa     rsa    sha256 rsassa yes"
        "rsapss     rsa    sha256 rsapss no"
        "ecdsa      ecc    sha256 ecdsa  yes"
        "ecdsa-p384 ecc384 sha384 ecdsa  no"
)
done_kinds=()

for spec in "${AK_KINDS[@]}"; do
        read -r kind kalg halg salg required <<<"$spec"
        ak=ak-$kind
        other=ak-$kind-other
        if ! create_ak "$ak" "$kalg" "$halg" "$salg"; then
                [[ $required == yes ]] || {
                        log "NOTE: tpm2_createak -G $kalg -g $halg -s $salg is not supported here; skipping the $kind AK"
                        continue
                }
                die "tpm2_createak -G $kalg -g $halg -s $salg failed: $(tail -n 4 "$T/tpm2.log" | tr '\n' ' ')"
        fi
        create_ak "$other" "$kalg" "$halg" "$salg" || die "second $kind AK failed"
        echo "$halg" >"$ak.halg"
        extra=()
        [[ $salg == rsapss ]] && extra=(--scheme rsapss) # tpm2_quote 5.4 defaults to rsassa
        done_kinds+=("$kind")
        log "--- AK $kind ($kalg, $salg, $halg)"

        nonce=$(rand_hex 16)
        q=q1-$kind
        echo "$nonce" >"$q.nonce"
        quote "$ak" "$SEL_ONE" "$nonce" "$q" "${extra[@]}"
        expect_verify 0 "" "$kind: TPM2B_PUBLIC AK, serialized PCRs ($SEL_ONE)" \
                --ak "$ak.pub" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.pcrs" --nonce "$nonce"
        expect_verify 0 "" "$kind: PEM AK, serialized PCRs" \
                --ak "$ak.pem" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.pcrs" --nonce "$nonce"
        expect_verify 0 "" "$kind: TPMT_PUBLIC AK, serialized PCRs" \
                --ak "$ak.tpmt" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.pcrs" --nonce "$nonce"
        expect_verify 0 "" "$kind: TPM2B_PUBLIC AK, JSON PCRs from tpm2_pcrread" \
                --ak "$ak.pub" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.json" --nonce "$nonce"
        expect_verify 0 "" "$kind: PEM AK, JSON PCRs from tpm2_pcrread" \
                --ak "$ak.pem" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.json" --nonce "$nonce"
        expect_verify 0 "" "$kind: nonce given in upper case hex" \
                --ak "$ak.pub" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.pcrs" --nonce "${nonce^^}"

        # Two banks: the serialized file holds one TPML_DIGEST of 6 values ...
        n2=$(rand_hex 20)
        quote "$ak" "$SEL_TWO" "$n2" "q2-$kind" "${extra[@]}"
        expect_verify 0 "" "$kind: two banks ($SEL_TWO), serialized PCRs" \
                --ak "$ak.pub" --msg "q2-$kind.msg" --sig "q2-$kind.sig" --pcrs "q2-$kind.pcrs" --nonce "$n2"
        expect_verify 0 "" "$kind: two banks, JSON PCRs, PEM AK" \
                --ak "$ak.pem" --msg "q2-$kind.msg" --sig "q2-$kind.sig" --pcrs "q2-$kind.json" --nonce "$n2"
        # ... and over 18 PCRs, three TPML_DIGESTs (8 + 8 + 2).
        n3=$(rand_hex 8)
        quote "$ak" "$SEL_TWO_LARGE" "$n3" "q3-$kind" "${extra[@]}"
        expect_verify 0 "" "$kind: two banks, 18 PCRs ($SEL_TWO_LARGE), serialized PCRs" \
                --ak "$ak.pub" --msg "q3-$kind.msg" --sig "q3-$kind.sig" --pcrs "q3-$kind.pcrs" --nonce "$n3"
        expect_verify 0 "" "$kind: two banks, 18 PCRs, JSON PCRs, TPMT_PUBLIC AK" \
                --ak "$ak.tpmt" --msg "q3-$kind.msg" --sig "q3-$kind.sig" --pcrs "q3-$kind.json" --nonce "$n3"
        expect_verify 1 "" "$kind: 18-PCR quote against the 9-PCR quote's values (rejected)" \
                --ak "$ak.pub" --msg "q3-$kind.msg" --sig "q3-$kind.sig" --pcrs "$q.pcrs" --nonce "$n3"

        # Rejections of the first quote.
        wrong=${nonce:0:31}$(printf '%x' $(((16#${nonce:31:1} + 1) % 16)))
        expect_verify 1 '\(nonce\)' "$kind: wrong nonce (rejected)" \
                --ak "$ak.pub" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.pcrs" --nonce "$wrong"
        expect_verify 1 '\(nonce\)' "$kind: empty nonce (rejected)" \
                --ak "$ak.pub" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.pcrs" --nonce ""
        expect_verify 1 '\(signature\)' "$kind: another AK's public key, TPM2B_PUBLIC (rejected)" \
                --ak "$other.pub" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.pcrs" --nonce "$nonce"
        expect_verify 1 '\(signature\)' "$kind: another AK's public key, PEM (rejected)" \
                --ak "$other.pem" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.pcrs" --nonce "$nonce"
        flip_byte "$q.sig" "$q.badsig" -2
        expect_verify 1 '\(signature\)' "$kind: signature with a flipped byte near its end (rejected)" \
                --ak "$ak.pub" --msg "$q.msg" --sig "$q.badsig" --pcrs "$q.pcrs" --nonce "$nonce"
        flip_byte "$q.msg" "$q.badmsg-end" -1
        expect_verify 1 'INVALID|invalid' "$kind: quote message with its last byte flipped (rejected)" \
                --ak "$ak.pub" --msg "$q.badmsg-end" --sig "$q.sig" --pcrs "$q.pcrs" --nonce "$nonce"
        # A byte of clockInfo.clock: only the signature covers it.
        flip_byte "$q.msg" "$q.badmsg-mid" $(($(attest_clock_offset "$q.msg") + 6))
        expect_verify 1 '\(signature\)' "$kind: quote message with a flipped byte in its clock info (rejected)" \
                --ak "$ak.pub" --msg "$q.badmsg-mid" --sig "$q.sig" --pcrs "$q.pcrs" --nonce "$nonce"

        # A PCR extended after the quote: the quote no longer matches the PCR values read now.
        t2 tpm2_pcrextend "16:sha1=$(rand_hex 20),sha256=$(rand_hex 32)"
        read_pcrs "$SEL_ONE" "$q.after"
        ! same_json "$q.after.json" "$q.json" || die "PCR 16 did not change after tpm2_pcrextend"
        expect_verify 1 '\(pcr-digest\)' "$kind: PCR 16 extended after the quote, JSON PCRs re-read (rejected)" \
                --ak "$ak.pub" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.after.json" --nonce "$nonce"
        expect_verify 1 '\(pcr-digest\)' "$kind: PCR 16 extended after the quote, serialized PCRs re-read (rejected)" \
                --ak "$ak.pub" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.after.ser" --nonce "$nonce"
        n4=$(rand_hex 16)
        quote "$ak" "$SEL_ONE" "$n4" "q4-$kind" "${extra[@]}"
        expect_verify 0 "" "$kind: new quote after the extend verifies with the re-read values" \
                --ak "$ak.pub" --msg "q4-$kind.msg" --sig "q4-$kind.sig" --pcrs "$q.after.json" --nonce "$n4"
done

# Cross-algorithm: an RSA quote checked with an ECC AK and the other way round.
if [[ " ${done_kinds[*]} " == *" rsassa "* && " ${done_kinds[*]} " == *" ecdsa "* ]]; then
        n=$(rand_hex 16)
        quote ak-rsassa "$SEL_ONE" "$n" x-rsa
        quote ak-ecdsa "$SEL_ONE" "$n" x-ecc
        expect_verify 1 "" "RSA quote checked with an ECC AK (rejected)" \
                --ak ak-ecdsa.pub --msg x-rsa.msg --sig x-rsa.sig --pcrs x-rsa.pcrs --nonce "$n"
        expect_verify 1 "" "ECC quote checked with an RSA AK, PEM (rejected)" \
                --ak ak-rsassa.pem --msg x-ecc.msg --sig x-ecc.sig --pcrs x-ecc.pcrs --nonce "$n"
fi

# Keys that are no AK: a quote signed by an unrestricted signing key (which could equally
# sign a forged TPMS_ATTEST with tpm2_sign), and the EK given as the AK.
t2f tpm2_createprimary -C o -G ecc -g sha256 -c unrestricted.ctx \
        -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' >>"$T/tpm2.log"
t2f tpm2_readpublic -c unrestricted.ctx -o unrestricted.pub >>"$T/tpm2.log"
echo sha256 >unrestricted.halg
n=$(rand_hex 16)
quote unrestricted "$SEL_ONE" "$n" q-unrestricted
expect_verify 1 '\(ak-attributes\)' "quote by an unrestricted signing key, its TPM2B_PUBLIC as the AK (rejected)" \
        --ak unrestricted.pub --msg q-unrestricted.msg --sig q-unrestricted.sig --pcrs q-unrestricted.pcrs --nonce "$n"
expect_verify 1 '\(ak-attributes\)' "the EK's TPM2B_PUBLIC as the AK (rejected)" \
        --ak ek.pub --msg q1-rsassa.msg --sig q1-rsassa.sig --pcrs q1-rsassa.pcrs --nonce "$(cat q1-rsassa.nonce)"

# ---------------------------------------------------------------------------------------
# Event logs: a fresh swtpm (restart => TPM2_Startup(CLEAR), PCRs 0-15 zero) per log.
eventlog_case() {
        local rel=$1 other=$2 name banks sel first i b
        local logf=$VOUCH_SHARED_DIR/eventlogs/$rel
        local otherf=$VOUCH_SHARED_DIR/eventlogs/$other
        name=${rel//\//_}
        log "--- event log $rel"
        stop_swtpm orderly
        start_swtpm
        create_ek
        create_ak "ak-$name" rsa sha256 rsassa || die "tpm2_createak failed"
        echo sha256 >"ak-$name.halg"

        "$VOUCHCTL" eventlog show "$logf" --json >"$name.show.json" || die "vouchctl eventlog show $rel failed"
        "$VOUCHCTL" eventlog replay "$logf" --json >"$name.replay.json" 2>>"$T/tpm2.log" ||
                die "vouchctl eventlog replay $rel failed"
        # The swtpm starts at locality 0 without an H-CRTM: such logs cannot be reproduced.
        if jq -e '[.events[] | select((.type == "EV_NO_ACTION" and ((.content // "") | startswith("StartupLocality")))
                                      or .type == "EV_EFI_HCRTM_EVENT")] | length > 0' \
                "$name.show.json" >/dev/null; then
                die "$rel has a StartupLocality or H-CRTM event; the swtpm cannot reproduce its PCR 0"
        fi

        # The banks the log replays that the swtpm has, and the PCRs of each.
        jq '{sha1, sha256} | with_entries(select(.value != null and (.value | length) > 0))' \
                "$name.replay.json" >"$name.expected.json"
        banks=$(jq -r 'keys_unsorted | join(" ")' "$name.expected.json")
        [[ -n $banks ]] || die "$rel replays neither sha1 nor sha256"
        sel=$(jq -r 'to_entries | map("\(.key):" + (.value | keys | map(tonumber) | sort | map(tostring) | join(","))) | join("+")' \
                "$name.expected.json")

        read_pcrs "$sel" "$name.before"
        jq -e '[.[][] | test("^0+$")] | all' "$name.before.json" >/dev/null ||
                die "PCRs $sel are not all zero after the swtpm restart"

        extend_log "$name.show.json" "$banks"
        log "extended $EXTENDED events into $sel"

        read_pcrs "$sel" "$name.after"
        local bad
        bad=$(pcr_json_mismatches "$name.expected.json" "$name.after.json"; pcr_json_mismatches "$name.after.json" "$name.expected.json")
        if [[ -z $bad ]]; then
                pass "$rel: swtpm PCRs after extending the log equal 'vouchctl eventlog replay' ($sel)"
        else
                fail "$rel: swtpm PCRs differ from 'vouchctl eventlog replay' at: $(echo "$bad" | sort -u | tr '\n' ' ')"
        fi

        local n q=ql-$name
        n=$(rand_hex 16)
        quote "ak-$name" "$sel" "$n" "$q"
        expect_verify 0 "" "$rel: quote of $sel verifies with --eventlog (serialized PCRs)" \
                --ak "ak-$name.pub" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.pcrs" --nonce "$n" --eventlog "$logf"
        expect_verify 0 "" "$rel: quote verifies with --eventlog (JSON PCRs, PEM AK)" \
                --ak "ak-$name.pem" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.json" --nonce "$n" --eventlog "$logf"
        expect_verify 0 "" "$rel: quote verifies with --eventlog and 'eventlog replay --json' output as the PCR values" \
                --ak "ak-$name.pub" --msg "$q.msg" --sig "$q.sig" --pcrs "$name.replay.json" --nonce "$n" --eventlog "$logf"
        expect_verify 1 "" "$rel: quote checked with --eventlog $other (rejected)" \
                --ak "ak-$name.pub" --msg "$q.msg" --sig "$q.sig" --pcrs "$q.pcrs" --nonce "$n" --eventlog "$otherf"

        # One more extend into a PCR the log covers: the TPM no longer matches the log.
        first=$(jq -r '[.[] | keys[] | tonumber] | min' "$name.expected.json")
        local ext="$first:" sep=""
        for b in $banks; do
                case $b in
                sha1) ext+="${sep}sha1=$(rand_hex 20)" ;;
                sha256) ext+="${sep}sha256=$(rand_hex 32)" ;;
                esac
                sep=,
        done
        t2 tpm2_pcrextend "$ext"
        n=$(rand_hex 16)
        quote "ak-$name" "$sel" "$n" "$q.x"
        expect_verify 0 "" "$rel: after one more extend into PCR $first, the new quote alone still verifies" \
                --ak "ak-$name.pub" --msg "$q.x.msg" --sig "$q.x.sig" --pcrs "$q.x.pcrs" --nonce "$n"
        expect_verify 1 '\(eventlog\)' "$rel: after one more extend into PCR $first, --eventlog rejects the new quote" \
                --ak "ak-$name.pub" --msg "$q.x.msg" --sig "$q.x.sig" --pcrs "$q.x.pcrs" --nonce "$n" --eventlog "$logf"
        expect_verify 1 '\(eventlog\)' "$rel: ... also with JSON PCRs" \
                --ak "ak-$name.pub" --msg "$q.x.msg" --sig "$q.x.sig" --pcrs "$q.x.json" --nonce "$n" --eventlog "$logf"
}

for ((k = 0; k < ${#EVENTLOGS[@]}; k++)); do
        eventlog_case "${EVENTLOGS[k]}" "${EVENTLOGS[(k + 1) % ${#EVENTLOGS[@]}]}"
done

stop_swtpm orderly
if grep -qi 'lockout' "$T/tpm2.log"; then
        fail "the tpm2-tools log mentions a DA lockout"
fi
echo
log "$npass checks passed, $nfail failed ($((SECONDS - start_time)) s)"
((nfail == 0))
