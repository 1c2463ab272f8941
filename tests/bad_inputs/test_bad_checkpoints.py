"""Bad checkpoints, manifests and shards: ``biotune export``, ``biotune data stats`` and ``biotune train``.

Fast cases use a checkpoint's layout without weights (export refuses them before loading anything) and
hand-written manifests. The slow cases need real files: a ZeRO-3 checkpoint from a one-step CPU run (a truncated
shard, another model's ``config.json``) and a real ``data build`` (a truncated Arrow shard).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from bad_input_harness import REPO, Case, base_env, check, ids, run_case, run_selected, write

CKPT = "{tmp}/run/checkpoints/step-00000001"


def fake_checkpoint(tmp: Path, completed: bool = True, zero: bool = True) -> Path:
    """A checkpoint's layout (no weights): zero/, model_meta/config.json, trainer_state.json, COMPLETED."""
    ckpt = tmp / "run" / "checkpoints" / "step-00000001"
    if zero:
        write(ckpt / "zero" / "zero_pp_rank_0_mp_rank_00_model_states.pt", b"not read before the checks")
    write(ckpt / "model_meta" / "config.json", "{}\n")
    write(ckpt / "trainer_state.json", json.dumps({"step": 1}) + "\n")
    if completed:
        write(ckpt / "COMPLETED", "step 1\n")
    return ckpt


def export(
    case_id: str,
    out: str,
    where: str,
    fix: str = "fix:",
    extra: tuple[str, ...] = (),
    ckpt: str = CKPT,
    setup: object = None,
) -> Case:
    """``biotune export CKPT OUT [extra]`` over a fake checkpoint (or ``setup``)."""
    return Case(case_id, ("export", ckpt, out, *extra), where, fix, setup or fake_checkpoint)  # type: ignore[arg-type]


def _foreign_out(tmp: Path) -> None:
    fake_checkpoint(tmp)
    write(tmp / "results" / "thesis.tex", "the user's own file\n")


def _out_is_a_file(tmp: Path) -> None:
    fake_checkpoint(tmp)
    write(tmp / "model.bin", "a file\n")


def _checkpoint_is_a_file(tmp: Path) -> None:
    write(tmp / "ckpt", "not a directory\n")


def manifest(case_id: str, content: str | bytes | None, where: str, fix: str = "rebuild it with") -> Case:
    """``biotune data stats {tmp}/built`` with ``built/manifest.json`` holding ``content`` (None: no manifest)."""

    def setup(tmp: Path) -> None:
        (tmp / "built").mkdir()
        if content is not None:
            write(tmp / "built" / "manifest.json", content)

    return Case(case_id, ("data", "stats", "{tmp}/built"), where, fix, setup)


