#!/bin/bash
# Instructions per HTTP request of one `ginkgo-bench http-serve` server, counted by callgrind
# (deterministic, unlike timings on a shared machine). Needs valgrind and python3.
#
#   cargo build --release -p ginkgo-bench
#   bench/tools/http-instructions.sh tokio     # or axum, smol, async-std, threads
#
# The server is run twice, serving 64 x 50 and then 64 x 250 keep-alive `GET /` requests
# (bench/tools/requests.py); the difference of the two totals, divided by 12,800, leaves out
# start-up and shutdown. User space only: system calls are not counted.
set -euo pipefail
server=${1:?usage: http-instructions.sh SERVER}
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN:-$here/../../target/release/ginkgo-bench}
out=$(mktemp -d)
total() {
    coproc SRV { exec valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1" "$bin" http-serve "$server" 2>"$out/err.$1"; }
    read -r addr <&"${SRV[0]}"
    python3 "$here/requests.py" "$addr" 64 "$1"
    exec {SRV[1]}>&-
    wait "$SRV_PID"
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/err.$1"
}
small=$(total 50)
large=$(total 250)
echo "$server: $(( (large - small) / 12800 )) instructions per request (callgrind files in $out)"
