"""Export destinations and writes that fail (issue 20, items 8, 9 and 10): ``biotune export`` into the
checkpoint's run, into the current directory or under a read-only parent; each is exit 2 naming OUT (or the path)
and the fix, no traceback, and nothing left behind (no planted checkpoint, no empty parent directory).

The checkpoints here have a checkpoint's layout without weights: every destination check runs before anything
is loaded.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from bad_input_harness import REPO, Case, Result, base_env, check, ids, run_case, run_selected, tree, write

from biotune.testing.sweeps import write_sweep
from biotune.train.checkpoint import export_places, latest_completed

CKPT = "{tmp}/run/checkpoints/step-00000001"
#: The file-size limit (KiB) of the slow disk-full tests: above every small file a run writes, below its shards.
LIMIT_KB = 64


def fake_checkpoint(root: Path) -> Path:
    """A complete checkpoint's layout (no weights) at ``root/run/checkpoints/step-00000001``."""
    ckpt = root / "run" / "checkpoints" / "step-00000001"
    write(ckpt / "zero" / "zero_pp_rank_0_mp_rank_00_model_states.pt", b"not read before the checks")
    write(ckpt / "model_meta" / "config.json", "{}\n")
    write(ckpt / "trainer_state.json", json.dumps({"step": 1}) + "\n")
    write(ckpt / "COMPLETED", "step 1\n")
    return ckpt


def _checkpoint_beside(tmp: Path) -> None:
    """The checkpoint outside the (empty) working directory, so that ``.`` is an empty new OUT."""
    fake_checkpoint(tmp.parent / f"{tmp.name}-beside")


def export(
    case_id: str, out: str, where: str, fix: str, setup=fake_checkpoint, ckpt: str = CKPT, extra=()
) -> Case:
    """``biotune export CKPT OUT``."""
    return Case(case_id, ("export", ckpt, out, *extra), where, fix, setup)


