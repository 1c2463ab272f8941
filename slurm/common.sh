# Shared by slurm/train_*.sh, slurm/eval.sh and slurm/sweep.sh (sourced, not run). Each script only sets its
# #SBATCH header and default config, then calls biotune_train, biotune_eval or (sweep.sh) the step helpers below.
# Nothing here parses YAML; the data build's directory comes from its JSON record (`data build --record`).
#
# Pre-emption: `#SBATCH --signal=B:USR1@600` (or `scancel --signal=USR1 --batch`) signals only this batch shell.
# biotune_on_usr1 forwards it to the running step: USR1 to the training step (srun passes it to every node's
# launch/torchrun.sh, which passes it to torchrun and so to every trainer rank: they checkpoint and exit), SIGTERM
# to a data build (it cleans up and exits); then the job requeues itself and resumes from that checkpoint.
#
# Required:  BIOTUNE_RUN_DIR   a directory every node sees (shared FS): data cache, checkpoints, logs.
# Optional:  BIOTUNE_CONFIG    the YAML config (default: the script's), relative to BIOTUNE_HOME or absolute
#            BIOTUNE_HOME      the biotune checkout (default: the submit directory, or this script's parent)
#            BIOTUNE_VENV      its virtualenv (default: $BIOTUNE_HOME/.venv), put first on PATH
#            BIOTUNE_OUTPUT_DIR  train.output_dir (default: $BIOTUNE_RUN_DIR/train/<job name>-<job id>; a requeued
#                              job keeps its id, so it resumes from there)
#            MASTER_PORT       rendezvous port on the first node (default 29500 + job id mod 10000)
# Trailing key=value arguments are config overrides; they come last, so they win over the script's own.

biotune_die() { echo "${BIOTUNE_SCRIPT:-slurm}: error: $*" >&2; exit 2; }

# shellcheck source=launch/defaults.sh
source "$BIOTUNE_HOME/launch/defaults.sh"   # BIOTUNE_EXIT_PREEMPTED, shared with Python

# biotune_use_venv: check BIOTUNE_VENV (default $BIOTUNE_HOME/.venv) and put it first on PATH.
biotune_use_venv() {
  BIOTUNE_VENV=${BIOTUNE_VENV:-$BIOTUNE_HOME/.venv}
  [[ -x $BIOTUNE_VENV/bin/python ]] || biotune_die "no virtualenv at $BIOTUNE_VENV. Run 'bash launch/install.sh' in $BIOTUNE_HOME or export BIOTUNE_VENV=/path/to/venv."
  export BIOTUNE_HOME BIOTUNE_VENV VIRTUAL_ENV=$BIOTUNE_VENV PATH="$BIOTUNE_VENV/bin:$PATH"
}

# biotune_require VAR HINT: fail (exit 2) with the hint when $VAR is unset or empty.
biotune_require() {
  local var=$1 hint=$2
  [[ -n ${!var:-} ]] || biotune_die "$var is not set. $hint"
}

