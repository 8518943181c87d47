#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft) on 127.0.0.1, for tests and local development.
# The jars come from Maven Central through pom.xml; nothing is downloaded by hand.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../watchdog.sh
source "$HERE/../watchdog.sh"
# pom.xml is the one place that names the version.
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/pom.xml")
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${HOTLINE_KPI_CACHE:-$HOME/.cache/hotline-kpi}/kafka-$KAFKA_VERSION
LIB=$CACHE/lib
MARKER=$CACHE/.complete
# kafka-python answers the readiness probe; the project's venv has it.
if [[ -n ${HOTLINE_KPI_PYTHON:-} ]]; then
    PYTHON=$HOTLINE_KPI_PYTHON
elif [[ -x $REPO/.venv/bin/python ]]; then
    PYTHON=$REPO/.venv/bin/python
else
    PYTHON=python3
fi
JAVA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}

usage() {
    cat <<EOF
Usage: $(basename "$0") COMMAND [OPTIONS]

A single-node Apache Kafka $KAFKA_VERSION broker (KRaft, broker+controller) on 127.0.0.1.

Commands:
  fetch                 copy the broker's jars from Maven Central into the cache
                        ($CACHE); skipped when already complete
  start [OPTIONS]       format a new log dir and start a broker in the background; waits
                        until it answers metadata requests, then prints key=value lines:
                          dir=DIR  pid=PID  bootstrap=127.0.0.1:PORT
                          sasl_bootstrap=127.0.0.1:PORT   (with --scram)
      --dir DIR             state directory (default: a new directory under \${TMPDIR:-/tmp});
                            must not hold a broker already (use restart for that)
      --port P              PLAINTEXT port (default: a free port)
      --controller-port P   KRaft controller port (default: a free port)
      --sasl-port P         SASL_PLAINTEXT port with --scram (default: a free port)
      --scram USER[:PASSWORD]
                            add a SASL_PLAINTEXT listener (SCRAM-SHA-256) and create USER;
                            without :PASSWORD the password is read from \$KAFKA_SCRAM_PASSWORD
      --timeout S           seconds to wait for the broker to be ready (default 60)
      --owner-pid PID       stop the broker when process PID exits (a test runner that dies
                            must not leave brokers behind)
  stop --dir DIR        stop the broker (SIGTERM, then SIGKILL after ${STOP_TIMEOUT}s); no-op if stopped
  restart --dir DIR [--timeout S]
                        stop if running, start again with the same data and ports; prints
                        the same lines as start
  status --dir DIR      print the key=value lines and exit 0 if running, exit 3 if not

Files in DIR: server.properties, broker.env (ports), kafka.log (broker log, WARN and up),
format.log (StorageTool output), kafka.pid, data/ (the log dir).

Environment: HOTLINE_KPI_CACHE (cache root, default ~/.cache/hotline-kpi),
HOTLINE_KPI_PYTHON (a Python with kafka-python, default the repository's .venv),
KAFKA_HEAP_OPTS (default "-Xms256m -Xmx512m"), KAFKA_STOP_TIMEOUT (default 30).
EOF
}

die() { echo "kafka.sh: $*" >&2; exit 1; }

require() {
    local cmd=$1 hint=$2
    command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' not found: $hint"
}

# ---------------------------------------------------------------------------------- fetch

pom_digest() { sha256sum "$HERE/pom.xml" | cut -d' ' -f1; }

fetched() { [[ -f $MARKER && $(cat "$MARKER") == "$(pom_digest)" ]]; }

cmd_fetch() {
    [[ $# -eq 0 ]] || die "fetch takes no options (see --help)"
    fetched && return 0
    require mvn "install Maven 3 (Debian: apt-get install maven)"
    require java "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
    mkdir -p "$CACHE"
    # Parallel test runs share the cache: one fetch at a time, the others wait and reuse it.
    exec 9>"$CACHE/.lock"
    flock 9
    if fetched; then exec 9>&-; return 0; fi
    local tmp log
    tmp=$(mktemp -d "$CACHE/lib.tmp.XXXXXX")
    log=$tmp.log
    if ! mvn -q -B -Dstyle.color=never -f "$HERE/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
        cat "$log" >&2
        rm -rf "$tmp" "$log"
        die "mvn could not fetch the Kafka $KAFKA_VERSION jars (output above); is Maven Central reachable?"
    fi
    ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar "$tmp"/log4j-slf4j-impl-*.jar >/dev/null 2>&1 ||
        { rm -rf "$tmp" "$log"; die "mvn succeeded but the Kafka jars are missing from its output"; }
    rm -rf "$LIB" "$log"
    mv "$tmp" "$LIB"
    pom_digest >"$MARKER"
    exec 9>&-
}

# ------------------------------------------------------------------------------- helpers

# Print N distinct free TCP ports on 127.0.0.1 (held open together so they differ).
free_ports() {
    "$PYTHON" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# A random cluster id as StorageTool random-uuid makes it (URL-safe base64 of 16 bytes, never
# starting with "-"), without paying for a JVM start.
cluster_id() {
    "$PYTHON" -c '
import base64, os
while True:
    id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not id.startswith("-"):
        print(id)
        break
'
}

# The PID in DIR/kafka.pid if that process is alive and is this directory's broker.
running_pid() {
    local dir=$1 pid
    [[ -f $dir/kafka.pid ]] || return 1
    pid=$(cat "$dir/kafka.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    # Guard against PID reuse: the process must be kafka.Kafka on this directory's config.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $dir/server.properties" ||
        return 1
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
    echo "$pid"
}

print_endpoints() {
    local dir=$1 pid=$2
    # shellcheck disable=SC1091
    source "$dir/broker.env"
    echo "dir=$dir"
    echo "pid=$pid"
    echo "bootstrap=127.0.0.1:$PORT"
    [[ -z ${SASL_PORT:-} ]] || echo "sasl_bootstrap=127.0.0.1:$SASL_PORT"
}

write_properties() {
    local dir=$1 port=$2 cport=$3 sport=$4
    local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
    local advertised="PLAINTEXT://127.0.0.1:$port"
    if [[ -n $sport ]]; then
        listeners+=",SASL_PLAINTEXT://127.0.0.1:$sport"
        advertised+=",SASL_PLAINTEXT://127.0.0.1:$sport"
    fi
    cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka/kafka.sh: a single-node KRaft broker for tests, on 127.0.0.1 only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
EOF
    if [[ -n $sport ]]; then
        cat >>"$dir/server.properties" <<'EOF'
sasl.enabled.mechanisms=SCRAM-SHA-256
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
    fi
    printf 'PORT=%s\nCONTROLLER_PORT=%s\nSASL_PORT=%s\n' "$port" "$cport" "$sport" >"$dir/broker.env"
}

# Set JAVA to the java command line for the broker (BROKER) or a short-lived tool (TOOL).
java_args() {
    local -a heap
    if [[ $1 == BROKER ]]; then read -r -a heap <<<"$JAVA_HEAP_OPTS"; else heap=(-Xmx256m); fi
    JAVA=(java "${heap[@]}" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
        "-Dlog4j2.configurationFile=$HERE/log4j2.properties" -cp "$LIB/*")
}

# Launch the broker on DIR's existing config, detached from the caller's session and pipes
# (a caller reading our stdout must not wait for the broker).
launch() {
    local dir=$1
    java_args BROKER
    echo "--- $(date -Is) start" >>"$dir/kafka.log"
    setsid "${JAVA[@]}" kafka.Kafka "$dir/server.properties" </dev/null >>"$dir/kafka.log" 2>&1 &
    echo $! >"$dir/kafka.pid"
}

# Wait until the broker answers a metadata request. Exit 0 ready, 2 timeout, 3 process died.
wait_ready() {
    local dir=$1 timeout=$2 pid
    pid=$(cat "$dir/kafka.pid")
    # shellcheck disable=SC1091
    source "$dir/broker.env"
    "$PYTHON" - "127.0.0.1:$PORT" "$pid" "$timeout" <<'PY'
import logging, os, sys, time

logging.disable(logging.CRITICAL)  # connection-refused noise while the broker boots
try:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError
except ImportError:
    sys.exit("kafka.sh: kafka-python is not importable by %s; set HOTLINE_KPI_PYTHON" % sys.executable)

bootstrap, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout

def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

while True:
    if not alive():
        sys.exit(3)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        sys.exit(2)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            bootstrap_timeout_ms=int(max(200, min(2000, remaining * 1000))),
            request_timeout_ms=2000,
            reconnect_backoff_ms=100,
            reconnect_backoff_max_ms=200,
        )
        try:
            if admin.describe_cluster()["brokers"]:
                sys.exit(0)
        finally:
            admin.close()
    except KafkaError:
        pass
    time.sleep(0.2)
PY
}

log_tail() { tail -n 30 "$1/kafka.log" >&2 2>/dev/null || true; }

bind_failed() { tail -n 60 "$1/kafka.log" 2>/dev/null | grep -qiE 'address already in use|BindException'; }

# Start the watchdog that stops DIR's broker once OWNER exits.
watch_broker_owner() {
    local dir=$1 owner=$2
    [[ -n $owner ]] || return 0
    kill -0 "$owner" 2>/dev/null || die "--owner-pid $owner: no such process"
    watch_owner kafka-watchdog "$HERE/kafka.sh" "$dir" "$owner" "$dir/kafka.log"
}

# ---------------------------------------------------------------------------------- start

cmd_start() {
    local dir="" port="" cport="" sport="" scram="" timeout=60 owner=""
    while [[ $# -gt 0 ]]; do
        case $1 in
            --dir) dir=${2:?--dir needs a value}; shift 2 ;;
            --port) port=${2:?--port needs a value}; shift 2 ;;
            --controller-port) cport=${2:?--controller-port needs a value}; shift 2 ;;
            --sasl-port) sport=${2:?--sasl-port needs a value}; shift 2 ;;
            --scram) scram=${2:?--scram needs USER[:PASSWORD]}; shift 2 ;;
            --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
            --owner-pid) owner=${2:?--owner-pid needs a PID}; shift 2 ;;
            *) die "start: unknown option '$1' (see --help)" ;;
        esac
    done
    local user="" password=""
    if [[ -n $scram ]]; then
        if [[ $scram == *:* ]]; then
            user=${scram%%:*} password=${scram#*:}
        else
            user=$scram password=${KAFKA_SCRAM_PASSWORD:-}
        fi
        [[ -n $user && -n $password ]] ||
            die "--scram needs USER:PASSWORD, or USER with KAFKA_SCRAM_PASSWORD set"
        [[ $user$password != *[\"\\\]\[,=]* ]] ||
            die "--scram: the user and password must not contain \" \\ [ ] , or ="
    fi
    for p in "$port" "$cport" "$sport" "$timeout"; do
        [[ -z $p || $p =~ ^[0-9]+$ ]] || die "start: '$p' is not a number"
    done

    require java "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
    cmd_fetch

    if [[ -z $dir ]]; then
        dir=$(mktemp -d "${TMPDIR:-/tmp}/hotline-kpi-kafka.XXXXXX")
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ ! -e $dir/server.properties ]] ||
        die "$dir already holds a broker: use 'restart --dir $dir' to keep its data, or remove it"

    local fixed_ports=0
    [[ -n $port || -n $cport || -n $sport ]] && fixed_ports=1
    local attempt rc id
    for attempt in 1 2 3; do
        local -a picked
        read -r -a picked <<<"$(free_ports 3)"
        local p=${port:-${picked[0]}} c=${cport:-${picked[1]}} s=""
        [[ -z $scram ]] || s=${sport:-${picked[2]}}
        rm -rf "$dir/data"
        write_properties "$dir" "$p" "$c" "$s"
        id=$(cluster_id)
        java_args TOOL
        local -a format=(kafka.tools.StorageTool format --ignore-formatted -t "$id" -c "$dir/server.properties")
        [[ -z $scram ]] || format+=(--add-scram "SCRAM-SHA-256=[name=\"$user\",password=\"$password\"]")
        if ! "${JAVA[@]}" "${format[@]}" >"$dir/format.log" 2>&1; then
            tail -n 30 "$dir/format.log" >&2
            die "formatting the log dir failed (output above, in $dir/format.log)"
        fi
        launch "$dir"
        rc=0
        wait_ready "$dir" "$timeout" || rc=$?
        case $rc in
            0)
                watch_broker_owner "$dir" "$owner"
                print_endpoints "$dir" "$(cat "$dir/kafka.pid")"
                return 0
                ;;
            3)
                # Another process may have taken a picked port in between: pick again.
                if [[ $fixed_ports -eq 0 && $attempt -lt 3 ]] && bind_failed "$dir"; then
                    continue
                fi
                log_tail "$dir"
                rm -f "$dir/server.properties" "$dir/broker.env"
                bind_failed "$dir" && die "the broker exited at startup: port in use (${p}, ${c}${s:+, $s}); full log in $dir/kafka.log"
                die "the broker exited during startup (log above, full log in $dir/kafka.log)"
                ;;
            2)
                cmd_stop --dir "$dir" >/dev/null 2>&1 || true
                log_tail "$dir"
                rm -f "$dir/server.properties" "$dir/broker.env"
                die "the broker did not answer metadata within ${timeout}s (log above, full log in $dir/kafka.log)"
                ;;
            *) cmd_stop --dir "$dir" >/dev/null 2>&1 || true; exit "$rc" ;;
        esac
    done
}

