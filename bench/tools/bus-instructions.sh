#!/bin/bash
# Instructions per 64-byte publish, and per request/reply round trip, through each side of the
# `bus` suite (plain async-nats on tokio, ginkgo's Bus on tokio, on smol), counted by
# callgrind: deterministic, unlike the timings on a shared machine. Needs valgrind and
# nats-server on PATH.
#
#   cargo build --release -p ginkgo-bench
#   bench/tools/bus-instructions.sh
#
# Each side publishes 20,000 and then 100,000 messages to a local nats-server (and makes 2,000
# and then 10,000 requests to a responder in its process); the difference of the two totals,
# divided by the difference of the counts, leaves out start-up, connection and shutdown. Every
# thread is counted (the connection's tasks and the responder too, the same work on every
# side). User space only: system calls are not counted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN:-$here/../../target/release/ginkgo-bench}
out=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -a 127.0.0.1 -p "$port" >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done
total() {
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1.$2$3" "$bin" bus-publish "$1" \
        "nats://127.0.0.1:$port" "$2" $3 2>"$out/err.$1.$2$3"
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/err.$1.$2$3"
}
for side in async-nats tokio smol; do
    small=$(total "$side" 20000 "")
    large=$(total "$side" 100000 "")
    echo "$side: $(( (large - small) / 80000 )) instructions per publish"
    small=$(total "$side" 2000 --requests)
    large=$(total "$side" 10000 --requests)
    echo "$side: $(( (large - small) / 8000 )) instructions per request/reply"
done
echo "(callgrind files in $out)"
