"""The tracebacks issue 20 (item 8) still found: nested containers in typed lists, a corrupt instruction
``.parquet``, ``sweep collect``'s unchecked ``--seed`` and ``--n-boot``, and model folders that transformers or
torch refuse to load (``auto_map`` code, a pickled ``.bin``); and two of its misleading messages (item 11):
``data.root`` set to a file, ``--nproc -1``. Each is exit 2 with the key, flag, file or folder and the fix, no
traceback, nothing left behind.

The corrupt-Parquet case runs a real ``data build`` (it loads the tokenizer first); the two model-folder tests are
slow (they copy the tiny model and start an evaluation).
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_case, run_selected, write

TRAIN = "{repo}/configs/train/tiny.yaml"
EVAL = "{repo}/configs/eval/tiny.yaml"


def override(case_id: str, value: str, where: str, fix: str) -> Case:
    """``biotune train configs/train/tiny.yaml VALUE --dry-run``."""
    return Case(case_id, ("train", TRAIN, value, "--dry-run"), where, fix)


def _bad_parquet(tmp: Path) -> None:
    write(tmp / "rows.parquet", b"PAR1" + b"\x00garbage, not a Parquet footer" + b"PAR1")


def collect(case_id: str, extra: tuple[str, ...], where: str, fix: str) -> Case:
    """``biotune sweep collect {tmp}/sweep EXTRA`` (the flags are checked before the sweep is read)."""
    return Case(case_id, ("sweep", "collect", "{tmp}/sweep", *extra), where, fix)


CASES = [
    override(
        "tags-nested-list", "tracking.tags=[[a]]", "tracking.tags[0]", "write tracking.tags as a flat list"
    ),
    override("eval-sources-mapping", "eval.sources=[{a: 1}]", "eval.sources[0]", "as a flat list"),
    override("betas-nested-list", "optim.betas=[[0.9],0.95]", "optim.betas[0]", "as a flat list"),
    override(
        "source-map-value-list",
        "eval.instructions.x.source_map={a: [b]}",
        "eval.instructions.x.source_map.a",
        "as key: value pairs",
    ),
    Case(
        "instruction-parquet-corrupt",
        (
            "data",
            "build",
            TRAIN,
            "data.tokenizer={tok}",
            "data.out_dir={tmp}/out",
            "data.instructions.x.path={tmp}/rows.parquet",
        ),
        "{tmp}/rows.parquet: not a readable Parquet file",
        "write it again",
        _bad_parquet,
    ),
    collect("collect-negative-seed", ("--seed", "-1"), "--seed", "non-negative seed"),
    collect("collect-n-boot-unbounded", ("--n-boot", "100000000"), "--n-boot", "use 1000 to 10000"),
    # item 11: messages that misled
    Case(
        "data-root-is-a-file",
        ("data", "build", TRAIN, "data.tokenizer={tok}", "data.root={tmp}/afile"),
        "data.root: {tmp}/afile is a file, not a directory of corpora",
        "point data.root",
        lambda tmp: write(tmp / "afile", "x\n"),
    ),
    Case(
        "sweep-run-nproc-negative",
        ("sweep", "run", "{tmp}/sweep.yaml", "--local", "--nproc", "-1"),
        "argument --nproc: must be >= 1, got -1",
        "give a positive number",
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_tracebacks"), tiny_model)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_no_traceback(case: Case, results, tiny_model: Path) -> None:
    check(case, results[case.id], tiny_model)


def _model_folder(tiny_model: Path, damage: str):
    """A copy of the tiny model at ``{tmp}/model``: with ``auto_map`` code, or with a pickled ``.bin`` only."""

    def setup(tmp: Path) -> None:
        model = tmp / "model"
        shutil.copytree(tiny_model, model)
        if damage == "auto_map":
            cfg = json.loads((model / "config.json").read_text())
            cfg.update(model_type="mine", auto_map={"AutoModelForCausalLM": "modeling_mine.Mine"})
            (model / "config.json").write_text(json.dumps(cfg))
            (model / "modeling_mine.py").write_text(f"open({str(tmp / 'RAN')!r}, 'w').close()\n")
        else:
            (model / "model.safetensors").unlink()
            (model / "pytorch_model.bin").write_bytes(pickle.dumps({"x": print}))

    return setup


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["auto_map", "pickled_bin"])
def test_eval_refuses_a_model_folder_without_a_traceback(
    tmp_path: Path, tiny_model: Path, damage: str
) -> None:
    case = Case(
        f"eval-model-{damage}",
        ("eval", EVAL, "eval.model={tmp}/model", "eval.output_dir={tmp}/out", "eval.sources=[gad]"),
        "{tmp}/model: cannot load the model for evaluation",
        "point eval.model at a Hugging Face folder with safetensors weights and no auto_map code",
        _model_folder(tiny_model, damage),
    )
    result = run_case(case, tmp_path)
    check(case, result)
    assert not (tmp_path / "RAN").exists(), "the model folder's code ran"
