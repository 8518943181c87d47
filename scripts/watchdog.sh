# Sourced by scripts/kafka/kafka.sh and scripts/postgres.sh: a watchdog that stops a service
# once the process that owns it (a test runner, say) exits, so that no server outlives it.

# watch_owner NAME SCRIPT DIR OWNER LOG: when OWNER exits, run `SCRIPT stop --dir DIR
# --from-watchdog`; the watchdog's own output goes to LOG. Its pid is kept in DIR/watchdog.pid.
watch_owner() {
    local name=$1 script=$2 dir=$3 owner=$4 log=$5
    [[ -n $owner ]] || return 0
    setsid bash -c '
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        exec "$2" stop --dir "$3" --from-watchdog
    ' "$name" "$owner" "$script" "$dir" </dev/null >>"$log" 2>&1 &
    echo $! >"$dir/watchdog.pid"
}

# stop_watchdog NAME DIR: stop DIR's watchdog, if it is still the process named NAME.
stop_watchdog() {
    local name=$1 dir=$2 pid
    [[ -f $dir/watchdog.pid ]] || return 0
    pid=$(cat "$dir/watchdog.pid")
    if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$name"; then
        kill "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/watchdog.pid"
}
