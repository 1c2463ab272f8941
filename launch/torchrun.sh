#!/usr/bin/env bash
# Start biotune training on this node with torchrun: one process per GPU present, or launch.cpu_procs_per_node
# processes on a machine without GPUs.
#
#   launch/torchrun.sh configs/train/tiny.yaml [key=value ...]            # single node (torchrun --standalone)
#
# launch/srun_node.sh calls this on every node of a SLURM job after exporting the multi-node layout:
#   BIOTUNE_NNODES, BIOTUNE_NODE_RANK, MASTER_ADDR, MASTER_PORT   -> static torchrun rendezvous (no ssh/pdsh)
#
# Environment (all optional):
#   BIOTUNE_HOME             the biotune checkout (default: this script's parent directory)
#   BIOTUNE_VENV             its virtualenv, put first on PATH (default: $BIOTUNE_HOME/.venv)
#   BIOTUNE_NPROC_PER_NODE   processes per node (default: GPUs present, else launch.cpu_procs_per_node)
#   BIOTUNE_ENTRY            what torchrun runs (default: "-m biotune.cli train"; the config and overrides follow)
#   BIOTUNE_PREEMPT_EXIT     exit code after a SIGUSR1/SIGTERM checkpoint (default $BIOTUNE_EXIT_PREEMPTED from
#                            launch/defaults.sh; srun_node.sh uses 0)
#   BIOTUNE_SHUTDOWN_TIMEOUT seconds torchrun lets the workers save a checkpoint after a signal (default 300)
#   BIOTUNE_COLLECTIVE_TIMEOUT_MIN  collective timeout in minutes for the process group (default:
#                            $BIOTUNE_DEFAULT_COLLECTIVE_TIMEOUT_MIN from launch/defaults.sh)
#
# Signals: SIGUSR1 (pre-emption warning) and SIGTERM (scancel, time limit, a dying sweep runner) sent to this
# shell are forwarded to torchrun, which forwards them to every worker; each trainer rank finishes its step,
# saves a checkpoint and exits 75, and this script then exits $BIOTUNE_PREEMPT_EXIT. torchrun is started with a
# parent-death signal (setpriv --pdeathsig TERM), so it is stopped the same way if this shell is killed.
#
# NCCL: async error handling is on, so a hung or failed collective aborts the job instead of blocking it; the
# collective timeout is raised from the 10-minute default (ZeRO-3 checkpoint gathers of a 70B model are slow).
# InfiniBand clusters usually need site values for (export them in the sbatch script or your shell):
#   NCCL_SOCKET_IFNAME   interface for bootstrap/TCP traffic, e.g. ib0 or eth0 (^lo,docker excludes)
#   NCCL_IB_HCA          HCAs to use, e.g. mlx5_0,mlx5_1 (or =mlx5_0:1 for exact port)
#   NCCL_IB_GID_INDEX    RoCE GID index (often 3)
#   NCCL_NET_GDR_LEVEL   GPUDirect RDMA distance, e.g. PHB
#   NCCL_IB_DISABLE=1    fall back to TCP sockets (debugging only)
#   NCCL_DEBUG=INFO      print the chosen transport at start
set -euo pipefail

die() { echo "launch/torchrun.sh: error: $*" >&2; exit 2; }

