"""Nothing in a checkpoint runs: a pickle payload in any file biotune or DeepSpeed reads is refused, by name.

One real checkpoint is made by a one-step, one-process CPU run; each case copies it, plants a payload (an object
whose ``__reduce__`` writes a marker file) in one file and runs the real command in a subprocess: resume
(``train.resume=auto``), ``biotune export`` and ``biotune eval`` of the checkpoint. The marker must never appear,
the command must exit 2 and its message must name the poisoned file. DeepSpeed itself calls
``torch.load(..., weights_only=False)`` on the ZeRO shards, so without :func:`biotune.train.engine.weights_only_loads`
the shard cases run the payload. Files no command reads (``latest``: the tag is always given; ``export_probe.pt``:
written for tests only) are poisoned together in one case that must succeed without running anything.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from train_support import REPO_ROOT, make_packed_dataset, train_env, write_config

from biotune.errors import EXIT_ERROR
from biotune.train.checkpoint import PROBE_FILE, STATE_FILE, ZERO_DIR, checkpoint_dir, rng_file

pytestmark = pytest.mark.slow

MODEL_SHARD = f"{ZERO_DIR}/zero_pp_rank_0_mp_rank_00_model_states.pt"
OPTIM_SHARD = f"{ZERO_DIR}/zero_pp_rank_0_mp_rank_00_optim_states.pt"


class Payload:
    """Unpickling this runs ``exec``: it writes ``marker``. A safe loader must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return exec, (f"open({self.marker!r}, 'w').write('code from a checkpoint ran')",)


def _poison_torch_file(path: Path, marker: Path) -> None:
    """Add the payload to a real torch file, keeping everything DeepSpeed expects in it."""
    import torch

    from biotune.train.engine import weights_only_loads

    with weights_only_loads():
        state = torch.load(path, map_location="cpu")
    state["payload"] = Payload(marker)
    torch.save(state, path)


def _poison_plain_file(path: Path, marker: Path) -> None:
    """Replace a JSON/text file with a pickle of the payload (what an old ``torch.load`` reader would run)."""
    path.write_bytes(pickle.dumps(Payload(marker)))


def _poison(ckpt: Path, rel: str, marker: Path) -> Path:
    path = ckpt / rel
    assert path.is_file(), f"the checkpoint layout changed: {rel} is missing"
    (_poison_torch_file if rel.endswith(".pt") else _poison_plain_file)(path, marker)
    return path


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, tiny_tokenizer, corpora: Path
) -> Path:
    """A run directory with one complete checkpoint (step 1) and its export probe, made by a 1-process run."""
    root = tmp_path_factory.mktemp("trust")
    data = make_packed_dataset(root / "data", corpora, tiny_tokenizer, n_samples=16, eval_samples=4)
    cfg = write_config(
        root / "train.yaml", tiny_model, data, root / "run", max_steps=1, save_every=1, export_on_finish=False
    )
    proc = _biotune(["train", str(cfg), "tracking.wandb_mode=disabled"], cwd=root)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (checkpoint_dir(root / "run", 1) / "COMPLETED").is_file()
    return root


def _biotune(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "biotune.cli", *args],
        cwd=cwd,
        env=train_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _copy(trained: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A private copy of the run: (config, run dir, checkpoint)."""
    shutil.copytree(trained / "run", tmp_path / "run")
    return trained / "train.yaml", tmp_path / "run", checkpoint_dir(tmp_path / "run", 1)


def _resume(cfg: Path, run: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _biotune(
        [
            "train",
            str(cfg),
            f"train.output_dir={run}",
            "train.resume=auto",
            "train.max_steps=2",
            "tracking.wandb_mode=disabled",
        ],
        cwd,
    )


def _eval(ckpt: Path, out: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _biotune(
        [
            "eval",
            str(REPO_ROOT / "configs/eval/tiny.yaml"),
            f"eval.model={ckpt}",
            f"eval.output_dir={out}",
            "eval.sources=[ncbi_disease]",
            "eval.max_examples=2",
            "eval.max_new_tokens=4",
            "tracking.wandb_mode=disabled",
        ],
        cwd,
    )


def _assert_refused(proc: subprocess.CompletedProcess[str], poisoned: Path, marker: Path) -> None:
    assert not marker.exists(), f"code from {poisoned} ran"
    assert proc.returncode == EXIT_ERROR, proc.stderr[-3000:]
    assert str(poisoned) in proc.stderr or poisoned.name in proc.stderr, proc.stderr[-3000:]
    assert "fix:" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize("rel", [MODEL_SHARD, OPTIM_SHARD, rng_file(0), STATE_FILE])
def test_resume_refuses_a_payload(trained: Path, tmp_path: Path, rel: str) -> None:
    cfg, run, ckpt = _copy(trained, tmp_path)
    marker = tmp_path / "MARKER"
    poisoned = _poison(ckpt, rel, marker)
    proc = _resume(cfg, run, tmp_path)
    _assert_refused(proc, poisoned, marker)
    assert not checkpoint_dir(run, 2).exists(), "nothing was trained from a refused checkpoint"


@pytest.mark.parametrize("rel", [MODEL_SHARD, OPTIM_SHARD])
def test_export_refuses_a_payload(trained: Path, tmp_path: Path, rel: str) -> None:
    _, _, ckpt = _copy(trained, tmp_path)
    marker = tmp_path / "MARKER"
    poisoned = _poison(ckpt, rel, marker)
    (tmp_path / "exports").mkdir()
    proc = _biotune(["export", str(ckpt), str(tmp_path / "exports" / "hf")], tmp_path)
    _assert_refused(proc, poisoned, marker)
    assert list((tmp_path / "exports").iterdir()) == [], "a refused export leaves nothing behind"


@pytest.mark.parametrize("rel", [MODEL_SHARD, OPTIM_SHARD])
def test_eval_of_a_checkpoint_refuses_a_payload(trained: Path, tmp_path: Path, rel: str) -> None:
    _, _, ckpt = _copy(trained, tmp_path)
    marker = tmp_path / "MARKER"
    poisoned = _poison(ckpt, rel, marker)
    proc = _eval(ckpt, tmp_path / "eval", tmp_path)
    _assert_refused(proc, poisoned, marker)
    assert not (tmp_path / "eval" / "exported_model").exists()


def test_files_nobody_reads_run_nothing_and_real_shards_still_load(trained: Path, tmp_path: Path) -> None:
    """``latest`` and ``export_probe.pt`` are never loaded; the allowlist admits DeepSpeed's real shards."""
    cfg, run, ckpt = _copy(trained, tmp_path)
    marker = tmp_path / "MARKER"
    _poison_plain_file(ckpt / "latest", marker)
    _poison_plain_file(run / PROBE_FILE, marker)
    (tmp_path / "exports").mkdir()
    exported = _biotune(["export", str(ckpt), str(tmp_path / "exports" / "hf")], tmp_path)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert (tmp_path / "exports" / "hf" / "config.json").is_file()
    resumed = _resume(cfg, run, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (checkpoint_dir(run, 2) / "COMPLETED").is_file()
    assert not marker.exists()