# biotune_prepare DEFAULT_CONFIG: check the environment, resolve paths, put the venv first on PATH. Outside a
# SLURM job (bash slurm/train_7b.sh ...) the checks run, then the script submits itself with sbatch.
biotune_prepare() {
  local default_config=$1; shift
  biotune_require BIOTUNE_RUN_DIR \
    "Export a directory on a filesystem all nodes share, e.g. 'export BIOTUNE_RUN_DIR=/scratch/\$USER/biotune', then resubmit."
  BIOTUNE_CONFIG=${BIOTUNE_CONFIG:-$default_config}
  [[ $BIOTUNE_CONFIG = /* ]] || BIOTUNE_CONFIG=$BIOTUNE_HOME/$BIOTUNE_CONFIG
  [[ -f $BIOTUNE_CONFIG ]] || biotune_die "config $BIOTUNE_CONFIG not found. Set BIOTUNE_CONFIG to a YAML under $BIOTUNE_HOME/configs/, or BIOTUNE_HOME to the biotune checkout (submit from its root)."
  biotune_use_venv
  export BIOTUNE_CONFIG BIOTUNE_RUN_DIR
  export WANDB_DIR=${WANDB_DIR:-$BIOTUNE_RUN_DIR}
}

# biotune_submit_unless_in_job SCRIPT ARGS...: outside an allocation, submit SCRIPT and exit with sbatch's code.
biotune_submit_unless_in_job() {
  local script=$1; shift
  if [[ -z ${SLURM_JOB_ID:-} ]]; then
    cd "$BIOTUNE_HOME"
    exec sbatch "$script" "$@"
  fi
}

biotune_summary() {
  cat <<SUMMARY
==================== biotune ${BIOTUNE_SCRIPT:-} ====================
job         ${SLURM_JOB_ID} (${SLURM_JOB_NAME:-}) restart ${SLURM_RESTART_COUNT:-0}
nodes       ${SLURM_JOB_NUM_NODES} (${SLURM_JOB_NODELIST}), GPUs/node ${SLURM_GPUS_ON_NODE:-0}
config      ${BIOTUNE_CONFIG}
overrides   $*
checkout    ${BIOTUNE_HOME} ($(git -C "$BIOTUNE_HOME" rev-parse --short HEAD 2>/dev/null || echo 'no git'))
python      $(command -v python)
run dir     ${BIOTUNE_RUN_DIR}
==============================================================
SUMMARY
}

# biotune_wait_step PID: wait for a background srun, also across signals trapped meanwhile; sets step_rc.
biotune_wait_step() {
  local pid=$1
  step_rc=0
  while true; do
    wait "$pid" && step_rc=0 || step_rc=$?
    kill -0 "$pid" 2>/dev/null || break
  done
}

# biotune_start_step SIGNAL CMD...: run CMD in the background as the current step; a pre-emption warning is
# forwarded to it as SIGNAL (USR1 for a trainer or a sweep cell, TERM for a data build). Sets step_pid.
biotune_preempted=0
step_pid="" step_signal=USR1
biotune_start_step() {
  step_signal=$1; shift
  "$@" &
  step_pid=$!
  (( biotune_preempted )) && kill "-$step_signal" "$step_pid" 2>/dev/null || true
}

biotune_on_usr1() {
  biotune_preempted=1
  echo "${BIOTUNE_SCRIPT}: SIGUSR1 (pre-emption warning): asking the trainer to checkpoint, then requeueing" >&2
  [[ -n $step_pid ]] && kill "-$step_signal" "$step_pid" 2>/dev/null || true
}

# biotune_requeue [JOB]: requeue JOB (default: this job; an array task passes <array job>_<task>) and exit 0.
biotune_requeue() {
  local job=${1:-$SLURM_JOB_ID}
  echo "${BIOTUNE_SCRIPT}: requeueing job $job; it resumes from the newest COMPLETED checkpoint" >&2
  scontrol requeue "$job"
  exit 0
}

# biotune_train ARGS...: data build step (cached) on one node, then the distributed training step.
biotune_train() {
  local base=("data.out_dir=$BIOTUNE_RUN_DIR/data"
              "train.output_dir=${BIOTUNE_OUTPUT_DIR:-$BIOTUNE_RUN_DIR/train/${SLURM_JOB_NAME}-${SLURM_JOB_ID}}")
  local overrides=("${base[@]}" "$@")
  biotune_summary "${overrides[@]}"
  trap biotune_on_usr1 USR1

  echo "${BIOTUNE_SCRIPT}: step 1/2: data build (cached by content hash)" >&2
  local build_log=$BIOTUNE_RUN_DIR/logs/data-${SLURM_JOB_ID}.log build_record=$BIOTUNE_RUN_DIR/logs/data-${SLURM_JOB_ID}.json
  mkdir -p "$BIOTUNE_RUN_DIR/logs"
  rm -f "$build_record"   # a requeued job must not read the record of its previous attempt
  biotune_start_step TERM srun --nodes=1 --ntasks=1 --kill-on-bad-exit=1 \
    python -m biotune.cli data build "$BIOTUNE_CONFIG" "${overrides[@]}" --record "$build_record" >"$build_log"
  biotune_wait_step "$step_pid"; step_pid=""
  cat "$build_log"
  (( biotune_preempted )) && biotune_requeue
  (( step_rc == 0 )) || biotune_die "the data build step failed (exit $step_rc); its output is above and in $build_log"
  local data_dir
  data_dir=$(python -c 'import sys; from pathlib import Path; from biotune.data.cli import read_build_record; print(read_build_record(Path(sys.argv[1])))' "$build_record") \
    || biotune_die "cannot read the data build's record $build_record (its output is above and in $build_log)"

  echo "${BIOTUNE_SCRIPT}: step 2/2: training on ${SLURM_JOB_NUM_NODES} node(s), data $data_dir" >&2
  biotune_start_step USR1 srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 --kill-on-bad-exit=1 \
    "$BIOTUNE_HOME/launch/srun_node.sh" "$BIOTUNE_CONFIG" "${base[@]}" "train.data_dir=$data_dir" "$@"
  biotune_wait_step "$step_pid"; step_pid=""
  (( biotune_preempted )) && biotune_requeue
  if (( step_rc != 0 )); then
    echo "${BIOTUNE_SCRIPT}: training step failed (exit $step_rc); the failed node is named in the 'srun: error:' and 'launch/torchrun.sh: node ...' lines above" >&2
    exit "$step_rc"
  fi
  echo "${BIOTUNE_SCRIPT}: training finished" >&2
}

# biotune_eval ARGS...: data-parallel generation + scoring of BIOTUNE_MODEL (one torchrun per node).
biotune_eval() {
  local overrides=("eval.model=$BIOTUNE_MODEL"
                   "eval.output_dir=${BIOTUNE_OUTPUT_DIR:-$BIOTUNE_RUN_DIR/eval/${SLURM_JOB_NAME}-${SLURM_JOB_ID}}" "$@")
  biotune_summary "${overrides[@]}"
  BIOTUNE_ENTRY="-m biotune.cli eval" srun --nodes="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 --kill-on-bad-exit=1 \
    "$BIOTUNE_HOME/launch/srun_node.sh" "$BIOTUNE_CONFIG" "${overrides[@]}"
  echo "${BIOTUNE_SCRIPT}: evaluation finished: ${overrides[1]#eval.output_dir=}" >&2
}
