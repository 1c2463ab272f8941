"""collect on a sweep with fidelities: the table per fidelity, the proxies' agreement with the target
(agreement.csv, results.md, plots) and the measured cost, from synthetic per-example predictions (no training).

Every fidelity is scored on the same examples. Each example has a fixed difficulty shared by every cell (its
errors are strongly correlated across the variants, as fine-tuned variants of one base are), so a planted order
of the variants' effects is what the proxy's Δs show, up to a little per-cell noise.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats
from synthetic import make_cell

from biotune.config import TrackingConfig
from biotune.sweep.collect import collect, log_to_wandb
from biotune.sweep.fidelity import TARGET, cell_name
from biotune.sweep.results import CellResult, Results

GROUPS = {"ncbi": "ner", "bc5cdr": "ner", "hoc": "cls"}
SETS = {"ncbi/test": ("f1", 0.75), "bc5cdr/test": ("f1", 0.70), "hoc/test": ("accuracy", 0.70)}
#: The target's planted effects (a proportion) of six variants: graded, none all-or-nothing.
EFFECTS = {"v1": -0.15, "v2": -0.09, "v3": -0.04, "v4": 0.03, "v5": 0.08, "v6": 0.13}
N_DOCS, PER_DOC, N_CLS = 60, 5, 1500


def _rows(name: str, reducer: str, level: float, noise_seed: int) -> list[dict[str, Any]]:
    """One set's prediction rows: example i is right when its fixed difficulty u_i < ``level`` (+ a little
    per-cell noise on 3% of the examples)."""
    source, split = name.split("/")
    fixed = np.random.default_rng(zlib.crc32(name.encode()))
    noise = np.random.default_rng(noise_seed)
    rows = []
    if reducer == "f1":
        u = fixed.random((N_DOCS, PER_DOC, 2))
        flip = noise.random(u.shape) < 0.03
        hit = (u < level) ^ flip
        fp = fixed.random((N_DOCS, PER_DOC)) < 0.1
        for d in range(N_DOCS):
            for s in range(PER_DOC):
                tp = int(hit[d, s].sum())
                rows.append(
                    {
                        "id": f"{name}/d{d}.s{s}",
                        "parse_ok": True,
                        "unit": f"d{d}",
                        "stats": {"tp": tp, "fp": int(fp[d, s]), "fn": 2 - tp},
                    }
                )
        return rows
    u = fixed.random(N_CLS)
    ok = (u < level) ^ (noise.random(N_CLS) < 0.03)
    for i in range(N_CLS):
        rows.append(
            {
                "id": f"{source}/{split}/{i}",
                "parse_ok": True,
                "unit": str(i),
                "stats": {"correct": int(ok[i]), "n": 1},
            }
        )
    return rows


def _cells(
    root: Path,
    fidelity: str,
    effects: Mapping[str, float],
    *,
    offset: float = 0.0,
    seeds: Sequence[int] = (1,),
    cost: float | None = None,
) -> list[CellResult]:
    """The base and ``effects``' variants at one fidelity (its scores shifted by ``offset``)."""
    cells = []
    for k, (variant, effect) in enumerate({"base": 0.0, **effects}.items()):
        for seed in seeds:
            sets = {
                name: (
                    reducer,
                    _rows(name, reducer, level + offset + effect, 1000 * k + seed + len(fidelity)),
                )
                for name, (reducer, level) in SETS.items()
            }
            axis = "base" if variant == "base" else "leave_out"
            cell = make_cell(
                root / fidelity, variant, seed, sets, axis=axis, axis_value=variant, groups=GROUPS
            )
            cells.append(
                dataclasses.replace(
                    cell,
                    name=cell_name(variant, seed, fidelity),
                    fidelity=fidelity,
                    process_seconds=None if cost is None else cost * (1 + 0.01 * k),
                )
            )
    return cells


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _stat(rows: list[dict[str, str]], proxy: str, eval_set: str, statistic: str) -> dict[str, str]:
    return next(
        r for r in rows if r["proxy"] == proxy and r["eval_set"] == eval_set and r["statistic"] == statistic
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Results]:
    """A target (2 seeds) and three proxies: one that ranks as the target does but for one swapped pair (at
    lower scores and half the effect), one that reverses the order, and a learning-rate-0 proxy whose every
    variant is the base (up to per-cell noise)."""
    root = tmp_path_factory.mktemp("fid")
    swapped = dict(EFFECTS)
    swapped["v2"], swapped["v3"] = EFFECTS["v3"], EFFECTS["v2"]
    cells = (
        _cells(root, "small", {v: 0.5 * e for v, e in swapped.items()}, offset=-0.1, cost=20.0)
        + _cells(root, "reversed", {v: -e for v, e in EFFECTS.items()}, cost=25.0)
        + _cells(root, "lr0", dict.fromkeys(EFFECTS, 0.0), cost=10.0)
        + _cells(root, TARGET, EFFECTS, seeds=(1, 2), cost=100.0)
    )
    out = root / "collect"
    return out, collect(cells, out, n_boot=300, seed=0, plots=True)


