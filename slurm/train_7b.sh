#!/usr/bin/env bash
# Llama-2-7B (chat), full-parameter SFT on the MedTuned mixture, ZeRO-3, 1 node x 8 GPUs.
# From the biotune checkout (the venv in .venv, or BIOTUNE_VENV):
#   export BIOTUNE_RUN_DIR=/scratch/$USER/biotune        # required: shared by all nodes (data cache, checkpoints)
#   sbatch slurm/train_7b.sh [key=value ...]             # or: bash slurm/train_7b.sh ... (checks, then submits)
#   BIOTUNE_CONFIG=configs/train/other.yaml sbatch --nodes=2 slurm/train_7b.sh train.max_steps=100
# Size the job first: biotune plan configs/train/llama2_7b.yaml --nodes 1 --gpus-per-node 8
# Pre-emption: SLURM sends SIGUSR1 to this script 10 min before the time limit (or scancel --signal=USR1 --batch);
# the trainer checkpoints, the job requeues itself and resumes in the same wandb run.
#SBATCH --job-name=biotune-7b
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --exclusive
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --signal=B:USR1@600
#SBATCH --open-mode=append
#SBATCH --output=%x-%j.out
set -euo pipefail
BIOTUNE_SCRIPT=train_7b.sh
BIOTUNE_HOME=${BIOTUNE_HOME:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}
[[ -f $BIOTUNE_HOME/slurm/common.sh ]] \
  || { echo "$BIOTUNE_SCRIPT: error: $BIOTUNE_HOME is not a biotune checkout; submit from its root or export BIOTUNE_HOME" >&2; exit 2; }
source "$BIOTUNE_HOME/slurm/common.sh"
biotune_prepare configs/train/llama2_7b.yaml
biotune_submit_unless_in_job slurm/train_7b.sh "$@"
biotune_train "$@"
