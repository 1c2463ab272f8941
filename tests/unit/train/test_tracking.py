"""metrics.jsonl and wandb trackers: rank 0 only, offline run ids that survive a resume, log trimming, the
dashboard's sections (names, ``define_metric`` x-axis), and older runs' flat names mapped on resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biotune.config import TrackingConfig
from biotune.data.dataset import Manifest
from biotune.errors import DataError
from biotune.io import truncate_jsonl
from biotune.testing.wandb_files import read_offline_run
from biotune.train import metric_names as names
from biotune.train.checkpoint import METRICS_FILE, trim_logs
from biotune.train.tracking import NullTracker, build_tracker, read_metrics

#: Every name the trainer logs (the integration test checks the trainer logs exactly these).
LOGGED = [
    names.TRAIN_LOSS,
    names.TRAIN_LR,
    names.TRAIN_GRAD_NORM,
    names.TRAIN_TOKENS,
    names.TRAIN_EPOCH,
    names.PERF_TOKENS_PER_S,
    names.PERF_TOKENS_PER_S_PER_DEVICE,
    names.PERF_MFU,
    names.PERF_PEAK_TFLOPS,
    names.PERF_PEAK_MEM_GB,
    names.EVAL_LOSS,
]


def test_truncate_jsonl_drops_lines_past_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"step": s, names.TRAIN_LOSS: 1.0}) + "\n" for s in range(1, 8)))
    truncate_jsonl(path, 4)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3, 4]


def test_trackers_rank_zero_jsonl_and_null_elsewhere(tmp_path: Path) -> None:
    cfg = TrackingConfig(wandb_mode="disabled")
    assert isinstance(build_tracker(cfg, tmp_path, "r", {}, None, is_rank_zero=False), NullTracker)
    tracker = build_tracker(cfg, tmp_path, "r", {"a": 1}, Manifest(), is_rank_zero=True)
    tracker.log({names.TRAIN_LOSS: 2.5, names.TRAIN_TOKENS: 64.0}, step=1)
    tracker.finish()
    line = json.loads((tmp_path / METRICS_FILE).read_text())
    assert line == {"step": 1, "train/loss": 2.5, "train/tokens": 64.0}
    assert (tmp_path / "tracking.json").is_file()


def test_wandb_offline_run_id_persists(tmp_path: Path) -> None:
    cfg = TrackingConfig(wandb_mode="offline", project="p", group="g", tags=["t"])
    first = build_tracker(
        cfg, tmp_path, "r", {"a": 1}, Manifest(tokenizer_fingerprint="x"), is_rank_zero=True
    )
    run_id = first.run_id
    first.finish()
    again = build_tracker(cfg, tmp_path, "r", {"a": 1}, None, is_rank_zero=True)
    again.finish()
    assert run_id and again.run_id == run_id
    assert list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))


# ------------------------------------------------------------------------------------------- the names


def test_every_logged_name_is_in_a_section_and_legacy_names_map_onto_them() -> None:
    assert len(set(LOGGED)) == len(LOGGED)
    assert all(n.split("/", 1)[0] in names.SECTIONS and n.count("/") == 1 for n in LOGGED)
    assert names.X_AXIS == "train/tokens"
    assert set(names.LEGACY_NAMES.values()) <= set(LOGGED)
    assert (
        names.LEGACY_NAMES["eval_loss"] == "eval/loss" and names.LEGACY_NAMES["tokens_seen"] == "train/tokens"
    )


def test_eval_name_builders() -> None:
    assert names.eval_metric("ncbi_disease", "dev", "f1") == "eval/ncbi_disease/dev/f1"
    assert names.eval_parse_failures("hoc", "test") == "eval/hoc/test/parse_failures"
    for bad in ("", "a/b", " dev"):
        with pytest.raises(ValueError, match="without '/'"):
            names.eval_metric("ncbi_disease", bad, "f1")
    with pytest.raises(ValueError, match="source"):
        names.eval_parse_failures("bc5cdr/chem", "dev")


def test_rename_legacy_keeps_values_and_prefers_section_names() -> None:
    old = {"step": 3, "loss": 1.5, "eval_loss": 2.0, "mfu": 0.01, "something_else": 7}
    assert names.rename_legacy(old) == {
        "step": 3,
        "train/loss": 1.5,
        "eval/loss": 2.0,
        "perf/mfu": 0.01,
        "something_else": 7,
    }
    assert names.rename_legacy({"loss": 9.0, "train/loss": 1.0}) == {"train/loss": 1.0}
    assert not names.has_legacy_names(names.rename_legacy(old)) and names.has_legacy_names(old)


# ------------------------------------------------------------------------------------------- wandb sections


def test_offline_wandb_run_holds_sections_plotted_against_tokens(tmp_path: Path) -> None:
    """A real offline run: the namespaced keys in its history, and define_metric's x-axis for every section."""
    tracker = build_tracker(TrackingConfig(wandb_mode="offline"), tmp_path, "r", {}, None, is_rank_zero=True)
    tracker.log({names.TRAIN_LOSS: 3.0, names.TRAIN_TOKENS: 512.0, names.PERF_MFU: 0.02}, step=1)
    score = names.eval_metric("ncbi_disease", "dev", "f1")
    tracker.log({names.EVAL_LOSS: 2.5, score: 0.4, names.TRAIN_TOKENS: 1024.0}, step=2)
    tracker.finish()
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    run = read_offline_run(run_dir)
    assert run.metrics[names.X_AXIS] == ""
    assert {g: run.metrics[g] for g in ("train/*", "perf/*", "eval/*")} == dict.fromkeys(
        ("train/*", "perf/*", "eval/*"), "train/tokens"
    )
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in run.history]
    assert rows == [
        {"train/loss": 3.0, "train/tokens": 512.0, "perf/mfu": 0.02},
        {"eval/loss": 2.5, "eval/ncbi_disease/dev/f1": 0.4, "train/tokens": 1024.0},
    ]
    assert [r["_step"] for r in run.history] == [1, 2]
    jsonl = read_metrics(tmp_path / METRICS_FILE)
    assert [{k: v for k, v in r.items() if k != "step"} for r in jsonl] == rows, "metrics.jsonl = wandb names"


