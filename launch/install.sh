#!/usr/bin/env bash
# Create ./.venv (if needed) and install biotune with its test extras. Idempotent: a rerun with an unchanged
# setup.cfg does nothing. torch is pinned in the same pip call: an unpinned torch pulls a multi-GB CUDA build
# on CPU-only machines. Every other package comes at its version in launch/constraints.txt (regenerate with
# launch/lock.sh: an upgrade is a deliberate commit). On a GPU cluster, install the `gpu` extra instead: pip install -e '.[gpu]'.
#   bash launch/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${BIOTUNE_TORCH_SPEC:-torch==2.13.0}
CONSTRAINTS=launch/constraints.txt  # the lock file: every dependency at the version the benchmarks ran with
stamp=.venv/.biotune-install-$(cat setup.cfg "$CONSTRAINTS" | sha256sum | cut -c1-16)
if [ -f "$stamp" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
log=.venv/install.log
echo "installing biotune into $(pwd)/.venv (log: $log)"
if ! { .venv/bin/python -m pip install -q --upgrade pip && \
       .venv/bin/python -m pip install -q -c "$CONSTRAINTS" "$TORCH_SPEC" -e '.[dev]'; } >"$log" 2>&1; then
  tail -40 "$log" >&2
  echo "install failed; full log: $log" >&2
  exit 1
fi
rm -f .venv/.biotune-install-*
touch "$stamp"
echo "biotune installed in $(pwd)/.venv"
