"""``biotune.sweep.collect`` time as a function of sweep size, on synthetic per-example predictions.

    .venv/bin/python benchmarks/sweep_collect.py [--variants 500] [--sizes 50,100,250,500] [--n-boot 1000]

Writes, into a temporary directory, one eval output directory per cell in the real format (``report.json``
and ``predictions/<source>__<split>.jsonl`` with id, completion, prediction, reference, parse_ok,
parse_error, unit, stats): a base plus ``--variants`` variants (one training seed each) on 20 eval sets
(8 NER sets of 60 documents x 5 sentences scored by entity F1 and resampled by document, 8 classification
sets of 400 examples, 4 sets of 250 examples with a ``mean`` reducer). The first 20 variants are leave-one-out
(so the heatmap has 20 rows), the rest are swarm members. Each size runs the real ``collect`` on the base and
the first N variants with ``--n-boot`` resamples and without plots (timed: reading every file, aligning,
the bootstrap, corrections, md/csv/parquet); the figures are timed once, separately, at the largest size.
Prints a table, a linearity check (seconds per variant at the largest size over the smallest), then one
JSON object as the last line. Target: the largest size (500 x 20) under 60 s on the 2-core CPU box.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import emit

from biotune.sweep import plots
from biotune.sweep.collect import collect
from biotune.sweep.results import CellResult

SOURCES = [f"ner{i}" for i in range(8)] + [f"cls{i}" for i in range(8)] + [f"qa{i}" for i in range(4)]
GROUPS = {s: s.rstrip("0123456789") for s in SOURCES}
NER_DOCS, NER_SENTS, CLS_N, QA_N = 60, 5, 400, 250
_COMPLETION = "".join(f"tok{i} : {'B' if i % 7 == 0 else 'O'}\\n" for i in range(24))


def _ner_file(source: str, rng: np.random.Generator, level: float) -> tuple[bytes, int]:
    n = NER_DOCS * NER_SENTS
    gold = rng.integers(1, 4, n)
    tp = rng.binomial(gold, np.clip(level + rng.normal(0, 0.1, NER_DOCS).repeat(NER_SENTS), 0, 1))
    fp = rng.binomial(1, 0.1, n)
    lines = []
    for i in range(n):
        doc, sent = divmod(i, NER_SENTS)
        ents = json.dumps([["Disease", k, k + 1] for k in range(int(gold[i]))])
        lines.append(
            f'{{"id": "{source}/test/{doc}.{sent}", "completion": "{_COMPLETION}", "prediction": {ents}, '
            f'"reference": {ents}, "parse_ok": true, "parse_error": null, "unit": "{source}/test/d{doc}", '
            f'"stats": {{"tp": {tp[i]}, "fp": {fp[i]}, "fn": {gold[i] - tp[i]}}}}}\n'
        )
    return "".join(lines).encode(), n


def _simple_file(
    source: str, rng: np.random.Generator, level: float, n: int, reducer: str
) -> tuple[bytes, int]:
    correct = rng.random(n) < level
    value = np.clip(level + rng.normal(0, 0.2, n), 0, 1)
    lines = []
    for i in range(n):
        stats = (
            f'{{"correct": {int(correct[i])}, "n": 1}}'
            if reducer == "accuracy"
            else f'{{"value": {value[i]:.4f}, "n": 1}}'
        )
        label = "yes" if correct[i] else "no"
        lines.append(
            f'{{"id": "{source}/test/{i}", "completion": "{label}", "prediction": "{label}", "reference": "yes", '
            f'"parse_ok": true, "parse_error": null, "unit": "{source}/test/{i}", "stats": {stats}}}\n'
        )
    return "".join(lines).encode(), n


def write_cell(root: Path, name: str, rng: np.random.Generator, shift: dict[str, float]) -> Path:
    """One eval output directory for a cell whose score on each source moves by ``shift``."""
    out = root / name / "eval"
    (out / "predictions").mkdir(parents=True)
    rows = []
    for source in SOURCES:
        level = 0.7 + shift.get(source, 0.0)
        if source.startswith("ner"):
            data, n = _ner_file(source, rng, level)
            reducer, metric = "f1", "f1"
        elif source.startswith("cls"):
            data, n = _simple_file(source, rng, level, CLS_N, "accuracy")
            reducer, metric = "accuracy", "accuracy"
        else:
            data, n = _simple_file(source, rng, level, QA_N, "mean")
            reducer, metric = "mean", "f1"
        (out / "predictions" / f"{source}__test.jsonl").write_bytes(data)
        rows.append(
            {
                "dataset": f"{source}/test",
                "source": source,
                "split": "test",
                "kind": GROUPS[source],
                "n": n,
                "metric": metric,
                "reducer": reducer,
                "score": None,
            }
        )
    (out / "report.json").write_text(json.dumps({"meta": {}, "rows": rows}))
    return out


def make_cells(root: Path, n_variants: int, seed: int = 0) -> list[CellResult]:
    """The base and ``n_variants`` variants, each with its eval directory written under ``root``."""
    rng = np.random.default_rng(seed)
    base_w = {s: 1 / len(SOURCES) for s in SOURCES}
    budget = {s: {"samples": 5000, "tokens": 1_000_000, "epochs": 1.0} for s in SOURCES}
    cells = [
        CellResult(
            "base-s0",
            "base",
            0,
            "base",
            None,
            True,
            None,
            "done",
            None,
            budget,
            base_w,
            GROUPS,
            write_cell(root, "base-s0", rng, {}),
        )
    ]
    for v in range(n_variants):
        if v < len(SOURCES):
            left_out = SOURCES[v]
            axis, value, shift = "leave_out", left_out, {left_out: -0.2}
            weights = {s: (0.0 if s == left_out else 1 / (len(SOURCES) - 1)) for s in SOURCES}
        else:
            w = rng.dirichlet(np.ones(len(SOURCES)))
            weights = dict(zip(SOURCES, w.tolist(), strict=True))
            axis, value, shift = "swarm", None, {s: 0.5 * (x - 1 / len(SOURCES)) for s, x in weights.items()}
        name = f"v{v:03d}"
        cells.append(
            CellResult(
                f"{name}-s0",
                name,
                0,
                axis,
                value,
                False,
                None,
                "done",
                None,
                budget,
                weights,
                GROUPS,
                write_cell(root, f"{name}-s0", rng, shift),
            )
        )
    return cells


def main() -> None:
    """Write the synthetic sweep, time ``collect`` at each size, print the table and the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=500)
    parser.add_argument("--sizes", default="50,100,250,500")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if sizes[-1] > args.variants:
        parser.error("--sizes must not exceed --variants")
    tmp = Path(tempfile.mkdtemp(prefix="biotune-sweep-collect-"))
    try:
        t0 = time.perf_counter()
        cells = make_cells(tmp / "cells", args.variants, args.seed)
        write_s = time.perf_counter() - t0
        n_rows = sum(1 for c in cells[:1] for p in (c.eval_dir / "predictions").iterdir() for _ in p.open())
        print(
            f"wrote {len(cells)} cells x {len(SOURCES)} sets ({n_rows} prediction rows per cell) in {write_s:.1f} s"
        )
        timings: dict[int, float] = {}
        results = None
        for size in sizes:
            t0 = time.perf_counter()
            results = collect(
                cells[: size + 1], tmp / f"out{size}", n_boot=args.n_boot, seed=args.seed, plots=False
            )
            timings[size] = time.perf_counter() - t0
            print(
                f"{size:>5} variants x {len(SOURCES)} sets: {timings[size]:7.2f} s "
                f"({1000 * timings[size] / size:6.1f} ms per variant)"
            )
        assert results is not None
        t0 = time.perf_counter()
        figures = plots.draw_all(results, tmp / f"out{sizes[-1]}")
        plots_s = time.perf_counter() - t0
        print(f"figures at {sizes[-1]} variants ({', '.join(sorted(figures))}): {plots_s:.2f} s")
        per_small, per_large = timings[sizes[0]] / sizes[0], timings[sizes[-1]] / sizes[-1]
        ratio = per_large / per_small
        print(
            f"linearity: {1000 * per_large:.1f} ms/variant at {sizes[-1]} vs {1000 * per_small:.1f} at {sizes[0]} "
            f"(ratio {ratio:.2f}; 1.0 = linear)"
        )
        emit(
            {
                "benchmark": "sweep_collect",
                "config": {
                    "variants": args.variants,
                    "sets": len(SOURCES),
                    "rows_per_cell": n_rows,
                    "n_boot": args.n_boot,
                    "seed": args.seed,
                    "sizes": sizes,
                },
                "collect_seconds": {str(k): round(v, 3) for k, v in timings.items()},
                "seconds_per_variant": {str(k): round(v / k, 5) for k, v in timings.items()},
                "linearity_ratio": round(ratio, 3),
                "plots_seconds_at_largest": round(plots_s, 3),
                "largest_under_60s": timings[sizes[-1]] < 60.0,
            }
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
