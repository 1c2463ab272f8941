"""Real ZeRO-3 over 2 CPU processes (gloo): partitioning, falling loss, export, crash + exact resume.

Three 2-rank launches share one module-scoped setup: an uninterrupted run, a run whose rank 1 is SIGKILLed
after step 6, and its ``resume: auto`` continuation. A fourth single-process launch checks the world-size
guard. See tests/integration/train_support.py for the dataset (real NCBI-disease sentences).
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_support import REPO_ROOT, make_packed_dataset, read_jsonl, torchrun, train_env, write_config

from biotune.testing.wandb_files import read_offline_run
from biotune.train import checkpoint as layout
from biotune.train import metric_names as names
from biotune.train.tracking import read_metrics

pytestmark = pytest.mark.slow

STEPS = 8


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, tiny_tokenizer, corpora: Path) -> dict:
    tmp = tmp_path_factory.mktemp("train2")
    data = make_packed_dataset(tmp / "data", corpora, tiny_tokenizer)
    common = {"max_steps": STEPS, "save_every": 4, "eval_every": 4, "keep_last": 2}
    full = write_config(tmp / "full.yaml", tiny_model, data, tmp / "full", **common)  # MFU: the measured peak
    crash = write_config(tmp / "crash.yaml", tiny_model, data, tmp / "crash", **common, peak_tflops=1.0)
    return {"tmp": tmp, "full_cfg": full, "crash_cfg": crash, "full": tmp / "full", "crash": tmp / "crash"}


@pytest.fixture(scope="module")
def full_run(setup: dict) -> dict:
    proc = torchrun(
        setup["full_cfg"], 2, "tracking.log_dataset_text=true", "tracking.dataset_text_examples=5"
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return setup


def _losses(out: Path) -> dict[int, float]:
    return {
        r["step"]: r[names.TRAIN_LOSS]
        for r in read_metrics(out / layout.METRICS_FILE)
        if names.TRAIN_LOSS in r
    }


def test_zero3_partitions_and_loss_falls(full_run: dict) -> None:
    out = full_run["full"]
    info = __import__("json").loads((out / "run_info.json").read_text())
    assert info["world_size"] == 2
    assert info["partition_fraction_per_rank"] == pytest.approx([0.5, 0.5], abs=0.01)
    assert info["attn_implementation"] == "sdpa_packed"  # auto on CPU
    assert info["versions"]["torch"] == torch.__version__  # what this run imported (biotune.versions)
    assert info["versions"]["deepspeed"] == importlib.metadata.version("deepspeed")
    losses = _losses(out)
    assert sorted(losses) == list(range(1, STEPS + 1))
    assert losses[STEPS] < losses[1] - 0.5
    metrics = read_metrics(out / layout.METRICS_FILE)
    evals = [r[names.EVAL_LOSS] for r in metrics if names.EVAL_LOSS in r]
    assert len(evals) == 2 and evals[1] < evals[0]
    last = [r for r in metrics if r.get("step") == STEPS and names.TRAIN_LOSS in r][0]
    for key in (
        names.TRAIN_LR,
        names.TRAIN_GRAD_NORM,
        names.TRAIN_TOKENS,
        names.PERF_TOKENS_PER_S,
        names.PERF_TOKENS_PER_S_PER_DEVICE,
        names.PERF_MFU,
        names.PERF_PEAK_TFLOPS,
        names.PERF_PEAK_MEM_GB,
    ):
        assert last[key] > 0, key
    assert last[names.PERF_TOKENS_PER_S_PER_DEVICE] == pytest.approx(last[names.PERF_TOKENS_PER_S] / 2)
    assert all(0.0 < r[names.PERF_MFU] <= 1.0 for r in metrics if names.PERF_MFU in r), (
        "CPU MFU, measured peak"
    )
    assert all(r[names.TRAIN_TOKENS] > 0 for r in metrics), "every line carries the x-axis"
    assert not any(names.has_legacy_names(r) for r in metrics)


def test_wandb_run_reads_by_section(full_run: dict) -> None:
    """The offline wandb run holds the namespaced keys, every section plotted against train/tokens."""
    (run_dir,) = (full_run["full"] / "wandb").glob("offline-run-*")
    run = read_offline_run(run_dir)
    assert {g: run.metrics.get(g) for g in names.STEP_METRICS} == names.STEP_METRICS
    assert run.metrics[names.X_AXIS] == ""
    logged = {k for row in run.history for k in row if not k.startswith(("_", names.DATA_EXAMPLES))}
    assert logged == {
        n for n in vars(names).values() if isinstance(n, str) and n.split("/")[0] in names.SECTIONS
    }
    jsonl = read_metrics(full_run["full"] / layout.METRICS_FILE)
    assert logged == {k for r in jsonl for k in r} - {names.STEP}, (
        "metrics.jsonl and wandb use the same names"
    )
    evals = [r for r in run.history if names.EVAL_LOSS in r]
    assert [r[names.TRAIN_TOKENS] for r in evals] == [
        r[names.TRAIN_TOKENS] for r in jsonl if names.EVAL_LOSS in r
    ]


def test_dataset_text_only_where_allowed(full_run: dict) -> None:
    """The full run allowed 5 examples (its one source is unrestricted); the crash run keeps the default (below)."""
    (table,) = (full_run["full"] / "wandb").rglob("*.table.json")
    data = __import__("json").loads(table.read_text())
    assert data["columns"] == ["sample_id", "source", "prompt", "response"] and len(data["data"]) == 5
    assert all(row[0].startswith("ncbi_disease/train/") and "### Input:" in row[2] for row in data["data"])


def test_checkpoints_complete_and_pruned(full_run: dict) -> None:
    ckpts = [p.name for p in layout.list_checkpoints(full_run["full"])]
    assert ckpts == ["step-00000004", "step-00000008"]
    for ck in layout.list_checkpoints(full_run["full"]):
        assert layout.is_complete(ck) and all((ck / layout.rng_file(r)).is_file() for r in (0, 1))
        assert len(list((ck / layout.ZERO_DIR).glob("zero_pp_rank_*_model_states.pt"))) == 2
        assert (ck / layout.MODEL_META_DIR / "config.json").is_file()
        assert not list(ck.glob("*.pt")), "biotune's own checkpoint state must not be pickled"


def test_consumed_ids_balanced_per_rank(full_run: dict) -> None:
    consumed = read_jsonl(full_run["full"] / "consumed.jsonl")
    assert [c["step"] for c in consumed] == list(range(1, STEPS + 1))
    seen = [sid for c in consumed for rank_ids in c["sample_ids"] for sid in rank_ids]
    assert len(seen) == len(set(seen)), "a sample was consumed twice within the first epoch"
    assert all(len(c["sample_ids"]) == 2 and all(c["sample_ids"]) for c in consumed)


def test_export_matches_engine_logits(full_run: dict) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = full_run["full"]
    probe = torch.load(out / "export_probe.pt")
    model = AutoModelForCausalLM.from_pretrained(layout.export_dir(out), attn_implementation="sdpa").eval()
    assert AutoTokenizer.from_pretrained(layout.export_dir(out)).eos_token == "</s>"
    assert (layout.export_dir(out) / "generation_config.json").is_file()
    b = probe["batch"]
    with torch.no_grad():
        logits = model(input_ids=b["input_ids"], position_ids=b["position_ids"], use_cache=False).logits
    torch.testing.assert_close(logits, probe["logits"], atol=1e-5, rtol=1e-5)


def test_sigkill_then_resume_consumes_same_samples(full_run: dict) -> None:
    crash_cfg, crash = full_run["crash_cfg"], full_run["crash"]
    proc = torchrun(crash_cfg, 2, env_extra={"BIOTUNE_FAULT_KILL_AT_STEP": "6:1"})
    assert proc.returncode != 0
    assert (crash / "checkpoints" / "step-00000004" / "COMPLETED").is_file()
    assert len(read_jsonl(crash / "consumed.jsonl")) >= 6
    run_id = __import__("json").loads((crash / "tracking.json").read_text())["run_id"]
    # A save that died half-way: shards present, no COMPLETED marker. Resume must skip it.
    partial = crash / "checkpoints" / "step-00000006"
    shutil.copytree(crash / "checkpoints" / "step-00000004", partial)
    (partial / "COMPLETED").unlink()
    _as_older_biotune_wrote_it(crash / layout.METRICS_FILE)

    proc = torchrun(crash_cfg, 2, "train.resume=auto")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "skipping checkpoint" in proc.stderr and "step-00000006" in proc.stderr
    assert "resumed from" in proc.stderr and "step-00000004" in proc.stderr
    full_ids = [c["sample_ids"] for c in read_jsonl(full_run["full"] / "consumed.jsonl")]
    assert [c["sample_ids"] for c in read_jsonl(crash / "consumed.jsonl")] == full_ids
    full_losses, resumed_losses = _losses(full_run["full"]), _losses(crash)
    assert sorted(resumed_losses) == list(range(1, STEPS + 1))
    for step in range(5, STEPS + 1):
        assert resumed_losses[step] == pytest.approx(full_losses[step], abs=1e-5), step
    assert __import__("json").loads((crash / "tracking.json").read_text())["run_id"] == run_id
    for step in range(1, 5):  # logged under flat names before the crash: mapped, not lost
        assert resumed_losses[step] == pytest.approx(full_losses[step], abs=1e-5), step
    raw = [__import__("json").loads(line) for line in (crash / layout.METRICS_FILE).read_text().splitlines()]
    assert not any(names.has_legacy_names(r) for r in raw), "the resumed run's file holds section names only"
    assert sum(names.EVAL_LOSS in r for r in raw) == 2
    assert not list(crash.rglob("*.table.json")), (
        "tracking.log_dataset_text is off by default: no dataset text"
    )


def _as_older_biotune_wrote_it(path: Path) -> None:
    """Rewrite a metrics.jsonl with the flat names biotune logged before the dashboard's sections."""
    import json

    flat = {new: old for old, new in names.LEGACY_NAMES.items()}
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    old = [{flat.get(k, k): v for k, v in r.items() if k in flat or k == names.STEP} for r in rows]
    assert any(names.has_legacy_names(r) for r in old)
    path.write_text("".join(json.dumps(r) + "\n" for r in old))


def test_world_size_change_explains_universal_checkpoint(full_run: dict) -> None:
    cmd = [sys.executable, "-m", "biotune.cli", "train", str(full_run["full_cfg"]), "train.max_steps=12"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=train_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "saved by 2 ranks but this run has 1" in proc.stderr
    assert "ds_to_universal" in proc.stderr and "load_universal" in proc.stderr
