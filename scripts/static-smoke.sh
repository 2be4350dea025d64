#!/usr/bin/env bash
# Builds the static release binary and runs a subset of the integration tests against it instead of the
# debug build: cold start, forwarding, idle stop, SIGTERM and SIGKILL, reload, the admin API.
#
# The tests themselves are the ordinary ones (debug test binaries, debug spawngate-echo backend); only the
# proxy they start changes, through SPAWNGATE_BIN (tests/support/proxy.rs). `SPAWNGATE_BIN=path` set by
# the caller skips the build and tests that binary.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each name is a test function; a renamed test must be renamed here too, which the count below enforces.
readonly SMOKE_TESTS=(
    # proxy_core.rs: cold start and forwarding
    cold_start_then_warm_requests_reach_the_same_process
    concurrent_requests_to_a_cold_backend_share_one_start
    one_connection_carries_a_thousand_keep_alive_requests
    fixed_length_body_goes_to_the_backend_and_back
    chunked_body_goes_to_the_backend_and_back
    # proxy_lifecycle.rs: idle stop and the admin API
    an_idle_backend_is_stopped_and_started_again_by_the_next_request
    admin_health_and_version
    # proxy_signals.rs: shutdown, the death of the proxy, reload
    sigterm_stops_every_backend_and_exits_zero
    sigterm_waits_for_an_in_flight_request
    a_backend_ignoring_sigterm_is_killed_after_the_grace_period
    backends_die_with_a_proxy_killed_by_sigkill
    sighup_adds_routes_and_keeps_running_backends
)
# https.rs (the release binary is built with TLS): HTTP/1.1 and HTTP/2 over TLS, SNI, HSTS, the redirect.
readonly HTTPS_SMOKE_TESTS=(
    curl_reaches_the_backend_over_https_with_sni_the_default_hsts_and_the_redirect
    curl_gets_http2_over_tls_with_forwarded_proto_and_hsts
)

if [[ -z "${SPAWNGATE_BIN:-}" ]]; then
    SPAWNGATE_BIN="$(scripts/static-build.sh | tail -n 1)"
fi
SPAWNGATE_BIN="$(realpath "$SPAWNGATE_BIN")"
export SPAWNGATE_BIN
echo "static-smoke: testing $SPAWNGATE_BIN ($("$SPAWNGATE_BIN" --version))"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --test proxy_core --test proxy_lifecycle --test proxy_signals -- --exact "${SMOKE_TESTS[@]}" \
    2>&1 | tee "$log"
cargo test --features tls --test https -- --exact "${HTTPS_SMOKE_TESTS[@]}" 2>&1 | tee -a "$log"

# libtest reports one "test result" line per test binary; a filter that matches nothing still passes, so
# count what actually ran.
passed=$(awk '/^test result: ok\./ { sum += $4 } END { print sum + 0 }' "$log")
expected=$((${#SMOKE_TESTS[@]} + ${#HTTPS_SMOKE_TESTS[@]}))
if ((passed != expected)); then
    echo "static-smoke: $passed tests passed, expected $expected (a test renamed or missing?)" >&2
    exit 1
fi
echo "static-smoke: $expected tests passed against the static binary"
