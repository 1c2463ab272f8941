"""``biotune eval`` on a real ZeRO-3 checkpoint directory: converted through the trainer's exporter, then scored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_support import make_packed_dataset, torchrun, write_config

from biotune.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_eval_of_a_zero_checkpoint_matches_eval_of_its_export(
    tmp_path: Path, tiny_model: Path, tiny_tokenizer, corpora: Path
) -> None:
    data = make_packed_dataset(tmp_path / "data", corpora, tiny_tokenizer)
    cfg = write_config(
        tmp_path / "train.yaml",
        tiny_model,
        data,
        tmp_path / "train",
        max_steps=2,
        save_every=2,
        export_on_finish=True,
    )
    proc = torchrun(cfg, 2, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ckpt = sorted((tmp_path / "train" / "checkpoints").iterdir())[-1]
    common = [
        f"data.root={corpora}",
        "eval.sources=[ncbi_disease,gad]",
        "eval.max_examples=3",
        "eval.max_new_tokens=6",
        "tracking.wandb_mode=disabled",
    ]
    config = str(REPO / "configs" / "eval" / "tiny.yaml")
    assert (
        main(["eval", config, f"eval.model={ckpt}", f"eval.output_dir={tmp_path / 'from_ckpt'}", *common])
        == 0
    )
    exported = tmp_path / "from_ckpt" / "exported_model"
    assert (exported / "config.json").is_file() and (exported / "tokenizer_config.json").is_file()
    # The training run's own export (train.output_dir/hf) gives the same completions.
    assert (
        main(
            [
                "eval",
                config,
                f"eval.model={tmp_path / 'train'}",
                f"eval.output_dir={tmp_path / 'from_run'}",
                *common,
            ]
        )
        == 0
    )
    a, b = ((tmp_path / d / "predictions.jsonl").read_text() for d in ("from_ckpt", "from_run"))
    assert a == b and len(a.splitlines()) == 6
    meta = json.loads((tmp_path / "from_ckpt" / "report.json").read_text())["meta"]
    assert meta["model"] == str(exported.resolve())
