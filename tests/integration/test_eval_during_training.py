"""Generative evaluation at checkpoints inside a real 2-rank ZeRO-3 training job on CPU (``eval.during_training``).

Three 2-rank launches share one module-scoped setup (6 steps of the tiny Llama on real NCBI-disease sentences,
checkpoints every 2 steps, evaluated every 2 steps on 3 NCBI-disease dev examples):

* ``off``: evaluation off;
* ``run``: evaluation on; rank 1 is SIGKILLed after step 5 (after the evaluation of step 4, before that of step 6),
  and the save of step 4 is made to look interrupted (its COMPLETED marker removed);
* its ``resume: auto`` continuation: it resumes from step 2, replays step 4 (evaluated already: its record goes
  back to metrics.jsonl, nothing is generated) and evaluates step 6.

The first attempt uses the default (weights gathered once per evaluation, each rank alone, DeepSpeed's forward
bookkeeping set aside, ``torch.inference_mode``); its checkpoint of step 2, saved after that step's evaluation, is
what the resumed run trains on, whose losses must be those of the run without evaluation (a training step right
after a gathered generation: ``test_generation_model.py``). The resumed run generates with ``gather_weights=false`` (ZeRO-3 gathers each layer at
every forward, ranks in lockstep): ``eval.batch_size=1`` with 3 examples on 2 ranks gives rank 0 two batches and
rank 1 one, so rank 1 runs a filler batch to stay in step (``synced_gpus``). Both must give what ``biotune eval``
of the exported checkpoint gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_support import make_packed_dataset, torchrun, write_config

from biotune.cli import main
from biotune.eval.layout import DURING_TRAINING_RECORD, PREDICTIONS_FILE, REPORT_JSON, step_eval_dir
from biotune.testing.wandb_files import read_offline_run
from biotune.train import checkpoint as layout
from biotune.train import metric_names as names
from biotune.train.tracking import read_metrics

pytestmark = pytest.mark.slow

STEPS = 6
EVAL_STEPS = [2, 4, 6]
SET = ("ncbi_disease", "devel")  # eval.during_training.splits=[dev], in NCBI-disease's own spelling
EVAL = [
    "eval.max_new_tokens=6",
    "eval.batch_size=1",
]
DURING = [
    "eval.during_training.every_steps=2",
    "eval.during_training.sources=[ncbi_disease]",
    "eval.during_training.splits=[dev]",
    "eval.during_training.max_examples=3",
]


def _run(cfg: Path, *overrides: str, env: dict[str, str] | None = None, ok: bool = True) -> None:
    proc = torchrun(cfg, 2, *overrides, env_extra=env, timeout=300)
    assert (proc.returncode == 0) == ok, proc.stderr[-4000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, tiny_tokenizer, corpora: Path) -> dict:
    tmp = tmp_path_factory.mktemp("evtrain")
    data = make_packed_dataset(tmp / "data", corpora, tiny_tokenizer)
    root = [f"data.root={corpora}", *EVAL]
    out: dict = {"tmp": tmp, "corpora": corpora}
    for name in ("run", "off"):
        out[name] = tmp / name
        out[f"{name}_cfg"] = write_config(
            tmp / f"{name}.yaml", tiny_model, data, tmp / name, max_steps=STEPS, save_every=2, keep_last=3
        )
    _run(out["off_cfg"], *root)
    _run(out["run_cfg"], *root, *DURING, env={"BIOTUNE_FAULT_KILL_AT_STEP": "5:1"}, ok=False)
    out["before_resume"] = {s: step_eval_dir(out["run"], s).is_dir() for s in EVAL_STEPS}
    out["record4_mtime"] = (step_eval_dir(out["run"], 4) / DURING_TRAINING_RECORD).stat().st_mtime_ns
    out["metrics_before"] = _eval_points(out["run"])
    (
        layout.checkpoint_dir(out["run"], 4) / layout.COMPLETED
    ).unlink()  # as if the save of step 4 was cut short
    lockstep = (
        "eval.during_training.gather_weights=false"  # the resumed run: layer-by-layer gathers, lockstep
    )
    _run(out["run_cfg"], *root, *DURING, lockstep)
    return out


def _losses(run: Path) -> dict[int, float]:
    return {
        r["step"]: r[names.TRAIN_LOSS]
        for r in read_metrics(run / layout.METRICS_FILE)
        if names.TRAIN_LOSS in r
    }


def _eval_points(run: Path) -> list[tuple[int, float, float]]:
    f1 = names.eval_metric(*SET, "f1")
    return [
        (r["step"], r[f1], r[names.TRAIN_TOKENS]) for r in read_metrics(run / layout.METRICS_FILE) if f1 in r
    ]


def _completions(out_dir: Path) -> dict[str, str]:
    rows = [json.loads(line) for line in (out_dir / PREDICTIONS_FILE).read_text().splitlines()]
    return {r["id"]: r["completion"] for r in rows}


def _scores(out_dir: Path) -> list[dict]:
    scores = json.loads((out_dir / REPORT_JSON).read_text())["scores"]
    return [{k: s[k] for k in ("source", "split", "n", "parse_failures", "metrics")} for s in scores]


def test_each_evaluated_step_writes_the_eval_files_and_logs_its_scores(runs: dict) -> None:
    run = runs["run"]
    assert sorted(p.name for p in (run / "eval").iterdir()) == [f"step-{s}" for s in EVAL_STEPS]
    for step in EVAL_STEPS:
        d = step_eval_dir(run, step)
        assert len(_completions(d)) == 3
        assert (d / "predictions" / "ncbi_disease__devel.jsonl").is_file() and (d / "report.md").is_file()
        record = json.loads((d / DURING_TRAINING_RECORD).read_text())
        assert record["step"] == step and names.eval_parse_failures(*SET) in record["metrics"]
    tokens = {r["step"]: r[names.TRAIN_TOKENS] for r in read_metrics(run / layout.METRICS_FILE)}
    assert all(p[2] == tokens[p[0]] > 0 for p in _eval_points(run)), (
        "eval points carry the x-axis train/tokens"
    )


def test_evaluation_does_not_perturb_training(runs: dict) -> None:
    """Evaluation on (and a crash and resume) leaves the loss curve of the run without evaluation unchanged: the
    resumed run trains on from the checkpoint of step 2, saved after that step's gathered evaluation."""
    on, off = _losses(runs["run"]), _losses(runs["off"])
    assert sorted(on) == list(range(1, STEPS + 1))
    assert on == off
    assert not (runs["off"] / "eval").exists()


