#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The enforcement point end to end (issue 19), on 127.0.0.1: swtpm + vouchd --trust-domain
# (its device CA from vouchd init, the CRL on --http-listen and the API) + vouch-agent
# --key-out --cert-out, and nginx (Debian's, run by this test as an ordinary process: its
# own configuration, pid, logs and temp paths in a temp dir; as user nobody when the test
# runs as root) demanding a client certificate of the device CA, checked against the CRL
# fetched with `vouchctl crl get --pem`, refreshed as the README says (fetch, then `nginx -s
# reload`). The device fetches the page with curl, its key in the TPM, through tpm2-openssl
# (OPENSSL_CONF activating the default and tpm2 providers, preferring the TPM for
# signatures).
# Asserted: TRUSTED gives a certificate and the page (200); no certificate, a software key
# with a self-signed certificate or one from a look-alike CA get 400 from nginx, and a
# software key with the device's certificate is not even usable; after a rogue boot
# measurement the next verdict is UNTRUSTED, the certificate is on the next CRL, and once
# nginx has it the same request is refused (nginx, having completed the handshake, answers
# every request of a connection whose client certificate failed with 400 "The SSL
# certificate error" and serves nothing); a reboot into the known-good boot gets a new
# certificate and the page again; a device that stops attesting is refused once its
# certificate expires (--device-cert-ttl 30); a device key certified over an old nonce (the
# first round's proof, put into a later answer by a proxy) gets no certificate at all.
# Each refusal is checked in nginx's own access log ($ssl_client_verify) and error log.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=swtpm.sh
. "$here/swtpm.sh"
: "${VOUCHD:?}" "${VOUCH_AGENT:?}"
require_tools swtpm swtpm_setup swtpm_ioctl tpm2_pcrextend tpm2_shutdown tpm2_getcap openssl jq sha256sum nginx curl \
        pgrep python3