def test_rho_and_tau_equal_scipy_on_the_per_fidelity_deltas_of_the_table(study: tuple[Path, Results]) -> None:
    out, _ = study
    table = _csv(out / "results.csv")
    agreement = _csv(out / "agreement.csv")
    for eval_set in SETS:

        def deltas(fidelity: str, eval_set: str = eval_set) -> list[float]:
            rows = {r["variant"]: r for r in table if r["fidelity"] == fidelity and r["eval_set"] == eval_set}
            return [float(rows[v]["delta"]) for v in EFFECTS]

        rho = scipy.stats.spearmanr(deltas("small"), deltas(TARGET)).statistic
        tau = scipy.stats.kendalltau(deltas("small"), deltas(TARGET)).statistic
        assert float(_stat(agreement, "small", eval_set, "spearman")["estimate"]) == pytest.approx(rho)
        assert float(_stat(agreement, "small", eval_set, "kendall")["estimate"]) == pytest.approx(tau)
        # the Δs are against the base at the SAME fidelity: the proxy's base is 10 points lower
        for v, d in zip(EFFECTS, deltas("small"), strict=True):
            row = next(
                r
                for r in agreement
                if r["proxy"] == "small"
                and r["eval_set"] == eval_set
                and r["statistic"] == "proxy_delta"
                and r["variant"] == v
            )
            assert float(row["estimate"]) == pytest.approx(d)


def test_planted_agreement_agrees_and_planted_disagreement_and_lr0_never_do(
    study: tuple[Path, Results],
) -> None:
    _, results = study
    verdicts = {(a.proxy, s.eval_set): s.verdict.value for a in results.agreements for s in a.sets}
    names = [*SETS, "macro:ner/test", "macro:cls/test"]
    assert {verdicts[("small", n)] for n in names} == {"agrees"}
    assert {verdicts[("reversed", n)] for n in names} == {"disagrees"}
    assert "agrees" not in {verdicts[("lr0", n)] for n in names}
    # its Δs are per-cell noise around 0: no order to agree with the target's
    lr0 = next(a for a in results.agreements if a.proxy == "lr0")
    assert all(abs(d.estimate) < 0.02 for s in lr0.sets for d in s.proxy_delta)


def test_results_carry_the_fidelity_and_the_agreement_and_cost_sections(study: tuple[Path, Results]) -> None:
    out, results = study
    table = _csv(out / "results.csv")
    assert list(table[0])[0] == "fidelity"
    assert {r["fidelity"] for r in table} == {"small", "reversed", "lr0", TARGET}
    assert all(r["delta"] == "" for r in table if r["variant"] == "base")  # each fidelity has its own base
    # scores of the whole results are the target's (a proxy's 10-point lower scores never leak in)
    assert results.scores() == results.fidelities[TARGET].scores() != results.fidelities["small"].scores()
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "## Proxy-to-target agreement" in md and "### small vs target" in md
    assert "Verdict from Spearman ρ" in md  # the rule, stated
    assert "## Measured cost per fidelity" in md
    for proxy in ("small", "reversed", "lr0"):
        assert (out / f"agreement_{proxy}_vs_target.png").stat().st_size > 1000
    assert (out / "target_delta_heatmap_leave_out.png").is_file()


def test_measured_cost_per_fidelity_and_its_ratio_to_the_target(study: tuple[Path, Results]) -> None:
    _, results = study
    costs = {c.fidelity: c for c in results.costs}
    per_cell = {f: np.mean([c.process_seconds for c in results.cells if c.fidelity == f]) for f in costs}
    assert costs[TARGET].cells == 14 and costs[TARGET].measured == 14
    assert costs["small"].total_s == pytest.approx(
        sum(c.process_seconds or 0 for c in results.cells if c.fidelity == "small")
    )
    assert costs["small"].ratio == pytest.approx(per_cell["small"] / per_cell[TARGET])
    assert costs[TARGET].ratio == pytest.approx(1.0)
    rows = [r for r in results.rows if r.fidelity == TARGET and r.variant == "v1"]
    assert rows[0].process_seconds == pytest.approx(2 * 100.0 * 1.01)  # both seeds' cells, summed


def test_too_few_anchors_is_not_an_error_but_a_stated_line(tmp_path: Path) -> None:
    cells = _cells(tmp_path, "small", EFFECTS) + _cells(
        tmp_path, TARGET, {v: EFFECTS[v] for v in ("v1", "v6")}
    )
    results = collect(cells, tmp_path / "collect", n_boot=100, seed=0, plots=False)
    assert results.agreements == []
    md = (tmp_path / "collect" / "results.md").read_text(encoding="utf-8")
    assert "Agreement of small with target: not measured: 2 variant(s)" in md
    assert "fidelities.target.variants" in md and "run at least 3 of the variants at both levels" in md
    header = (tmp_path / "collect" / "agreement.csv").read_text(encoding="utf-8").splitlines()
    assert header[0].startswith("proxy,target,eval_set") and len(header) == 1


def test_no_target_done_yet_says_so(tmp_path: Path) -> None:
    cells = _cells(tmp_path, "small", EFFECTS) + [
        dataclasses.replace(c, state="missing", eval_dir=None) for c in _cells(tmp_path, TARGET, EFFECTS)
    ]
    collect(cells, tmp_path / "collect", n_boot=100, seed=0, plots=False)
    md = (tmp_path / "collect" / "results.md").read_text(encoding="utf-8")
    assert "Agreement of small with target: not measured: no target cell is done yet" in md


def test_the_agreement_table_and_plots_go_to_the_wandb_collect_run(
    study: tuple[Path, Results], tmp_path: Path
) -> None:
    out, _ = study
    view = tmp_path / "view"
    shutil.copytree(out, view)
    log_to_wandb(view, TrackingConfig(wandb_mode="offline"), "fid")
    (files,) = list((view / "wandb").glob("offline-run-*/files"))
    tables = {p.name.split("_")[0]: p for p in (files / "media" / "table" / "sweep").glob("*.table.json")}
    logged = json.loads(tables["agreement"].read_text(encoding="utf-8"))
    with (out / "agreement.csv").open(encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    assert logged["columns"] == header and len(logged["data"]) == len(rows)
    images = {p.name for p in (files / "media" / "images" / "sweep").glob("*.png")}
    assert any(name.startswith("agreement_small_vs_target") for name in images)
