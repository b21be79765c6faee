#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs COMMAND [ARGS...] against a PostgreSQL 15 of its own, started for it and removed after
# it: initdb in a temp dir as an unprivileged user (PostgreSQL refuses to run as root; as
# root, the user is VOUCH_PG_USER, default "vouchpg", created with useradd if missing),
# listening only on a Unix socket in that dir (listen_addresses=''), one database "vouch".
# No service of the machine is used. VOUCH_PG_CONF, when set, is appended to postgresql.conf.
# COMMAND gets:
#   VOUCH_TEST_STORE_URL   postgresql:///vouch?host=DIR&user=vouch
#   VOUCH_TEST_PG_CTL      a script: "stop" (fast shutdown), "start" (waits until it
#                          accepts connections), "psql ARGS..." (as the test's superuser)
# Exits 77 (skipped) when the server binaries are missing (apt-get install postgresql).
set -euo pipefail

bindir=${VOUCH_PG_BIN:-/usr/lib/postgresql/15/bin}
if [[ ! -x $bindir/initdb || ! -x $bindir/pg_ctl ]]; then
        if [[ ${CI:-} == true ]]; then
                echo "pg-harness: no PostgreSQL server in $bindir (apt-get install postgresql): FAIL under CI=true" >&2
                exit 1
        fi
        echo "pg-harness: no PostgreSQL server in $bindir (apt-get install postgresql): skipped" >&2
        exit 77
fi
(( $# > 0 )) || { echo "usage: pg-harness.sh COMMAND [ARGS...]" >&2; exit 2; }

dir=$(mktemp -d /tmp/vouch-pg.XXXXXX)
as_user=()
if (( EUID == 0 )); then
        user=${VOUCH_PG_USER:-vouchpg}
        if ! id -u "$user" >/dev/null 2>&1; then
                useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
        fi
        chown "$user:" "$dir"
        as_user=(runuser -u "$user" --)
fi
chmod 700 "$dir"

cleanup() {
        local rc=$?
        if [[ -f $dir/data/postmaster.pid ]]; then
                "${as_user[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
        if (( rc != 0 )) && [[ -f $dir/server.log ]]; then
                echo "pg-harness: the server's log:" >&2
                tail -n 40 "$dir/server.log" >&2 || true
        fi
        rm -rf "$dir"
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# trust on the socket only: the socket lives in a 0700 dir of the server's user
"${as_user[@]}" "$bindir/initdb" -D "$dir/data" -U vouch --auth=trust -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
unix_socket_permissions = 0700
max_connections = 40
shared_buffers = 32MB
logging_collector = off
EOF
# settings of the caller's (later lines win): e.g. bench/run's max_connections for N instances
if [[ -n ${VOUCH_PG_CONF:-} ]]; then
        printf '%s\n' "$VOUCH_PG_CONF" >>"$dir/data/postgresql.conf"
fi

cat >"$dir/ctl" <<EOF
#!/bin/bash
# stop | start | psql ARGS... (the harness's server in $dir)
set -eu
case "\$1" in
stop) exec ${as_user[*]} "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null ;;
start) exec ${as_user[*]} "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ;;
psql) shift; exec "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -U vouch -d vouch "\$@" ;;
*) echo "usage: \$0 stop|start|psql ARGS..." >&2; exit 2 ;;
esac
EOF
chmod 755 "$dir/ctl"
[[ -n ${as_user[*]} ]] && chown "$user:" "$dir/ctl"

"$dir/ctl" start
"$bindir/createdb" -h "$dir" -U vouch vouch

export VOUCH_TEST_STORE_URL="postgresql:///vouch?host=$dir&user=vouch"
export VOUCH_TEST_PG_CTL="$dir/ctl"
"$@"
