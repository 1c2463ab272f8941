"""``biotune demo``: the whole workflow on its embedded default, on a laptop-class CPU machine.

    bash launch/demo.sh                       # installs, then runs this
    biotune demo --out runs/demo [key=value ...]

Steps (each is the same code path a cluster run takes, driven by ``configs/train/demo.yaml``, which composes
``configs/train/tiny.yaml`` and ``configs/data/sample.yaml``):

1. a tiny random Llama and a BPE tokenizer trained locally on the bundled sample corpus;
2. ``biotune data build`` on the bundled sample (native formats -> packed, prompt-masked shards);
3. ``biotune train`` under ``torchrun --nproc_per_node 2``: DeepSpeed ZeRO-3 over 2 CPU processes (gloo);
4. export of the final checkpoint to Hugging Face safetensors;
5. ``biotune eval`` on the sample's test splits: generate, parse, score;
6. a metrics table on stdout, and ``report.md``, ``loss.png`` in the run directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from biotune.config import REPO_ROOT
from biotune.testing.launch import torchrun
from biotune.testing.tiny import make_sample_llama
from biotune.train.checkpoint import METRICS_FILE, export_dir

log = logging.getLogger(__name__)
DEMO_CONFIG = REPO_ROOT / "configs" / "train" / "demo.yaml"


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser("demo", help="run the whole pipeline on the bundled sample (CPU, a few minutes)")
    p.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo)")
    p.add_argument("--nproc", type=int, default=2, help="training processes (default: 2)")
    p.add_argument("--config", default=str(DEMO_CONFIG), help="run config (default: configs/train/demo.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides for every step")
    p.set_defaults(func=run)


def _step(n: int, text: str) -> None:
    print(f"\n==> [{n}/6] {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the demo end to end; returns the exit code."""
    from biotune import config
    from biotune.data.build import build_dataset
    from biotune.data.dataset import Manifest

    start = time.perf_counter()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    _step(1, "tiny Llama + tokenizer, trained locally on the sample corpus")
    model_dir = make_sample_llama(out / "model-init")
    base = [f"model.name_or_path={model_dir}", f"data.out_dir={out / 'data'}", f"train.output_dir={out / 'train'}",
            f"eval.output_dir={out / 'eval'}", f"eval.model={export_dir(out / 'train')}", *args.overrides]
    cfg = config.load(args.config, base)

    _step(2, "data build: bundled sample -> instruction samples -> mixture -> tokenized, packed shards")
    data_dir = build_dataset(cfg)
    print(Manifest.read(data_dir).format_stats(), flush=True)

    _step(3, f"train: DeepSpeed ZeRO-3 over {args.nproc} CPU processes (torchrun, gloo)")
    code = train(args.config, [*base, f"train.data_dir={data_dir}"], args.nproc)
    if code != 0:
        print(f"training failed with exit code {code}", file=sys.stderr)
        return code

    _step(4, f"export: {export_dir(out / 'train')} (Hugging Face safetensors, written at the end of training)")
    if not (export_dir(out / "train") / "config.json").is_file():
        print("the export is missing", file=sys.stderr)
        return 1

    _step(5, "eval: generate, parse and score the sample's test splits")
    from biotune.eval.runner import evaluate

    eval_dir = evaluate(cfg)

    _step(6, "report")
    report = write_report(out, Path(eval_dir) if eval_dir else out / "eval", out / "train")
    print(report, flush=True)
    print(f"\ndemo finished in {time.perf_counter() - start:.0f}s; run directory: {out}", flush=True)
    return 0


def train(config_path: str, overrides: list[str], nproc: int) -> int:
    """``torchrun --nproc_per_node N -m biotune.cli train CONFIG overrides``, streaming its output."""
    return torchrun(nproc, ["train", config_path, *overrides]).returncode


def write_report(out: Path, eval_dir: Path, train_dir: Path) -> str:
    """``report.md`` (metrics table + loss curve) and ``loss.png`` in the run directory; returns the table."""
    table = (eval_dir / "report.md").read_text() if (eval_dir / "report.md").is_file() else "(no eval report)"
    steps, losses = read_losses(train_dir / METRICS_FILE)
    if steps:
        plot_loss(steps, losses, out / "loss.png")
    text = (f"# biotune demo\n\nTraining loss: {losses[0]:.3f} -> {losses[-1]:.3f} over {steps[-1]} steps "
            f"(loss.png)\n\n{table}\n") if steps else f"# biotune demo\n\n{table}\n"
    tmp = out / "report.md.tmp"
    tmp.write_text(text)
    tmp.replace(out / "report.md")
    return text


def read_losses(path: Path) -> tuple[list[int], list[float]]:
    """(step, train loss) pairs from a trainer's metrics.jsonl."""
    steps: list[int] = []
    losses: list[float] = []
    if path.is_file():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if "loss" in rec and "step" in rec:
                steps.append(int(rec["step"]))
                losses.append(float(rec["loss"]))
    return steps, losses


def plot_loss(steps: list[int], losses: list[float], path: Path) -> None:
    """A loss-curve PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, losses, marker=".")
    ax.set(xlabel="optimizer step", ylabel="train loss (per unmasked token)", title="biotune demo")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
