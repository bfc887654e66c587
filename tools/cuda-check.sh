#!/usr/bin/env bash
# Type-checks and lints every line of egi built with `--features cuda` (all targets, tests
# included), in a minute and without the CUDA toolkit: what CI runs on every commit so that
# egi's CUDA code cannot rot.
#
#     tools/cuda-check.sh            # extra arguments go to cargo clippy, e.g. --message-format
#
# What it leaves out, and why that is safe: candle-kernels' build script compiles candle's own
# .cu files with nvcc (PTX, and a static library of quantized kernels: 10-25 minutes on 2
# cores). Those kernels are candle's, pinned by Cargo.lock; they change only when candle does.
# Here candle-kernels is replaced, through a [patch] given on the command line (the checkout's
# Cargo.toml is untouched), by a copy of the pinned release whose build script writes empty
# PTX strings under the same names. Everything else is the real code: candle-core's CUDA
# backend, cudarc's bindings, egi's crates. The full build (nvcc and the link) is
# `cargo build --release -p egi --features cuda` with tools/cuda-toolkit.sh's environment;
# .ci/run runs it when the pinned CUDA crates differ from those last built (.ci/cuda-built.lock)
# or when its CUDA build folder is already warm.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
say() { echo "cuda-check: $*" >&2; }

ver="$(awk '/^name = "candle-kernels"/{getline; gsub(/[^0-9A-Za-z.+-]/, "", $3); print $3; exit}' Cargo.lock)"
[ -n "$ver" ] || { say "candle-kernels is not in Cargo.lock"; exit 1; }
cargo fetch -q
src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/candle-kernels-"$ver" 2>/dev/null | head -1 || true)"
[ -n "$src" ] && [ -f "$src/build.rs" ] || { say "candle-kernels $ver not in the cargo registry after cargo fetch"; exit 1; }

work="$(mktemp -d)"
lock_copy="$work/Cargo.lock.orig"
cp Cargo.lock "$lock_copy"
# The patch rewrites Cargo.lock's entry for candle-kernels; put the pinned file back.
trap 'cp "$lock_copy" Cargo.lock; rm -rf "$work"' EXIT

# The stub is made in a scratch folder, then kept in the target folder at a fixed path with
# unchanged file times, so that the next run finds everything checked against it still fresh.
stub="$work/candle-kernels-$ver"
kept="${CARGO_TARGET_DIR:-$here/target}/cuda-check/candle-kernels-$ver"
cp -rp "$src" "$stub"
chmod -R u+w "$stub"
# The PTX modules are the top-level .cu files that candle's build.rs compiles to PTX (it
# excludes the statically linked moe_*, mmvq_gguf and mmq_* kernels), each a constant named
# after its file in capitals.
{
    echo "// Written by egi's tools/cuda-check.sh: empty PTX, for type-checking only."
    for f in "$stub"/src/*.cu; do
        name="$(basename "$f" .cu)"
        case "$name" in moe_* | mmvq_gguf | mmq_*) continue ;; esac
        echo "pub const $(echo "$name" | tr '[:lower:]' '[:upper:]'): &str = \"\";"
    done
} >"$stub/ptx-stub.rs"
cat >"$stub/build.rs" <<'EOF'
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("ptx.rs");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/ptx-stub.rs"), out).unwrap();
}
EOF
# No nvcc driver (cudaforge) as a build dependency.
awk '/^\[/{skip = ($0 ~ /^\[build-dependencies/)} !skip' "$stub/Cargo.toml" >"$stub/Cargo.toml.new"
mv "$stub/Cargo.toml.new" "$stub/Cargo.toml"
rm -f "$stub/Cargo.lock"
if ! diff -rq "$stub" "$kept" >/dev/null 2>&1; then
    rm -rf "$kept"
    mkdir -p "$(dirname "$kept")"
    mv "$stub" "$kept"
fi

# cudarc reads the toolkit's version from nvcc unless told; 13.0 is what tools/cuda-toolkit.sh
# installs and what docs/gpu.md's builds use.
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
say "candle-kernels $ver stubbed from $src; clippy --features egi/cuda (CUDA $CUDARC_CUDA_VERSION)"
cargo clippy --release --workspace --all-targets --features egi/cuda \
    --config "patch.crates-io.candle-kernels.path=\"$kept\"" "$@" -- -D warnings
