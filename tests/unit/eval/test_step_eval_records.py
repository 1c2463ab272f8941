"""A run that starts from step 0 takes no earlier run's step evaluations for its own (``eval.during_training``).

The records in ``eval/step-N/`` mean "this step was evaluated" only within one run's history: a resumed run trusts
them (exactly once across pre-emption), a run that starts over (``train.resume=none``, or no checkpoint to resume)
must not, or it would skip its own evaluations and log an earlier model's scores, and ``sweep collect`` would read
them. Such evaluations are moved aside whole, never deleted.
"""

from __future__ import annotations

import json
from pathlib import Path

from biotune import config
from biotune.eval.during_training import StepEvaluation, set_aside_earlier_run
from biotune.eval.layout import DURING_TRAINING_RECORD, step_eval_dir, step_eval_dirs
from biotune.sweep.collect_steps import evaluated_steps

TINY = config.REPO_ROOT / "configs/train/tiny.yaml"


def _earlier_run(out: Path, steps: list[int]) -> None:
    for step in steps:
        d = step_eval_dir(out, step)
        d.mkdir(parents=True)
        (d / DURING_TRAINING_RECORD).write_text(json.dumps({"step": step, "metrics": {"eval/x/dev/f1": 0.5}}))
        (d / "report.json").write_text("{}")


def test_an_earlier_runs_step_evaluations_are_moved_aside_whole(tmp_path: Path) -> None:
    _earlier_run(tmp_path, [2, 4])
    foreign = tmp_path / "eval" / "step-9"  # no record: not ours, stays
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    dest = set_aside_earlier_run(tmp_path)
    assert dest is not None and dest.parent == tmp_path / "eval" and dest.name.startswith("replaced-")
    assert sorted(p.name for p in dest.iterdir()) == ["step-2", "step-4"]
    assert json.loads((dest / "step-4" / DURING_TRAINING_RECORD).read_text())["step"] == 4
    assert (dest / "step-2" / "report.json").is_file()
    assert step_eval_dirs(tmp_path) == {} and evaluated_steps(tmp_path) == []
    assert (foreign / "notes.txt").read_text() == "mine"
    assert set_aside_earlier_run(tmp_path) is None  # nothing left to move: no new directory
    assert len(list((tmp_path / "eval").glob("replaced-*"))) == 1


def test_a_fresh_run_sets_them_aside_and_a_resumed_run_keeps_them(tmp_path: Path, tiny_model: Path) -> None:
    cfg = config.load(
        TINY,
        [
            f"model.name_or_path={tiny_model}",
            "data.sources.ncbi_disease.include=true",
            "eval.during_training.every_steps=2",
            "eval.during_training.sources=[ncbi_disease]",
            "eval.during_training.max_examples=2",
        ],
    )
    resumed, fresh = tmp_path / "resumed", tmp_path / "fresh"
    for out in (resumed, fresh):
        _earlier_run(out, [2, 4])
    kept = StepEvaluation(cfg, lambda gather: None, resumed, 6, resumed_step=4)  # type: ignore[arg-type,return-value]
    assert sorted(step_eval_dirs(resumed)) == [2, 4] and kept.is_done(4)
    assert kept.recorded(4) == {"eval/x/dev/f1": 0.5}
    started = StepEvaluation(cfg, lambda gather: None, fresh, 6, resumed_step=None)  # type: ignore[arg-type,return-value]
    assert step_eval_dirs(fresh) == {} and not started.is_done(2) and not started.is_done(4)
    assert [p.name for p in (fresh / "eval").glob("replaced-*/step-*")] != []
