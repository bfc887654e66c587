#!/usr/bin/env bash
# Lays out a CUDA 13.0 toolkit from NVIDIA's PyPI wheels, for building `egi --features cuda`
# on a machine without a system CUDA (no GPU needed to build). Prints the environment a build
# needs; use it as
#
#     eval "$(tools/cuda-toolkit.sh)"
#     cargo build --release -p egi --features cuda
#
# DIR (first argument, default ~/.cache/egi/cuda-13.0) receives the wheels' files and a
# toolkit folder of links (bin, include, nvvm, lib64). Reruns reuse what is there.
#
# Why each part (docs/gpu.md has the whole recipe):
# - every wheel is pinned to the 13.0 line: an unpinned nvidia-cuda-nvcc pulls a newer
#   nvidia-nvvm whose PTX the 13.0 driver (580) refuses;
# - lib64/ holds unversioned names for the libraries cudarc and candle-kernels link
#   (-lcuda -lnvrtc -lcurand -lcublas -lcublasLt -lcudart);
# - libcuda.so belongs to the driver and no wheel ships it: lib64/stubs/libcuda.so is a
#   link-time stand-in (an empty function for every cu* symbol cudarc declares, soname
#   libcuda.so.1), so the binary records libcuda.so.1 and the real driver serves it at run
#   time. Never ship or load the stand-in.
set -euo pipefail

dir="${1:-${HOME}/.cache/egi/cuda-13.0}"
py="${EGI_PYTHON:-python3}"
wheels=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-nvrtc==13.0.88
    nvidia-cublas==13.1.0.3
    nvidia-curand==10.4.0.35
)
say() { echo "cuda-toolkit: $*" >&2; }

mkdir -p "$dir"
site="$dir/site"
cu="$site/nvidia/cu13"
if [ ! -x "$cu/bin/nvcc" ]; then
    say "installing ${#wheels[@]} NVIDIA wheels into $site (about 1 GB)"
    "$py" -m pip install -q --no-deps --target "$site" "${wheels[@]}" >&2 ||
        { say "pip failed: needs $py with pip and access to PyPI"; exit 1; }
fi
[ -x "$cu/bin/nvcc" ] || { say "no nvcc in $cu/bin after the install"; exit 1; }

tk="$dir/toolkit"
mkdir -p "$tk/lib64/stubs"
for d in bin include nvvm; do ln -sfn "$cu/$d" "$tk/$d"; done
# Unversioned names for the versioned libraries the wheels ship.
for name in cublas cublasLt curand nvrtc cudart; do
    f="$(ls "$cu/lib/lib$name.so."* 2>/dev/null | sort | head -1 || true)"
    [ -n "$f" ] || { say "lib$name.so.* missing from $cu/lib"; exit 1; }
    ln -sfn "$f" "$tk/lib64/lib$name.so"
done

# The driver stand-in, from the symbols of the cudarc that Cargo.lock pins.
stub="$tk/lib64/stubs/libcuda.so"
if [ ! -f "$stub" ]; then
    here="$(cd "$(dirname "$0")/.." && pwd)"
    ver="$(awk '/^name = "cudarc"/{getline; gsub(/[^0-9.]/, ""); print; exit}' "$here/Cargo.lock")"
    [ -n "$ver" ] || { say "cudarc not in Cargo.lock: run 'cargo fetch' first"; exit 1; }
    (cd "$here" && cargo fetch -q >&2)
    sys="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$ver"/src/driver/sys/mod.rs | head -1)"
    [ -f "$sys" ] || { say "cudarc $ver source not found in the cargo registry"; exit 1; }
    c="$dir/libcuda-stub.c"
    grep -oE 'fn cu[A-Za-z0-9_]+' "$sys" | sed 's/^fn //' | sort -u |
        sed 's/.*/void &(void) {}/' >"$c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub" "$c"
    say "driver stand-in with $(wc -l <"$c") symbols: $stub"
fi
ln -sfn libcuda.so "$tk/lib64/stubs/libcuda.so.1"

ver="$("$tk/bin/nvcc" --version | grep -o 'release [0-9.]*' || true)"
say "toolkit at $tk (nvcc $ver)"
cat <<EOF
export CUDA_HOME="$tk" CUDA_PATH="$tk" CUDA_ROOT="$tk"
export PATH="$tk/bin:\$PATH"
export LIBRARY_PATH="$tk/lib64:$tk/lib64/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
export RUSTFLAGS="\${RUSTFLAGS:-} -L native=$tk/lib64 -L native=$tk/lib64/stubs"
export CUDA_COMPUTE_CAP="\${CUDA_COMPUTE_CAP:-90}"
EOF
