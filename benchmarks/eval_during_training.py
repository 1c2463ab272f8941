"""Cost of evaluation during training: the sweep default's schedule and cap on the demo's cells.

    .venv/bin/python benchmarks/eval_during_training.py [--repeats 2] [--steps 800] [--out DIR]

Setup as ``biotune demo``: the seeded synthetic corpora, the tiny probe Llama, the cells of
``configs/sweep/demo.yaml`` on ``configs/train/demo_ablation.yaml`` (their configs from
``biotune.sweep.runner.cell_config``), each trained with ``torchrun`` on 2 CPU processes under ZeRO-3.

1. Overhead: each cell is trained without (A) and with (B) ``eval.during_training`` at the sweep default's
   fractions and cap (:data:`~biotune.eval.checkpoint_plan.SWEEP_FRACTIONS`,
   :data:`~biotune.eval.checkpoint_plan.SWEEP_MAX_EXAMPLES`), interleaved A B A B ... so that drifts in the
   shared CPU's load hit both alike. The synthetic corpora have no dev split (the sweep default evaluates dev
   splits only, so it stays off for the demo): here the same schedule and cap run on their test splits.
   Reported: the wall time of each run (the ``torchrun`` command), the median ratio B/A per cell and over all
   pairs (target <= 1.10), and where B's extra time goes (the evaluations' own wall time, from their records).
2. Per example: the in-process evaluation of the last step against ``biotune eval`` (2 processes) of the same
   model exported, on the same examples: generation seconds per example (both from their reports; target:
   in-process no slower), and ``biotune eval``'s whole command per example (startup, load, generation).
   Two separate launches: on a shared machine their ratio also carries the load of the moment.
3. The same comparison in one process (``benchmarks/_generation_paths.py`` under ``torchrun``, 2 ranks): the
   training engine with the last checkpoint loaded and the exported model side by side, on the same shards and
   batches, interleaved ``--paths-repeats`` times; wall and CPU seconds per example of ``biotune eval``'s path,
   the in-process path (and its CPU seconds over ``biotune eval``'s, paired by repeat: mean, 95% t interval,
   n), and its parts: the in-process path under ``torch.no_grad`` instead of
   ``torch.inference_mode``, and the path before :func:`biotune.train.engine.bare_forwards` (DeepSpeed's forward
   hooks and ``ZeROOrderedDict`` left on the model, ``torch.no_grad``), which was 8-12% slower in CPU time.

The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, emit

FRACTIONS_KEY = "eval.during_training.at_fractions"


def _torchrun(args: list[str], log: Path) -> float:
    """Run ``torchrun --nproc_per_node 2 -m biotune.cli ARGS``; its wall time in seconds."""
    from biotune.launch import launch_env, torchrun_cmd

    env = launch_env({"DS_ACCELERATOR": "cpu", "WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(torchrun_cmd(2, args), cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed (exit {proc.returncode}); see {log}")
    return seconds


def _cell_configs(out: Path, steps: int) -> dict[str, Path]:
    """Each demo cell's run config (as ``biotune sweep run`` writes it), with its data built once."""
    from biotune import config
    from biotune.data import synthetic
    from biotune.data.build import build_dataset
    from biotune.demo import DEMO_SWEEP
    from biotune.sweep import runner
    from biotune.testing.tiny import make_probe_llama

    corpus = out / "corpus"
    if not (corpus / "synthetic_re" / "test.tsv").is_file():
        synthetic.write_corpora(corpus, n_train=2000, n_test=200, seed=0)
    model = make_probe_llama(out / "model", corpus)
    overrides = [f"data.root={corpus}", f"model.name_or_path={model}", f"train.max_steps={steps}"]
    sweep = runner.load(str(DEMO_SWEEP), out / "sweep", overrides=overrides)
    paths = {}
    for cell in sweep.cells:
        cfg = runner.cell_config(sweep, cell)
        cfg.train.data_dir = str(build_dataset(cfg))
        cfg.tracking.wandb_mode = "disabled"
        cfg.train.export_on_finish = False
        paths[cell.name] = out / f"{cell.name}.yaml"
        paths[cell.name].write_text(config.to_yaml(cfg))
    return paths


def _eval_overrides(splits: str, cap: int) -> list[str]:
    from biotune.eval.checkpoint_plan import SWEEP_FRACTIONS

    return [
        f"{FRACTIONS_KEY}=[{','.join(str(f) for f in SWEEP_FRACTIONS)}]",
        f"eval.during_training.splits=[{splits}]",
        f"eval.during_training.max_examples={cap}",
    ]


def _records(run: Path) -> list[dict[str, Any]]:
    from biotune.eval.layout import DURING_TRAINING_RECORD

    return [
        json.loads(p.read_text()) for p in sorted((run / "eval").glob(f"step-*/{DURING_TRAINING_RECORD}"))
    ]


