#!/usr/bin/env bash
# One sitting of the performance comparison in docs/PERFORMANCE.md: smolchat and the floor relay
# alternately, each run on a fresh server (and database), the server's exit timed after SIGTERM.
#
#   bench/sitting.sh SMOLCHAT_BIN FLOOR_BIN BENCH_BIN OUT_DIR [RUNS] [OLD_SMOLCHAT_BIN]
#
# With OLD_SMOLCHAT_BIN, an older build is measured too, in the same rotation, labelled `old`.
# Every line of OUT_DIR/results.txt is
# `label scenario run load=L1,L5,L15 RESULT...  exit=STATUS exit_ms=MS` (load averages just before).
#
# The big room (issue 23: 5,000 clients, 20 of them sending 10 lines/s for 30 s) runs for every
# label; BIG_ROOM=0 leaves it out. With DOORS=1 smolchat also listens on its IRC and web doors
# (--irc-listen, --web-listen) and each run adds the mixed rooms (1,000 clients, half nc and half
# IRC, then half nc and half web, beside the nc-only fanout1000 of the same run) and idle memory
# per IRC and per web user.
#
# FLOOR_DURABLE=1 adds the floor in its `durable` mode (every line appended to a file and
# fdatasync'ed once per loop turn before anything is relayed: the floor for "stored before
# relayed"), labelled `floor-durable`. ONLY="fanout100 ..." runs only the scenarios named
# (fanout1000 fanout100 idle5000 bigroom5000 storm15000, and the doors' four).
#
# Open files: the hard limit here is 20,000 per process. The bench and the server each hold one
# descriptor per client (5,000 in the big room, 15,000 in the storm) plus a few dozen of their
# own, so each stays under it.
set -u
S=$1; F=$2; B=$3; OUT=$4; RUNS=${5:-3}; OLD=${6:-}
mkdir -p "$OUT"
ulimit -n 20000 || { echo "cannot raise the open file limit to 20000" >&2; exit 1; }

# Starts smolchat on a free port; sets PID and ADDR, and with DOORS=1 (the new build only)
# IRC_ADDR and WEB_ADDR from its `listening for IRC on ADDR` and `listening for web on ADDR`.
start_smolchat() { # binary [extra flags...]
    local binary=$1; shift
    # The last server's address must not be read while the new one starts.
    rm -f "$OUT/db"* "$OUT/server.out"
    "$binary" --listen 127.0.0.1:0 --db "$OUT/db" --rate-per-sec 0 --max-clients 20000 \
        --log-level warn "$@" >"$OUT/server.out" 2>>"$OUT/server.log" &
    PID=$!
    IRC_ADDR=; WEB_ADDR=
    for _ in $(seq 100); do
        ADDR=$(sed -n 's/^listening on \([0-9.:]*\)$/\1/p' "$OUT/server.out")
        IRC_ADDR=$(sed -n 's/^listening for IRC on \([0-9.:]*\)$/\1/p' "$OUT/server.out")
        WEB_ADDR=$(sed -n 's/^listening for web on \([0-9.:]*\)$/\1/p' "$OUT/server.out")
        if [ -n "$ADDR" ] && { [ $# = 0 ] || { [ -n "$IRC_ADDR" ] && [ -n "$WEB_ADDR" ]; }; }; then
            return
        fi
        sleep 0.1
    done
    echo "smolchat did not start (or did not print its IRC and web addresses)" >&2; exit 1
}

start_floor() { # [mode]
    PORT=$((7200 + RANDOM % 500))
    rm -f "$OUT/floor-durable.log"
    "$F" "$PORT" "${1:-batch}" "$OUT/floor-durable.log" >/dev/null 2>&1 &
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
        doors) start_smolchat "$S" --irc-listen 127.0.0.1:0 --web-listen 127.0.0.1:0 ;;
        old) start_smolchat "$OLD" ;;
        floor) target=floor; start_floor ;;
        floor-durable) target=floor; start_floor durable ;;
    esac
    local result doors=() load
    # The machine is shared: the load average before each run goes beside its result.
    load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)
    [ "$label" = doors ] && doors=(--irc-addr "$IRC_ADDR" --web-addr "$WEB_ADDR")
    result=$(timeout 1000 "$B" --addr "$ADDR" "${doors[@]}" --server-pid "$PID" \
        --target "$target" --timeout-secs 900 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep '^RESULT')
    # Not in $(...): a subshell cannot wait for the server.
    stop >"$OUT/stop.txt"
    echo "$label $name $run load=$load $result $(cat "$OUT/stop.txt")" | tee -a "$OUT/results.txt"
}

# Whether scenario $1 is to run (ONLY unset, or naming it).
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

labels="smolchat floor"
[ "${FLOOR_DURABLE:-0}" = 1 ] && labels="$labels floor-durable"
[ -n "$OLD" ] && labels="$labels old"
for run in $(seq "$RUNS"); do
    for label in $labels; do
        want fanout1000 && one "$label" fanout1000 fanout
        want fanout100 && one "$label" fanout100 fanout --clients 100 --senders 10 --lines 2000
        want idle5000 && one "$label" idle5000 idle --clients 5000
        [ "${BIG_ROOM:-1}" = 1 ] && want bigroom5000 && one "$label" bigroom5000 fanout \
            --clients 5000 --senders 20 --rate 10 --duration-secs 30
    done
    if [ "${DOORS:-0}" = 1 ]; then
        # The same server build, listening on its doors too; compare with smolchat fanout1000.
        want fanout1000-nc-irc && one doors fanout1000-nc-irc fanout --mix nc=50,irc=50
        want fanout1000-nc-web && one doors fanout1000-nc-web fanout --mix nc=50,web=50
        want idle5000-irc && one doors idle5000-irc idle --clients 5000 --transport irc
        want idle5000-web && one doors idle5000-web idle --clients 5000 --transport web
    fi
    want storm15000 && one smolchat storm15000 idle --clients 15000 --hold-secs 1
    # The old build takes minutes per 15,000-client storm: only with OLD_STORM=1.
    [ -n "$OLD" ] && [ "${OLD_STORM:-0}" = 1 ] && want storm15000 && \
        one old storm15000 idle --clients 15000 --hold-secs 1
done