CASES = [
    export(
        "export-missing-checkpoint",
        "{tmp}/out",
        "{tmp}/nope: no such directory",
        "pass a checkpoint like",
        ckpt="{tmp}/nope",
        setup=lambda tmp: None,
    ),
    export(
        "export-checkpoint-is-a-file",
        "{tmp}/out",
        "{tmp}/ckpt: not a directory",
        "pass a checkpoint directory",
        ckpt="{tmp}/ckpt",
        setup=_checkpoint_is_a_file,
    ),
    export(
        "export-not-a-checkpoint",
        "{tmp}/out",
        "{tmp}/empty is not a biotune checkpoint",
        "pass a directory like",
        ckpt="{tmp}/empty",
        setup=lambda tmp: (tmp / "empty").mkdir(),
    ),
    export(
        "export-interrupted-save",
        "{tmp}/out",
        "has no COMPLETED marker",
        "pick an older complete checkpoint",
        setup=lambda tmp: fake_checkpoint(tmp, completed=False),
    ),
    export(
        "export-no-shards",
        "{tmp}/out",
        "is not a complete biotune checkpoint",
        "pass a directory like",
        setup=lambda tmp: fake_checkpoint(tmp, zero=False),
    ),
    export("export-out-is-the-checkpoint", CKPT, "OUT", "export to a new directory outside the run"),
    export("export-out-is-the-run", "{tmp}/run", "OUT", "export to a new directory outside the run"),
    export(
        "export-out-inside-the-checkpoint",
        CKPT + "/hf",
        "OUT",
        "export to a directory outside the checkpoint",
    ),
    export(
        "export-out-is-a-file",
        "{tmp}/model.bin",
        "OUT",
        "choose a directory path for the export",
        setup=_out_is_a_file,
    ),
    export("export-out-is-foreign", "{tmp}/results", "OUT", "pass --force to replace it", setup=_foreign_out),
    export(
        "export-max-shard-size-banana",
        "{tmp}/out",
        "--max-shard-size",
        "give a number and a unit",
        extra=("--max-shard-size", "banana"),
    ),
    manifest("stats-no-manifest", None, "{tmp}/built/manifest.json"),
    manifest("stats-corrupt-manifest", '{"cache_key": "x",\n  "sources": {\n', "{tmp}/built/manifest.json:3"),
    manifest("stats-empty-manifest", "", "{tmp}/built/manifest.json"),
    manifest("stats-manifest-not-an-object", "[1, 2]\n", "{tmp}/built/manifest.json"),
    manifest("stats-foreign-manifest", json.dumps({"name": "another tool"}), "{tmp}/built/manifest.json"),
    manifest("stats-manifest-not-utf8", b'{"cache_key": "caf\xe9"}', "{tmp}/built/manifest.json"),
    Case(
        "stats-not-a-directory",
        ("data", "stats", "{tmp}/nowhere"),
        "{tmp}/nowhere/manifest.json",
        "rebuild it with",
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_checkpoints"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_checkpoint_or_manifest(case: Case, results) -> None:
    check(case, results[case.id])


# --------------------------------------------------------------------------------------------- real files (slow)


def _biotune(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "biotune.cli", *args],
        cwd=cwd,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """A real build of the sample (configs/train/tiny.yaml's data), made with the tiny tokenizer."""
    root = tmp_path_factory.mktemp("built")
    proc = _biotune(
        [
            "data",
            "build",
            str(REPO / "configs/train/tiny.yaml"),
            f"data.tokenizer={tiny_model}",
            f"data.out_dir={root}",
            "data.leakage=off",
        ],
        root,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, built: Path) -> Path:
    """A complete one-step ZeRO-3 checkpoint of the tiny model (one CPU process)."""
    root = tmp_path_factory.mktemp("ckpt")
    proc = _biotune(
        [
            "train",
            str(REPO / "configs/train/tiny.yaml"),
            f"model.name_or_path={tiny_model}",
            f"train.data_dir={built}",
            f"train.output_dir={root / 'run'}",
            "train.max_steps=1",
            "train.save_every=1",
            "train.export_on_finish=false",
            "tracking.wandb_mode=disabled",
            "train.micro_batch_size=1",
            "train.grad_accum=1",
            "train.global_batch_size=null",
        ],
        root,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "run"


def _copy_run(run: Path) -> Callable[[Path], Path]:
    def setup(tmp: Path) -> Path:
        shutil.copytree(run, tmp / "run")
        return tmp / "run" / "checkpoints" / "step-00000001"

    return setup


@pytest.mark.slow
def test_export_of_a_truncated_shard(tmp_path: Path, checkpoint: Path) -> None:
    shard = "zero/zero_pp_rank_0_mp_rank_00_model_states.pt"

    def setup(tmp: Path) -> None:
        ckpt = _copy_run(checkpoint)(tmp)
        data = (ckpt / shard).read_bytes()
        (ckpt / shard).write_bytes(data[: len(data) // 2])

    case = Case(
        "export-truncated-shard",
        ("export", CKPT, "{tmp}/exports/hf"),
        f"{CKPT}/{shard}",
        "the file is truncated or damaged",
        lambda tmp: (setup(tmp), (tmp / "exports").mkdir()),
    )
    check(case, run_case(case, tmp_path))


@pytest.mark.slow
def test_export_with_another_models_config(tmp_path: Path, checkpoint: Path) -> None:
    def setup(tmp: Path) -> None:
        ckpt = _copy_run(checkpoint)(tmp)
        cfg = json.loads((ckpt / "model_meta" / "config.json").read_text())
        cfg.update(hidden_size=cfg["hidden_size"] * 2, intermediate_size=cfg["intermediate_size"] * 2)
        (ckpt / "model_meta" / "config.json").write_text(json.dumps(cfg))
        (tmp / "exports").mkdir()

    case = Case(
        "export-other-models-config",
        ("export", CKPT, "{tmp}/exports/hf"),
        f"{CKPT}/model_meta/config.json",
        "restore model_meta/ from the run that wrote these shards",
        setup,
    )
    check(case, run_case(case, tmp_path))


@pytest.mark.slow
def test_train_on_a_truncated_arrow_shard(tmp_path: Path, tiny_model: Path, built: Path) -> None:
    def setup(tmp: Path) -> None:
        shutil.copytree(built, tmp / "data")
        arrow = next((tmp / "data" / "train").glob("*.arrow"))
        arrow.write_bytes(arrow.read_bytes()[:100])

    case = Case(
        "train-truncated-arrow",
        (
            "train",
            "{repo}/configs/train/tiny.yaml",
            "model.name_or_path={tok}",
            "train.data_dir={tmp}/data",
            "train.output_dir={tmp}/run",
            "tracking.wandb_mode=disabled",
        ),
        "{tmp}/data/train",
        "fix:",
        setup,
    )
    check(case, run_case(case, tmp_path, tiny_model), tiny_model)


@pytest.mark.slow
def test_train_with_fewer_rows_than_one_step_leaves_no_run_files(
    tmp_path: Path, tiny_model: Path, built: Path
) -> None:
    """Rejected after the process group and the data are up: still exit 2, and no config.yaml left behind."""

    def setup(tmp: Path) -> None:
        shutil.copytree(built, tmp / "data")

    case = Case(
        "train-too-few-rows",
        (
            "train",
            "{repo}/configs/train/tiny.yaml",
            "model.name_or_path={tok}",
            "train.data_dir={tmp}/data",
            "train.output_dir={tmp}/run",
            "train.micro_batch_size=100000",
            "tracking.wandb_mode=disabled",
        ),
        "train.micro_batch_size",
        "lower train.grad_accum/micro_batch_size",
        setup,
    )
    check(case, run_case(case, tmp_path, tiny_model), tiny_model)


@pytest.mark.slow
def test_train_on_a_corrupt_manifest(tmp_path: Path, tiny_model: Path, built: Path) -> None:
    def setup(tmp: Path) -> None:
        shutil.copytree(built, tmp / "data")
        (tmp / "data" / "manifest.json").write_text('{"cache_key": \n')

    case = Case(
        "train-corrupt-manifest",
        (
            "train",
            "{repo}/configs/train/tiny.yaml",
            "model.name_or_path={tok}",
            "train.data_dir={tmp}/data",
            "train.output_dir={tmp}/run",
            "tracking.wandb_mode=disabled",
        ),
        "{tmp}/data/manifest.json:2",
        "rebuild it with",
        setup,
    )
    check(case, run_case(case, tmp_path, tiny_model), tiny_model)
