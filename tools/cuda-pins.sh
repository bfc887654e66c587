#!/usr/bin/env bash
# Prints what a full `--features cuda` build depends on beyond egi's own code: the Cargo.lock
# entries of candle and cudarc (the kernels nvcc compiles, the libraries the binary links) and
# the sha256 of tools/cuda-toolkit.sh (the CUDA wheels it pins). .ci/cuda-built.pins holds this
# output for the last full CUDA build that passed; .ci/run repeats the full build (nvcc and the
# link, 10-25 minutes on 2 cores) whenever the two differ.
set -euo pipefail
cd "$(dirname "$0")/.."
awk '
    /^\[\[package\]\]/ { if (keep) print entry; entry = ""; keep = 0; next }
    /^name = / { keep = ($3 ~ /^"(candle-|cudarc|cudaforge|bindgen_cuda)/) }
    /^(name|version|checksum) = / { entry = entry (entry ? " " : "") $0 }
    END { if (keep) print entry }
' Cargo.lock
sha256sum tools/cuda-toolkit.sh
