#!/usr/bin/env bash
# The per-node entry of a multi-node job: `srun` starts one copy per node, each runs torchrun for its node.
#
#   srun --ntasks-per-node=1 --kill-on-bad-exit=1 launch/srun_node.sh CONFIG [key=value ...]
#
# MASTER_ADDR is the first node's NodeAddr from `scontrol show node` (node names need not resolve), MASTER_PORT is
# 29500 + SLURM_JOB_ID mod 10000 (override by exporting it: two jobs sharing a first node must not share a port,
# and every task of an array has its own job id), and the node rank is $SLURM_NODEID, so global rank 0 is always on
# the first node (static rendezvous: no ssh, no pdsh, no c10d rendezvous store). Processes per node, the virtualenv
# on PATH and the NCCL defaults are set by launch/torchrun.sh (see its header for the InfiniBand variables).
set -euo pipefail

die() { echo "launch/srun_node.sh: error: $*" >&2; exit 2; }

[[ -n ${SLURM_JOB_ID:-} && -n ${SLURM_NODEID:-} ]] || die "run me under srun inside a SLURM allocation"
nodelist=${SLURM_JOB_NODELIST:-${SLURM_NODELIST:?}}
first_node=$(scontrol show hostnames "$nodelist" | head -n 1)
MASTER_ADDR=$(scontrol show node "$first_node" | grep -oP 'NodeAddr=\K\S+') \
  || die "cannot read NodeAddr of $first_node from 'scontrol show node'"
export MASTER_ADDR MASTER_PORT=${MASTER_PORT:-$((29500 + SLURM_JOB_ID % 10000))}
export BIOTUNE_NNODES=${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:?}} BIOTUNE_NODE_RANK=$SLURM_NODEID
# After a pre-emption checkpoint this node's step ends cleanly (0), so that `srun --kill-on-bad-exit` does not
# kill the other nodes while they finish saving; the batch script requeues the job.
export BIOTUNE_PREEMPT_EXIT=${BIOTUNE_PREEMPT_EXIT:-0}
echo "launch/srun_node.sh: node ${SLURMD_NODENAME:-?} rank $BIOTUNE_NODE_RANK/$BIOTUNE_NNODES master $MASTER_ADDR:$MASTER_PORT" >&2
exec "$(dirname "${BASH_SOURCE[0]}")/torchrun.sh" "$@"