require_shared_data
require_vouchctl
LOG=$VOUCH_SHARED_DIR/eventlogs/tpm2-tools/event-arch-linux.bin
[[ -f $LOG ]] || skip_or_fail "shared data not found at $LOG"
modules=$(openssl version -m | sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p')
[[ -f $modules/tpm2.so ]] || skip_or_fail "the tpm2-openssl provider is not installed (no tpm2.so in \"$modules\")"
AS_USER=()
if ((EUID == 0)); then
        require_tools setpriv
        AS_USER=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
fi

TOP=$(mktemp -d "${TMPDIR:-/tmp}/vouch-enforce-test.XXXXXX")
T=$TOP/tpm
N=$TOP/nginx
VOUCHD_PID=""
PROXY_PID=""
NGINX_PID=""
SWTPM_PID=""
npass=0
nfail=0
pass() { npass=$((npass + 1)); echo "ok   - $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL - $*"; }
cleanup() {
        local rc=$?
        set +e
        if [[ -n $NGINX_PID ]]; then # SIGTERM: its master stops its worker
                kill -TERM "$NGINX_PID" 2>/dev/null
                for ((i = 0; i < 50; i++)); do
                        kill -0 "$NGINX_PID" 2>/dev/null || break
                        sleep 0.1
                done
                kill -KILL "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
                [[ -s $TOP/workers ]] && xargs kill -KILL <"$TOP/workers" 2>/dev/null
        fi
        for p in "$PROXY_PID" "$VOUCHD_PID"; do
                [[ -n $p ]] && kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
        done
        stop_swtpm
        if ((rc != 0)); then
                echo "--- vouchd log ---"
                tail -n 20 "$TOP/vouchd.log" 2>/dev/null
                echo "--- agent log ---"
                tail -n 20 "$TOP/agent.err" 2>/dev/null
                echo "--- nginx error log ---"
                tail -n 20 "$N/error.log" 2>/dev/null
        fi
        rm -rf "$TOP"
        exit $rc
}
trap cleanup EXIT

mkdir -p "$T" "$TOP/golden" "$TOP/agent" "$TOP/out" "$N/tmp"
: >"$T/tpm2.log"
provision_swtpm sha1,sha256
start_swtpm
cat "$T/ca/issuercert.pem" "$T/ca/swtpm-localca-rootca-cert.pem" >"$T/ekca.pem"
"$VOUCHCTL" eventlog show "$LOG" --json >"$TOP/show.json"
extend_log "$TOP/show.json" "sha1 sha256"
"$VOUCHCTL" golden create --eventlog "$LOG" --name arch >"$TOP/golden/arch.json"

# --- vouchd: device certificates for spiffe://example.org, 30 s at most
"$VOUCHD" init --state-dir "$TOP/state" >/dev/null
"$VOUCHD" issue-client --state-dir "$TOP/state" --name ops --out "$TOP/ops" >/dev/null
VPORT=$(free_port)
HPORT=$(free_port)
APORT=$(free_port)
"$VOUCHD" --state-dir "$TOP/state" --listen "127.0.0.1:$VPORT" --golden-dir "$TOP/golden" --default-golden arch \
        --ek-ca "$T/ekca.pem" --interval 3600 --threads 1 --trust-domain example.org --device-cert-ttl 30 \
        --http-listen "127.0.0.1:$HPORT" --api-listen "127.0.0.1:$APORT" --api-reader ops \
        >"$TOP/vouchd.out" 2>"$TOP/vouchd.log" &
VOUCHD_PID=$!
for ((i = 0; i < 100; i++)); do
        grep -q ready "$TOP/vouchd.out" && break
        kill -0 "$VOUCHD_PID" 2>/dev/null || die "vouchd exited: $(tail -n 5 "$TOP/vouchd.log")"
        sleep 0.1
done
grep -q ready "$TOP/vouchd.out" || die "vouchd did not start"
API=(--server "https://127.0.0.1:$APORT" --cert "$TOP/ops.crt" --key "$TOP/ops.key" --ca "$TOP/state/ca.pem")

KEY=$TOP/out/device.key
CERT=$TOP/out/device.pem
PPORT=$VPORT
# agent: one attestation with --key-out and --cert-out; sets RC and OUT
agent() {
        RC=0
        timeout 60 "$VOUCH_AGENT" --server "127.0.0.1:$PPORT" --ca "$TOP/state/ca.pem" --tcti "$TPM2TOOLS_TCTI" \
                --eventlog "$LOG" --state-dir "$TOP/agent" --once --key-out "$KEY" --cert-out "$CERT" \
                >"$TOP/agent.out" 2>"$TOP/agent.err" || RC=$?
        OUT=$(cat "$TOP/agent.out")
}
# serial_of CERT: its serial in nginx's $ssl_client_serial form (hex, upper case)
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }

proxy "$TOP/rec1" record-proxy # (its QuoteAnswer kept, for the old nonce's proof at the end)
agent
kill -KILL "$PROXY_PID" 2>/dev/null
wait "$PROXY_PID" 2>/dev/null || true
PROXY_PID=""
PPORT=$VPORT
[[ $RC == 0 && $OUT == *"verdict: TRUSTED"* ]] && pass "the device attests: TRUSTED" ||
        fail "the first attestation: exit $RC $OUT $(tail -n 3 "$TOP/agent.err")"
DEV=$(openssl x509 -in "$CERT" -noout -subject -nameopt multiline 2>/dev/null | sed -n 's/^ *commonName *= *//p')
if [[ -n $DEV ]] && openssl x509 -in "$CERT" -noout -ext subjectAltName 2>/dev/null |
        grep -q "URI:spiffe://example.org/device/$DEV"; then
        pass "--cert-out: vouchd's certificate for the TPM key (spiffe://example.org/device/$DEV)"
else
        fail "no device certificate in $CERT: $(ls -l "$CERT" 2>&1)"
fi
SERIAL1=$(serial_of "$CERT")
ISSUED1=$(date +%s)
cp "$CERT" "$TOP/cert1.pem"

