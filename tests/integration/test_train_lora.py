"""LoRA (peft) under real ZeRO-3 on 2 CPU processes: only the adapter trains, a SIGKILLed run resumes bit-exactly,
the export holds merged weights equal to peft's own merge plus the adapter, and ``biotune eval`` scores it.

Two 2-rank launches share one module-scoped setup (an uninterrupted run, and a run whose rank 1 is SIGKILLed
after step 5), then the ``resume: auto`` continuation of the second. Dropout is on, so exact resume also needs
the RNG states back. See tests/integration/train_support.py for the dataset (real NCBI-disease sentences).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_support import make_packed_dataset, read_jsonl, torchrun, train_env, write_config

from biotune.cli import main
from biotune.train import checkpoint as layout
from biotune.train import metric_names as names
from biotune.train.engine import weights_only_loads
from biotune.train.tracking import read_metrics

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STEPS = 6
LORA = {"rank": 4, "alpha": 8.0, "dropout": 0.1, "target_modules": ["q_proj", "v_proj", "down_proj"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, tiny_tokenizer, corpora: Path) -> dict:
    tmp = tmp_path_factory.mktemp("lora")
    data = make_packed_dataset(tmp / "data", corpora, tiny_tokenizer)
    common = {"max_steps": STEPS, "save_every": 3, "keep_last": 2, "peak_tflops": 1.0, "lora": LORA}
    paths = {"tmp": tmp, "model": tiny_model}
    for name in ("full", "crash"):
        paths[f"{name}_cfg"] = write_config(tmp / f"{name}.yaml", tiny_model, data, tmp / name, **common)
        paths[name] = tmp / name
    proc = torchrun(paths["full_cfg"], 2)
    assert proc.returncode == 0, proc.stderr[-4000:]
    proc = torchrun(paths["crash_cfg"], 2, env_extra={"BIOTUNE_FAULT_KILL_AT_STEP": "5:1"})
    assert proc.returncode != 0 and not layout.export_dir(paths["crash"]).exists()
    assert [c.name for c in layout.list_checkpoints(paths["crash"]) if layout.is_complete(c)] == [
        "step-00000003"
    ]
    proc = torchrun(paths["crash_cfg"], 2, "train.resume=auto")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "resumed from" in proc.stderr and "step-00000003" in proc.stderr
    return paths


def _peft_trainable(model_dir: Path) -> tuple[int, int]:
    """peft's own count of (trainable, all) parameters for LORA on the base model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=LORA["rank"],
        lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"],
        target_modules=LORA["target_modules"],
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base, config).get_nb_trainable_parameters()


def _losses(out: Path) -> dict[int, float]:
    return {
        r["step"]: r[names.TRAIN_LOSS]
        for r in read_metrics(out / layout.METRICS_FILE)
        if names.TRAIN_LOSS in r
    }


