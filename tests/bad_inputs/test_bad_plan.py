"""Bad ``biotune plan`` arguments and model/DeepSpeed files: exit 2 with the flag, key or file and the fix.

Before issue 13 most of these printed negative GiB and "FITS", or ended in a traceback (exit 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_selected, write

LLAMA_7B = "{repo}/configs/train/llama2_7b.yaml"
LLAMA = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "vocab_size": 100,
}


def plan(case_id: str, args: tuple[str, ...], where: str, fix: str = "fix:") -> Case:
    """``biotune plan configs/train/llama2_7b.yaml ARGS`` (1 node x 8 GPUs unless ARGS say otherwise)."""
    return Case(case_id, ("plan", LLAMA_7B, *args), where, fix)


def model_json(case_id: str, content: str, where: str, fix: str = "fix:") -> Case:
    """``biotune plan`` of a local model directory whose ``config.json`` holds ``content``."""
    return Case(
        case_id,
        ("plan", LLAMA_7B, "model.name_or_path={tmp}/model", "train.global_batch_size=null"),
        where,
        fix,
        lambda tmp: write(tmp / "model" / "config.json", content),
    )


CASES = [
    plan("mfu-above-one", ("--mfu", "2"), "--mfu", "give a utilisation such as --mfu 0.4"),
    plan("mfu-zero", ("--mfu", "0"), "--mfu", "give a utilisation such as --mfu 0.4"),
    plan("mfu-negative", ("--mfu=-0.5",), "--mfu", "give a utilisation such as --mfu 0.4"),
    plan("gpu-memory-negative", ("--gpu-memory-gb=-80",), "--gpu-memory-gb", "give one GPU's memory"),
    plan("seq-len-zero", ("--seq-len", "0"), "--seq-len", "give a sequence length such as 2048"),
    plan(
        "micro-batch-negative",
        ("--micro-batch-size=-1",),
        "--micro-batch-size",
        "give packed rows per GPU per micro-step",
    ),
    plan("nodes-zero", ("--nodes", "0"), "--nodes/--gpus-per-node", "give at least one node"),
    plan(
        "global-batch-not-divisible",
        ("--nodes", "3"),
        "train.global_batch_size",
        "choose --nodes/--gpus-per-node so that micro_batch_size x GPUs divides 128",
    ),
    plan("unknown-gpu", ("--gpu", "Voodoo5"), "--gpu", "use one of"),
    plan("unknown-model", ("model.name_or_path=nobody/none-7b",), "model.name_or_path", "use one of"),
    plan(
        "deepspeed-json-missing",
        ("train.deepspeed=configs/deepspeed/nope.json",),
        "train.deepspeed",
        "use configs/deepspeed/zero3.json",
    ),
    Case(
        "deepspeed-json-malformed",
        ("plan", LLAMA_7B, "train.deepspeed={tmp}/ds.json"),
        "{tmp}/ds.json:3",
        "fix the JSON syntax",
        lambda tmp: write(tmp / "ds.json", '{\n  "zero_optimization": {\n    "stage": 3,,\n'),
    ),
    model_json(
        "config-json-invalid",
        '{"hidden_size": 64,\n',
        "{tmp}/model/config.json:2",
        "point model.name_or_path at a directory written by save_pretrained",
    ),
    model_json(
        "config-json-incomplete",
        json.dumps({"hidden_size": 64, "num_attention_heads": 4}),
        "num_hidden_layers: missing",
        "give the model's Llama dimensions",
    ),
    model_json(
        "config-json-zero-heads",
        json.dumps({**LLAMA, "num_attention_heads": 0}),
        "num_attention_heads: must be a positive integer",
        "set num_attention_heads to the model's value",
    ),
    model_json(
        "config-json-heads-do-not-divide",
        json.dumps({**LLAMA, "num_attention_heads": 3}),
        "num_attention_heads: 3 does not divide hidden_size 64",
        "use the model's own config.json",
    ),
    model_json(
        "config-json-not-an-object",
        "[64, 2]\n",
        "{tmp}/model/config.json",
        "point model.name_or_path at a directory written by save_pretrained",
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_plan"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_plan_argument(case: Case, results) -> None:
    check(case, results[case.id])


def test_a_model_directory_with_a_good_config_still_plans(tmp_path: Path) -> None:
    import subprocess
    import sys

    from bad_input_harness import REPO, base_env

    write(tmp_path / "model" / "config.json", json.dumps(LLAMA))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "biotune.cli",
            "plan",
            str(REPO / "configs/train/llama2_7b.yaml"),
            f"model.name_or_path={tmp_path / 'model'}",
            "--nodes",
            "2",
            "--json",
        ],
        cwd=tmp_path,
        env=base_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    plan_json = json.loads(proc.stdout)
    assert plan_json["grad_accum"] == 2 and plan_json["fits"], "128 = 4 rows x 2 micro-steps x 16 GPUs"
