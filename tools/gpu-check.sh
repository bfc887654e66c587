#!/usr/bin/env bash
# egi on an NVIDIA GPU against PyTorch on the same GPU, in one go (docs/gpu.md).
#
# Runs on a machine with the NVIDIA driver, python3 with torch + transformers and the CUDA
# libraries (those of PyTorch's wheels will do), but no Rust and no network. Needs, beside
# this script:
#   .gpu/egi.gz   a stripped `--features cuda` build of egi, gzipped (tools/gpu-pack.sh);
#   .gpu/tok/     a tokenizer directory (tokenizer.json, tokenizer_config.json), e.g. from
#                 `egi save --model default --out DIR`;
#   tools/gpu_reference.py and tools/gpu_compare.py (the PyTorch side and the comparison).
#
# Builds a randomly initialised checkpoint of Qwen2.5-1.5B's shape (fixed seed), then:
# PyTorch's naive per-token fingerprint (one backward and a full SVD per matrix per token),
# egi's score and fingerprint of the same texts, decoding throughput of both, the GPU's
# bf16 matmul rate. Writes OUT/report.json and OUT/report.md (tools/gpu_compare.py), with
# every step's log in OUT/log.txt. A failing step is recorded and the rest still runs.
#
#   tools/gpu-check.sh [OUT] [--quick]
#
# A rehearsal on a CPU machine (to check this script, not the GPU): EGI_GPU_DEVICE=cpu
# EGI_BIN=target/release/egi EGI_GPU_MODEL=HF_DIR tools/gpu-check.sh OUT --quick
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-check-out}}"
quick="${2:-}"
mkdir -p "$out"
log="$out/log.txt"
: >"$log"
steps="$out/steps.jsonl"
: >"$steps"
work="${EGI_GPU_WORK:-/tmp/egi-gpu-check}"
mkdir -p "$work"
py="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1

# One step: its output appended to the log, its status and time to steps.jsonl.
step() {
    local name="$1" limit="$2"
    shift 2
    echo "=== $name: $*" >>"$log"
    local t0 t1 rc
    t0=$(date +%s.%N)
    timeout "$limit" "$@" >>"$log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $(awk "BEGIN{print $t1 - $t0}")}" >>"$steps"
    echo "=== $name: rc $rc" >>"$log"
    echo "$name: rc $rc" >&2
    return $rc
}

# The CUDA libraries egi links (cuBLAS, cuRAND, the runtime, NVRTC): PyTorch's wheels, or a
# system toolkit.
libdirs="$("$py" - <<'EOF'
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages(), "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"]
dirs = []
for r in roots:
    for f in glob.glob(os.path.join(r, "nvidia", "**", "libcublas.so.*"), recursive=True) + glob.glob(os.path.join(r, "libcublas.so.*")):
        dirs.append(os.path.dirname(f))
for r in roots:
    for name in ("libcurand.so.*", "libnvrtc.so.*", "libcudart.so.*", "libcublasLt.so.*"):
        for f in glob.glob(os.path.join(r, "nvidia", "**", name), recursive=True) + glob.glob(os.path.join(r, name)):
            dirs.append(os.path.dirname(f))
print(":".join(dict.fromkeys(dirs)))
EOF
)"
export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

dev="${EGI_GPU_DEVICE:-cuda}"
egi="${EGI_BIN:-$work/egi}"
if [ -z "${EGI_BIN:-}" ]; then
    gunzip -c .gpu/egi.gz >"$egi" && chmod +x "$egi"
fi
step env 60 bash -c "nvidia-smi; $py -c 'import torch, transformers; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"transformers\", transformers.__version__)'; echo LD_LIBRARY_PATH=\$LD_LIBRARY_PATH; ldd $egi | grep -E 'cuda|cublas|curand|nvrtc|not found'; $egi --version"