def test_only_the_adapter_trains_and_is_partitioned(runs: dict) -> None:
    info = json.loads((runs["full"] / layout.RUN_INFO_FILE).read_text())
    trainable, total = _peft_trainable(runs["model"])
    assert info["lora"]["rank"] == 4 and info["world_size"] == 2
    assert info["trainable_params"] == info["optimizer_params"] == trainable
    assert info["num_params"] == total and trainable < total / 10
    assert info["partition_fraction_per_rank"] == pytest.approx([0.5, 0.5], abs=0.01)
    losses = _losses(runs["full"])
    assert sorted(losses) == list(range(1, STEPS + 1)) and losses[STEPS] < losses[1]
    ckpt = layout.checkpoint_dir(runs["full"], STEPS)
    assert (ckpt / layout.MODEL_META_DIR / layout.LORA_META_DIR / "adapter_config.json").is_file()
    assert not list(ckpt.glob("*.pt")), "biotune's own checkpoint state must not be pickled"
    # What the optimizer saved: fp32 master weights and both Adam moments of half the adapter per rank, no more.
    files = sorted((ckpt / layout.ZERO_DIR).glob("zero_pp_rank_*_optim_states.pt"))
    assert len(files) == 2
    with weights_only_loads():
        for f in files:
            state = torch.load(f)["optimizer_state_dict"]
            (master,) = state["fp32_flat_groups"]
            (moments,) = state["optimizer_state_dict"]["state"].values()
            sizes = {master.numel(), moments["exp_avg"].numel(), moments["exp_avg_sq"].numel()}
            assert sizes == {trainable // 2}, (f.name, sizes)


def test_kill_and_resume_is_bit_exact(runs: dict) -> None:
    full, crash = runs["full"], runs["crash"]
    assert [c["sample_ids"] for c in read_jsonl(crash / "consumed.jsonl")] == [
        c["sample_ids"] for c in read_jsonl(full / "consumed.jsonl")
    ]
    assert _losses(crash) == _losses(full)  # every step, bit for bit
    for name in ("model.safetensors", f"{layout.ADAPTER_DIR}/adapter_model.safetensors"):
        a, b = (load_file(layout.export_dir(run) / name) for run in (full, crash))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_export_is_peft_merge_plus_adapter(runs: dict) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    export = layout.export_dir(runs["full"])
    adapter = export / layout.ADAPTER_DIR
    from peft.utils import CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME

    from biotune.train.lora import ADAPTER_CONFIG_FILE

    assert ADAPTER_CONFIG_FILE == CONFIG_NAME
    assert (adapter / CONFIG_NAME).is_file() and (adapter / SAFETENSORS_WEIGHTS_NAME).is_file()
    assert json.loads((adapter / CONFIG_NAME).read_text())["base_model_name_or_path"] == str(runs["model"])
    assert not (export / "adapter_config.json").exists(), "the top level must load as a plain model"
    base = AutoModelForCausalLM.from_pretrained(runs["model"], dtype=torch.float32).state_dict()
    to_merge = AutoModelForCausalLM.from_pretrained(runs["model"], dtype=torch.float32)  # merged in place
    reference = PeftModel.from_pretrained(to_merge, adapter).merge_and_unload().state_dict()
    ours = AutoModelForCausalLM.from_pretrained(export, dtype=torch.float32)
    assert set(ours.state_dict()) == set(reference)
    lora_b = load_file(adapter / "adapter_model.safetensors")
    assert any(v.abs().max() > 0 for k, v in lora_b.items() if "lora_B" in k), "the adapter never trained"
    changed = 0
    for key, value in ours.state_dict().items():
        torch.testing.assert_close(value, reference[key], atol=1e-6, rtol=0)
        changed += not torch.equal(value, base[key])
    assert changed == 2 * 3, "exactly the targeted weights (q, v, down of 2 layers) differ from the base"
    probe = torch.load(runs["full"] / layout.PROBE_FILE, weights_only=True)
    b = probe["batch"]
    with torch.no_grad():
        logits = ours(input_ids=b["input_ids"], position_ids=b["position_ids"], use_cache=False).logits
    torch.testing.assert_close(logits, probe["logits"], atol=1e-5, rtol=1e-5)


def test_the_export_is_evaluated(runs: dict, corpora: Path) -> None:
    tmp = runs["tmp"]
    common = [
        f"data.root={corpora}",
        "eval.sources=[ncbi_disease,gad]",
        "eval.max_examples=3",
        "eval.max_new_tokens=6",
        "tracking.wandb_mode=disabled",
    ]
    config = str(REPO / "configs" / "eval" / "tiny.yaml")
    ckpt = layout.checkpoint_dir(runs["full"], STEPS)
    for model, out in ((runs["full"], "from_run"), (ckpt, "from_ckpt")):
        assert main(["eval", config, f"eval.model={model}", f"eval.output_dir={tmp / out}", *common]) == 0
    a, b = ((tmp / d / "predictions.jsonl").read_text() for d in ("from_run", "from_ckpt"))
    assert a == b and len(a.splitlines()) == 6
    report = json.loads((tmp / "from_run" / "report.json").read_text())
    assert report["meta"]["model"] == str(layout.export_dir(runs["full"]).resolve())


@pytest.mark.parametrize("change", ["train.lora=null", "train.lora.rank=8"])
def test_resuming_with_other_lora_settings_is_refused(runs: dict, change: str) -> None:
    out = runs["full"]
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    cmd = [sys.executable, "-m", "biotune.cli", "train", str(runs["full_cfg"]), change, "train.max_steps=12"]
    proc = subprocess.run(cmd, cwd=REPO, env=train_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert (
        "was trained with LoRA rank 4" in proc.stderr
        and "resume with the checkpoint's train.lora" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