# ----------------------------------------------------------------------------- stop, restart

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
    [[ -d $dir ]] || die "stop: no such directory: $dir"
    dir=$(cd "$dir" && pwd)
    [[ $from_watchdog -eq 1 ]] || stop_watchdog kafka-watchdog "$dir"
    stop_broker "$dir"
}

stop_broker() {
    local dir=$1 pid waited=0
    pid=$(running_pid "$dir") || { rm -f "$dir/kafka.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    while running_pid "$dir" >/dev/null; do
        if [[ $waited -ge $((STOP_TIMEOUT * 10)) ]]; then
            echo "kafka.sh: broker $pid did not stop within ${STOP_TIMEOUT}s, killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$dir/kafka.pid"
}

cmd_restart() {
    local dir="" timeout=60
    while [[ $# -gt 0 ]]; do
        case $1 in
            --dir) dir=${2:?--dir needs a value}; shift 2 ;;
            --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
            *) die "restart: unknown option '$1' (see --help)" ;;
        esac
    done
    [[ -n $dir ]] || die "restart needs --dir DIR"
    [[ -f $dir/server.properties && -f $dir/broker.env ]] ||
        die "restart: $dir holds no broker (use start)"
    dir=$(cd "$dir" && pwd)
    fetched || die "restart: the Kafka jars are missing from $LIB (run: $0 fetch)"
    # The watchdog, if any, keeps watching: it stops whatever broker DIR holds.
    stop_broker "$dir"
    launch "$dir"
    local rc=0
    wait_ready "$dir" "$timeout" || rc=$?
    case $rc in
        0) print_endpoints "$dir" "$(cat "$dir/kafka.pid")" ;;
        3) log_tail "$dir"; die "the broker exited during restart (log above, full log in $dir/kafka.log)" ;;
        2)
            stop_broker "$dir"
            log_tail "$dir"
            die "the restarted broker did not answer metadata within ${timeout}s (log above)"
            ;;
        *) stop_broker "$dir"; exit "$rc" ;;
    esac
}

cmd_status() {
    [[ $# -eq 2 && $1 == --dir ]] || die "status needs --dir DIR"
    local dir pid
    dir=$(cd "$2" 2>/dev/null && pwd) || die "status: no such directory: $2"
    pid=$(running_pid "$dir") || { echo "kafka.sh: no broker running in $dir" >&2; exit 3; }
    print_endpoints "$dir" "$pid"
}

case ${1:-} in
    fetch) shift; cmd_fetch "$@" ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    restart) shift; cmd_restart "$@" ;;
    status) shift; cmd_status "$@" ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 2 ;;
    *) die "unknown command '$1' (see --help)" ;;
esac