CASES = [
    # item 9: nothing inside the run but its export places
    export(
        "out-is-a-new-step-dir",
        "{tmp}/run/checkpoints/step-00000099",
        "lies inside the checkpoint's run directory",
        "export to a directory outside the run",
    ),
    export(
        "out-inside-the-run",
        "{tmp}/run/models/x",
        "lies inside the checkpoint's run directory",
        "export to a directory outside the run",
    ),
    export(
        "out-inside-checkpoints-via-dotdot",
        "{tmp}/elsewhere/../run/checkpoints/mine",
        "lies inside the checkpoint's run directory",
        "export to a directory outside the run",
    ),
    # item 8: the current directory, a read-only parent
    export(
        "out-is-dot-empty-cwd",
        ".",
        "OUT: . is or contains the current directory",
        "name a new directory for the export",
        _checkpoint_beside,
        ckpt="{tmp}-beside/run/checkpoints/step-00000001",
    ),
    export(
        "out-is-dot-forced",
        ".",
        "OUT: . is or contains",
        "fix:",
        lambda tmp: (fake_checkpoint(tmp.parent / f"{tmp.name}-beside"), write(tmp / "notes.txt", "mine\n")),
        ckpt="{tmp}-beside/run/checkpoints/step-00000001",
        extra=("--force",),
    ),
    export(
        "out-parent-is-a-file",
        "{tmp}/afile/model",
        "{tmp}/afile/model: cannot write: File exists ({tmp}/afile)",
        "check that the directory exists and is writable",
        lambda tmp: (fake_checkpoint(tmp), write(tmp / "afile", "x\n")),
    ),
    export(
        "out-new-parents-under-a-file",
        "{tmp}/new/afile/model",
        "{tmp}/new/afile/model: cannot write",
        "check that the directory exists and is writable",
        lambda tmp: (fake_checkpoint(tmp), write(tmp / "new" / "afile", "x\n")),
    ),
    # item 10: a failed export leaves no empty parents
    export(
        "out-new-parents-failed-export",
        "{tmp}/new/deeper/model",
        "zero",
        "fix:",
    ),
    # item 10: submit on a machine without SLURM writes no sweep directory
    Case(
        "sweep-submit-without-sbatch",
        ("sweep", "submit", "{tmp}/sweep.yaml", "--out", "{tmp}/out"),
        "sbatch not found",
        "biotune sweep run SWEEP.yaml --local",
        lambda tmp: write_sweep(tmp, "name: ok\nbase: base.yaml\naxes: [{type: leave_one_out}]\n"),
        extra_env=(("PATH", str(Path(sys.executable).parent)),),
    ),
    # item 10: a typo'd split in data.split_files
    Case(
        "split-files-unknown-split",
        ("train", "{repo}/configs/train/tiny.yaml", "data.split_files.bc2gm.tset={tmp}/x.tsv", "--dry-run"),
        "data.split_files.bc2gm.tset: source 'bc2gm' has no split 'tset' (its splits: train, devel, test)",
        "map the file to one of bc2gm's splits",
    ),
    Case(
        "split-files-unknown-split-of-a-custom-source",
        ("train", "{tmp}/run.yaml", "--dry-run"),
        "data.split_files.clinic.dev: source 'clinic' has no split 'dev' (its splits: train)",
        "data.split_files.clinic.train=PATH",
        lambda tmp: write(
            tmp / "run.yaml",
            "data:\n  custom_sources:\n    clinic: {kind: re, format: blue_tsv, files: {train: x.tsv}, "
            "labels: ['1', '0'], licence: mine}\n  split_files:\n    clinic: {dev: y.tsv}\n",
        ),
    ),
    # item 8: a data build whose output directory cannot be made
    Case(
        "data-out-dir-under-a-file",
        (
            "data",
            "build",
            "{repo}/configs/train/tiny.yaml",
            "data.tokenizer={tok}",
            "data.out_dir={tmp}/afile/data",
        ),
        "{tmp}/afile/data/",
        "check that the directory exists and is writable",
        lambda tmp: write(tmp / "afile", "x\n"),
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_exports"), tiny_model)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_export(case: Case, results, tiny_model: Path) -> None:
    check(case, results[case.id], tiny_model)


def test_a_refused_step_dir_plants_no_checkpoint(tmp_path: Path) -> None:
    """Resume still finds step 1 as the newest complete checkpoint, with no interrupted save reported."""
    case = CASES[0]
    result = run_case(case, tmp_path)
    check(case, result)
    assert latest_completed(tmp_path / "run") == tmp_path / "run" / "checkpoints" / "step-00000001"


def test_the_run_export_places_are_not_checkpoints(tmp_path: Path) -> None:
    """``hf/`` and ``step-NNNNNNNN-hf`` are accepted as OUT and never listed as (interrupted) checkpoints."""
    ckpt = fake_checkpoint(tmp_path)
    final, own = export_places(ckpt)
    assert final == (tmp_path / "run" / "hf").resolve() and own.name == "step-00000001-hf"
    (own / "config.json").parent.mkdir(parents=True)
    (own / "config.json").write_text("{}")
    assert latest_completed(tmp_path / "run") == ckpt


# ------------------------------------------------------------------------------- disk full (ulimit -f, slow)


def run_limited(args: list[str], cwd: Path, blocks: int) -> subprocess.CompletedProcess[str]:
    """``biotune ARGS`` under ``ulimit -f BLOCKS`` (1 KiB blocks): a write past it fails with EFBIG, as on a full disk."""
    command = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "biotune.cli", *args))
    return subprocess.run(
        ["bash", "-c", f"ulimit -f {blocks}; exec {command}"],
        cwd=cwd,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def check_disk_full(
    proc: subprocess.CompletedProcess[str], where: Path, before: set[str], root: Path
) -> None:
    """Exit 2 naming ``where`` and the file-size limit, no traceback, nothing new under ``root``."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"{where}: cannot write: File too large" in proc.stderr, proc.stderr[-3000:]
    assert "ulimit -f" in proc.stderr, proc.stderr[-3000:]
    assert tree(root) == before, f"left behind: {sorted(tree(root) - before)}"


@pytest.mark.slow
def test_data_build_on_a_full_disk(tmp_path: Path, tiny_model: Path) -> None:
    before = tree(tmp_path)
    proc = run_limited(
        [
            "data",
            "build",
            str(REPO / "configs/train/tiny.yaml"),
            f"data.tokenizer={tiny_model}",
            f"data.out_dir={tmp_path / 'data'}",
            "data.leakage=off",
        ],
        tmp_path,
        blocks=8,
    )
    out = next(line for line in proc.stderr.splitlines() if "cannot write" in line).split(": cannot write")[0]
    assert Path(out.split("error: ")[-1]).parent == tmp_path / "data"
    check_disk_full(proc, Path(out.split("error: ")[-1]), before, tmp_path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """A real build of configs/train/tiny.yaml's data with the tiny tokenizer (no size limit)."""
    root = tmp_path_factory.mktemp("built")
    proc = run_limited(
        [
            "data",
            "build",
            str(REPO / "configs/train/tiny.yaml"),
            f"data.tokenizer={tiny_model}",
            f"data.out_dir={root}",
            "data.leakage=off",
        ],
        root,
        blocks=10**9,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1])


def train_args(tiny_model: Path, built: Path, run: Path, steps: int = 1) -> list[str]:
    """A one-process CPU run of the tiny model that saves a checkpoint at every step and exports nothing."""
    return [
        "train",
        str(REPO / "configs/train/tiny.yaml"),
        f"model.name_or_path={tiny_model}",
        f"train.data_dir={built}",
        f"train.output_dir={run}",
        f"train.max_steps={steps}",
        "train.save_every=1",
        "train.export_on_finish=false",
        "tracking.wandb_mode=disabled",
        "train.micro_batch_size=1",
        "train.grad_accum=1",
        "train.global_batch_size=null",
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, built: Path) -> Path:
    """A run with one complete checkpoint, trained without a size limit (this also builds DeepSpeed's JIT CPU
    communication op if its cache is cold, which the limited runs below could not)."""
    root = tmp_path_factory.mktemp("trained")
    proc = run_limited(train_args(tiny_model, built, root / "run"), root, blocks=10**9)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "run"


