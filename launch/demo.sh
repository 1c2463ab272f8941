#!/usr/bin/env bash
# The main job on its embedded default: install, then run `biotune demo` (bundled sample corpus, a tiny Llama
# made locally, ZeRO-3 over 2 CPU processes, export, evaluation, report). Extra arguments go to `biotune demo`.
#   bash launch/demo.sh [--out runs/demo]
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install.sh
export PATH="$(pwd)/.venv/bin:$PATH" WANDB_MODE=${WANDB_MODE:-offline} DS_ACCELERATOR=${DS_ACCELERATOR:-cpu}
exec biotune demo "$@"
