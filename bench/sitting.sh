#!/usr/bin/env bash
# One sitting of the performance comparison in docs/PERFORMANCE.md: smolchat and the floor relay
# alternately, each run on a fresh server (and database), the server's exit timed after SIGTERM.
#
#   bench/sitting.sh SMOLCHAT_BIN FLOOR_BIN BENCH_BIN OUT_DIR [RUNS] [OLD_SMOLCHAT_BIN]
#
# With OLD_SMOLCHAT_BIN, an older build is measured too, in the same rotation, labelled `old`.
# Every line of OUT_DIR/results.txt is `label scenario run RESULT...  exit=STATUS exit_ms=MS`.
set -u
S=$1; F=$2; B=$3; OUT=$4; RUNS=${5:-3}; OLD=${6:-}
mkdir -p "$OUT"
ulimit -n 20000

# Starts smolchat on a free port; sets PID and ADDR.
start_smolchat() { # binary
    rm -f "$OUT/db"*
    "$1" --listen 127.0.0.1:0 --db "$OUT/db" --rate-per-sec 0 --max-clients 20000 \
        --log-level warn >"$OUT/server.out" 2>>"$OUT/server.log" &
    PID=$!
    for _ in $(seq 100); do
        ADDR=$(grep -o 'listening on [0-9.:]*' "$OUT/server.out" | cut -d' ' -f3)
        [ -n "$ADDR" ] && return
        sleep 0.1
    done
    echo "smolchat did not start" >&2; exit 1
}

start_floor() {
    PORT=$((7200 + RANDOM % 500))
    "$F" "$PORT" batch >/dev/null 2>&1 &
    PID=$!
    ADDR=127.0.0.1:$PORT
    sleep 0.3
}

# Sends SIGTERM and prints the exit status and how long the exit took.
stop() {
    local t0 t1 status
    t0=$(date +%s%N)
    kill -TERM "$PID"
    wait "$PID"; status=$?
    t1=$(date +%s%N)
    echo "exit=$status exit_ms=$(( (t1 - t0) / 1000000 ))"
}

one() { # label scenario bench-args...
    local label=$1 name=$2 target=smolchat; shift 2
    case $label in
        smolchat) start_smolchat "$S" ;;
        old) start_smolchat "$OLD" ;;
        floor) target=floor; start_floor ;;
    esac
    local result
    result=$(timeout 1000 "$B" --addr "$ADDR" --server-pid "$PID" --target "$target" \
        --timeout-secs 900 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep '^RESULT')
    # Not in $(...): a subshell cannot wait for the server.
    stop >"$OUT/stop.txt"
    echo "$label $name $run $result $(cat "$OUT/stop.txt")" | tee -a "$OUT/results.txt"
}

labels="smolchat floor${OLD:+ old}"
for run in $(seq "$RUNS"); do
    for label in $labels; do
        one "$label" fanout1000 fanout
        one "$label" fanout100 fanout --clients 100 --senders 10 --lines 2000
        one "$label" idle5000 idle --clients 5000
    done
    one smolchat storm15000 idle --clients 15000 --hold-secs 1
    # The old build takes minutes per 15,000-client storm: only with OLD_STORM=1.
    [ -n "$OLD" ] && [ "${OLD_STORM:-0}" = 1 ] && one old storm15000 idle --clients 15000 --hold-secs 1
done
