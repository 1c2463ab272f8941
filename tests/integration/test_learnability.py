"""Proof that the pipeline learns: synthetic NER -> build -> pack -> ZeRO-3 (2 ranks) -> export -> generate -> score.

The corpus comes from small bundled lexicons (``biotune.data.synthetic``); its test split holds only
(carrier sentence, entity) combinations never seen in training. A tiny Llama trained through the real
pipeline must reach a high strict entity F1 there. Each sabotage below breaks one link of the chain and the
same check must then fail:

* ``no_mask``: prompt masking off (every prompt token carries loss);
* ``no_position_reset``: position_ids not reset at packed-sequence boundaries (so sequences attend across);
* ``template_mismatch``: evaluation renders prompts with another template than training;
* ``parser_wrong_field``: the scorer parses the example's input instead of the model's completion.

The two data sabotages rewrite the built shards; the two eval sabotages reuse the good run's model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from biotune import config
from biotune.data import synthetic

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "train" / "synthetic_ner.yaml"
F1_THRESHOLD = 0.80  # an untrained model scores 0; the good run reaches well above (reported in the output)

pytestmark = pytest.mark.slow


def _overrides(work: Path, model: Path) -> list[str]:
    return [f"data.root={work / 'corpus'}", f"model.name_or_path={model}", f"data.out_dir={work / 'data'}"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The synthetic corpus and a tiny Llama whose tokenizer saw the rendered training samples."""
    from biotune.data.build import source_samples
    from biotune.data.templates import render_prompt
    from biotune.tiny import make_tiny_llama

    work = tmp_path_factory.mktemp("learnability")
    synthetic.write_corpus(work / "corpus", n_train=2000, n_test=200, seed=0)
    cfg = config.load(CONFIG, [f"data.root={work / 'corpus'}"])
    samples = source_samples("synthetic_ner", "train", work / "corpus", cfg.data.ner_format, cfg.data.seed)
    texts = [render_prompt(cfg.data.template, s.instruction, s.input) + s.output for s in samples[:500]]
    model = make_tiny_llama(work / "model", texts + synthetic.corpus_text(), vocab_size=2000, hidden_size=128,
                            num_layers=2, max_positions=1024)
    return work, model


def _build(work: Path, model: Path) -> Path:
    from biotune.data.build import build_dataset

    return build_dataset(config.load(CONFIG, _overrides(work, model)))


def _sabotage_shards(data_dir: Path, out: Path, how: str) -> Path:
    """A copy of the built dataset with masking or position resets broken."""
    from datasets import Dataset, load_from_disk

    shutil.copytree(data_dir, out)
    for split in ("train", "eval"):
        if not (out / split).is_dir():
            continue
        ds = load_from_disk(str(data_dir / split))
        cols: dict[str, Any] = {k: ds[k] for k in ds.column_names}
        if how == "no_mask":
            cols["labels"] = [list(ids) for ids in cols["input_ids"]]
            cols["num_loss_tokens"] = [len(ids) for ids in cols["input_ids"]]
        elif how == "no_position_reset":
            cols["position_ids"] = [list(range(len(ids))) for ids in cols["input_ids"]]
        shutil.rmtree(out / split)
        Dataset.from_dict(cols, features=ds.features).save_to_disk(str(out / split))
    return out


def _train(work: Path, model: Path, data_dir: Path, run: str) -> Path:
    from biotune.demo import train

    out = work / run
    code = train(str(CONFIG), [*_overrides(work, model), f"train.data_dir={data_dir}", f"train.output_dir={out}"], 2)
    assert code == 0, f"training failed ({code})"
    return out / "hf"


def _f1(work: Path, model: Path, exported: Path, run: str, *extra: str) -> tuple[float, dict[str, Any]]:
    from biotune.eval.runner import evaluate

    cfg = config.load(CONFIG, [*_overrides(work, model), f"eval.model={exported}",
                               f"eval.output_dir={work / run / 'eval'}", *extra])
    out = evaluate(cfg)
    assert out is not None
    report = json.loads((Path(out) / "report.json").read_text())
    score = next(s for s in report["scores"] if s["source"] == "synthetic_ner")
    print(f"\n[{run}] strict entity F1 = {score['metrics']['f1']:.4f}  "
          f"(parse failures {score['parse_failures']}/{score['n']})")
    return float(score["metrics"]["f1"]), score


@pytest.fixture(scope="module")
def good_model(work: tuple[Path, Path]) -> Path:
    return _train(*work, _build(*work), "good")


def test_pipeline_learns_synthetic_ner(work: tuple[Path, Path], good_model: Path) -> None:
    f1, score = _f1(*work, good_model, "good")
    assert f1 >= F1_THRESHOLD, f"held-out strict entity F1 {f1:.3f} < {F1_THRESHOLD}: {score}"


@pytest.mark.parametrize("how", ["no_mask", "no_position_reset"])
def test_data_sabotage_breaks_learning(work: tuple[Path, Path], how: str) -> None:
    data_dir = _sabotage_shards(_build(*work), work[0] / f"data-{how}", how)
    rows = json.loads((data_dir / "manifest.json").read_text())["packing"]["rows"]
    assert rows > 0
    f1, _ = _f1(*work, _train(*work, data_dir, how), how)
    assert f1 < F1_THRESHOLD, f"sabotage {how} still reached F1 {f1:.3f}: the check cannot see it"


def test_template_mismatch_breaks_scores(work: tuple[Path, Path], good_model: Path) -> None:
    f1, _ = _f1(*work, good_model, "template_mismatch", "data.template=alpaca")
    assert f1 < F1_THRESHOLD


def test_parser_reading_the_wrong_field_breaks_scores(work: tuple[Path, Path], good_model: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from biotune.eval import runner

    real = runner.score_set

    def wrong_field(eval_set: Any, completions: dict[str, str]) -> Any:
        return real(eval_set, {s.id: s.input for s in eval_set.samples})

    monkeypatch.setattr(runner, "score_set", wrong_field)
    f1, _ = _f1(*work, good_model, "parser_wrong_field")
    assert f1 < F1_THRESHOLD


def test_sabotaged_shards_really_differ(work: tuple[Path, Path]) -> None:
    """Guards the sabotage helpers themselves: each changes exactly what it claims to."""
    from datasets import load_from_disk

    good = _build(*work)
    ref = load_from_disk(str(good / "train"))[0]
    for how in ("no_mask", "no_position_reset"):
        row = load_from_disk(str(_sabotage_shards(good, work[0] / f"check-{how}", how) / "train"))[0]
        assert row["input_ids"] == ref["input_ids"]
        if how == "no_mask":
            assert -100 in ref["labels"] and -100 not in row["labels"]
        else:
            assert np.count_nonzero(np.asarray(ref["position_ids"]) == 0) > 1
            assert row["position_ids"] == list(range(len(ref["input_ids"])))
