"""Simulated sweeps: per-example predictions of fine-tuned variants of one base, with correlated errors.

Used by ``benchmarks/sweep_calibration.py`` and the calibration tests to check ``biotune.sweep.stats`` against
its nominal rates (STYLE.md habit 21). The model of a sweep, for one eval set:

* **NER-like set** (:func:`simulate_ner`, reducer ``f1``, documents as resampling units). Each document j has
  a latent difficulty: its base recall ``q_j = 0.45 + 0.4 Beta(2, 2)`` (mean 0.65), shared by every variant
  and seed. Each sentence has ``1 + Binomial(2, 1/2)`` gold entities and as many false-positive
  "opportunities", each firing with probability ``fp_rate``. A fraction ``shared`` of entities (and of
  opportunities) is decided by its content: one uniform ``U`` per entity, the same for every model, and a
  model with recall r finds it iff ``U < r``. The rest are noisy: every model (arm and seed) draws its own.
  That is what makes errors of fine-tuned variants of one base correlated (a paired design gains from it).
* **Arms.** Arm a with effect ``Δ_a`` (F1 points, population value) and seed s has recall
  ``q_j + δ_a + o_{a,s}``: ``δ_a`` is the recall shift that moves the population F1 (ratio of expected
  counts) by exactly ``Δ_a``; the seed offset ``o_{a,s} ~ N(0, seed_sd)`` in F1 points, converted to recall
  by the slope of F1 at the base. Noisy entities add further seed-to-seed variation of their own.
* **Accuracy-like set** (:func:`simulate_accuracy`, reducer ``accuracy``, examples as units): example i has
  ``q_i = 0.3 + 0.6 Beta(2, 2)``, a shared or a per-model uniform as above, and accuracy shifts are in points.

``truth`` of an arm is its population score in points, so the true Δ of two arms is the difference of their
``effect`` arguments. :func:`write_eval_dir` writes one simulated model in the real ``biotune eval`` output
format (``report.json`` and ``predictions/<source>__<split>.jsonl``), and :func:`sweep_cells` a whole sweep
as :class:`~biotune.sweep.results.CellResult` objects for ``collect``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse

from biotune.eval.example_stats import metric_from_stats
from biotune.eval.report import REPORT_JSON, write_set_predictions
from biotune.io import atomic_write_json
from biotune.sweep.results import CellResult

SCALE = 100.0
"""Effects and seed sds are given in points (percent), like the results tables."""


@dataclass(frozen=True)
class NerDesign:
    """The shape of a simulated NER-like eval set."""

    n_docs: int = 300
    """Documents (the resampling units)."""
    sentences_per_doc: int = 4
    fp_rate: float = 0.15
    """Expected false positives per gold entity."""
    shared: float = 0.7
    """Share of entities whose outcome is decided by content (the same uniform for every model)."""

    @property
    def base_recall(self) -> float:
        """Population recall of the base: E[q_j] = 0.45 + 0.4 / 2."""
        return 0.65

    @property
    def base_f1(self) -> float:
        """Population F1 of the base: 2R / (R + fp_rate + 1) (ratio of expected counts)."""
        return f1_of_recall(self.base_recall, self.fp_rate)

    def recall_shift(self, effect_points: float) -> float:
        """The recall shift that moves the population F1 by ``effect_points``."""
        target = self.base_f1 + effect_points / SCALE
        return target * (self.fp_rate + 1.0) / (2.0 - target) - self.base_recall

    def slope(self) -> float:
        """dF1/dRecall at the base (converts seed offsets in F1 points to recall)."""
        r, f = self.base_recall, self.fp_rate
        return 2.0 * (f + 1.0) / (r + f + 1.0) ** 2


def f1_of_recall(recall: float, fp_rate: float) -> float:
    """Population F1 = 2 TP / (2 TP + FP + FN) with TP = R G, FP = fp_rate G, FN = (1 - R) G."""
    return 2.0 * recall / (recall + fp_rate + 1.0)


@dataclass(frozen=True)
class Arm:
    """One arm of a simulated comparison: its population effect vs the base (points) and its seeds."""

    effect: float
    n_seeds: int


@dataclass(frozen=True)
class SimulatedSet:
    """Per-row statistics of every model of every arm on one simulated eval set."""

    reducer: str
    stat_names: tuple[str, ...]
    units: np.ndarray
    """(rows,) unit (document or example) index of each row, numbered in order of first appearance."""
    arms: list[np.ndarray]
    """Per arm, (m, rows, k) float64 statistics of its m seeds."""
    truth: list[float]
    """Per arm, its population score in points."""

    @property
    def n_units(self) -> int:
        """Number of resampling units."""
        return int(self.units.max()) + 1

    def unit_stats(self) -> list[np.ndarray]:
        """Per arm, (m, units, k) statistics summed per unit (what ``stats.score_arms`` takes)."""
        rows = self.units.size
        member = scipy.sparse.csr_matrix(
            (np.ones(rows), (self.units, np.arange(rows))), shape=(self.n_units, rows)
        )
        return [np.stack([member @ seed for seed in arm]) for arm in self.arms]

    def rows(self, arm: int, seed: int, source: str, split: str) -> list[dict[str, object]]:
        """The prediction rows of one model, as ``biotune eval`` writes them (id, unit, stats, parse_ok)."""
        stats = self.arms[arm][seed]
        counters: dict[int, int] = {}
        out = []
        for u, row in zip(self.units.tolist(), stats.tolist(), strict=True):
            k = counters.get(u, 0)
            counters[u] = k + 1
            out.append(
                {
                    "id": f"{source}/{split}/u{u}.{k}",
                    "unit": f"u{u}",
                    "parse_ok": True,
                    "stats": {name: int(v) for name, v in zip(self.stat_names, row, strict=True)},
                }
            )
        return out


def _model_shifts(
    rng: np.random.Generator,
    arms: Sequence[Arm],
    seed_sd: float,
    shift: Callable[[float], float],
    slope: float,
) -> np.ndarray:
    """(M,) probability shifts of every model (arm-major, then seed): the arm's shift plus a seed offset.

    Seed offsets are N(0, seed_sd) in points, divided by ``slope`` (d score / d probability).
    """
    return np.concatenate(
        [shift(a.effect) + rng.normal(0.0, seed_sd / SCALE, a.n_seeds) / slope for a in arms]
    )


def _detections(
    rng: np.random.Generator,
    counts: np.ndarray,
    row_prob: np.ndarray,
    shifts: np.ndarray,
    shared: float,
) -> np.ndarray:
    """(M, rows) successes of M models on ``counts`` trials per row with probability ``row_prob + shift``.

    A fraction ``shared`` of trials uses one uniform for every model; the rest are Binomial per model.
    """
    rows = counts.size
    trial_row = np.repeat(np.arange(rows), counts)
    is_shared = rng.random(trial_row.size) < shared
    u = rng.random(int(is_shared.sum()))
    shared_row = trial_row[is_shared]
    prob = np.clip(row_prob[None, :] + shifts[:, None], 0.0, 1.0)  # (M, rows)
    hit = u[None, :] < prob[:, shared_row]  # (M, shared trials)
    member = scipy.sparse.csr_matrix(
        (np.ones(shared_row.size), (np.arange(shared_row.size), shared_row)), shape=(shared_row.size, rows)
    )
    from_shared = np.asarray((member.T @ hit.T.astype(np.float64)).T)
    fresh = counts - np.bincount(shared_row, minlength=rows)
    return from_shared + rng.binomial(fresh[None, :], prob)


def simulate_ner(
    rng: np.random.Generator,
    arms: Sequence[Arm],
    seed_sd: float,
    design: NerDesign = NerDesign(),
    by: str = "sentence",
) -> SimulatedSet:
    """One NER-like eval set scored by every model of ``arms`` (see the module docstring).

    ``by="sentence"`` gives one row per sentence (prediction files); ``by="doc"`` sums each document's
    sentences first (the same distribution, far fewer draws: for bulk simulation).
    """
    if by not in ("sentence", "doc"):
        raise ValueError(f"by must be 'sentence' or 'doc', not {by!r}")
    q = 0.45 + 0.4 * rng.beta(2.0, 2.0, design.n_docs)
    gold = 1 + rng.binomial(2, 0.5, (design.n_docs, design.sentences_per_doc))
    if by == "doc":
        counts, units = gold.sum(axis=1), np.arange(design.n_docs)
    else:
        counts, units = gold.ravel(), np.repeat(np.arange(design.n_docs), design.sentences_per_doc)
    shifts = _model_shifts(rng, arms, seed_sd, design.recall_shift, design.slope())
    tp = _detections(rng, counts, q[units], shifts, design.shared)
    fp = _detections(rng, counts, np.full(counts.size, design.fp_rate), np.zeros(shifts.size), design.shared)
    stats = np.stack([tp, fp, counts[None, :] - tp], axis=-1)
    return SimulatedSet(
        "f1",
        ("tp", "fp", "fn"),
        units,
        _split_arms(stats, arms),
        [SCALE * design.base_f1 + a.effect for a in arms],
    )


def simulate_accuracy(
    rng: np.random.Generator, arms: Sequence[Arm], seed_sd: float, n_examples: int = 600, shared: float = 0.7
) -> SimulatedSet:
    """One classification-like eval set (reducer ``accuracy``, one unit per example)."""
    q = 0.3 + 0.6 * rng.beta(2.0, 2.0, n_examples)
    shifts = _model_shifts(rng, arms, seed_sd, lambda e: e / SCALE, 1.0)
    correct = _detections(rng, np.ones(n_examples, dtype=np.int64), q, shifts, shared)
    stats = np.stack([correct, np.ones_like(correct)], axis=-1)
    return SimulatedSet(
        "accuracy",
        ("correct", "n"),
        np.arange(n_examples),
        _split_arms(stats, arms),
        [SCALE * 0.6 + a.effect for a in arms],
    )


def _split_arms(stats: np.ndarray, arms: Sequence[Arm]) -> list[np.ndarray]:
    bounds = np.cumsum([0, *(a.n_seeds for a in arms)])
    return [
        np.ascontiguousarray(stats[bounds[i] : bounds[i + 1]], dtype=np.float64) for i in range(len(arms))
    ]


# ------------------------------------------------------------------------------------------- on disk

KINDS = {"f1": "ner", "accuracy": "cls"}


def write_eval_dir(path: Path, sets: dict[str, tuple[SimulatedSet, int, int]]) -> Path:
    """Write one model's eval output directory in the real format.

    Args:
        path: the directory to create (``report.json`` and ``predictions/``).
        sets: ``"<source>/<split>"`` -> (simulated set, arm index, seed index) of this model.
    """
    details, report_rows = {}, []
    for name, (sim, arm, seed) in sets.items():
        source, split = name.split("/")
        details[name] = sim.rows(arm, seed, source, split)
        sums = sim.arms[arm][seed].sum(axis=0)
        score = float(metric_from_stats(sim.reducer, dict(zip(sim.stat_names, sums, strict=True))))
        report_rows.append(
            {
                "dataset": name,
                "source": source,
                "split": split,
                "kind": KINDS[sim.reducer],
                "n": int(sim.units.size),
                "metric": sim.reducer,
                "score": round(SCALE * score, 2),
                "reducer": sim.reducer,
            }
        )
    write_set_predictions(path, details)
    atomic_write_json(path / REPORT_JSON, {"meta": {"simulated": True}, "rows": report_rows})
    return path


def sweep_cells(root: Path, sets: dict[str, SimulatedSet], arm_names: Sequence[str]) -> list[CellResult]:
    """A simulated sweep on disk: arm 0 is the base, the others leave-one-out-like variants; one cell per seed.

    Every set of ``sets`` must have been simulated with the same arms (one name per arm in ``arm_names``).
    """
    cells = []
    for a, variant in enumerate(arm_names):
        seeds = {sim.arms[a].shape[0] for sim in sets.values()}
        if len(seeds) != 1:
            raise ValueError(f"arm {variant!r} has different seed counts across sets: {sorted(seeds)}")
        for s in range(seeds.pop()):
            name = f"{variant}-s{s}"
            eval_dir = write_eval_dir(root / name / "eval", {n: (sim, a, s) for n, sim in sets.items()})
            cells.append(
                CellResult(
                    name=name,
                    variant=variant,
                    seed=s,
                    axis="base" if a == 0 else "simulated",
                    axis_value=None if a == 0 else variant,
                    is_base=a == 0,
                    control_for=None,
                    state="done",
                    log_path=None,
                    budget={},
                    weights={},
                    groups={n.split("/")[0]: KINDS[sim.reducer] for n, sim in sets.items()},
                    eval_dir=eval_dir,
                )
            )
    return cells
