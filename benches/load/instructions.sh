#!/usr/bin/env bash
# Instructions per proxied request in Spawngate's own process, counted by callgrind: the noise-free
# companion of run.sh. On a shared two-core VM, throughput swings by a fifth between rounds a few seconds
# apart; the instruction count of the same binary does not move by more than a few tenths of a percent, so
# this is what to compare when judging a change to a hot path. It counts user space only: the kernel's
# share (about half of the proxy's CPU on loopback) is the same for every change that keeps the system
# calls the same. Callgrind counts each byte of a rep-prefixed string instruction (how libc does large
# memset and memcpy) as one instruction, so those weigh far more here than in time: zeroing a 16 KiB read
# buffer shows as 16k instructions but takes about 0.2 us.
#
#   benches/load/instructions.sh                 h2c (16 connections x 16 streams) and HTTP/1.1 keep-alive
#   REQUESTS=50000 benches/load/instructions.sh  more requests per measurement (default 20000)
#   SPAWNGATE_BIN=path benches/load/instructions.sh   another build (for example an older commit's)
#   ACCESS_LOG=json benches/load/instructions.sh an access log (json or combined) written to a file, to
#                                                count what logging adds (the writer thread included)
#   KEEP=1 benches/load/instructions.sh          keep the dumps, for callgrind_annotate (a build with
#                                                symbols helps: CARGO_PROFILE_RELEASE_STRIP=false
#                                                CARGO_PROFILE_RELEASE_DEBUG=1)
#
# Installs valgrind and h2load from Debian when missing (root or sudo). The backend is spawngate-echo,
# started by the proxy on the first request. Callgrind runs the proxy about fifty times slower, so the
# absolute count includes more event-loop turns per request than at full speed; compare counts with
# each other, not with run.sh's CPU times. Everything runs on 127.0.0.1 and stops when the script ends.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
requests="${REQUESTS:-20000}"

# shellcheck source=packages.sh
source "$here/packages.sh"
install_missing valgrind=valgrind h2load=nghttp2-client curl=curl python3=python3

(cd "$repo" && cargo build --release --quiet --bin spawngate --bin spawngate-echo)
binary="${SPAWNGATE_BIN:-$repo/target/release/spawngate}"
echo_backend="$repo/target/release/spawngate-echo"

scratch="$(mktemp -d /tmp/spawngate-instructions.XXXXXX)"
proxy_pid=""
cleanup() {
    if [ -n "$proxy_pid" ]; then
        kill -TERM "$proxy_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$proxy_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$proxy_pid" 2>/dev/null || true
    fi
    if [ -n "${KEEP:-}" ]; then
        echo "dumps kept in $scratch (one callgrind.<pid>.<n> per measurement, in the order above)"
    else
        rm -rf "$scratch"
    fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port="$(free_port)"
admin_port="$(free_port)"
backend_port="$(free_port)"
cat >"$scratch/spawngate.toml" <<EOF
[server]
port = $port
bind = "127.0.0.1"
admin_port = $admin_port
pool_max_idle_per_host = 256
${ACCESS_LOG:+access_log = \"$scratch/access.log\"
access_log_format = \"$ACCESS_LOG\"}

[backends."bench.localhost"]
command = "$echo_backend"
port = $backend_port
idle_timeout_secs = 3600
EOF

valgrind --tool=callgrind --callgrind-out-file="$scratch/callgrind.%p" \
    "$binary" "$scratch/spawngate.toml" >"$scratch/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$admin_port/health" && break
    sleep 0.1
done
curl -s -o /dev/null -H 'Host: bench.localhost' "http://127.0.0.1:$port/"

# Warm up (pools filled, tables grown), zero the counters, measure, dump; the dump holds only the
# measured requests.
measure() {
    local name="$1"
    shift
    h2load -n 2000 "$@" >/dev/null
    callgrind_control --zero "$proxy_pid" >/dev/null 2>&1
    local out
    out="$(h2load -n "$requests" "$@")"
    if ! grep -q "succeeded, 0 failed, 0 errored" <<<"$out"; then
        echo "$name: not every request succeeded:" >&2
        grep -E "^requests:|^status codes:" <<<"$out" >&2
        exit 1
    fi
    local before
    before="$(ls "$scratch"/callgrind.* 2>/dev/null | wc -l)"
    callgrind_control --dump "$proxy_pid" >/dev/null 2>&1
    local dump=""
    for _ in $(seq 1 100); do
        dump="$(ls -t "$scratch"/callgrind.*.* 2>/dev/null | head -1)"
        [ "$(ls "$scratch"/callgrind.* | wc -l)" -gt "$before" ] && break
        sleep 0.1
    done
    local total
    total="$(awk '/^summary:/ { print $2 }' "$dump")"
    printf '%-34s %8d instructions per request (%d requests)\n' "$name" $((total / requests)) "$requests"
}

measure "h2c, 16 connections x 16 streams" \
    -c16 -m16 -t1 -H ":authority: bench.localhost" "http://127.0.0.1:$port/"
measure "HTTP/1.1 keep-alive, 16 connections" \
    --h1 -c16 -t1 -H ":authority: bench.localhost" "http://127.0.0.1:$port/"