# --- nginx: the device CA, the CRL from vouchctl crl get, a page for verified clients.
# The log line of each request: status, $ssl_client_verify, $ssl_client_serial.
NPORT=$(free_port)
cp "$TOP/state/device-ca.pem" "$N/device-ca.pem"
"$VOUCHCTL" crl get --pem --out "$N/devices.crl" "${API[@]}" >"$TOP/crlget.out" 2>&1 ||
        die "vouchctl crl get: $(cat "$TOP/crlget.out")"
# The server's key is Ed25519: curl, preferring the TPM for signatures, would have the TPM
# check an ECDSA or RSA server signature too, and swtpm (no resource manager) has three
# object slots, which the device key and its parent already take.
openssl req -x509 -newkey ed25519 -nodes -keyout "$N/server.key" -subj "/CN=127.0.0.1" \
        -addext subjectAltName=IP:127.0.0.1 -days 1 -out "$N/server.pem" 2>/dev/null
cat >"$N/nginx.conf" <<EOF
worker_processes 1;
pid nginx.pid;
error_log error.log info;
events {
        worker_connections 64;
}
http {
        log_format vouch '\$status \$ssl_client_verify \$ssl_client_serial';
        access_log access.log vouch;
        client_body_temp_path tmp/body;
        proxy_temp_path tmp/proxy;
        fastcgi_temp_path tmp/fastcgi;
        uwsgi_temp_path tmp/uwsgi;
        scgi_temp_path tmp/scgi;
        server {
                listen 127.0.0.1:$NPORT ssl;
                ssl_certificate server.pem;
                ssl_certificate_key server.key;
                ssl_protocols TLSv1.2 TLSv1.3;
                ssl_verify_client on;
                ssl_client_certificate device-ca.pem;
                ssl_crl devices.crl;
                location / {
                        return 200 "hello \$ssl_client_s_dn\n";
                }
        }
}
EOF
: >"$N/access.log"
: >"$N/error.log"
if ((EUID == 0)); then
        chown -R nobody "$N"
        chmod 0711 "$TOP"
fi
"${AS_USER[@]}" test -r "$N/nginx.conf" || die "user nobody cannot read $N/nginx.conf (is ${TMPDIR:-/tmp} open to it?)"
NGINX=(nginx -c "$N/nginx.conf" -p "$N/" -e "$N/error.log")
"${AS_USER[@]}" "${NGINX[@]}" -t >"$TOP/nginx-t.out" 2>&1 || die "nginx -t: $(cat "$TOP/nginx-t.out")"
"${AS_USER[@]}" "${NGINX[@]}" -g 'daemon off;' >"$TOP/nginx.out" 2>&1 &
NGINX_PID=$!
for ((i = 0; i < 100; i++)); do
        [[ -n $(pgrep -P "$NGINX_PID") ]] && grep -q "start worker process" "$N/error.log" && break
        kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited: $(cat "$TOP/nginx.out" "$N/error.log")"
        sleep 0.1
done
pgrep -P "$NGINX_PID" >"$TOP/workers" || die "nginx started no worker: $(tail -n 5 "$N/error.log")"
user=$(ps -o user= -p "$NGINX_PID")
[[ $EUID != 0 || $user == nobody ]] && pass "nginx runs in the test's temp dir as $user, port $NPORT" ||
        fail "nginx runs as $user"

# crl_refresh: the README's loop, once: the CRL from vouchd, then nginx -s reload; waits
# until nginx's old worker is gone (its new one has the new CRL)
crl_refresh() {
        local old i
        "$VOUCHCTL" crl get --pem --out "$N/devices.crl" "${API[@]}" >"$TOP/crlget.out" 2>&1 ||
                { fail "vouchctl crl get: $(cat "$TOP/crlget.out")"; return; }
        old=$(cat "$TOP/workers")
        "${AS_USER[@]}" "${NGINX[@]}" -s reload >"$TOP/reload.out" 2>&1 ||
                { fail "nginx -s reload: $(cat "$TOP/reload.out")"; return; }
        for ((i = 0; i < 100; i++)); do
                pgrep -P "$NGINX_PID" >"$TOP/workers" || true
                if [[ -s $TOP/workers ]] && ! grep -qxF "$old" "$TOP/workers" && ! kill -0 "$old" 2>/dev/null; then
                        return
                fi
                sleep 0.1
        done
        fail "nginx did not reload: $(tail -n 5 "$N/error.log")"
}

