# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# A private swtpm for tests and the demo (sourced, not run): its own state dir and EK CA
# under $T (never the system's /var/lib/swtpm-localca), ports picked at run time, orderly
# shutdown. Needs: T (a temp dir with state/, ca/, tmp/), and die/log from lib.sh.
# Sets SWTPM_PID, PORT and TPM2TOOLS_TCTI.

# provision_swtpm BANKS: EK (RSA + ECC) with certificates from a private local CA in $T/ca.
provision_swtpm() {
        local banks=$1
        mkdir -p "$T/state" "$T/ca" "$T/tmp"
        printf '%s\n' "statedir = $T/ca" "signingkey = $T/ca/signkey.pem" \
                "issuercert = $T/ca/issuercert.pem" "certserial = $T/ca/certserial" >"$T/swtpm-localca.conf"
        printf '%s\n' "--platform-manufacturer vouch-test" "--platform-version 2.1" \
                "--platform-model swtpm" >"$T/swtpm-localca.options"
        printf '%s\n' "create_certs_tool = $(command -v swtpm_localca)" \
                "create_certs_tool_config = $T/swtpm-localca.conf" \
                "create_certs_tool_options = $T/swtpm-localca.options" \
                "active_pcr_banks = $banks" >"$T/swtpm_setup.conf"
        TMPDIR="$T/tmp" swtpm_setup --tpm2 --tpm-state "$T/state" --config "$T/swtpm_setup.conf" \
                --createek --create-ek-cert --pcr-banks "$banks" --overwrite \
                --logfile "$T/swtpm_setup.log" >>"$T/swtpm.out" 2>&1 ||
                die "swtpm_setup failed: $(tail -n 5 "$T/swtpm_setup.log" "$T/swtpm.out" 2>/dev/null)"
        [[ -s $T/ca/issuercert.pem && -s $T/ca/signkey.pem ]] ||
                die "swtpm_setup did not create the private EK CA in $T/ca"
        grep -q 'Successfully created EK certificate' "$T/swtpm_setup.log" ||
                die "swtpm_setup did not create an EK certificate"
}

