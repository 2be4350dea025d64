#!/usr/bin/env bash
# Builds the static release binary of spawngate and checks it against the footprint budget.
#
# Prefers musl (x86_64-unknown-linux-musl: no libc at run time at all), adding the target with rustup
# and musl-gcc (Debian's musl-tools, for the C allocator) when they are missing. Where either cannot be
# installed, falls back to glibc linked statically (-C target-feature=+crt-static on the gnu target).
#
# STATIC_LIBC=glibc skips musl and builds the fallback directly.
#
# The release binary serves HTTPS: it is built with the cargo features in SPAWNGATE_FEATURES, by default
# `tls,acme` (acme implies tls; it compiles whether or not the ACME client has landed), and `--version`
# must list them. SPAWNGATE_FEATURES= (empty) builds the minimal binary, to compare sizes.
#
# Progress goes to stderr; the last line on stdout is the path of the binary, so callers can do
#   bin=$(scripts/static-build.sh)
# Exits non-zero when the build fails, the binary is not static, or it is over the budget.
set -euo pipefail
cd "$(dirname "$0")/.."

# The budget from the project's footprint goal: small enough for a tiny VM or a FROM scratch image.
readonly MAX_BYTES=$((5 * 1024 * 1024))
readonly FEATURES="${SPAWNGATE_FEATURES-tls,acme}"

arch="$(uname -m)"
musl_target="${arch}-unknown-linux-musl"
gnu_target="${arch}-unknown-linux-gnu"
target_dir="${CARGO_TARGET_DIR:-target}"

say() { echo "static-build: $*" >&2; }

features_args=()
if [[ -n "$FEATURES" ]]; then
    features_args=(--features "$FEATURES")
fi

# The allocator (mimalloc) is C, so a musl build also needs a C compiler for musl: Debian's musl-tools.
musl_cc_available() {
    command -v musl-gcc >/dev/null 2>&1 && return 0
    command -v "${arch}-linux-musl-gcc" >/dev/null 2>&1 && return 0
    command -v apt-get >/dev/null 2>&1 || return 1
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || return 1
        sudo="sudo -n"
    fi
    say "installing musl-tools (musl-gcc)"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq musl-tools; } \
        >&2 </dev/null || return 1
    command -v musl-gcc >/dev/null 2>&1
}

musl_available() {
    # STATIC_LIBC=glibc forces the fallback, to try it on a machine that has the musl target.
    [[ "${STATIC_LIBC:-musl}" == musl ]] || return 1
    command -v rustup >/dev/null 2>&1 || return 1
    musl_cc_available || return 1
    if rustup target list --installed 2>/dev/null | grep -qx "$musl_target"; then
        return 0
    fi
    say "adding the $musl_target target with rustup"
    rustup target add "$musl_target" >&2 </dev/null
}

if musl_available; then
    target="$musl_target"
    say "building for $target (features: ${FEATURES:-none})"
    cargo build --release --target "$target" --bin spawngate "${features_args[@]}" >&2
else
    target="$gnu_target"
    say "the $musl_target target is not available; building static glibc for $target (+crt-static)"
    # With an explicit --target, RUSTFLAGS reach only the target's crates, not build scripts or proc
    # macros, which must stay dynamic to be loaded by the compiler.
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build --release --target "$target" --bin spawngate "${features_args[@]}" >&2
fi

binary="$target_dir/$target/release/spawngate"
if [[ ! -x "$binary" ]]; then
    say "no binary at $binary"
    exit 1
fi

# The release profile already strips (strip = true); strip again in case a profile override turned it off.
if command -v strip >/dev/null 2>&1; then
    strip "$binary"
fi

# A dynamically linked binary names its loader in a PT_INTERP program header; a static one has none.
if command -v readelf >/dev/null 2>&1; then
    if readelf --program-headers --wide "$binary" | grep -q 'INTERP'; then
        say "$binary is dynamically linked"
        exit 1
    fi
fi

version="$("$binary" --version)"
if [[ "$version" != *"$target"* ]]; then
    say "--version does not name the target $target: $version"
    exit 1
fi

# Every feature asked for is compiled in ("features: tls, acme"), so a release never ships without HTTPS.
IFS=',' read -r -a wanted <<<"$FEATURES"
for feature in "${wanted[@]}"; do
    if [[ "$version" != *"features:"*"$feature"* ]]; then
        say "--version does not list the feature $feature: $version"
        exit 1
    fi
done

size=$(stat -c %s "$binary")
say "$version"
say "size: $size bytes ($(awk -v b="$size" 'BEGIN { printf "%.2f", b / 1048576 }') MiB), budget $MAX_BYTES bytes"
if ((size >= MAX_BYTES)); then
    say "over the budget; see which crates take the space with: cargo tree -e normal, cargo bloat --crates"
    exit 1
fi
echo "$binary"
