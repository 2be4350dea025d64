#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while (default 60 s each), one after another, from the seed corpus.
#
#   scripts/fuzz-smoke.sh            60 s per target
#   SECONDS_PER_TARGET=600 scripts/fuzz-smoke.sh
#
# Needs the nightly toolchain and cargo-fuzz (installed here when missing). New inputs go to
# fuzz/corpus/<target> (ignored by git); a crash stops the run with libFuzzer's report and a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${SECONDS_PER_TARGET:-60}"

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

for target in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$target"
    echo "== $target (${seconds} s)"
    cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done)" || true
    # libFuzzer exits non-zero on a crash; pipefail would hide it behind grep, so check for artifacts.
    if ls "artifacts/$target"/crash-* "artifacts/$target"/leak-* "artifacts/$target"/timeout-* >/dev/null 2>&1; then
        echo "fuzz-smoke: $target found a failing input in fuzz/artifacts/$target" >&2
        exit 1
    fi
done
echo "fuzz-smoke: every target ran ${seconds} s without a failure"
