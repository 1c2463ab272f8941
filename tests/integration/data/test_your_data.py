"""The data a researcher brings (issue 12): official split layouts, sources declared in a config, trained on
and evaluated through the real CLI.

* Every built-in source evaluates on its test split when its files sit in a temporary data root in the
  layout of the corpus's official distribution (BC2GM's ``test.tsv``, the DDI zip's ``Test/Test for DDI
  Extraction task/``, BC5CDR's ``CDR_Data/CDR.Corpus.v010516/``, MedNLI's PhysioNet folder, a ``validation.tsv``
  for a ``devel`` split). The file contents are stand-ins taken from the staged corpora (e.g. BC2GM's devel
  file as its test file): the layout is what is under test, and gold completions must score perfectly.
* A NER corpus (CoNLL), an RE corpus (BLUE TSV) and a classification corpus (``cls_tsv``), written here and
  declared under ``data.custom_sources``, are built into a mixture (their names and licences in the
  manifest), trained on by ``biotune train`` (tiny Llama, ZeRO-3, one CPU process) and evaluated by
  ``biotune eval`` on their test splits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from biotune.data.synthetic import write_corpus, write_re_corpus
from biotune.eval.score import build_eval_set, score_set
from biotune.sources import SAMPLE_ROOT, SOURCES, available_splits
from biotune.testing.launch import free_port, launch_env

REPO = Path(__file__).resolve().parents[3]


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        dst.symlink_to(src.resolve(), target_is_directory=src.is_dir())


def _official_root(corpora: Path, tmp: Path) -> Path:
    """A data root with every built-in source's test split in an official layout (see the module docstring)."""
    root = tmp / "official"
    for spec in SOURCES.values():
        for rel in spec.splits.values():
            if (corpora / rel).exists():
                _link(corpora / rel, root / rel)
    # PubMedQA's reader opens the test-id list beside ori_pqal.json.
    _link(corpora / "pubmedqa/test_ground_truth.json", root / "pubmedqa/test_ground_truth.json")
    _link(corpora / "bc2gm/iob/devel.tsv", root / "bc2gm/iob/test.tsv")
    _link(corpora / "jnlpba/mtl-typed/devel.tsv", root / "jnlpba/mtl-typed/train.tsv")
    ddi_test = root / "ddi/Test/Test for DDI Extraction task"
    for xml in sorted((corpora / "ddi/Train/MedLine").glob("*.xml"))[:6]:
        _link(xml, ddi_test / "MedLine" / xml.name)
    # BC5CDR as the official zip unpacks (instead of the staged pubtator/ folder).
    for name in ("TrainingSet", "DevelopmentSet", "TestSet"):
        (root / f"bc5cdr/pubtator/CDR_{name}.PubTator.txt").unlink()
        _link(corpora / f"bc5cdr/pubtator/CDR_{name}.PubTator.txt",
              root / f"bc5cdr/CDR_Data/CDR.Corpus.v010516/CDR_{name}.PubTator.txt")  # fmt: skip
    # NCBI-disease's devel file under BLURB's name.
    (root / "ncbi_disease/iob/devel.tsv").unlink()
    _link(corpora / "ncbi_disease/iob/devel.tsv", root / "ncbi_disease/iob/validation.tsv")
    # Credentialed corpora: the bundled synthetic stand-ins, MedNLI in PhysioNet's folder.
    for split in ("train", "dev", "test"):
        _link(
            SAMPLE_ROOT / f"mednli/mli_{split}_v1.jsonl",
            root / f"mednli/{'mednli-a-natural-language-inference-dataset-for-the-clinical-domain-1.0.0'}"
            f"/mli_{split}_v1.jsonl",
        )
    for rel in ("i2b2_2010/re/train.tsv", "i2b2_2010/re/test.tsv"):
        _link(SAMPLE_ROOT / rel, root / rel)
    i2b2_2012 = root / "i2b2_2012/iob/test.tsv"
    i2b2_2012.parent.mkdir(parents=True, exist_ok=True)
    i2b2_2012.write_text(
        "The\tO\npatient\tO\nhad\tO\nan\tB-TEST\nMRI\tI-TEST\nfor\tO\npain\tB-PROBLEM\n.\tO\n"
    )
    write_corpus(root, n_train=20, n_test=20)
    write_re_corpus(root, n_train=20, n_test=20)
    return root