def test_a_resumed_run_evaluates_each_scheduled_step_exactly_once(runs: dict) -> None:
    run = runs["run"]
    assert runs["before_resume"] == {2: True, 4: True, 6: False}, (
        "killed after step 4's evaluation, before 6's"
    )
    assert [p[0] for p in runs["metrics_before"]] == [2, 4]
    assert sorted(p.name for p in (run / "eval").iterdir()) == [f"step-{s}" for s in EVAL_STEPS]
    record = step_eval_dir(run, 4) / DURING_TRAINING_RECORD
    assert record.stat().st_mtime_ns == runs["record4_mtime"], "step 4 was replayed, not evaluated again"
    points = _eval_points(run)
    assert [p[0] for p in points] == EVAL_STEPS, "one point per step in metrics.jsonl"
    assert points[:2] == runs["metrics_before"], (
        "the replayed step logs what was recorded, at the same tokens"
    )
    # wandb: the first attempt sent 2 and 4, the resumed one 6 (step 4's record went back to metrics.jsonl only)
    f1 = names.eval_metric(*SET, "f1")
    sent = sorted(
        r["_step"]
        for d in (run / "wandb").glob("offline-run-*")
        for r in read_offline_run(d).history
        if f1 in r
    )
    assert sent == EVAL_STEPS


def test_in_training_eval_equals_biotune_eval_of_the_exported_checkpoint(runs: dict) -> None:
    """Same completions and same scores as `biotune export` + `biotune eval` of the checkpoint of that step
    (step 4: evaluated before the crash with the weights gathered, its checkpoint written by the replay; step 6:
    after the resume, in lockstep)."""
    run, tmp = runs["run"], runs["tmp"]
    for step in (4, 6):
        exported = tmp / f"export-{step}"
        assert main(["export", str(layout.checkpoint_dir(run, step)), str(exported)]) == 0
        eval_out = tmp / f"eval-{step}"
        args = [
            "eval",
            str(run / layout.CONFIG_FILE),
            f"eval.model={exported}",
            f"eval.output_dir={eval_out}",
            f"data.root={runs['corpora']}",
            "eval.sources=[ncbi_disease]",
            "eval.splits=[dev]",
            "eval.max_examples=3",
            "tracking.wandb_mode=disabled",
            *EVAL,
        ]
        assert main(args) == 0
        inside = step_eval_dir(run, step)
        assert _completions(inside) == _completions(eval_out)
        assert _scores(inside) == _scores(eval_out)
    assert _completions(step_eval_dir(run, 2)) != _completions(step_eval_dir(run, 6)), "the model moved"


def test_wandb_run_holds_the_namespaced_eval_curves(runs: dict) -> None:
    f1, failures = names.eval_metric(*SET, "f1"), names.eval_parse_failures(*SET)
    for d in (runs["run"] / "wandb").glob("offline-run-*"):
        run = read_offline_run(d)
        rows = [r for r in run.history if f1 in r]
        assert rows and all(failures in r and r[names.TRAIN_TOKENS] > 0 for r in rows)
        assert run.metrics["eval/*"] == names.X_AXIS