# Texts: the prompts and responses both sides score (real arithmetic reasoning, written for egi).
"$py" - "$work" <<'EOF'
import json, sys
w = sys.argv[1]
cases = [
    {"id": "pens", "prompt": "A shop sells pens at 3 dollars each. Ana buys 7 pens and pays with a 50 dollar bill. How much change does she get?",
     "response": "Each pen costs 3 dollars, so 7 pens cost 7 * 3 = 21 dollars.\nAna pays with 50 dollars.\nHer change is 50 - 21 = 29 dollars.\nThe answer is 29."},
    {"id": "train", "prompt": "A train travels at 60 km per hour for 2.5 hours, then at 80 km per hour for 1.5 hours. What is its average speed over the whole trip?",
     "response": "First part: 60 * 2.5 = 150 km.\nSecond part: 80 * 1.5 = 120 km.\nTotal distance: 150 + 120 = 270 km.\nTotal time: 2.5 + 1.5 = 4 hours.\nAverage speed: 270 / 4 = 67.5 km per hour.\n"
                  "To check, the average must lie between 60 and 80, and it is closer to 60 because more time was spent at 60 km per hour. 67.5 is between them and closer to 60, so the result is plausible.\n"
                  "Another way: the time-weighted mean of the speeds is (60 * 2.5 + 80 * 1.5) / (2.5 + 1.5) = (150 + 120) / 4 = 67.5.\n"
                  "Both ways agree.\nThe answer is \\boxed{67.5}."},
]
json.dump(cases, open(f"{w}/cases.json", "w"), indent=1)
with open(f"{w}/cases.jsonl", "w") as f:
    for c in cases:
        f.write(json.dumps(c) + "\n")
EOF

model="${EGI_GPU_MODEL:-$work/qwen2.5-1.5b-random}"
[ -f "$model/config.json" ] ||
    step make-model 300 "$py" tools/gpu_reference.py make-model "$model" --tokenizer .gpu/tok --config qwen2.5-1.5b --seed 0

# Everything must end inside one device call: steps get what is left of the budget.
budget="${EGI_GPU_BUDGET:-540}"
t_start=$(date +%s)
left() { echo $((budget - ($(date +%s) - t_start))); }

step matmul 60 "$py" tools/gpu_reference.py matmul "$out/torch_matmul.json" --device "$dev" --dtype bfloat16

# egi on the GPU: teacher-forced scores (f32 and bf16), the fingerprint per token (the
# comparison) and per step (speed).
step egi-score-f32 120 "$egi" --device "$dev" --dtype f32 score --model "$model" --input "$work/cases.jsonl" --out "$work/egi_score_f32.jsonl"
step egi-score-bf16 120 "$egi" --device "$dev" --dtype bf16 score --model "$model" --input "$work/cases.jsonl" --out "$work/egi_score_bf16.jsonl"
step egi-fingerprint 240 "$egi" -v --device "$dev" --dtype f32 fingerprint --model "$model" --input "$work/cases.jsonl" --out "$work/egi_fp" --per-matrix --fresh
step egi-fingerprint-step 120 "$egi" -v --device "$dev" --dtype f32 fingerprint --model "$model" --input "$work/cases.jsonl" --out "$work/egi_fp_step" --step-mode sum-logits --fresh

# Decoding throughput at batch 1 and 64, bf16 and f32, both sides.
nt=128
[ "$quick" = "--quick" ] && nt=32
for dt in bf16 f32; do
    tdt=$([ $dt = f32 ] && echo float32 || echo bfloat16)
    step "torch-generate-$dt" 120 "$py" tools/gpu_reference.py generate "$model" "$out/torch_generate_$dt.json" --device "$dev" --dtype "$tdt" --batch 1,64 --new-tokens "$nt"
    step "egi-bench-$dt" 150 bash -c "'$egi' --device $dev --dtype $dt bench --model '$model' --batch 64 --new-tokens $nt --tokens 256 --reps 1 --json > '$work/egi_bench_$dt.txt'"
done

# PyTorch's naive fingerprint last (its full SVDs are slow), one case at a time so that
# what finishes inside the budget is kept: the first tokens of each response.
maxtok=11
[ "$quick" = "--quick" ] && maxtok=4
"$py" -c '
import json, sys
w = sys.argv[1]
for c in json.load(open(w + "/cases.json")):
    json.dump([c], open(w + "/case_" + c["id"] + ".json", "w"))
' "$work"
for id in pens train; do
    lim=$(left)
    [ "$lim" -gt 20 ] || { echo "no time left for torch-fingerprint-$id" >>"$log"; break; }
    step "torch-fingerprint-$id" "$lim" "$py" tools/gpu_reference.py fingerprint "$model" "$work/case_$id.json" "$work/torch_fp_$id.json" --device "$dev" --dtype float32 --max-tokens "$maxtok"
done

"$py" tools/gpu_compare.py --work "$work" --out "$out" >>"$log" 2>&1
cat "$out/report.md" 2>/dev/null || echo "no report: see $log"