def test_every_builtin_source_evaluates_on_its_test_split_in_official_layouts(
    corpora: Path, tmp_path: Path
) -> None:
    root = _official_root(corpora, tmp_path)
    assert available_splits(SOURCES["ncbi_disease"], root)["devel"].name == "validation.tsv"
    assert "CDR_Data" in str(available_splits(SOURCES["bc5cdr_cid"], root)["test"])
    for name in SOURCES:
        eval_set = build_eval_set(name, "test", root, max_examples=60)
        assert eval_set.split == "test" and eval_set.records, name
        score, _ = score_set(eval_set, {s.id: s.output for s in eval_set.samples})
        assert score.parse_failures == 0, name
        assert score.metrics[score.headline] == pytest.approx(1.0) or score.metrics.get("accuracy") == 1.0, (
            name
        )
    # Through the CLI: BC2GM's and DDI's official test sets, which the staged copy lacks, are scored.
    preds = tmp_path / "pred.jsonl"
    rows = []
    for name in ("bc2gm", "ddi"):
        eval_set = build_eval_set(name, "test", root, max_examples=25)
        rows += [{"id": s.id, "completion": s.output} for s in eval_set.samples]
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "scored"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "biotune.cli",
            "eval",
            "score",
            str(preds),
            f"data.root={root}",
            "eval.max_examples=25",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "WANDB_MODE": "disabled"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    report = {r["dataset"]: r for r in json.loads((out / "report.json").read_text())["rows"]}
    assert set(report) == {"bc2gm/test", "ddi/test"}
    assert all(r["parse_failures"] == 0 and r["n"] == 25 for r in report.values())


def test_a_split_mapped_in_the_config_is_read_from_that_file_only(corpora: Path, tmp_path: Path) -> None:
    from biotune import config
    from biotune.sources import catalog, load_records

    mine = tmp_path / "elsewhere" / "bc2gm_test.tsv"
    mine.parent.mkdir()
    shutil.copy(corpora / "bc2gm/iob/devel.tsv", mine)
    cfg = config.load(None, [f"data.root={corpora}", f"data.split_files.bc2gm.test={mine}"])
    spec = catalog(cfg.data)["bc2gm"]
    assert available_splits(spec, corpora)["test"] == mine
    assert len(load_records(spec, "test", corpora)) == len(load_records("bc2gm", "devel", corpora))


# ------------------------------------------------------------------------------------------ custom sources

SYMPTOMS = ("headache", "fever", "nausea", "cough", "rash", "fatigue")
DRUGS = ("aspirin", "ibuprofen", "metformin", "warfarin")


def _write_custom_corpora(base: Path) -> None:
    """A clinical NER corpus (CoNLL, untyped B/I/O), an RE corpus (BLUE TSV) and a cls_tsv corpus."""
    for split, n in (("train", 60), ("test", 12)):
        conll = []
        for i in range(n):
            symptom = SYMPTOMS[i % len(SYMPTOMS)]
            day = "monday" if split == "train" else "friday"  # no test sentence repeats a training one
            tokens = ["Patient", str(i), "reports", "severe", symptom, "since", day, "."]
            tags = ["O", "O", "O", "O", "B", "O", "O", "O"]
            conll.append("\n".join(f"{t}\t{g}" for t, g in zip(tokens, tags, strict=True)))
        (base / "ner").mkdir(parents=True, exist_ok=True)
        (base / "ner" / f"{split}.conll").write_text("\n\n".join(conll) + "\n")
        re_rows = []
        for i in range(n):
            label = "1" if i % 2 == 0 else "0"
            verb = "relieves" if label == "1" else "was listed beside"
            re_rows.append(f"@DRUG$ {verb} @SYMPTOM$ in {split} case {i} .\t{label}")
        (base / "re").mkdir(exist_ok=True)
        (base / "re" / f"{split}.tsv").write_text("\n".join(re_rows) + "\n")
        cls_rows = ["text\tlabels"]
        for i in range(n):
            urgent = i % 3 == 0
            text = f"Note {split} {i}: {'chest pain, call now' if urgent else 'routine follow up visit'} ."
            cls_rows.append(f"{text}\t{'urgent' if urgent else 'routine'}")
        (base / "cls").mkdir(exist_ok=True)
        (base / "cls" / f"{split}.tsv").write_text("\n".join(cls_rows) + "\n")


