"""Per-example statistics: their sums, reduced, give each task's headline exactly, on every task family."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from biotune.data.tasks import TASKS, Task, metrics, task_for
from biotune.eval import score as sc
from biotune.eval.example_stats import REDUCERS, metric_from_stats, sum_stats
from biotune.sources import SOURCES, resolve_root

# One sample-corpus source per headline convention, every task family included.
SETS = {
    "ncbi_disease": "f1",  # NER, entity micro-F1
    "bc5cdr_chem": "f1",  # NER
    "chemprot": "micro_f1",  # RE, BLURB: negative class left out
    "i2b2_2010_re": "micro_f1_with_negative",  # RE, the paper's i2b2-2010 convention
    "gad": "f1",  # binary RE: the positive class's F1
    "mednli": "accuracy",  # NLI
    "pubmedqa": "accuracy",  # QA
    "bioasq_yesno": "accuracy",  # QA
    "hoc": "f1",  # multi-label, micro-F1 over document x label
}


def _eval_sets(name: str) -> list[sc.EvalSet]:
    """Every split of ``name`` in the bundled sample corpus, as evaluation sets."""
    root = resolve_root("@sample")
    return [
        sc.build_eval_set(name, split, root)
        for split, rel in SOURCES[name].splits.items()
        if (root / rel).exists()
    ]


@pytest.fixture(scope="module", params=list(SETS))
def pooled(request: pytest.FixtureRequest) -> tuple[Task, list[Any]]:
    """A source's task and the gold values of all its sample records (every split pooled, for more examples)."""
    sets = _eval_sets(request.param)
    task = sets[0].task
    return task, [task.reference(r) for s in sets for r in s.records]


def _perturb(task: Task, gold: Any, rng: random.Random) -> Any:
    """A plausible wrong (or right) prediction: flipped tags, another label, a changed label set, or None."""
    if rng.random() < 0.1:
        return None  # a completion that could not be parsed at all
    if task.kind == "ner":
        tags = list(gold)
        for i in range(len(tags)):
            if rng.random() < 0.15:
                tags[i] = rng.choice(task.spec.tag_set)
        return tuple(tags)
    if task.kind == "cls":
        return tuple(
            sorted({x for x in gold if rng.random() < 0.7} | {x for x in task.labels if rng.random() < 0.1})
        )
    r = rng.random()
    return gold if r < 0.5 else ("" if r < 0.6 else rng.choice(task.labels))  # "" is the parser's fallback


def test_the_sets_cover_every_task_family_and_headline() -> None:
    assert {SOURCES[name].kind for name in SETS} == set(TASKS)
    assert {task_for(SOURCES[name]).headline for name in SETS} == set(SETS.values())


def test_summed_stats_reduce_to_the_headline_on_perturbed_predictions(pooled: tuple[Task, list[Any]]) -> None:
    task, gold = pooled
    assert task.headline == SETS[task.spec.name] and task.reducer in REDUCERS
    headlines = []
    for seed in range(25):
        rng = random.Random(seed)
        pred = [_perturb(task, g, rng) for g in gold]
        expected = task.score(gold, pred)[task.headline]
        stats = [task.example_stats(g, p) for g, p in zip(gold, pred, strict=True)]
        assert all(set(s) == set(REDUCERS[task.reducer].keys) for s in stats)
        got = metric_from_stats(task.reducer, sum_stats(stats))
        assert isinstance(got, float) and got == pytest.approx(expected, abs=1e-12, rel=0), seed
        headlines.append(expected)
    assert len(set(headlines)) > 5 and all(0 < h < 1 for h in headlines[1:])  # a real test: scores vary


def test_vectorised_bootstrap_equals_rescoring_each_resample(pooled: tuple[Task, list[Any]]) -> None:
    task, gold = pooled
    rng = random.Random(11)
    pred = [_perturb(task, g, rng) for g in gold]
    keys = REDUCERS[task.reducer].keys
    table = np.array([[task.example_stats(g, p)[k] for k in keys] for g, p in zip(gold, pred, strict=True)])
    draws = np.random.default_rng(0).integers(0, len(gold), size=(20, len(gold)))
    counts = np.stack([np.bincount(row, minlength=len(gold)) for row in draws])  # (B, n) times each is drawn
    sums = counts @ table  # (B, k)
    got = metric_from_stats(task.reducer, {k: sums[:, j] for j, k in enumerate(keys)})
    assert isinstance(got, np.ndarray) and got.shape == (20,)
    expected = [task.score([gold[i] for i in row], [pred[i] for i in row])[task.headline] for row in draws]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(SETS))
def test_score_set_rows_carry_stats_that_reduce_to_the_reported_score(name: str) -> None:
    for eval_set in _eval_sets(name):
        rng = random.Random(name)
        outputs = [s.output for s in eval_set.samples]
        completions = {
            s.id: (s.output if rng.random() < 0.5 else rng.choice(outputs)) for s in eval_set.samples
        }
        result, rows = sc.score_set(eval_set, completions)
        assert result.reducer == eval_set.task.reducer
        total = sum_stats(row["stats"] for row in rows)
        headline = result.metrics[result.headline]
        assert metric_from_stats(result.reducer, total) == pytest.approx(headline, abs=1e-12, rel=0)
        assert all(row["unit"].startswith(f"{eval_set.source}/{eval_set.split}/") for row in rows)


def test_mean_reducer_gives_a_per_example_average() -> None:
    """``mean`` over per-document example-based F1 equals the set's example-based F1 (BLUE's HoC score)."""
    task, gold = task_for(SOURCES["hoc"]), []
    for eval_set in _eval_sets("hoc"):
        gold += [task.reference(r) for r in eval_set.records]
    rng = random.Random(5)
    pred = [_perturb(task, g, rng) for g in gold]
    stats = [
        {"value": metrics.multilabel_scores([g], [p], task.labels)["example_f1"], "n": 1.0}
        for g, p in zip(gold, pred, strict=True)
    ]
    expected = metrics.multilabel_scores(gold, pred, task.labels)["example_f1"]
    assert metric_from_stats("mean", sum_stats(stats)) == pytest.approx(expected, abs=1e-12, rel=0)
    assert 0 < expected < 1


def test_zero_denominators_reduce_to_zero_and_shapes_follow_the_input() -> None:
    assert metric_from_stats("f1", {"tp": 0.0, "fp": 0.0, "fn": 0.0}) == 0.0
    assert metric_from_stats("accuracy", {"correct": 0.0, "n": 0.0}) == 0.0
    f1 = metric_from_stats(
        "f1", {"tp": np.array([0.0, 1.0, 3.0]), "fp": np.array([0.0, 1.0, 0.0]), "fn": 1.0}
    )
    np.testing.assert_array_equal(f1, [0.0, 2 / 4, 6 / 7])
    mean = metric_from_stats("mean", {"value": np.array([1.5, 0.0]), "n": np.array([3.0, 0.0])})
    np.testing.assert_array_equal(mean, [0.5, 0.0])


def test_unknown_reducers_and_missing_statistics_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown reducer 'macro'"):
        metric_from_stats("macro", {})
    with pytest.raises(ValueError, match="missing fn"):
        metric_from_stats("f1", {"tp": 1.0, "fp": 0.0})
