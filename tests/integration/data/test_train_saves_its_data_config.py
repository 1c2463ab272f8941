"""``biotune train`` that builds its own data with ``data.instructions`` set: the ``config.yaml`` it saves lists
only the configured sources, and building from that file finds the same dataset (issue 18)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from biotune import config
from biotune.testing.launch import free_port, launch_env
from biotune.train.checkpoint import CONFIG_FILE

REPO = Path(__file__).resolve().parents[3]


def test_train_with_instruction_sets_saves_a_config_that_rebuilds_the_same_data(
    tiny_model: Path, tmp_path: Path
) -> None:
    rows = [
        {
            "instruction": "Answer.",
            "input": f"Question {i}?",
            "output": f"Answer {i}.",
            "source": "chatdoctor",
        }
        for i in range(8)
    ]
    instructions = tmp_path / "chat.jsonl"
    instructions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    overrides = [
        f"model.name_or_path={tiny_model}",
        f"data.instructions.chat.path={instructions}",
        f"data.out_dir={out}/data",
        f"train.output_dir={out}/train",
        f"train.deepspeed={REPO}/configs/deepspeed/zero3.json",
        "train.micro_batch_size=1",
        "train.grad_accum=1",
        "train.max_steps=2",
        "train.save_every=2",
        "train.eval_every=0",
        "tracking.wandb_mode=disabled",
    ]
    env = launch_env({"DS_ACCELERATOR": "cpu", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"})
    env["MASTER_PORT"] = str(free_port())
    cli = [sys.executable, "-m", "biotune.cli"]
    res = subprocess.run(
        [*cli, "train", str(REPO / "configs/data/sample.yaml"), *overrides],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (built,) = (out / "data").glob("*/manifest.json")
    assert json.loads(built.read_text())["sources"]["chatdoctor"]["realised"] == 8
    saved = out / "train" / CONFIG_FILE
    configured = list(config.load(REPO / "configs/data/sample.yaml").data.sources)
    assert list(config.load(saved).data.sources) == configured, "instruction sets stay in data.instructions"
    res = subprocess.run([*cli, "data", "build", str(saved)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "data cache hit" in res.stderr, "the saved config identifies the same build"
