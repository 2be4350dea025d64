#!/usr/bin/env bash
# Cold-start latency that Spawngate adds, p50 and p99, for backends taking 50 ms, 300 ms, 1 s and 3 s to
# start, with and without socket activation, over HTTP/1 and h2c, against a client that polls the same
# backend directly every 1 ms; and the proxy's CPU seconds while a backend takes 10 s to start.
#
#   benches/coldstart/run.sh            about 2.5 minutes (5 cold starts per row)
#   TRIALS=3 benches/coldstart/run.sh   fewer starts per row
#   SPAWNGATE_BIN=... ECHO_BIN=...      measure those builds instead of building release ones
#
# Everything listens on and targets 127.0.0.1 only; every process it starts is stopped when it ends.
# Prints a markdown table (progress goes to stderr).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

if [ -z "${SPAWNGATE_BIN:-}" ] || [ -z "${ECHO_BIN:-}" ]; then
    echo "building spawngate and spawngate-echo (release)" >&2
    (cd "$repo" && cargo build --release --quiet --bin spawngate --bin spawngate-echo)
fi
binary="${SPAWNGATE_BIN:-$repo/target/release/spawngate}"
echo_bin="${ECHO_BIN:-$repo/target/release/spawngate-echo}"

scratch="$(mktemp -d /tmp/spawngate-coldstart.XXXXXX)"
bench_pid=""
cleanup() {
    local status=$?
    if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
        kill -TERM "$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
    fi
    if [ "$status" -eq 0 ]; then
        rm -rf "$scratch"
    else
        echo "run failed; config and proxy log kept in $scratch" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Bounded: each request has a 30 s timeout and the run has 5 minutes.
PYTHONDONTWRITEBYTECODE=1 timeout --signal=TERM 300 \
    python3 "$here/coldstart.py" "$binary" "$echo_bin" "$scratch" "$repo" &
bench_pid=$!
wait "$bench_pid"
