#!/usr/bin/env bash
# What metrics and the access log cost, in requests per CPU-second of the proxy (the measure issue 19's
# budget is stated in: metrics and the log together at most 5%, metrics alone at most 2%). About two
# and a half minutes after the build.
#
#   benches/load/log_cost.sh                  HTTP/1.1 (wrk) and h2c (h2load), 5 rounds of 3 s each
#   ROUNDS=9 DURATION=5 benches/load/log_cost.sh   more and longer rounds
#   TOGETHER=1 benches/load/log_cost.sh       each configuration's run at the same time as a run of
#                                             the reference (both proxies loaded at once), rather than
#                                             one after the other: on a machine shared with other
#                                             work both then see the same load
#   BASE_BIN=path benches/load/log_cost.sh    adds that build with the log off as a fourth proxy: a
#                                             build without metrics (commit 2061c0c, the last before
#                                             them) shows what metrics alone cost, since metrics
#                                             cannot be turned off in the config
#
# One proxy per configuration (metrics with the log off, the reference; metrics and a JSON log to a
# file; metrics and a combined log to a file), each with its own spawngate-echo backend, all started
# up front; each round runs each load against each proxy in turn. CPU is the proxy process's, every
# thread, user and system (the log's writer thread and its write(2)s included), read from /proc around
# each run. The log files are in a scratch directory under /tmp (emptied after each run, removed at the
# end). Installs wrk and h2load from Debian when missing (root or sudo). Everything runs on 127.0.0.1.
# Run it on a quiet machine: other work on the same cores moves every figure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

# shellcheck source=packages.sh
source "$here/packages.sh"
install_missing wrk=wrk h2load=nghttp2-client python3=python3

(cd "$repo" && cargo build --release --quiet --bin spawngate --bin spawngate-echo)
binary="${SPAWNGATE_BIN:-$repo/target/release/spawngate}"
echo_backend="$repo/target/release/spawngate-echo"

scratch="$(mktemp -d /tmp/spawngate-log-cost.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
python3 "$here/log_cost.py" "$scratch" "$binary" "$echo_backend" ${BASE_BIN:+"$BASE_BIN"}
