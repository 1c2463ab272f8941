"""Bad configs and overrides, through ``biotune data build`` / ``train`` / ``eval`` (``--dry-run`` where the
problem is in the config alone): exit 2, the key (and the file that holds it, or the override) and the fix.

Also the inputs issue 13 found wrongly rejected, which must now be accepted: ``data.leakage: off`` (YAML reads
it as false), ``defaults: one.yaml`` (was iterated character by character), ``data.root=@sample`` unquoted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bad_input_harness import REPO, Case, base_env, check, ids, run_selected, write

GOOD = "data:\n  root: '@sample'\n  sources:\n    gad: {}\n"


def yaml_case(
    case_id: str,
    text: str | bytes,
    where: str,
    fix: str = "fix:",
    command: str = "data build",
    extra: tuple[str, ...] = (),
    files: dict[str, str] | None = None,
    dry_run: bool = True,
) -> Case:
    """``biotune COMMAND {tmp}/run.yaml [extra] [--dry-run]`` with ``run.yaml`` holding ``text``."""

    def setup(tmp: Path) -> None:
        write(tmp / "run.yaml", text)
        for rel, content in (files or {}).items():
            write(tmp / rel, content)

    args = (*command.split(), "{tmp}/run.yaml", *extra, *(("--dry-run",) if dry_run else ()))
    return Case(case_id, args, where, fix, setup)


SAMPLE = "{repo}/configs/data/sample.yaml"
TRAIN = "{repo}/configs/train/tiny.yaml"


def override_case(
    case_id: str,
    overrides: tuple[str, ...],
    where: str,
    fix: str = "fix:",
    command: str = "data build",
    config: str = SAMPLE,
) -> Case:
    """``biotune COMMAND CONFIG OVERRIDES --dry-run`` on a shipped config."""
    return Case(case_id, (*command.split(), config, *overrides, "--dry-run"), where, fix)


def build_case(case_id: str, overrides: tuple[str, ...], where: str, fix: str = "fix:") -> Case:
    """A real ``data build`` of the bundled sample (needs the tokenizer) that must stop on a config problem."""
    return Case(case_id, ("data", "build", SAMPLE, "data.tokenizer={tok}", *overrides), where, fix)


CASES = [
    # the YAML file
    yaml_case(
        "yaml-unknown-key", "train:\n  max_stepz: 3\n", "train.max_stepz", "did you mean 'train.max_steps'"
    ),
    yaml_case(
        "yaml-wrong-type",
        "train:\n  micro_batch_size: many\n",
        "train.micro_batch_size",
        "give a value of type int",
    ),
    yaml_case(
        "yaml-sources-as-a-list",
        "data:\n  sources: [gad, hoc]\n",
        "data.sources",
        "write data.sources as a mapping",
    ),
    yaml_case(
        "yaml-defaults-not-paths",
        "defaults: 5\n",
        "defaults: expected a list of YAML paths",
        "write defaults: [",
    ),
    yaml_case(
        "yaml-defaults-missing-file",
        "defaults: [nope.yaml]\n",
        "problem in {tmp}/run.yaml",
        "fix the path under defaults: in {tmp}/run.yaml",
    ),
    yaml_case(
        "yaml-defaults-cycle",
        "defaults: [other.yaml]\n",
        "includes itself",
        "remove the cycle",
        files={"other.yaml": "defaults: [run.yaml]\n"},
    ),
    yaml_case(
        "yaml-syntax-error", "train:\n  max_steps: [1, 2\nname: x\n", "{tmp}/run.yaml", "fix the YAML syntax"
    ),
    yaml_case("yaml-root-not-a-mapping", "- a\n- b\n", "<root>", "write key: value pairs"),
    yaml_case(
        "yaml-not-utf8", "name: caf\xe9\n".encode("latin-1"), "{tmp}/run.yaml", "save the config as UTF-8"
    ),
    yaml_case("yaml-section-not-a-mapping", "train: 5\n", "train", "give train sub-keys"),
    yaml_case("yaml-leakage-on", "data:\n  leakage: on\n", "data.leakage", "set data.leakage to one of"),
    yaml_case(
        "yaml-epochs-negative",
        "train:\n  epochs: -3\n",
        "train.epochs",
        "set train.epochs to a positive value",
        command="train",
    ),
    yaml_case(
        "yaml-bad-merge-over-defaults",
        "defaults: [base.yaml]\ntrain: 3\n",
        "{tmp}/run.yaml",
        "give train sub-keys",
        files={"base.yaml": "train: {max_steps: 3}\n"},
    ),
    Case(
        "config-file-missing",
        ("data", "build", "{tmp}/absent.yaml", "--dry-run"),
        "{tmp}/absent.yaml",
        "pass the path of a YAML file",
    ),
    Case(
        "config-is-a-directory",
        ("data", "build", "{tmp}", "--dry-run"),
        "is a directory",
        "pass the path of a YAML file",
    ),
    # key=value overrides
    override_case("override-without-equals", ("nonsense",), "nonsense", "write e.g. train.max_steps=10"),
    override_case("override-empty-key", ("=5",), "=5", "write e.g. train.max_steps=10"),
    override_case("override-unparseable", ("train.max_steps=[1",), "train.max_steps", "quote it"),
    override_case(
        "override-kind-conflict", ("data.sources.gad=3",), "data.sources.gad", "write data.sources.gad:"
    ),
    override_case(
        "override-sources-as-a-list",
        ("data.sources=[gad,hoc]",),
        "data.sources",
        "write data.sources as a mapping",
    ),
    override_case(
        "override-blamed-not-the-yaml",
        ("train.epochs=-3",),
        "problem in the override train.epochs=-3 (on top of",
        "set train.epochs to a positive value",
        command="train",
        config=TRAIN,
    ),
    override_case(
        "override-unknown-key",
        ("optim.lrr=1",),
        "optim.lrr",
        "did you mean 'optim.lr'",
        command="train",
        config=TRAIN,
    ),
    override_case(
        "override-max-steps-zero",
        ("train.max_steps=0",),
        "train.max_steps",
        "set train.max_steps=-1",
        command="train",
        config=TRAIN,
    ),
    override_case(
        "override-micro-batch-zero",
        ("train.micro_batch_size=0",),
        "train.micro_batch_size",
        "set train.micro_batch_size to a positive value",
        command="train",
        config=TRAIN,
    ),
    override_case(
        "override-global-batch-indivisible",
        ("train.global_batch_size=10", "train.micro_batch_size=4"),
        "train.global_batch_size",
        "make global_batch_size = micro_batch_size * grad_accum * world_size",
        command="train",
        config=TRAIN,
    ),
    override_case(
        "override-max-seq-len-negative",
        ("data.max_seq_len=-1",),
        "data.max_seq_len",
        "set data.max_seq_len to a positive value",
    ),
    override_case(
        "override-peak-tflops-not-finite",
        ("train.peak_tflops=inf",),
        "train.peak_tflops",
        "set train.peak_tflops to the device's peak",
        command="train",
        config=TRAIN,
    ),
    override_case(
        "override-dtype",
        ("model.dtype=fp8",),
        "model.dtype",
        "set model.dtype to one of",
        command="train",
        config=TRAIN,
    ),
    override_case(
        "override-leakage-unknown", ("data.leakage=maybe",), "data.leakage", "set data.leakage to one of"
    ),
    override_case(
        "override-negative-weight",
        ("data.sources.gad.weight=-1",),
        "data.sources.gad.weight",
        "set data.sources.gad.weight to a positive value",
    ),
    override_case(
        "override-every-source-excluded",
        tuple(
            f"data.sources.{s}.include=false"
            for s in (
                "ncbi_disease",
                "bc5cdr_chem",
                "bc5cdr_disease",
                "gad",
                "chemprot",
                "hoc",
                "pubmedqa",
                "bioasq_yesno",
            )
        ),
        "data.sources",
        "set include: true on at least one source",
    ),
    override_case(
        "override-eval-max-examples-zero",
        ("eval.max_examples=0",),
        "eval.max_examples",
        "set eval.max_examples to a positive value",
        command="eval",
        config="{repo}/configs/eval/tiny.yaml",
    ),
    override_case(
        "override-eval-backend",
        ("eval.backend=tgi",),
        "eval.backend",
        "set eval.backend to one of",
        command="eval",
        config="{repo}/configs/eval/tiny.yaml",
    ),
    # problems found when the build starts (the sample corpus, the tiny tokenizer)
    build_case(
        "build-unknown-source",
        ("data.sources.ncbi_diseas.weight=1",),
        "data.sources.ncbi_diseas",
        "did you mean ncbi_disease",
    ),
    build_case(
        "build-unknown-split",
        ("data.sources.gad.split=devel",),
        "data.sources.gad.split",
        "use one of: train, test",
    ),
    build_case("build-root-missing", ("data.root={tmp}/nowhere",), "data.root", "point data.root"),
    Case(
        "build-record-is-a-directory",
        ("data", "build", SAMPLE, "data.tokenizer={tok}", "--record", "{tmp}/record"),
        "--record",
        "pass the path of a JSON file to write",
        lambda tmp: (tmp / "record").mkdir(),
    ),
    Case(
        "build-tokenizer-missing",
        ("data", "build", SAMPLE, "data.tokenizer=./no_tokenizer"),
        "data.tokenizer",
        "build or export a model first",
    ),
    yaml_case(
        "build-no-sources",
        "data:\n  root: '@sample'\n",
        "data.sources",
        "add sources",
        dry_run=False,
        extra=("data.tokenizer={tok}",),
    ),
    # LoRA (train.lora): the adapter's settings, and a target the model does not have (found from the model's
    # config.json before anything is built or written: a real run, not a dry run)
    Case(
        "lora-unknown-target",
        ("train", TRAIN, "model.name_or_path={tok}", "train.lora.target_modules=[q_proj,qkv_proj]"),
        "train.lora.target_modules",
        "choose among the model's linear modules: down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, "
        "v_proj",
    ),
    override_case(
        "lora-rank-zero",
        ("train.lora.rank=0",),
        "train.lora.rank",
        "fix: set train.lora.rank",
        "train",
        TRAIN,
    ),
    override_case(
        "lora-alpha-zero",
        ("train.lora.alpha=0",),
        "train.lora.alpha",
        "fix: set train.lora.alpha",
        "train",
        TRAIN,
    ),
    override_case(
        "lora-dropout-one",
        ("train.lora.dropout=1",),
        "train.lora.dropout",
        "must be in [0, 1), got 1.0",
        "train",
        TRAIN,
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_configs"), tiny_model)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_config(case: Case, results, tiny_model: Path) -> None:
    check(case, results[case.id], tiny_model)


@pytest.mark.parametrize(
    ("yaml_text", "overrides", "expect"),
    [
        ("data:\n  leakage: off\n", (), "leakage: 'off'"),
        (GOOD, ("data.leakage=off",), "leakage: 'off'"),
        ("defaults: one.yaml\n", (), "max_steps: 7"),
        (GOOD, ("data.root=@sample",), "root: '@sample'"),
    ],
    ids=["leakage-off-in-yaml", "leakage-off-override", "defaults-one-path", "at-sample-unquoted"],
)
def test_inputs_that_used_to_be_rejected_are_accepted(
    tmp_path: Path, yaml_text: str, overrides: tuple[str, ...], expect: str
) -> None:
    write(tmp_path / "run.yaml", yaml_text)
    write(tmp_path / "one.yaml", "train:\n  max_steps: 7\n")
    proc = subprocess.run(
        [sys.executable, "-m", "biotune.cli", "train", str(tmp_path / "run.yaml"), *overrides, "--dry-run"],
        cwd=tmp_path,
        env=base_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expect in proc.stdout


def test_shipped_configs_still_load() -> None:
    """The schema changes of issue 13 (validation of epochs, eps, num_proc ...) reject no shipped config."""
    from biotune import config

    for path in sorted((REPO / "configs").rglob("*.yaml")):
        if path.parent.name != "sweep":
            config.load(path)
