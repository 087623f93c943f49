#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 20) each, from a copy of its seed corpus, so the
# tree's corpus stays small. Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`).
# A crash leaves its input in fuzz/artifacts/TARGET/ and fails the run.
#
#   fuzz/run.sh [SECONDS] [-O | --dev]
#
# `-O` (the default) builds optimised; `--dev` builds without optimisation: 1 min 29 s instead
# of 3 min 28 s from a cold target directory on 2 cores, for 3 to 6 times fewer executions per
# second. `.ci/run` uses `--dev` for its brief runs; long runs want `-O`.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
mode="${2:--O}"
case "$mode" in
    -O | --dev) ;;
    *) echo "usage: fuzz/run.sh [SECONDS] [-O | --dev]" >&2; exit 2 ;;
esac
cargo +nightly fuzz build "$mode"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in $(cargo +nightly fuzz list); do
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "$work/$target"
    leaks=1
    # http_connection keeps one server (its runtime's threads and buffers) for the whole run on
    # purpose; LeakSanitizer would report those at exit.
    [ "$target" = http_connection ] && leaks=0
    ASAN_OPTIONS="detect_leaks=$leaks" cargo +nightly fuzz run "$mode" "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -detect_leaks="$leaks" -print_final_stats=1 2>&1 \
        | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)|SUMMARY|panicked|ERROR' || true
    if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
        echo "fuzz target $target crashed; inputs in fuzz/artifacts/$target" >&2
        exit 1
    fi
done