@pytest.mark.slow
def test_checkpoint_save_on_a_full_disk(tmp_path: Path, tiny_model: Path, built: Path, trained: Path) -> None:
    """The save fails on the shards: exit 2 naming the checkpoint, and no ``step-*`` directory is left."""
    run = tmp_path / "run"
    proc = run_limited(train_args(tiny_model, built, run), tmp_path, blocks=LIMIT_KB)
    ckpt = run / "checkpoints" / "step-00000001"
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"{ckpt}: cannot write the checkpoint" in proc.stderr, proc.stderr[-3000:]
    assert "ulimit -f" in proc.stderr
    assert not list((run / "checkpoints").glob("step-*")), "a half-written checkpoint was left"


@pytest.mark.slow
def test_export_on_a_full_disk(tmp_path: Path, trained: Path) -> None:
    """The export fails writing the weights: exit 2 naming OUT; no OUT, temporary directory or new parent left."""
    before = tree(tmp_path)
    out = tmp_path / "exports" / "new" / "model"
    proc = run_limited(
        ["export", str(trained / "checkpoints" / "step-00000001"), str(out)], tmp_path, LIMIT_KB
    )
    check_disk_full(proc, out, before, tmp_path)


def eval_args(tiny_model: Path, out: Path, max_examples: int) -> list[str]:
    """``biotune eval`` of the tiny model on the bundled sample, written to ``out``."""
    return [
        "eval",
        str(REPO / "configs/eval/tiny.yaml"),
        f"eval.model={tiny_model}",
        "data.root=@sample",
        f"eval.output_dir={out}",
        f"eval.max_examples={max_examples}",
        "eval.max_new_tokens=8",
        "tracking.wandb_mode=disabled",
    ]


@pytest.mark.slow
def test_eval_on_a_full_disk(tmp_path: Path, tiny_model: Path) -> None:
    """Predictions and report are one set: a write that fails leaves no new OUT, or the previous outputs
    untouched (never new predictions beside an old report); once the limit is lifted, the rerun completes."""
    out = tmp_path / "runs" / "eval"
    before = tree(tmp_path)
    proc = run_limited(eval_args(tiny_model, out, 4), tmp_path, blocks=4)  # report.json is over 4 KiB
    check_disk_full(proc, out, before, tmp_path)
    assert f"({out / 'report.json'})" in proc.stderr, proc.stderr[-3000:]

    done = run_limited(eval_args(tiny_model, out, 4), tmp_path, blocks=10**9)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "report.json").read_text())["rows"][0]["n"] == 4
    kept = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    sets = ("ncbi_disease__test", "gad__test", "hoc__test", "pubmedqa__test")
    assert {str(p.relative_to(out)) for p in kept} == {
        "predictions.jsonl",
        "report.json",
        "report.md",
        *(f"predictions/{s}.jsonl" for s in sets),
    }, sorted(str(p.relative_to(out)) for p in kept)

    again = run_limited(eval_args(tiny_model, out, 3), tmp_path, blocks=4)
    check_disk_full(again, out, tree(tmp_path), tmp_path)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == kept, "the previous outputs changed"


# ------------------------------------------------------------------- read-only parent (run as an unprivileged user)


def as_unprivileged(args: list[str]) -> list[str]:
    """``args`` run as ``nobody`` when the tests run as root (root writes into read-only directories, so the
    case would prove nothing), else as the current user; never skipped."""
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to run this case as an unprivileged user"
    return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", *args]


@pytest.fixture
def world_readable_tmp() -> Iterator[Path]:
    """A directory an unprivileged user can read (pytest's own tmp_path lies under a root-only directory)."""
    root = Path(tempfile.mkdtemp(prefix="biotune-ro-"))
    root.chmod(0o755)
    yield root
    for place in (root, *root.rglob("*")):
        if place.is_dir():
            place.chmod(0o755)
    shutil.rmtree(root)


@pytest.mark.parametrize("out", ["ro/model", "ro/new/model"])
def test_export_under_a_read_only_parent(world_readable_tmp: Path, out: str) -> None:
    """OUT (or a parent to make) under a directory the user cannot write: exit 2 naming OUT, the directory
    and the fix; nothing written, as the user really lacks the right (not as root, who has every right)."""
    tmp = world_readable_tmp
    ckpt = fake_checkpoint(tmp)
    (tmp / "ro").mkdir()
    (tmp / "ro").chmod(0o555)
    before = tree(tmp)
    command = [sys.executable, "-m", "biotune.cli", "export", str(ckpt), str(tmp / out)]
    proc = subprocess.run(
        as_unprivileged(command),
        cwd=tmp,
        env={**base_env(), "HOME": str(tmp), "BIOTUNE_DATA_DIR": str(tmp / "none")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    result = Result(proc.returncode, proc.stderr, proc.stdout, sorted(tree(tmp) - before), tmp)
    check(
        Case("ro", (), f"{tmp / out}: cannot write: Permission denied", "make that directory writable"),
        result,
    )
    assert f"({tmp / 'ro'}" in proc.stderr, proc.stderr[-3000:]
