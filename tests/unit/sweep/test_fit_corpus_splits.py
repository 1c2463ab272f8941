"""A swarm over sources that spell their dev split ``devel`` fits on those sets (issue 18, step 1).

NCBI-disease and BC5CDR spell it ``devel``. Asked for ``eval.splits=[dev, test]``, `biotune eval` scores
``ncbi_disease/devel``; the fit used to keep only sets whose split was the literal ``dev`` and so saw none of
them. Here every step is the real one: the eval plan of a real config on the bundled sample, the real sets and
scorer, the real report and prediction files, ``collect`` and the fit. Each run's completions are gold on a
share of the examples that grows with its mixture weight, so the fit has a relationship to find.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biotune import config
from biotune.errors import ConfigError
from biotune.eval import report
from biotune.eval.layout import set_label
from biotune.eval.score import EvalSet, build_eval_set, score_set
from biotune.eval.sets import plan_sets
from biotune.sources.splits import SplitRole
from biotune.sweep import fit
from biotune.sweep import plan as planning
from biotune.sweep.collect import collect
from biotune.sweep.results import CellResult
from biotune.sweep.spec import load_sweep
from biotune.testing.sweeps import write_sweep

SOURCES = ["ncbi_disease", "bc5cdr_chem", "hoc"]
GROUPS = {"ncbi_disease": "ner", "bc5cdr_chem": "ner", "hoc": "cls"}
BASE = """\
name: devel-swarm-base
model: {name_or_path: runs/tiny_llama}
data:
  root: "@sample"
  sources: {ncbi_disease: {}, bc5cdr_chem: {}, hoc: {}}
eval:
  splits: [dev, test]
"""


def _sets(tmp_path: Path) -> list[EvalSet]:
    path = tmp_path / "base.yaml"
    path.write_text(BASE)
    cfg = config.load(path)
    refs = plan_sets(cfg)
    assert [r.label for r in refs if r.role is SplitRole.SELECTION] == [
        "ncbi_disease/devel",
        "bc5cdr_chem/devel",
        "hoc/devel",
    ]
    return [build_eval_set(r.source, r.split, Path(cfg.data.root)) for r in refs]


def _cell(root: Path, name: str, weights: np.ndarray, sets: list[EvalSet], is_base: bool) -> CellResult:
    """A done cell whose eval dir `biotune eval` could have written: gold on the first ``share`` of each set."""
    w = dict(zip(SOURCES, weights.tolist(), strict=True))
    out = root / name / "eval"
    scores, details = [], {}
    for s in sets:
        share = 0.2 + 0.8 * w[s.source]  # better the more of its own source the mixture holds
        keep = round(share * len(s.samples))
        completions = {smp.id: smp.output if i < keep else "" for i, smp in enumerate(s.samples)}
        score, rows = score_set(s, completions)
        scores.append(score)
        details[set_label(s.source, s.split)] = rows
    report.write_set_predictions(out, details)
    report.write_report(out, scores, {})
    budget = {k: {"samples": 1000 * x, "tokens": 50_000 * x, "epochs": 1.0} for k, x in w.items()}
    axis = "base" if is_base else "swarm"
    return CellResult(
        f"{name}-s0", name, 0, axis, None, is_base, None, "done", None, budget, w, dict(GROUPS), out
    )


def test_a_swarm_fits_on_devel_sets(tmp_path: Path) -> None:
    sets = _sets(tmp_path)
    rng = np.random.default_rng(0)
    cells = [_cell(tmp_path, "base", np.full(3, 1 / 3), sets, True)]
    cells += [_cell(tmp_path, f"swarm{i:02d}", rng.dirichlet(np.ones(3)), sets, False) for i in range(14)]
    results = collect(cells, tmp_path / "results", n_boot=50, plots=False)
    dev_rows = [r for r in results.rows if r.role is SplitRole.SELECTION]
    assert {r.split for r in dev_rows} == {"devel"}  # the corpus spelling, selected by role
    swarm = fit.swarm_from_results(results, axis="swarm")
    assert set(swarm.metrics) == {"ncbi_disease/devel", "bc5cdr_chem/devel", "hoc/devel"}
    assert len(swarm.runs) == 15
    got = fit.fit_and_propose(results, tmp_path / "fit", axis="swarm", model="linear")
    assert set(got.fits) == set(swarm.metrics)  # never a test set
    for name in ("ncbi_disease/devel", "bc5cdr_chem/devel"):
        assert got.fits[name].spearman > 0.8, name
    markdown = (tmp_path / "results" / "results.md").read_text()
    dev_at, test_at = markdown.index("## Dev sets (use these for selection)"), markdown.index("## Test sets")
    assert dev_at < test_at and "ncbi_disease/devel" in markdown[dev_at:test_at]


def test_an_objective_on_a_test_set_is_refused_by_role(tmp_path: Path) -> None:
    sets = _sets(tmp_path)
    rng = np.random.default_rng(1)
    cells = [_cell(tmp_path, "base", np.full(3, 1 / 3), sets, True)]
    cells += [_cell(tmp_path, f"swarm{i:02d}", rng.dirichlet(np.ones(3)), sets, False) for i in range(6)]
    results = collect(cells, tmp_path / "results", n_boot=20, plots=False)
    with pytest.raises(
        ConfigError, match="'ncbi_disease/test' is a test set: selection uses dev splits only"
    ):
        fit.fit_and_propose(results, tmp_path / "fit", model="linear", objective={"ncbi_disease/test": 1})


def test_sweep_plan_sizes_the_devel_sets(tmp_path: Path) -> None:
    body = "name: devel-plan\nbase: base.yaml\naxes:\n  - {type: leave_one_out}\n"
    spec = load_sweep(write_sweep(tmp_path, body, BASE))
    sizes = planning.eval_set_sizes(spec)
    for source in SOURCES:
        assert sizes[f"{source}/devel"] > 0 and sizes[f"{source}/test"] > 0
    assert set(sizes) == {f"{s}/{split}" for s in SOURCES for split in ("devel", "test")}
