"""``biotune demo``: the main job on its embedded default, a two-variant composition ablation on a CPU machine.

    bash launch/demo.sh                       # installs, then runs this
    biotune demo --out runs/demo [key=value ...]

Does leaving a task out of the instruction mixture cost that task's score, and only that one? Every step is the
code path a cluster sweep takes (``configs/sweep/demo.yaml`` on ``configs/train/demo_ablation.yaml``):

1. the two synthetic corpora (``biotune.data.synthetic``: entity NER and cue-decided relation extraction, whose
   test splits hold only unseen combinations) and a tiny Llama with a tokenizer trained on them;
2. ``biotune sweep plan``: the base mixture, and the base with ``synthetic_re`` left out (same sample budget);
3. ``biotune sweep run --local``: per cell, data build -> DeepSpeed ZeRO-3 over 2 CPU processes -> Hugging Face
   export -> generation, parsing and scoring on both tasks' test splits;
4. ``biotune sweep collect``: each task's score with the change against the base and its 95% paired bootstrap
   CI, the Holm-corrected p, the heatmap, a results table in Markdown, CSV and Parquet;
5. the headline: the base's scores and parse failures, and the left-out task's drop with its CI.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from biotune.config import REPO_ROOT
from biotune.data import synthetic
from biotune.sweep import runner
from biotune.sweep.collect import collect
from biotune.sweep.plan import format_plan, plan_rows
from biotune.sweep.variants import count_available
from biotune.testing.tiny import make_probe_llama

log = logging.getLogger(__name__)
DEMO_SWEEP = REPO_ROOT / "configs" / "sweep" / "demo.yaml"
STEPS = 5


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="a two-variant composition ablation on CPU (a few minutes)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo)")
    p.add_argument("--nproc", type=int, default=2, help="training processes per cell (default: 2)")
    p.add_argument("--sweep", default=str(DEMO_SWEEP), help="sweep file (default: configs/sweep/demo.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides for every cell")
    p.set_defaults(func=run)


def _step(n: int, text: str) -> None:
    print(f"\n==> [{n}/{STEPS}] {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the demo end to end; returns the exit code."""

    start = time.perf_counter()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    _step(1, "synthetic corpora (seeded) and a tiny Llama with a tokenizer trained on them")
    corpus = out / "corpus"
    if not (corpus / "synthetic_re" / "test.tsv").is_file():
        synthetic.write_corpora(corpus, n_train=2000, n_test=200, seed=0)
    model = make_probe_llama(out / "model", corpus)
    print(f"corpus {corpus}\nmodel  {model}", flush=True)

    _step(2, "sweep plan: the variants and the data each one trains on")
    overrides = [f"data.root={corpus}", f"model.name_or_path={model}", *args.overrides]
    sweep = runner.load(args.sweep, out / "sweep", overrides=overrides)
    print(format_plan(plan_rows(sweep.spec, sweep.variants, count_available(sweep.spec))), flush=True)

    _step(
        3,
        f"sweep run --local: {len(sweep.cells)} cells, each build -> ZeRO-3 on {args.nproc} CPU processes "
        "-> export -> eval",
    )
    code = runner.run_local(sweep, args.nproc)
    if code != 0:
        print(
            f"the sweep did not finish (exit {code}); `biotune sweep status {args.sweep} --out {sweep.out}` "
            "names each cell's log"
        )
        return code

    _step(4, "sweep collect: paired bootstrap over test examples, Holm correction, heatmap")
    results = collect(runner.cell_results(sweep), sweep.out / runner.RESULTS_DIR)
    print((sweep.out / runner.RESULTS_DIR / "results.md").read_text(encoding="utf-8"), flush=True)

    _step(5, "headline")
    print(headline(results), flush=True)
    print(
        f"\ndemo finished in {time.perf_counter() - start:.0f}s; results: {sweep.out / runner.RESULTS_DIR}",
        flush=True,
    )
    return 0


def headline(results: Any) -> str:
    """The base's score and parse failures per set, and each leave-out variant's change with its 95% CI."""
    lines = []
    for r in results.rows:
        if r.mean is None:
            continue
        pf = f", parse failures {r.parse_failure_rate:.0%}" if r.parse_failure_rate is not None else ""
        if r.is_base:
            lines.append(f"base on {r.eval_set}: {r.metric} {r.mean:.1f} (n={r.n}{pf})")
        elif r.delta is not None:
            mark = "CI excludes 0" if r.ci_high < 0 or r.ci_low > 0 else "CI includes 0"
            lines.append(
                f"{r.variant} on {r.eval_set}: {r.metric} {r.mean:.1f}, change {r.delta:+.1f} "
                f"[95% CI {r.ci_low:+.1f}, {r.ci_high:+.1f}] ({mark}{pf})"
            )
    return "\n".join(lines)