CUSTOM_YAML = """\
defaults: [{repo}/configs/model/tiny.yaml]
name: custom-sources
optim:
  lr: 3.0e-3
  warmup_steps: 1
data:
  root: {root}
  max_seq_len: 512  # every clinic_ner sample fits (at 256 the NER prompts were all dropped: exit 2 now)
  eval_fraction: 0.0
  out_dir: {out}/data
  leakage: warn
  custom_sources:
    clinic_ner:
      kind: ner
      format: conll
      files: {{train: ner/train.conll, test: ner/test.conll}}
      labels: [Symptom]
      entity_type: Symptom
      licence: CC BY 4.0 (our lab)
      restricted: false
    drug_re:
      kind: re
      format: blue_tsv
      files: {{train: {root}/re/train.tsv, test: {root}/re/test.tsv}}
      labels: ["1", "0"]
      negative_label: "0"
    triage:
      kind: cls
      format: cls_tsv
      files: {{train: cls/train.tsv, test: cls/test.tsv}}
      labels: [urgent, routine]
  sources:
    clinic_ner: {{}}
    drug_re: {{}}
    triage: {{}}
train:
  output_dir: {out}/train
  deepspeed: {repo}/configs/deepspeed/zero3.json
  micro_batch_size: 1
  grad_accum: 2
  max_steps: 6
  save_every: 6
  eval_every: 0
  log_every: 2
tracking:
  wandb_mode: disabled
eval:
  splits: [test]
  max_new_tokens: 24
  batch_size: 6
  output_dir: {out}/eval
"""