# stop_swtpm [orderly]: with "orderly", TPM2_Shutdown(CLEAR) first and then the ctrl
# channel's shutdown, so the restart is not counted as a failed (DA) shutdown: three
# unorderly restarts put the swtpm into DA lockout and the AKs stop working.
stop_swtpm() {
        local i pid=${SWTPM_PID:-}
        [[ -n $pid ]] || return 0
        if [[ ${1:-} == orderly ]]; then
                # (no tpm2_flushcontext after it: nothing may touch the TPM after Shutdown)
                tpm2_shutdown -c >>"$T/tpm2.log" 2>&1 || die "tpm2_shutdown -c failed"
                swtpm_ioctl --tcp "127.0.0.1:$((PORT + 1))" -s >>"$T/tpm2.log" 2>&1 ||
                        die "swtpm_ioctl -s failed"
        fi
        SWTPM_PID=""
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
# swtpm
port_busy() {
        command -v ss >/dev/null 2>&1 || return 1
        [[ -n $(ss -Htan "( sport = :$1 )" 2>/dev/null) ]]
}

# A port for a server under test: below the kernel's ephemeral range, so that no outgoing
# connection (of this test or of one running beside it) can take it while the server is
# restarted on it, and not in use now.
free_port() {
        local lo=32768 hi p i
        read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
        ((lo > 11024)) || die "the ephemeral port range starts at $lo: no room for test ports below it"
        for ((i = 0; i < 50; i++)); do
                p=$((10000 + RANDOM % (lo - 10000)))
                port_busy "$p" || { echo "$p"; return; }
        done
        die "no free port"
}

# Start swtpm on a free port pair found at run time; retry with other ports when the
# bind fails (another process took the port in the meantime).
start_swtpm() {
        local attempt i p
        for ((attempt = 1; attempt <= 25; attempt++)); do
                p=$((20000 + 2 * (RANDOM % 20000))) # 20000 .. 59998, P+1 <= 59999
                if port_busy "$p" || port_busy $((p + 1)); then
                        continue
                fi
                swtpm socket --tpm2 --tpmstate dir="$T/state" \
                        --flags not-need-init,startup-clear \
                        --server type=tcp,port="$p",bindaddr=127.0.0.1 \
                        --ctrl type=tcp,port=$((p + 1)),bindaddr=127.0.0.1 \
                        --log file="$T/swtpm.log",level=1 </dev/null >>"$T/swtpm.out" 2>&1 &
                SWTPM_PID=$!
                for ((i = 0; i < 200; i++)); do
                        if ! kill -0 "$SWTPM_PID" 2>/dev/null; then
                                wait "$SWTPM_PID" 2>/dev/null || true
                                SWTPM_PID=""
                                break
                        fi
                        if swtpm_ioctl --tcp "127.0.0.1:$((p + 1))" -g >/dev/null 2>&1; then
                                sleep 0.05
                                if kill -0 "$SWTPM_PID" 2>/dev/null; then
                                        PORT=$p
                                        export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$PORT"
                                        return 0
                                fi
                        fi
                        sleep 0.05
                done
                stop_swtpm
                log "swtpm did not come up on ports $p/$((p + 1)) (attempt $attempt); retrying"
        done
        die "could not start swtpm: $(tail -n 5 "$T/swtpm.out" "$T/swtpm.log" 2>/dev/null)"
}

# Run a tpm2-tools command (stderr to the log); the caller redirects stdout where it
# wants it. t2 is for commands that load no object (tpm2_pcrread, tpm2_pcrextend); t2f
# also flushes the transient objects afterwards (swtpm has no resource manager).
t2() {
        echo "+ $*" >>"$T/tpm2.log"
        if ! "$@" 2>>"$T/tpm2.log"; then
                die "$1 failed: $(tail -n 4 "$T/tpm2.log" | tr '\n' ' ')"
        fi
}
t2f() {
        t2 "$@"
        tpm2_flushcontext -t 2>>"$T/tpm2.log" || die "tpm2_flushcontext -t failed"
}
flush_sessions() { tpm2_flushcontext -s 2>>"$T/tpm2.log" || die "tpm2_flushcontext -s failed"; }

create_ek() {
        t2f tpm2_createek -c ek.ctx -G rsa -u ek.pub >>"$T/tpm2.log"
        flush_sessions
}

# create_ak NAME KEYALG HASHALG SIGALG: NAME.ctx, NAME.pub (TPM2B_PUBLIC), NAME.tpmt
# (TPMT_PUBLIC), NAME.pem. Returns 1 (without dying) if tpm2_createak refuses the scheme.
create_ak() {
        local name=$1 kalg=$2 halg=$3 salg=$4 size
        echo "+ tpm2_createak ... -G $kalg -g $halg -s $salg" >>"$T/tpm2.log"
        if ! tpm2_createak -C ek.ctx -c "$name.ctx" -G "$kalg" -g "$halg" -s "$salg" \
                -u "$name.pub" -n "$name.name" -r "$name.priv" >>"$T/tpm2.log" 2>&1; then
                tpm2_flushcontext -t 2>>"$T/tpm2.log" || true
                flush_sessions
                return 1
        fi
        tpm2_flushcontext -t 2>>"$T/tpm2.log" || die "tpm2_flushcontext -t failed"
        flush_sessions
        t2f tpm2_readpublic -c "$name.ctx" -f pem -o "$name.pem" >>"$T/tpm2.log"
        grep -q 'BEGIN PUBLIC KEY' "$name.pem" || die "$name.pem is not a PEM public key"
        # TPMT_PUBLIC = TPM2B_PUBLIC without its 2-byte size.
        size=$(stat -c %s "$name.pub")
        [[ $(od -An -tu1 -N 2 "$name.pub" | awk '{print $1 * 256 + $2}') == $((size - 2)) ]] ||
                die "$name.pub does not look like a TPM2B_PUBLIC"
        tail -c +3 "$name.pub" >"$name.tpmt"
}


# extend_log SHOW_JSON "BANKS": extends every measured event of a log (the output of
# `vouchctl eventlog show --json`) into the swtpm, in log order, in the given banks
# ("sha1 sha256"). Sets EXTENDED to the number of events.
extend_log() {
        local show=$1 banks=$2 i specs
        mapfile -t specs < <(jq -r --arg banks "$banks" '
                ($banks | split(" ")) as $b
                | .events[]
                | select(.type != "EV_NO_ACTION" and .pcr >= 0 and .pcr <= 23)
                | [.digests | to_entries[] | select(.key as $k | $b | index($k)) | "\(.key)=\(.value)"] as $d
                | select($d | length > 0)
                | "\(.pcr):" + ($d | join(","))' "$show")
        ((${#specs[@]} > 0)) || die "no events to extend from $show"
        for ((i = 0; i < ${#specs[@]}; i += 16)); do
                t2 tpm2_pcrextend "${specs[@]:i:16}"
        done
        EXTENDED=${#specs[@]}
}

# new_tpm NAME: one more device for a test of several: a provisioned, started swtpm in
# $TOP/tpm-NAME (T set to it; its pid and TCTI in T/pid and T/tcti; its EK CA in T/ekca.pem).
new_tpm() {
        T=$TOP/tpm-$1
        mkdir -p "$T/w"
        : >"$T/tpm2.log"
        SWTPM_PID=""
        provision_swtpm sha1,sha256
        start_swtpm
        echo "$SWTPM_PID" >"$T/pid"
        echo "$TPM2TOOLS_TCTI" >"$T/tcti"
        cat "$T/ca/issuercert.pem" "$T/ca/swtpm-localca-rootca-cert.pem" >"$T/ekca.pem"
}
