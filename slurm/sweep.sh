#!/usr/bin/env bash
# One task of a sweep's job array, as submitted by `biotune sweep submit SWEEP.yaml` (not by hand):
#   sbatch --array=0-N%K slurm/sweep.sh data SWEEP_DIR TASK_LIST OFFSET           # CPU: build one variant's data
#   sbatch --array=0-N%K slurm/sweep.sh cell SWEEP_DIR TASK_LIST OFFSET [NPROC]   # GPU: train, evaluate, clean up
# The task's cell is line OFFSET + SLURM_ARRAY_TASK_ID + 1 of TASK_LIST. Every stage is `biotune sweep cell`,
# the same command `biotune sweep run --local` uses; its output goes to <sweep>/cells/<cell>/cell.log.
# Pre-emption: SIGUSR1 (from --signal=B:USR1@600 or `scancel --signal=USR1 --batch`) is forwarded to the cell,
# whose trainer checkpoints and exits 75; this task then requeues itself alone and resumes that checkpoint.
#SBATCH --job-name=biotune-sweep
#SBATCH --ntasks-per-node=1
#SBATCH --requeue
#SBATCH --signal=B:USR1@600
#SBATCH --open-mode=append
set -euo pipefail
BIOTUNE_SCRIPT=sweep.sh
die() { echo "$BIOTUNE_SCRIPT: error: $*" >&2; exit 2; }

(( $# >= 4 )) || die "usage: slurm/sweep.sh data|cell SWEEP_DIR TASK_LIST OFFSET [NPROC] (submitted by 'biotune sweep submit')"
stage=$1 sweep_dir=$2 list=$3 offset=$4 nproc=${5:-}
[[ -n ${SLURM_ARRAY_TASK_ID:-} ]] || die "not inside a SLURM array task; submit with 'biotune sweep submit SWEEP.yaml'"
[[ -f $list ]] || die "task list $list not found (the sweep directory must be on a filesystem every node sees)"
BIOTUNE_HOME=${BIOTUNE_HOME:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}
BIOTUNE_VENV=${BIOTUNE_VENV:-$BIOTUNE_HOME/.venv}
[[ -x $BIOTUNE_VENV/bin/python ]] || die "no virtualenv at $BIOTUNE_VENV; run 'bash launch/install.sh' in $BIOTUNE_HOME"
export VIRTUAL_ENV=$BIOTUNE_VENV PATH="$BIOTUNE_VENV/bin:$PATH" BIOTUNE_HOME

index=$(( offset + SLURM_ARRAY_TASK_ID + 1 ))
cell=$(sed -n "${index}p" "$list")
[[ -n $cell ]] || die "no line $index in $list"
task="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
echo "$BIOTUNE_SCRIPT: task $task (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-?}: $stage of cell $cell" >&2

case $stage in
  data) stages=(--stage data) ;;
  cell) stages=(--stage train --stage eval --stage finish) ;;
  *) die "unknown stage '$stage' (data or cell)" ;;
esac
args=(-m biotune.cli sweep cell "$sweep_dir" "$cell" "${stages[@]}")
[[ -n $nproc ]] && args+=(--nproc "$nproc")

preempted=0
trap 'preempted=1; [[ -n ${pid:-} ]] && kill -USR1 "$pid" 2>/dev/null || true' USR1
python "${args[@]}" &
pid=$!
rc=0
while true; do
  wait "$pid" && rc=0 || rc=$?
  kill -0 "$pid" 2>/dev/null || break   # wait returned for a signal: the cell is still checkpointing
done
if (( preempted )) || (( rc == 75 )); then
  echo "$BIOTUNE_SCRIPT: task $task pre-empted (exit $rc); requeueing this task only" >&2
  scontrol requeue "$task"
  exit 0
fi
exit "$rc"