def test_custom_sources_are_built_trained_on_and_evaluated(tiny_model: Path, tmp_path: Path) -> None:
    root = tmp_path / "lab"
    _write_custom_corpora(root)
    out = tmp_path / "run"
    cfg = tmp_path / "custom.yaml"
    cfg.write_text(CUSTOM_YAML.format(repo=REPO, root=root, out=out))
    env = launch_env({"DS_ACCELERATOR": "cpu", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"})
    env["MASTER_PORT"] = str(free_port())
    cli = [sys.executable, "-m", "biotune.cli"]
    res = subprocess.run(
        [*cli, "train", str(cfg), f"model.name_or_path={tiny_model}"], capture_output=True, text=True, env=env
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    manifest = json.loads(next((out / "data").glob("*/manifest.json")).read_text())
    entries = manifest["sources"]
    assert {n: entries[n]["realised"] for n in ("clinic_ner", "drug_re", "triage")} == {
        "clinic_ner": 60,
        "drug_re": 60,
        "triage": 60,
    }
    assert (
        entries["clinic_ner"]["licence"] == "CC BY 4.0 (our lab)"
        and entries["clinic_ner"]["restricted"] is False
    )
    assert entries["drug_re"]["restricted"] is True and "not declared" in entries["drug_re"]["licence"]
    res = subprocess.run([*cli, "eval", str(cfg), f"model.name_or_path={tiny_model}"], capture_output=True,
                         text=True, env=env)  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    report = {r["dataset"]: r for r in json.loads((out / "eval" / "report.json").read_text())["rows"]}
    assert set(report) == {"clinic_ner/test", "drug_re/test", "triage/test"}
    assert all(r["n"] == 12 for r in report.values())
    preds = (out / "eval" / "predictions.jsonl").read_text().splitlines()
    assert len(preds) == 36 and json.loads(preds[0])["id"].startswith("clinic_ner/test/")


def test_biotune_eval_generates_and_scores_instruction_rows(tiny_model: Path, tmp_path: Path) -> None:
    """``biotune eval`` on ``eval.instructions`` only: prompts are the rows' own, ids the instruction record ids."""
    from biotune.data.tasks import make_samples, task_for
    from biotune.sources import load_records

    rows = []
    for name, published in (("gad", "GAD"), ("hoc", "HoC")):
        spec = SOURCES[name]
        for s in make_samples(task_for(spec), load_records(name, "test", SAMPLE_ROOT)[:3], name, "test", 0):
            rows.append(
                {"instruction": s.instruction, "input": s.input, "output": s.output, "source": published}
            )
    rows.append({"instruction": "Chat.", "input": "Hello", "output": "Hi", "source": "ChatDoctor"})
    path = tmp_path / "medtuned_eval.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    res = subprocess.run(
        [sys.executable, "-m", "biotune.cli", "eval", str(REPO / "configs/eval/tiny.yaml"), f"eval.model={tiny_model}",
         "data.root=@sample", "eval.sources=[]", f"eval.instructions.pub.path={path}",
         "eval.instructions.pub.split=test", "eval.max_new_tokens=6", f"eval.output_dir={out}",
         "tracking.wandb_mode=disabled"],
        capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "disabled"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert {r["dataset"]: r["n"] for r in report["rows"]} == {"gad/test": 3, "hoc/test": 3}
    assert report["meta"]["unscored_rows"] == {
        "eval.instructions.pub": {"rows": 1, "unmapped": {"ChatDoctor": 1}, "unparsable": []}
    }
    ids = [json.loads(line)["id"] for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(f"medtuned_eval:test:{i}" for i in range(6))


def test_custom_sources_take_part_in_sweeps_and_the_leakage_check(tiny_model: Path, tmp_path: Path) -> None:
    """A leave-one-source-out sweep over declared sources plans a variant per source from their real counts; a
    test sentence copied into the training file is found by the build's leakage check."""
    import yaml

    from biotune import config
    from biotune.data.build import build_dataset
    from biotune.data.dataset import Manifest
    from biotune.sweep import runner

    root = tmp_path / "lab"
    _write_custom_corpora(root)
    out = tmp_path / "run"
    base = tmp_path / "custom.yaml"
    base.write_text(CUSTOM_YAML.format(repo=REPO, root=root, out=out))
    sweep = tmp_path / "loo.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {"name": "custom-loo", "base": str(base), "budget": "free", "controls": False,
             "axes": [{"type": "leave_one_out", "over": "source"}]}
        )
    )  # fmt: skip
    loaded = runner.load(sweep, tmp_path / "sweeps")
    variants = {v.name: v for v in loaded.variants}
    assert set(variants) == {"base", "loo-source-clinic_ner", "loo-source-drug_re", "loo-source-triage"}
    left_out = variants["loo-source-drug_re"].counts
    assert left_out.get("drug_re", 0) == 0 and left_out["clinic_ner"] == left_out["triage"] == 60, left_out
    # Leakage: the first test sentence of clinic_ner appears verbatim in its training file.
    test_first = (root / "ner" / "test.conll").read_text().split("\n\n")[0]
    with (root / "ner" / "train.conll").open("a") as fh:
        fh.write("\n" + test_first + "\n")
    built = build_dataset(config.load(base, [f"data.tokenizer={tiny_model}"]))
    leak = Manifest.read(built).to_dict()["leakage"]
    assert leak["checked"]["clinic_ner/test"] == 12 and leak["exact"]["clinic_ner/test"] >= 1, leak
    assert leak["checked"]["drug_re/test"] == 12 and leak["exact"].get("drug_re/test", 0) == 0, leak
