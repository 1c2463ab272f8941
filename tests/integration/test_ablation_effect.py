"""Proof that an ablation measures what it claims: the sweep-level analogue of the learnability test.

The main job (``biotune demo``: configs/sweep/demo.yaml) runs through the real pipeline: two synthetic tasks
(entity NER and cue-decided relation extraction, test splits of unseen combinations), a tiny Llama, ZeRO-3 over
2 CPU processes, export, generation, scoring, collect. The claim a composition ablation makes, checked by
:func:`effect_failures` on what ``collect`` computed:

* the base reaches high held-out scores on both tasks (so there is something to lose);
* leaving ``synthetic_re`` out drops its score by a large margin, with a 95% CI that excludes zero;
* the other task's change stays inside its CI (the CI contains zero), and that CI is *paired*: clearly
  narrower than an unpaired bootstrap of the same two prediction files, as it must be when both models are
  scored on the same examples.

Each sabotage below breaks one link of the ablation and the same check must then fail:

* ``axis_ignored``: the variant trains on the base's data (the leave-out axis has no effect). Training is
  deterministic, so the variant's predictions would be the base's; the test writes exactly that into the
  variant's cell and collects again.
* ``wrong_pairing``: collect pairs each variant prediction with another example's gold (its id alignment is
  replaced by one that is off by one example).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

BASE_MIN = 80.0  # percent: held-out score the base must reach on each task
DROP_MIN = 50.0  # points: how much leaving a task out must cost it
PAIRED_RATIO_MAX = 0.85  # the paired CI must be at most this fraction of the unpaired one
LEFT_OUT, OTHER = "synthetic_re/test", "synthetic_ner/test"
VARIANT = "loo-source-synthetic_re"


@pytest.fixture(scope="module")
def demo(demo_run: Path) -> Path:
    """The demo's sweep directory (``demo_run`` in tests/conftest.py: the real CLI, run once per session)."""
    return demo_run / "sweep"


def _collect(sweep_dir: Path, out: Path):  # noqa: ANN202
    from biotune.sweep import runner
    from biotune.sweep.collect import collect

    sweep = runner.from_dir(sweep_dir)
    return collect(runner.cell_results(sweep), out, n_boot=1000, seed=0, plots=False)


def _f1(stats: np.ndarray) -> np.ndarray:
    tp, fp, fn = stats[..., 0], stats[..., 1], stats[..., 2]
    return np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)


def _unpaired_width(sweep_dir: Path, eval_set: str, n_boot: int = 1000) -> float:
    """Width (points) of an unpaired bootstrap CI of the F1 difference: each arm resampled on its own."""
    name = eval_set.replace("/", "__") + ".jsonl"
    arms = []
    for cell in ("base-s0", f"{VARIANT}-s0"):
        rows = [
            json.loads(line) for line in (sweep_dir / "cells" / cell / "eval" / "predictions" / name).open()
        ]
        arms.append(np.array([[r["stats"][k] for k in ("tp", "fp", "fn")] for r in rows], dtype=float))
    rng = np.random.default_rng(1)
    n = len(arms[0])
    diff = _f1(arms[1][rng.integers(0, n, (n_boot, n))].sum(1)) - _f1(
        arms[0][rng.integers(0, n, (n_boot, n))].sum(1)
    )
    return 100 * float(np.percentile(diff, 97.5) - np.percentile(diff, 2.5))


def effect_failures(results, unpaired_width: float) -> list[str]:  # noqa: ANN001
    """What is wrong with the ablation's claim (empty list: the ablation measures what it claims)."""
    rows = {(r.variant, r.eval_set): r for r in results.rows}
    failures = []
    for eval_set in (LEFT_OUT, OTHER):
        base = rows[("base", eval_set)]
        if base.mean is None or base.mean < BASE_MIN:
            failures.append(f"base scores {base.mean} on {eval_set} (< {BASE_MIN})")
    left = rows[(VARIANT, LEFT_OUT)]
    if left.delta is None or left.delta > -DROP_MIN or left.ci_high >= 0:
        failures.append(
            f"leaving {LEFT_OUT} out changes it by {left.delta} [{left.ci_low}, {left.ci_high}]: "
            f"not a drop of >= {DROP_MIN} points with a CI below zero"
        )
    other = rows[(VARIANT, OTHER)]
    if other.ci_low is None or not other.ci_low <= 0 <= other.ci_high:
        failures.append(
            f"{OTHER} changes by {other.delta} [{other.ci_low}, {other.ci_high}]: CI excludes zero"
        )
    elif other.ci_high - other.ci_low > PAIRED_RATIO_MAX * unpaired_width:
        failures.append(
            f"{OTHER}'s CI is {other.ci_high - other.ci_low:.2f} points wide, not narrower than the "
            f"unpaired {unpaired_width:.2f}: the comparison is not paired by example"
        )
    return failures


def test_the_ablation_measures_what_it_claims(demo: Path, tmp_path: Path) -> None:
    results = _collect(demo, tmp_path / "results")
    width = _unpaired_width(demo, OTHER)
    assert effect_failures(results, width) == []
    rows = {(r.variant, r.eval_set): r for r in results.rows}
    for eval_set in (LEFT_OUT, OTHER):
        assert rows[("base", eval_set)].parse_failure_rate < 0.5  # the base's outputs parse
    print({k: (r.mean, r.delta, r.ci_low, r.ci_high) for k, r in rows.items()}, f"unpaired width {width:.2f}")


def test_sabotage_axis_ignored_fails_the_check(demo: Path, tmp_path: Path) -> None:
    sabotaged = tmp_path / "sweep"
    shutil.copytree(demo, sabotaged, ignore=shutil.ignore_patterns("wandb", "results"))
    variant_eval = sabotaged / "cells" / f"{VARIANT}-s0" / "eval"
    shutil.rmtree(variant_eval)
    shutil.copytree(
        sabotaged / "cells" / "base-s0" / "eval", variant_eval, ignore=shutil.ignore_patterns("wandb")
    )
    failures = effect_failures(_collect(sabotaged, tmp_path / "results"), _unpaired_width(sabotaged, OTHER))
    assert any(f"leaving {LEFT_OUT} out" in f for f in failures), failures


def test_sabotage_wrong_pairing_fails_the_check(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from biotune.sweep import stats

    real_align = stats.align

    def off_by_one(reference, other):  # noqa: ANN001, ANN202
        aligned = real_align(reference, other)
        if aligned is reference:
            return aligned
        return stats.ExampleStats(
            aligned.path,
            aligned.reducer,
            aligned.stat_names,
            aligned.ids,
            aligned.units,
            np.roll(aligned.stats, 1, axis=0),
            aligned.parse_ok,
        )

    monkeypatch.setattr(stats, "align", off_by_one)
    failures = effect_failures(_collect(demo, tmp_path / "results"), _unpaired_width(demo, OTHER))
    assert any("not paired by example" in f for f in failures), failures
