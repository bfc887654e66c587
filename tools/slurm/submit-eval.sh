#!/usr/bin/env bash
# Submits egi eval of BENCH over N array tasks and the merge that waits for them:
#   tools/slurm/submit-eval.sh BENCH OUT N [egi eval options...]
# Extra sbatch options (partition, account, gres) go in SBATCH_ARGS.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 BENCH OUT N [egi eval options...]" >&2; exit 2; }
bench="$1"; out="$2"; n="$3"; shift 3
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out/shards"
# shellcheck disable=SC2086
jid=$(sbatch --parsable ${SBATCH_ARGS:-} --array=1-"$n" "$here/eval-array.sbatch" "$bench" "$out" "$@")
# shellcheck disable=SC2086
mid=$(sbatch --parsable ${SBATCH_ARGS:-} --dependency=afterok:"${jid%%;*}" "$here/merge.sbatch" eval "$out")
echo "array job $jid (tasks 1-$n), merge job $mid -> $out"