BIOTUNE_HOME=${BIOTUNE_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# shellcheck source=launch/defaults.sh
source "$(dirname "${BASH_SOURCE[0]}")/defaults.sh"
BIOTUNE_VENV=${BIOTUNE_VENV:-$BIOTUNE_HOME/.venv}
[[ -x $BIOTUNE_VENV/bin/python ]] \
  || die "no virtualenv at $BIOTUNE_VENV; create it with 'bash launch/install.sh' or export BIOTUNE_VENV=/path/to/venv"
# The venv first on PATH: every process then uses the same python and the same ninja (DeepSpeed's JIT ops are
# rebuilt whenever the ninja on PATH changes).
export VIRTUAL_ENV=$BIOTUNE_VENV PATH="$BIOTUNE_VENV/bin:$PATH"
export BIOTUNE_HOME
(( $# >= 1 )) || die "usage: launch/torchrun.sh CONFIG [key=value ...]"

count_gpus() {
  if [[ -n ${CUDA_VISIBLE_DEVICES+x} ]]; then
    [[ -z $CUDA_VISIBLE_DEVICES || $CUDA_VISIBLE_DEVICES == -1 ]] && { echo 0; return; }
    awk -F, '{print NF}' <<<"$CUDA_VISIBLE_DEVICES"
  elif command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true
  else
    echo 0
  fi
}

gpus=$(count_gpus)
if [[ -n ${BIOTUNE_NPROC_PER_NODE:-} ]]; then
  nproc=$BIOTUNE_NPROC_PER_NODE
elif (( gpus > 0 )); then
  nproc=$gpus
else
  nproc=$(python -m biotune.cli plan --cpu-procs-per-node "$@") || die "cannot read launch.cpu_procs_per_node from $1"
fi

export TORCH_NCCL_ASYNC_ERROR_HANDLING=${TORCH_NCCL_ASYNC_ERROR_HANDLING:-1}
export NCCL_ASYNC_ERROR_HANDLING=${NCCL_ASYNC_ERROR_HANDLING:-1}        # name used by torch < 2.2
export BIOTUNE_COLLECTIVE_TIMEOUT_MIN=${BIOTUNE_COLLECTIVE_TIMEOUT_MIN:-$BIOTUNE_DEFAULT_COLLECTIVE_TIMEOUT_MIN}
export DEEPSPEED_TIMEOUT=${DEEPSPEED_TIMEOUT:-$BIOTUNE_COLLECTIVE_TIMEOUT_MIN}   # deepspeed.init_distributed's
export TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC=${TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC:-$(( BIOTUNE_COLLECTIVE_TIMEOUT_MIN * 60 ))}
# torchrun (>= 2.8) handles SIGUSR1 (SLURM's pre-emption warning) instead of dying from it: it forwards the signal
# to the workers and gives them time to checkpoint. PET_* are torchrun's environment forms of its flags
# (--signals-to-handle, --shutdown-timeout); an older torchrun ignores them.
export PET_SIGNALS_TO_HANDLE=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1
export PET_SHUTDOWN_TIMEOUT=${BIOTUNE_SHUTDOWN_TIMEOUT:-300} TORCH_ELASTIC_SHUTDOWN_TIMEOUT=${BIOTUNE_SHUTDOWN_TIMEOUT:-300}

if [[ -n ${BIOTUNE_NNODES:-} ]]; then
  : "${BIOTUNE_NODE_RANK:?set by launch/srun_node.sh}" "${MASTER_ADDR:?set by launch/srun_node.sh}"
  rdzv=(--nnodes="$BIOTUNE_NNODES" --node_rank="$BIOTUNE_NODE_RANK"
        --master_addr="$MASTER_ADDR" --master_port="${MASTER_PORT:-29500}")
else
  rdzv=(--standalone --nnodes=1)
fi
read -r -a entry <<<"${BIOTUNE_ENTRY:--m biotune.cli train}"

# torchrun runs in the background so that this shell can forward a signal to it and keep waiting while the
# workers checkpoint. torchrun handles SIGUSR1/SIGTERM (PET_SIGNALS_TO_HANDLE) by sending them to every worker
# and waiting up to PET_SHUTDOWN_TIMEOUT for them to exit.
pdeath=()
setpriv --pdeathsig TERM true 2>/dev/null && pdeath=(setpriv --pdeathsig TERM)
preempted=0 terminated=0 pid=""
forward() { [[ -n $pid ]] && kill "-$1" "$pid" 2>/dev/null || true; }
trap 'preempted=1; forward USR1' USR1
trap 'terminated=1; forward TERM' TERM
"${pdeath[@]}" torchrun "${rdzv[@]}" --nproc_per_node="$nproc" "${entry[@]}" "$@" &
pid=$!
(( preempted )) && forward USR1     # a signal that came before $pid was known
(( terminated )) && forward TERM
rc=0
while true; do
  wait "$pid" && rc=0 || rc=$?
  kill -0 "$pid" 2>/dev/null || break      # wait returned because of a signal: torchrun is still saving
done
node=${SLURMD_NODENAME:-$(hostname)}
if (( preempted || terminated )) && (( rc != 0 )); then
  # torchrun exits non-zero after a forwarded signal; the trainer ranks said why in their own log lines
  # ("received SIGUSR1 ...", "preempted at step N: checkpoint saved").
  what=$( (( preempted )) && echo "SIGUSR1 (pre-emption warning)" || echo "SIGTERM (cancelled, time limit, or the runner died)")
  echo "launch/torchrun.sh: node $node: $what forwarded to the trainer; it checkpointed (torchrun exit $rc)" >&2
  exit "${BIOTUNE_PREEMPT_EXIT:-$BIOTUNE_EXIT_PREEMPTED}"
fi
if (( rc != 0 )); then
  echo "launch/torchrun.sh: node $node (node rank ${BIOTUNE_NODE_RANK:-0}): training failed, torchrun exit $rc" >&2
fi
exit "$rc"
