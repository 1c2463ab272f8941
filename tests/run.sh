#!/usr/bin/env bash
# Install (if needed) and run the whole test suite on CPU. The SLURM tests install and start their own daemons.
#   bash tests/run.sh [pytest args]     e.g. bash tests/run.sh -x tests/unit   (no paths: the whole suite)
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install.sh
export PATH="$(pwd)/.venv/bin:$PATH" WANDB_MODE=offline DS_ACCELERATOR=cpu TOKENIZERS_PARALLELISM=false
export BIOTUNE_DATA_DIR=${BIOTUNE_DATA_DIR:-$(cd .. && pwd)/shared/data}
exec python -m pytest -q -p no:cacheprovider --durations=15 "$@"  # setup.cfg: testpaths = tests
