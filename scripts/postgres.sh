#!/usr/bin/env bash
# A throw-away PostgreSQL server on 127.0.0.1 for tests and local development, from Debian's
# postgresql package (scripts/install-system.sh installs it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=watchdog.sh
source "$HERE/watchdog.sh"
PYTHON=${HOTLINE_KPI_PYTHON:-python3}

usage() {
    cat <<EOF
Usage: $(basename "$0") COMMAND [OPTIONS]

Commands:
  start [--dir DIR] [--port P] [--timeout S] [--owner-pid PID]
        create a cluster in DIR (initdb, trust authentication, no fsync) and start it on
        127.0.0.1:P (default: a free port), with its socket in DIR/sock. Prints key=value lines:
          dir=DIR  pid=PID  port=P  url=postgresql://postgres@127.0.0.1:P/postgres
        DIR defaults to a new directory under \${TMPDIR:-/tmp}; an existing cluster in DIR is
        started again with its data and, unless --port is given, its previous port.
        --owner-pid stops the server when process PID exits.
  stop --dir DIR
        stop the server (fast shutdown); no-op if it is not running
  status --dir DIR
        print the lines above and exit 0 if running, exit 3 if not

As root, initdb and pg_ctl run as the 'postgres' user (they refuse root): every parent of DIR
must then be traversable by that user (a 0700 mktemp -d is not).
Environment: PG_BINDIR (default: the newest /usr/lib/postgresql/*/bin).
EOF
}

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
    local d=${PG_BINDIR:-}
    [[ -n $d ]] || d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n $d && -x $d/initdb && -x $d/pg_ctl ]] ||
        die "PostgreSQL server binaries (initdb, pg_ctl) not found in ${d:-/usr/lib/postgresql/*/bin} (run: sudo scripts/install-system.sh)"
    echo "$d"
}

# Run a PostgreSQL program as the cluster owner: 'postgres' when we are root, else ourselves.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

server_pid() {
    local dir=$1 pid
    [[ -f $dir/data/postmaster.pid ]] || return 1
    pid=$(head -n 1 "$dir/data/postmaster.pid")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

print_endpoints() {
    local dir=$1 pid=$2 port
    port=$(sed -n 4p "$dir/data/postmaster.pid")
    echo "dir=$dir"
    echo "pid=$pid"
    echo "port=$port"
    echo "url=postgresql://postgres@127.0.0.1:$port/postgres"
}


cmd_start() {
    local dir="" port="" timeout=30 owner=""
    while [[ $# -gt 0 ]]; do
        case $1 in
            --dir) dir=${2:?--dir needs a value}; shift 2 ;;
            --port) port=${2:?--port needs a value}; shift 2 ;;
            --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
            --owner-pid) owner=${2:?--owner-pid needs a PID}; shift 2 ;;
            *) die "start: unknown option '$1' (see --help)" ;;
        esac
    done
    for n in "$port" "$timeout" "$owner"; do
        [[ -z $n || $n =~ ^[0-9]+$ ]] || die "start: '$n' is not a number"
    done
    [[ -z $owner ]] || kill -0 "$owner" 2>/dev/null || die "--owner-pid $owner: no such process"
    local bin
    bin=$(bindir)
    if [[ $(id -u) -eq 0 ]]; then
        command -v runuser >/dev/null || die "runuser not found (util-linux)"
        id postgres >/dev/null 2>&1 || die "no 'postgres' user: is the postgresql package installed?"
    fi

    if [[ -z $dir ]]; then
        dir=$(mktemp -d "${TMPDIR:-/tmp}/hotline-kpi-postgres.XXXXXX")
        chmod 0755 "$dir"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ $(id -u) -eq 0 ]] && ! runuser -u postgres -- test -x "$dir"; then
        die "$dir (or one of its parents) is not traversable by the postgres user: chmod o+x it, or use another --dir"
    fi
    local pid
    if pid=$(server_pid "$dir"); then
        die "a server is already running in $dir (pid $pid); stop it first"
    fi

    if [[ ! -f $dir/data/PG_VERSION ]]; then
        rm -rf "$dir/data"
        install -d -m 0700 "$dir/data"
        [[ $(id -u) -ne 0 ]] || chown postgres: "$dir/data"
        as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
            --no-sync >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; die "initdb failed (output above)"; }
    fi
    install -d -m 0755 "$dir/sock"
    touch "$dir/postgres.log"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir/sock" "$dir/postgres.log"; fi

    # A cluster started again keeps its port, so that URLs held by tests stay valid.
    [[ -n $port || ! -f $dir/port ]] || port=$(cat "$dir/port")
    local fixed=${port:+1} attempt p
    for attempt in 1 2 3; do
        p=${port:-$(free_port)}
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t "$timeout" \
            -o "-p $p -k '$dir/sock' -c listen_addresses=127.0.0.1 -c fsync=off" \
            start >/dev/null 2>&1; then
            pid=$(server_pid "$dir") || die "the server started but left no postmaster.pid"
            echo "$p" >"$dir/port"
            watch_owner postgres-watchdog "$HERE/postgres.sh" "$dir" "$owner" /dev/null
            print_endpoints "$dir" "$pid"
            return 0
        fi
        # Another process may have taken the free port in between: pick again.
        if [[ -z $fixed && $attempt -lt 3 ]] && tail -n 5 "$dir/postgres.log" | grep -q 'could not bind'; then
            continue
        fi
        tail -n 15 "$dir/postgres.log" >&2
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
        die "the server did not start on 127.0.0.1:$p (log above, full log in $dir/postgres.log)"
    done
}

cmd_stop() {
    local dir="" from_watchdog=0
    while [[ $# -gt 0 ]]; do
        case $1 in
            --dir) dir=${2:?--dir needs a value}; shift 2 ;;
            --from-watchdog) from_watchdog=1; shift ;;
            *) die "stop: unknown option '$1' (see --help)" ;;
        esac
    done
    [[ -n $dir ]] || die "stop needs --dir DIR"
    dir=$(cd "$dir" 2>/dev/null && pwd) || die "stop: no such directory: $dir"
    [[ $from_watchdog -eq 1 ]] || stop_watchdog postgres-watchdog "$dir"
    server_pid "$dir" >/dev/null || return 0
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
        as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 ||
        die "could not stop the server in $dir (see $dir/postgres.log)"
}

cmd_status() {
    [[ $# -eq 2 && $1 == --dir ]] || die "status needs --dir DIR"
    local dir pid
    dir=$(cd "$2" 2>/dev/null && pwd) || die "status: no such directory: $2"
    pid=$(server_pid "$dir") || { echo "postgres.sh: no server running in $dir" >&2; exit 3; }
    print_endpoints "$dir" "$pid"
}

case ${1:-} in
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    status) shift; cmd_status "$@" ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 2 ;;
    *) die "unknown command '$1' (see --help)" ;;
esac