# request NAME CMD...: one request to the page with CMD (curl and its options); sets RC
# (curl's exit status), CODE (the HTTP status, 000 for none), BODY, ERR (curl's message) and
# SERVED (nginx's access log line for it; empty when nginx logged no request); ERRLOG: the
# lines of nginx's error log before it
request() {
        local name=$1 before i
        shift
        before=$(wc -l <"$N/access.log")
        ERRLOG=$(wc -l <"$N/error.log")
        RC=0
        CODE=$(timeout 60 "$@" -sS --max-time 30 --cacert "$N/server.pem" -o "$TOP/$name.body" -w '%{http_code}' \
                "https://127.0.0.1:$NPORT/" 2>"$TOP/$name.err") || RC=$?
        BODY=$(cat "$TOP/$name.body" 2>/dev/null || true)
        ERR=$(cat "$TOP/$name.err")
        SERVED=""
        for ((i = 0; i < 20; i++)); do
                if (($(wc -l <"$N/access.log") > before)); then
                        SERVED=$(sed -n "$((before + 1))p" "$N/access.log")
                        return
                fi
                ((RC == 0)) || return 0 # curl failed: nginx logs nothing
                sleep 0.1
        done
}
# the device's own request: its TPM key through tpm2-openssl, its certificate chain
cat >"$TOP/openssl-tpm2.cnf" <<'EOF'
openssl_conf = openssl_init
[openssl_init]
providers = providers
alg_section = algorithms
[providers]
default = default_provider
tpm2 = tpm2_provider
[default_provider]
activate = 1
[tpm2_provider]
activate = 1
[algorithms]
default_properties = ?tpm2.signature=yes
EOF
device_request() {
        request "$1" env OPENSSL_CONF="$TOP/openssl-tpm2.cnf" TPM2OPENSSL_TCTI="$TPM2TOOLS_TCTI" curl --cert "$CERT" \
                --key "$KEY"
}
# refused NAME REASON DESCRIPTION: the last request got nginx's 400 and not the page, and
# nginx logged the failed certificate check REASON (any, when empty)
refused() {
        local why=${SERVED#400 FAILED:}
        why=${why% *}
        if [[ $RC == 0 && $CODE == 400 && $BODY == *"The SSL certificate error"* && $BODY != *hello* &&
                $SERVED == "400 FAILED:"* && ( -z $2 || $why == "$2" ) ]] &&
                tail -n +$((ERRLOG + 1)) "$N/error.log" | grep -F "client SSL certificate verify error: " | grep -qF ":$why)"
        then
                pass "$3: 400, nothing served (nginx: $why)"
        else
                fail "$3: exit $RC, HTTP $CODE, nginx logged \"$SERVED\" (want 400 FAILED:${2:-...}): $ERR $(head -c 300 <<<"$BODY")"
        fi
}

# --- TRUSTED: the page
device_request device1
[[ $RC == 0 && $CODE == 200 && $BODY == "hello CN=$DEV" && $SERVED == "200 SUCCESS $SERIAL1" ]] &&
        pass "curl with the TPM key (tpm2-openssl) and the device certificate: 200, the page, nginx verified serial $SERIAL1" ||
        fail "the TRUSTED device's request: exit $RC, HTTP $CODE, \"$BODY\", nginx logged \"$SERVED\": $ERR"
[[ -z $(tpm2_getcap handles-transient 2>>"$T/tpm2.log") ]] && pass "nothing left in the TPM after curl" ||
        fail "transient objects left after curl: $(tpm2_getcap handles-transient)"

# --- without the TPM key: no certificate, certificates not from vouchd, the device's
# certificate with another key
request nocert curl
[[ $RC == 0 && $CODE == 400 && $BODY == *"No required SSL certificate was sent"* && $SERVED == "400 NONE "* ]] &&
        pass "no client certificate: 400, nothing served" ||
        fail "no client certificate: exit $RC, HTTP $CODE, nginx logged \"$SERVED\": $ERR"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TOP/soft.key" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=clientAuth" "subjectAltName=URI:spiffe://example.org/device/$DEV" >"$TOP/leaf.cnf"
openssl req -new -key "$TOP/soft.key" -subj "/CN=$DEV" -out "$TOP/soft.csr" 2>/dev/null
openssl x509 -req -in "$TOP/soft.csr" -key "$TOP/soft.key" -days 1 -extfile "$TOP/leaf.cnf" -out "$TOP/self.pem" \
        2>/dev/null || die "cannot make the self-signed certificate"
# (any failed check: nginx logs the last one, as OpenSSL goes on after the first; with the CRL
# that is "unable to get certificate CRL", as nginx has none of their issuers)
request selfsigned curl --cert "$TOP/self.pem" --key "$TOP/soft.key"
refused selfsigned "" "a software key, self-signed with the device's name and SPIFFE ID"
# a CA of one's own, named as the device CA is
ca_subject=$(openssl x509 -in "$TOP/state/device-ca.pem" -noout -subject -nameopt compat | sed 's/^subject=//')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TOP/fake-ca.key" -subj "$ca_subject" \
        -days 2 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        -out "$TOP/fake-ca.pem" 2>/dev/null || die "cannot make the look-alike CA"
openssl x509 -req -in "$TOP/soft.csr" -CA "$TOP/fake-ca.pem" -CAkey "$TOP/fake-ca.key" -CAcreateserial -days 1 \
        -extfile "$TOP/leaf.cnf" -out "$TOP/fake.pem" 2>/dev/null || die "cannot issue from the look-alike CA"
cat "$TOP/fake.pem" "$TOP/fake-ca.pem" >"$TOP/fake-chain.pem"
request lookalike curl --cert "$TOP/fake-chain.pem" --key "$TOP/soft.key"
refused lookalike "" "a software key's CSR signed by a look-alike of the device CA"
request softkey curl --cert "$CERT" --key "$TOP/soft.key"
[[ $RC == 58 && -z $SERVED ]] && pass "a software key with the device's certificate: curl cannot use the pair (exit 58)" ||
        fail "a software key with the device's certificate: exit $RC, HTTP $CODE, nginx logged \"$SERVED\": $ERR"

# --- a rogue boot measurement: UNTRUSTED, on the CRL, refused
t2 tpm2_pcrextend "4:sha256=$(echo rogue | sha256sum | cut -d' ' -f1)"
agent
[[ $RC == 1 && $OUT == *"verdict: UNTRUSTED"* && $OUT == *"PCR 4"* ]] && cmp -s "$CERT" "$TOP/cert1.pem" &&
        pass "after a rogue PCR 4 measurement the next attestation is UNTRUSTED (the certificate file left as it was)" ||
        fail "after the rogue measurement: exit $RC $OUT $(tail -n 3 "$TOP/agent.err")"
listed=""
for ((i = 0; i < 20; i++)); do
        "$VOUCHCTL" crl get --pem --out "$TOP/crl2.pem" "${API[@]}" >/dev/null 2>&1 &&
                openssl crl -in "$TOP/crl2.pem" -noout -text 2>/dev/null | grep -q "Serial Number: $SERIAL1" &&
                { listed=$(((i + 1) * 100)); break; }
        sleep 0.1
done
[[ -n $listed ]] && pass "its certificate is on the CRL (vouchctl crl get) within $listed ms" ||
        fail "serial $SERIAL1 not on the CRL: $(openssl crl -in "$TOP/crl2.pem" -noout -text 2>&1 | head -n 20)"
# nginx still has the CRL of before: the certificate, unexpired, is still good to it
device_request stale-crl
[[ $RC == 0 && $CODE == 200 && $SERVED == "200 SUCCESS $SERIAL1" ]] &&
        pass "until nginx has the new CRL it admits the certificate (the refresh loop is what cuts it off)" ||
        fail "with the old CRL: exit $RC, HTTP $CODE, nginx logged \"$SERVED\": $ERR"
crl_refresh
device_request revoked
# (within the certificate's 30 s: once expired, nginx would say so instead)
refused revoked "certificate revoked" \
        "the same request after the CRL refresh (vouchctl crl get, nginx -s reload), $(($(date +%s) - ISSUED1)) s after the issue"

# --- a reboot into the known-good boot: TRUSTED, a new certificate, the page
stop_swtpm orderly
start_swtpm
extend_log "$TOP/show.json" "sha1 sha256"
agent
SERIAL2=$(serial_of "$CERT")
[[ $RC == 0 && $OUT == *"verdict: TRUSTED"* && $SERIAL2 != "$SERIAL1" ]] &&
        pass "after a reboot without the rogue measurement: TRUSTED, a new certificate ($SERIAL2)" ||
        fail "after the reboot: exit $RC $OUT serial $SERIAL2 $(tail -n 3 "$TOP/agent.err")"
NOT_AFTER=$(date -d "$(openssl x509 -in "$CERT" -noout -enddate | cut -d= -f2)" +%s)
crl_refresh
device_request device2
[[ $RC == 0 && $CODE == 200 && $BODY == "hello CN=$DEV" && $SERVED == "200 SUCCESS $SERIAL2" ]] &&
        pass "the new certificate gets the page, with the old one still on the CRL" ||
        fail "the new certificate: exit $RC, HTTP $CODE, \"$BODY\", nginx logged \"$SERVED\": $ERR"

# --- the device stops attesting: refused once its certificate expires (--device-cert-ttl 30)
now=$(date +%s)
ttl=$((NOT_AFTER - now))
((ttl > 0 && ttl <= 30)) || fail "the certificate's notAfter is $ttl s away, not within --device-cert-ttl 30"
((ttl > 0)) && sleep $((ttl + 1))
crl_refresh
device_request expired
refused expired "certificate has expired" "no attestation for $((ttl + 1)) s: its certificate expired"
"$VOUCHCTL" cert list "$DEV" "${API[@]}" >"$TOP/certs.out" 2>&1 &&
        grep -qi "^$SERIAL1 .* revoked" "$TOP/certs.out" && grep -qi "^$SERIAL2 .* expired" "$TOP/certs.out" &&
        pass "vouchctl cert list: the first certificate revoked, the second expired" ||
        fail "vouchctl cert list: $(cat "$TOP/certs.out")"

# --- a key certified over an old nonce: the first round's certify and signature (of this
# key, by this AK, over that round's nonce) in a fresh answer. The quote is good: TRUSTED,
# with a finding; the certificate: none.
mkdir -p "$TOP/dk1"
got=$(python3 "$here/vouch_client.py" device-keys "$TOP/rec1/conn-1.agent" "$TOP/dk1")
[[ $got == "1 answers, 1 with the device key" ]] || fail "the first round's device key proof: $got"
cp "$CERT" "$TOP/cert2.pem"
proxy "$TOP/rec2" certify-proxy "$TOP/dk1/0.attest" "$TOP/dk1/0.sig"
agent
ncerts=$("$VOUCHCTL" cert list "$DEV" "${API[@]}" 2>&1 | grep -ci '^[0-9a-f]\{32\} ' || true)
if [[ $RC == 0 && $OUT == *"verdict: TRUSTED"* && $ncerts == 2 &&
        $OUT == *"[device-key] no device certificate issued"*"certified for another challenge"* ]] &&
        cmp -s "$CERT" "$TOP/cert2.pem"; then
        pass "a key certified over an old nonce: TRUSTED, a device-key finding, no certificate (still 2 issued)"
else
        fail "the old nonce's certify: exit $RC, $ncerts certificates listed: $OUT $(tail -n 3 "$TOP/agent.err")"
fi
device_request old-nonce
refused old-nonce "certificate has expired" "... and nginx still refuses the device"

echo "$npass passed, $nfail failed"
((nfail == 0))
