#!/usr/bin/env bash
# Submits egi fingerprint of TEXTS over N array tasks and the merge that waits for them:
#   tools/slurm/submit-fingerprint.sh TEXTS.jsonl OUT N [egi fingerprint options...]
# Extra sbatch options (partition, account, gres) go in SBATCH_ARGS.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 TEXTS.jsonl OUT N [egi fingerprint options...]" >&2; exit 2; }
texts="$1"; out="$2"; n="$3"; shift 3
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out/shards"
# shellcheck disable=SC2086
jid=$(sbatch --parsable ${SBATCH_ARGS:-} --array=1-"$n" "$here/fingerprint-array.sbatch" "$texts" "$out" "$@")
# shellcheck disable=SC2086
mid=$(sbatch --parsable ${SBATCH_ARGS:-} --dependency=afterok:"${jid%%;*}" "$here/merge.sbatch" fingerprint "$out")
echo "array job $jid (tasks 1-$n), merge job $mid -> $out"
