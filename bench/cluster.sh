#!/bin/sh
# Starts a throwaway Redis (no persistence) and N smolchat nodes joined to it, on loopback, for
# the cluster benchmark; prints the comma-separated node addresses for `smolchat-bench --addr`
# and waits. Ctrl-C (or killing this script) stops them all.
#
#   bench/cluster.sh [NODES] [SMOLCHAT] [REDIS_PORT]
#   defaults: 2 nodes, target/release/smolchat, port 6390
set -eu
nodes=${1:-2}
smolchat=${2:-target/release/smolchat}
port=${3:-6390}
dir=$(mktemp -d /tmp/smolchat-cluster.XXXXXX)
pids=""
cleanup() {
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    >"$dir/redis.log" 2>&1 &
pids="$pids $!"
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
addrs=""
i=1
while [ "$i" -le "$nodes" ]; do
    "$smolchat" --listen 127.0.0.1:0 --db "$dir/n$i.db" --cluster "redis://127.0.0.1:$port" \
        --node "n$i" --rate-per-sec 0 --max-clients 20000 --log-level warn \
        >"$dir/n$i.out" 2>"$dir/n$i.log" &
    pids="$pids $!"
    until grep -q '^listening on ' "$dir/n$i.out" 2>/dev/null; do sleep 0.1; done
    addr=$(sed -n 's/^listening on //p' "$dir/n$i.out")
    addrs="${addrs:+$addrs,}$addr"
    i=$((i + 1))
done
echo "redis 127.0.0.1:$port; nodes (pids$pids): $addrs"
echo "$addrs" >"$dir/addrs"
echo "addresses also in $dir/addrs; Ctrl-C stops everything"
wait
