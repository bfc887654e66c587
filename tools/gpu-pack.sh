#!/usr/bin/env bash
# Prepares what tools/gpu-check.sh needs on a GPU machine that has no Rust: builds egi with
# `--features cuda` (toolkit from tools/cuda-toolkit.sh; build outputs in
# ~/.cache/egi/cuda-target so that the next build reuses candle's compiled kernels), strips and
# gzips the binary into .gpu/egi.gz, and writes the default model's tokenizer into .gpu/tok/.
# .gpu/ is git-ignored; carry it to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cuda_env="$(tools/cuda-toolkit.sh)" # fails the script if the toolkit cannot be laid out
eval "$cuda_env"
target="${EGI_CUDA_TARGET:-$HOME/.cache/egi/cuda-target}"
CARGO_TARGET_DIR="$target" cargo build --release -p egi --features cuda
mkdir -p .gpu
strip -o .gpu/egi "$target/release/egi"
gzip -f -9 .gpu/egi
ls -l .gpu/egi.gz
if [ ! -f .gpu/tok/tokenizer.json ]; then
    # The CPU build's egi writes the tokenizer (the CUDA one needs the driver to start).
    cargo run --release -q -p egi -- --device cpu save --model default --out .gpu/default-hf
    mkdir -p .gpu/tok
    cp .gpu/default-hf/tokenizer.json .gpu/default-hf/tokenizer_config.json .gpu/tok/
    cp .gpu/default-hf/generation_config.json .gpu/tok/ 2>/dev/null || true
    rm -rf .gpu/default-hf
fi
echo "ready: .gpu/egi.gz and .gpu/tok/ (carry .gpu; run tools/gpu-check.sh there)"
