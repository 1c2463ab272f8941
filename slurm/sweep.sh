#!/usr/bin/env bash
# One task of a sweep's job array, as submitted by `biotune sweep submit SWEEP.yaml` (not by hand):
#   sbatch --array=0-N%K slurm/sweep.sh data SWEEP_DIR TASK_LIST OFFSET           # CPU: build one variant's data
#   sbatch --array=0-N%K slurm/sweep.sh cell SWEEP_DIR TASK_LIST OFFSET [NPROC]   # GPU: train, evaluate, clean up
# The task's cell is line OFFSET + SLURM_ARRAY_TASK_ID + 1 of TASK_LIST. Every stage is `biotune sweep cell`,
# the same command `biotune sweep run --local` uses; its output goes to <sweep>/cells/<cell>/cell.log.
# Pre-emption: SIGUSR1 (from --signal=B:USR1@600 or `scancel --signal=USR1 --batch`, which reach only this shell)
# is forwarded to the cell's runner, which forwards it to its stage; the trainer ranks checkpoint and exit 75
# ($BIOTUNE_EXIT_PREEMPTED); this task then requeues itself alone and resumes that checkpoint.
#SBATCH --job-name=biotune-sweep
#SBATCH --ntasks-per-node=1
#SBATCH --requeue
#SBATCH --signal=B:USR1@600
#SBATCH --open-mode=append
set -euo pipefail
BIOTUNE_SCRIPT=sweep.sh
BIOTUNE_HOME=${BIOTUNE_HOME:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}
[[ -f $BIOTUNE_HOME/slurm/common.sh ]] \
  || { echo "$BIOTUNE_SCRIPT: error: $BIOTUNE_HOME is not a biotune checkout; submit from its root or export BIOTUNE_HOME" >&2; exit 2; }
source "$BIOTUNE_HOME/slurm/common.sh"

(( $# >= 4 )) || biotune_die "usage: slurm/sweep.sh data|cell SWEEP_DIR TASK_LIST OFFSET [NPROC] (submitted by 'biotune sweep submit')"
stage=$1 sweep_dir=$2 list=$3 offset=$4 nproc=${5:-}
[[ -n ${SLURM_ARRAY_TASK_ID:-} ]] || biotune_die "not inside a SLURM array task; submit with 'biotune sweep submit SWEEP.yaml'"
[[ -f $list ]] || biotune_die "task list $list not found (the sweep directory must be on a filesystem every node sees)"
biotune_use_venv

index=$(( offset + SLURM_ARRAY_TASK_ID + 1 ))
cell=$(sed -n "${index}p" "$list")
[[ -n $cell ]] || biotune_die "no line $index in $list"
task="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
echo "$BIOTUNE_SCRIPT: task $task (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-?}: $stage of cell $cell" >&2

# The cell task runs the data stage too: a cache hit (the data array built it) that records the dataset
# directory in the cell's state.json, so training and collect read it from there.
case $stage in
  data) stages=(--stage data) ;;
  cell) stages=(--stage data --stage train --stage eval --stage finish) ;;
  *) biotune_die "unknown stage '$stage' (data or cell)" ;;
esac
args=(-m biotune.cli sweep cell "$sweep_dir" "$cell" "${stages[@]}")
[[ -n $nproc ]] && args+=(--nproc "$nproc")

# The cell's runner forwards the warning to its running stage (the trainer ranks checkpoint and exit 75).
trap biotune_on_usr1 USR1
biotune_start_step USR1 python "${args[@]}"
biotune_wait_step "$step_pid"; step_pid=""
if (( biotune_preempted )) || (( step_rc == BIOTUNE_EXIT_PREEMPTED )); then
  echo "$BIOTUNE_SCRIPT: task $task pre-empted (exit $step_rc); requeueing this task only" >&2
  biotune_requeue "$task"
fi
exit "$step_rc"
