#!/usr/bin/env bash
# Evaluate a trained model (generate, parse, score, report) data-parallel on 1 node x 8 GPUs.
#   export BIOTUNE_RUN_DIR=/scratch/$USER/biotune
#   BIOTUNE_MODEL=$BIOTUNE_RUN_DIR/train/biotune-7b-1234/hf sbatch slurm/eval.sh [key=value ...]
#   BIOTUNE_CONFIG=configs/eval/medtuned_beam4.yaml BIOTUNE_MODEL=... bash slurm/eval.sh   (checks, then submits)
#SBATCH --job-name=biotune-eval
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --exclusive
#SBATCH --time=08:00:00
#SBATCH --output=%x-%j.out
set -euo pipefail
BIOTUNE_SCRIPT=eval.sh
BIOTUNE_HOME=${BIOTUNE_HOME:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}
[[ -f $BIOTUNE_HOME/slurm/common.sh ]] \
  || { echo "$BIOTUNE_SCRIPT: error: $BIOTUNE_HOME is not a biotune checkout; submit from its root or export BIOTUNE_HOME" >&2; exit 2; }
source "$BIOTUNE_HOME/slurm/common.sh"
biotune_require BIOTUNE_MODEL \
  "Export the model to evaluate: a training run's hf/ export or checkpoint dir, e.g. 'export BIOTUNE_MODEL=\$BIOTUNE_RUN_DIR/train/biotune-7b-1234/hf'."
biotune_prepare configs/eval/medtuned.yaml
biotune_submit_unless_in_job slurm/eval.sh "$@"
biotune_eval "$@"
