#!/usr/bin/env bash
# Load comparison: Spawngate, nginx and HAProxy in front of the same nginx backend, on 127.0.0.1 only.
#
#   benches/load/run.sh            full run (about 9 minutes)
#   QUICK=1 benches/load/run.sh    smoke run (about 3 minutes)
#   ONLY=https benches/load/run.sh the HTTPS rows alone (about 2 minutes; with QUICK=1 about 1)
#   SPAWNGATE_BIN=/path/to/spawngate benches/load/run.sh   measure that build instead of building one
#                                  (one built without the tls feature skips the HTTPS rows)
#
# Installs nginx, haproxy, wrk, h2load and openssl from Debian when missing (needs root or sudo), builds
# the release binary with HTTPS (--features tls), runs driver.py and writes
# bench-results/<timestamp>.md and .json in the repository.
# Every process it starts is stopped when it exits, however it exits.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

# shellcheck source=packages.sh
source "$here/packages.sh"
install_missing nginx=nginx haproxy=haproxy wrk=wrk taskset=util-linux h2load=nghttp2-client python3=python3 openssl=openssl
# Debian starts the packaged services where an init system runs; they are not used (each server
# here has its own config and ports), and are left as they are.

if [ -n "${SPAWNGATE_BIN:-}" ]; then
    # Another build to compare (e.g. one made from an older commit in a worktree).
    binary="$SPAWNGATE_BIN"
    echo "building spawngate-echo (release), the WebSocket echo backend"
    (cd "$repo" && cargo build --release --quiet --bin spawngate-echo)
else
    echo "building spawngate (with HTTPS) and spawngate-echo (release)"
    (cd "$repo" && cargo build --release --quiet --features tls --bins)
    binary="$repo/target/release/spawngate"
fi
# The WebSocket echo backend, the same program behind all three proxies.
export SPAWNGATE_ECHO_BIN="$repo/target/release/spawngate-echo"

scratch="$(mktemp -d /tmp/spawngate-bench.XXXXXX)"
driver_pid=""
cleanup() {
    local status=$?
    if [ -n "$driver_pid" ]; then
        # The driver stops its servers on SIGTERM; whatever is left in its process group after a
        # grace period (or after a driver that died without cleaning up) is killed.
        if kill -0 "$driver_pid" 2>/dev/null; then
            kill -TERM "$driver_pid" 2>/dev/null || true
            for _ in $(seq 1 200); do
                kill -0 "$driver_pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
        kill -KILL -- "-$driver_pid" 2>/dev/null || true
    fi
    if [ "$status" -eq 0 ]; then
        rm -rf "$scratch"
    else
        echo "run failed; configs and server logs kept in $scratch" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# The driver puts itself in a process group of its own, so the trap can reach all it started.
PYTHONDONTWRITEBYTECODE=1 python3 "$here/driver.py" "$scratch" "$binary" "$repo/bench-results" &
driver_pid=$!
wait "$driver_pid"