# ------------------------------------------------------------------------------------------- resume mapping


def _plant_old_run(out: Path, steps: int) -> list[dict]:
    """metrics.jsonl as a biotune before the sections wrote it: flat names, train lines and eval lines."""
    rows: list[dict] = []
    for s in range(1, steps + 1):
        rows.append(
            {
                "step": s,
                "loss": 3.0 - 0.1 * s,
                "lr": 1e-3,
                "grad_norm": 0.5,
                "tokens_per_s": 900.0,
                "tokens_per_s_per_device": 450.0,
                "peak_mem_gb": 1.2,
                "tokens_seen": 128.0 * s,
                "epoch": 0,
                "mfu": 0.001,
            }
        )
        if s % 2 == 0:
            rows.append({"step": s, "eval_loss": 3.5 - 0.1 * s})
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_resume_over_an_old_runs_metrics_maps_flat_names(tmp_path: Path) -> None:
    """What ``biotune train`` does on resume (trim past the checkpoint, open the tracker, log on) keeps every
    earlier step, under the section names, in the file itself."""
    out = tmp_path / "run"
    old = _plant_old_run(out, 6)
    trim_logs(out, 4)  # the checkpoint the run resumes from is step 4
    tracker = build_tracker(TrackingConfig(wandb_mode="disabled"), out, "r", {}, None, is_rank_zero=True)
    tracker.log({names.TRAIN_LOSS: 2.0, names.TRAIN_TOKENS: 640.0}, step=5)
    tracker.finish()
    raw = [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
    assert not any(names.has_legacy_names(r) for r in raw), "the file was rewritten with section names"
    assert raw == read_metrics(out / METRICS_FILE)
    kept = [r for r in old if r["step"] <= 4]
    assert raw[: len(kept)] == [names.rename_legacy(r) for r in kept]
    assert [r[names.TRAIN_LOSS] for r in raw if names.TRAIN_LOSS in r] == pytest.approx(
        [2.9, 2.8, 2.7, 2.6, 2.0]
    )
    assert [r[names.EVAL_LOSS] for r in raw if names.EVAL_LOSS in r] == pytest.approx([3.3, 3.1])
    assert [r[names.TRAIN_TOKENS] for r in raw if names.TRAIN_LOSS in r] == [
        128.0,
        256.0,
        384.0,
        512.0,
        640.0,
    ]


def test_read_metrics_maps_without_rewriting_and_names_a_bad_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    old = _plant_old_run(out, 2)
    before = (out / METRICS_FILE).read_bytes()
    assert read_metrics(out / METRICS_FILE) == [names.rename_legacy(r) for r in old]
    assert (out / METRICS_FILE).read_bytes() == before
    (out / METRICS_FILE).write_text('{"step": 1}\n{"step": 2,\n')
    with pytest.raises(DataError) as err:
        read_metrics(out / METRICS_FILE)
    assert f"{out / METRICS_FILE}:2" in str(err.value)
