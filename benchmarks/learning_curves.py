"""A real learning-curve picture: a small composition sweep on real corpora, evaluated during training (issue 22).

    .venv/bin/python benchmarks/learning_curves.py [--out runs/bench/learning_curves] [--steps 600]
        [--seeds 0] [--n-boot 1000] [--no-copy]

Everything goes through biotune's own sweep path: ``biotune sweep run SWEEP.yaml --local --nproc 1`` (data build
-> DeepSpeed ZeRO-3 training on one CPU process, evaluating the dev split at checkpoints
(``eval.during_training``) -> Hugging Face export -> final evaluation), then ``biotune sweep collect``, whose
``learning_curve_<set>.png`` is copied to ``docs/images/`` (unless ``--no-copy``).

Design (changed three times after failed runs, as 1 says; nothing was changed on the final run's outcome):

1. **Data.** Two real corpora from ``$BIOTUNE_DATA_DIR``, both with dev splits: ``jnlpba`` (JNLPBA
   biomolecule NER, BioBERT's untyped copy, ``ner_format: entities``: the answer lists the mentions,
   ``Biomolecule: NF - kappa B; Biomolecule: IL - 2`` or ``None``; strict entity F1) is the task whose share is
   scaled and evaluated (its dev split during training, its test split at the end, ``EVAL_EXAMPLES`` sentences
   each, the first in corpus order); ``chemprot_fine`` (ChemProt, 13 fine relation labels) fills the budget.

   Three earlier designs failed and are kept as measured, not tuned away:
   (a) ChemProt scaled and evaluated (NCBI-disease filling), 300 steps, 2 seeds: in 26 of the 32 evaluations
   every one of the 400 dev answers was the same label (the rest >= 60% one label), so the curves showed which
   constant label a model had settled on (37.0% micro-F1 for INHIBITOR, 6.0% for another), not learning.
   (b) NCBI-disease scaled and evaluated (ChemProt filling), 400 steps, 3 seeds: nearly every answer was
   ``None`` (46% of NCBI's training answers), entity F1 0-3.1% at every step of every cell (stopped after 8 of
   12 cells). (c) The same at 800 steps: the base's seed 0 still scored 3.1 / 0.0 / 0.6 / 1.2% at steps 200 /
   400 / 600 / 800 (stopped: at ~6 min a cell the sweep would not have ended in time).
   JNLPBA's answers are rarely ``None`` (17% of training sentences) and its mentions repeat (``NF - kappa B``
   677 times as a whole answer), so copying them pays from the first steps. Time allowed one seed (the bands are
   then the bootstrap over the examples, conditional on the trained models) and 600 steps.
2. **"Pretrained" base.** One tiny Llama (hidden 128, 2 layers, tied embeddings; a ``VOCAB``-token tokenizer
   trained on rendered training samples of both corpora) is first trained as a plain language model on the raw
   training sentences of both corpora (:func:`proxy_agreement.pretrain`: no template, no labels, no
   instructions), so that fine-tuning adapts a model that already knows the words. A random tiny Llama learns
   nothing in a few hundred CPU steps.
3. **Variants** (one ``scale`` axis, budget ``fixed_samples``: every variant trains on the base's 2,000
   samples): the base holds 1,000 JNLPBA + 1,000 ChemProt samples (50%); three variants scale JNLPBA's weight by
   ``FACTORS`` (shares 10%, 25% and 75%), ChemProt filling the rest: three variants besides the base, the fewest
   a rank agreement with the final checkpoint needs. Seeds ``--seeds`` (default 0) per variant: with two or more
   the bands come from the seeds (mean ± t-based 95% CI with m - 1 df), with one from the bootstrap.
4. **Evaluation during training** at ``FRACTIONS`` of the run (4 points), on ``jnlpba/dev``.
5. **Output.** The per-variant scores at each step (``learning_curves.csv``), the checkpoint-to-final agreement
   rows (``checkpoint_agreement.csv``), n and the wall time; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from _common import REPO, data_root, emit
from proxy_agreement import pretrain, run_sweep

from biotune.data.build import source_samples
from biotune.data.templates import render_prompt
from biotune.io import read_json
from biotune.sources import SOURCES
from biotune.sweep import runner
from biotune.sweep.collect_steps import CHECKPOINT_AGREEMENT_CSV, LEARNING_CURVES_CSV
from biotune.sweep.plots import learning_curve_name

log = logging.getLogger("learning_curves")

TARGET_SOURCE = "jnlpba"
FILL_SOURCE = "chemprot_fine"
NER_FORMAT = "entities"
TEMPLATE = "medtuned"
DEV_SET = f"{TARGET_SOURCE}/devel"  # the corpus's own spelling of its dev split, as collect names the set
#: Samples of each source in the base mixture (the budget every variant keeps).
BASE_SAMPLES = 1000
#: JNLPBA's weight times f against ChemProt's 1: shares 10%, 25% and 75% around the base's 50%.
FACTORS = (0.11, 0.33, 3.0)
FRACTIONS = (0.25, 0.5, 0.75, 1.0)
EVAL_EXAMPLES = 400
MAX_NEW_TOKENS = 128
MODEL = {"hidden_size": 128, "num_layers": 2}
VOCAB = 3000
TOKENIZER_SAMPLES = 1000  # rendered training samples per source the tokenizer is trained on
LR = 3e-3
SEED = 1234  # the build's paraphrase seed (the data section's default)


# ------------------------------------------------------------------------------------------- set-up


def train_samples(root: Path, name: str) -> list[Any]:
    """Every training record of a registered source as an instruction sample (the build's own reader)."""
    return source_samples(SOURCES[name], "train", root, NER_FORMAT, SEED)


def make_base(work: Path, root: Path) -> tuple[Path, dict[str, Any]]:
    """The pretrained tiny Llama (made once; reused when present): (model dir, info)."""
    from biotune.testing.tiny import make_tiny_llama

    # sorted: the tokenizer and the pretraining draw depend on the order, not on which source is scaled
    samples = {name: train_samples(root, name) for name in sorted((TARGET_SOURCE, FILL_SOURCE))}
    info: dict[str, Any] = {f"train_records_{n}": len(s) for n, s in samples.items()}
    init, done = work / "models" / "base_init", work / "models" / "base"
    if not (done / "config.json").is_file():
        texts = [
            render_prompt(TEMPLATE, s.instruction, s.input) + s.output
            for group in samples.values()
            for s in group[:TOKENIZER_SAMPLES]
        ]
        sentences = [s.input for group in samples.values() for s in group]
        make_tiny_llama(init, texts, vocab_size=VOCAB, num_heads=4, tie_embeddings=True, **MODEL)
        info["pretrain"] = pretrain(init, done, sentences)
        info["pretrain_sentences"] = len(sentences)
    return done, info


def base_config(work: Path, root: Path, model: Path, steps: int, counts: dict[str, int]) -> Path:
    """The sweep's base training config (written to the work directory: it names local paths)."""
    body = {
        "name": "learning-curves",
        "model": {"name_or_path": str(model), "dtype": "fp32", "attn_implementation": "auto"},
        "data": {
            "root": str(root),
            "sources": {n: {"epochs": BASE_SAMPLES / counts[n]} for n in (TARGET_SOURCE, FILL_SOURCE)},
            "ner_format": NER_FORMAT,
            "template": TEMPLATE,
            "max_seq_len": 512,
            "eval_fraction": 0.02,
            "out_dir": str(work / "data"),
        },
        "optim": {
            "lr": LR,
            "schedule": "cosine",
            "warmup_steps": max(1, steps // 20),
            "min_lr_ratio": 0.05,
        },
        "train": {
            "output_dir": str(work / "train"),
            "deepspeed": str(REPO / "configs" / "deepspeed" / "zero3.json"),
            "micro_batch_size": 2,
            "grad_accum": 1,
            "max_steps": steps,
            "save_every": 10 * steps,
            "keep_last": 1,
            "eval_every": 0,
            "log_every": 10,
        },
        "tracking": {"wandb_mode": "disabled"},
        "eval": {
            "sources": [TARGET_SOURCE],
            "splits": ["test"],
            "max_examples": EVAL_EXAMPLES,
            "batch_size": 32,
            "max_new_tokens": MAX_NEW_TOKENS,
            "during_training": {
                "at_fractions": list(FRACTIONS),
                "sources": [TARGET_SOURCE],
                "splits": ["dev"],
                "max_examples": EVAL_EXAMPLES,
            },
        },
    }
    path = work / "base.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


def write_sweep(work: Path, base: Path, seeds: Sequence[int]) -> Path:
    """The sweep: one scale axis over ChemProt's share, ``seeds`` per variant, no controls."""
    body = {
        "name": "learning-curves",
        "base": str(base),
        "budget": "fixed_samples",
        "seeds": list(seeds),
        "controls": False,
        "keep": "predictions",
        "axes": [{"type": "scale", "over": "source", "target": TARGET_SOURCE, "factors": list(FACTORS)}],
    }
    path = work / "sweep.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


def collect(sweep_file: Path, out: Path, n_boot: int, log_file: Path) -> int:
    """``biotune sweep collect SWEEP --out OUT --n-boot N``; returns its exit code."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "biotune.cli", "sweep", "collect", str(sweep_file), "--out", str(out)]
    with log_file.open("w", encoding="utf-8") as fh:
        return subprocess.run(
            [*cmd, "--n-boot", str(n_boot)],
            cwd=REPO,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        ).returncode


# ------------------------------------------------------------------------------------------- report


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of one of collect's CSV files."""
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def share(factor: float) -> float:
    """ChemProt's share in a variant with scale factor ``factor`` (the base mixture is 1:1)."""
    return factor / (1.0 + factor)


def curve_table(rows: list[dict[str, str]]) -> str:
    """The dev curves as Markdown: one row per variant x step."""
    lines = [
        f"Learning curves on {DEV_SET} (%): mean over the seeds [band]",
        "",
        "| variant | step | tokens | mean | band [low, high] | n seeds | n examples | band kind |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['step']} | {float(r['tokens']):.0f} | {float(r['mean']):.1f} | "
            f"[{float(r['ci_low']):.1f}, {float(r['ci_high']):.1f}] | {r['n_seeds']} | {r['n_units']} | "
            f"{r['band']} |"
        )
    return "\n".join(lines)


def cell_seconds(sweep_dir: Path) -> dict[str, float]:
    """Stage -> seconds summed over the sweep's cells, from each cell's own ``state.json`` (so a re-run that finds
    the cells done still reports what they cost)."""
    sweep = runner.from_dir(sweep_dir)
    out: dict[str, float] = {}
    for cell in sweep.cells:
        state = read_json(sweep.cell_dir(cell.name) / "state.json", "re-run the sweep")
        for stage in runner.STAGES:
            if f"{stage}_seconds" in state:
                out[stage] = out.get(stage, 0.0) + float(state[f"{stage}_seconds"])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep, collect it, copy the picture; prints the tables and one JSON object as the last line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "runs" / "bench" / "learning_curves"), help="work directory")
    p.add_argument("--steps", type=int, default=600, help="optimizer steps per cell (default 600)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default 0)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--no-copy", action="store_true", help="do not copy the picture into docs/images/")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    work = Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    root = data_root()

    model, info = make_base(work, root)
    print(f"base: {json.dumps(info)} ({time.perf_counter() - start:.0f}s)", flush=True)
    counts = {n: info[f"train_records_{n}"] for n in (TARGET_SOURCE, FILL_SOURCE)}
    sweep_file = write_sweep(work, base_config(work, root, model, args.steps, counts), args.seeds)
    sweep_dir = work / "sweep"
    t0 = time.perf_counter()
    code, run_s = run_sweep(sweep_file, sweep_dir, work / "sweep.log")
    print(f"sweep: exit {code} in {run_s:.0f}s", flush=True)
    if code != 0:
        raise SystemExit(f"the sweep failed (exit {code}); see {work / 'sweep.log'}")
    code = collect(sweep_file, sweep_dir, args.n_boot, work / "collect.log")
    if code != 0:
        raise SystemExit(f"collect failed (exit {code}); see {work / 'collect.log'}")
    collect_s = time.perf_counter() - t0 - run_s
    results = sweep_dir / runner.RESULTS_DIR
    curves = read_csv(results / LEARNING_CURVES_CSV)
    agreement = read_csv(results / CHECKPOINT_AGREEMENT_CSV)
    print(curve_table([r for r in curves if r["eval_set"] == DEV_SET]), flush=True)
    print((results / "results.md").read_text(encoding="utf-8"), flush=True)

    picture = results / learning_curve_name(DEV_SET)
    if not picture.is_file():
        raise SystemExit(f"collect drew no {picture.name}; see {work / 'collect.log'}")
    copied = None
    if not args.no_copy:
        copied = REPO / "docs" / "images" / picture.name
        shutil.copyfile(picture, copied)
    emit(
        {
            "benchmark": "learning_curves",
            "eval_set": DEV_SET,
            "curves": [
                {
                    "variant": r["variant"],
                    "step": int(r["step"]),
                    "tokens": float(r["tokens"]),
                    "mean": float(r["mean"]),
                    "ci": [float(r["ci_low"]), float(r["ci_high"])],
                    "n_seeds": int(r["n_seeds"]),
                    "n_units": int(r["n_units"]),
                    "band": r["band"],
                }
                for r in curves
                if r["eval_set"] == DEV_SET
            ],
            "checkpoint_agreement": agreement,
            "picture": str(copied.relative_to(REPO)) if copied else str(picture),
            "picture_bytes": picture.stat().st_size,
            "config": {
                "steps": args.steps,
                "seeds": args.seeds,
                "factors": list(FACTORS),
                "target_shares": [share(f) for f in FACTORS],
                "base_samples_per_source": BASE_SAMPLES,
                "fractions": list(FRACTIONS),
                "eval_examples": EVAL_EXAMPLES,
                "model": MODEL,
                "vocab": VOCAB,
                "n_boot": args.n_boot,
                "nproc": 1,
                **info,
            },
            "cells_seconds": cell_seconds(sweep_dir),
            "seconds_sweep_run": run_s,
            "seconds_collect": collect_s,
            "seconds": time.perf_counter() - start,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
