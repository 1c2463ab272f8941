#!/usr/bin/env bash
# Re-resolve biotune's dependencies into launch/constraints.txt (the lock file that launch/install.sh and CI
# install with). An upgrade is a deliberate commit: run this, re-run the benchmarks, commit both.
#   bash launch/lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${BIOTUNE_TORCH_SPEC:-torch==2.13.0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q "$TORCH_SPEC" -e '.[dev]'
out=launch/constraints.txt
{
  echo "# Resolved versions of every package biotune installs (the README's commands install with -c this file)."
  echo "# Upgrading is a deliberate commit: regenerate with 'bash launch/lock.sh', re-run the benchmarks, commit both."
  "$tmp/venv/bin/python" -m pip freeze --exclude-editable | grep -v -iE '^torch==' | grep -v -iE '^cwevals=='
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(grep -c '==' "$out") pins; torch is pinned by BIOTUNE_TORCH_SPEC=$TORCH_SPEC)"