def _same_process(
    cfg: Path, ckpt: Path, exported: Path, overrides: list[str], repeats: int, work: Path
) -> dict[str, Any]:
    """Part 3: ``_generation_paths.py`` under ``torchrun`` (2 ranks) on one cell; its JSON result."""
    from biotune.launch import launch_env, torchrun_cmd

    work.mkdir(parents=True, exist_ok=True)
    result = work / "paths.json"
    script = Path(__file__).resolve().parent / "_generation_paths.py"
    launcher = torchrun_cmd(2, [])[:-2]  # torchrun and its flags, without ``-m biotune.cli``
    cmd = [*launcher, str(script), str(cfg), str(ckpt), str(exported), str(result), str(repeats), *overrides]
    env = launch_env({"DS_ACCELERATOR": "cpu", "WANDB_MODE": "disabled"})
    with (work / "paths.log").open("w") as fh:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"_generation_paths.py failed (exit {proc.returncode}); see {work / 'paths.log'}")
    return json.loads(result.read_text())


def main() -> None:
    """Run the interleaved pairs and the per-example comparison; print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="A/B pairs per cell")
    parser.add_argument("--steps", type=int, default=800, help="training steps (the demo's: 800)")
    parser.add_argument("--out", default="", help="work directory (default: a temporary one)")
    parser.add_argument(
        "--paths-repeats", type=int, default=5, help="interleaved repeats of part 3 (same-process paths)"
    )
    args = parser.parse_args()

    from biotune.eval.checkpoint_plan import SWEEP_FRACTIONS, SWEEP_MAX_EXAMPLES
    from biotune.eval.layout import REPORT_JSON, step_eval_dir

    with tempfile.TemporaryDirectory() as tmp_dir:
        out = Path(args.out or tmp_dir).resolve()
        configs = _cell_configs(out, args.steps)
        during = _eval_overrides("test", SWEEP_MAX_EXAMPLES)
        runs: dict[str, dict[str, list[float]]] = {c: {"off": [], "on": [], "eval_s": []} for c in configs}
        last_on: dict[str, Path] = {}
        for rep in range(args.repeats):
            for cell, cfg in configs.items():
                for mode in ("off", "on"):  # A B, A B, ...
                    run = out / "runs" / f"{cell}-{mode}-{rep}"
                    extra = during if mode == "on" else []
                    cmd = ["train", str(cfg), f"train.output_dir={run}", "train.resume=none", *extra]
                    runs[cell][mode].append(_torchrun(cmd, out / f"{cell}-{mode}-{rep}.log"))
                    if mode == "on":
                        runs[cell]["eval_s"].append(sum(r["seconds"] for r in _records(run)))
                        last_on[cell] = run
                    print(f"{cell} {mode} rep {rep}: {runs[cell][mode][-1]:.1f} s", flush=True)

        ratios = {c: [b / a for a, b in zip(r["off"], r["on"], strict=True)] for c, r in runs.items()}
        all_ratios = [x for r in ratios.values() for x in r]

        # per example: the last step's in-process evaluation vs `biotune eval` of that model, exported
        per_example: dict[str, Any] = {}
        same_process: dict[str, Any] = {}
        for cell, run in last_on.items():
            step = max(r["step"] for r in _records(run))
            ckpt = run / "checkpoints" / f"step-{step:08d}"
            exported = out / f"export-{cell}"
            from biotune.cli import main as cli

            assert cli(["export", str(ckpt), str(exported)]) == 0
            eval_out = out / f"eval-{cell}"
            cmd = [
                "eval",
                str(configs[cell]),
                f"eval.model={exported}",
                f"eval.output_dir={eval_out}",
                "eval.splits=[test]",
                f"eval.max_examples={SWEEP_MAX_EXAMPLES}",
            ]
            wall = _torchrun(cmd, out / f"eval-{cell}.log")
            theirs = json.loads((eval_out / REPORT_JSON).read_text())["meta"]
            ours = json.loads((step_eval_dir(run, step) / REPORT_JSON).read_text())["meta"]
            mine = [r for r in _records(run) if r["step"] == step][0]
            n = ours["examples"]
            assert n == theirs["examples"], (n, theirs["examples"])
            per_example[cell] = {
                "examples": n,
                "in_process_generation_s_per_example": ours["generation_seconds"] / n,
                "in_process_eval_s_per_example": mine["seconds"] / n,
                "biotune_eval_generation_s_per_example": theirs["generation_seconds"] / n,
                "biotune_eval_command_s_per_example": wall / n,
            }
            per_example[cell]["generation_ratio_in_process_vs_biotune_eval"] = (
                per_example[cell]["in_process_generation_s_per_example"]
                / per_example[cell]["biotune_eval_generation_s_per_example"]
            )
            same_process[cell] = _same_process(
                configs[cell], ckpt, exported, during, args.paths_repeats, out / f"paths-{cell}"
            )

    emit(
        {
            "benchmark": "eval_during_training",
            "config": {
                "sweep": "configs/sweep/demo.yaml",
                "base": "configs/train/demo_ablation.yaml",
                "steps": args.steps,
                "nproc": 2,
                "fractions": list(SWEEP_FRACTIONS),
                "max_examples": SWEEP_MAX_EXAMPLES,
                "splits": ["test"],
                "repeats": args.repeats,
                "order": "interleaved A(off) B(on) per cell",
            },
            "wall_s": runs,
            "ratio_on_over_off": ratios,
            "median_ratio": statistics.median(all_ratios),
            "max_ratio": max(all_ratios),
            "overhead_target": 1.10,
            "meets_target": statistics.median(all_ratios) <= 1.10,
            "per_example": per_example,
            "same_process": same_process,
        }
    )


if __name__ == "__main__":
    main()
