"""Published-schema instruction sets (issue 12): every file kind reads the same rows; rows in the published
Llama2-MedTuned spellings are evaluated through the source map, their gold read by each task's own parser, and
scoring the gold outputs as predictions is perfect with zero parse failures; unmapped rows are counted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from biotune import config
from biotune.errors import ConfigError, DataError
from biotune.eval.runner import instruction_sets, score_predictions
from biotune.sources import load_instructions
from biotune.sources.instructions import map_source

INSTRUCTION = "Answer as the task asks."

# One row per task in the published spellings (see biotune.data.tasks.synonyms); ``gold`` is what each parses to.
PUBLISHED = [
    ("NCBI-disease", "Mutations cause breast cancer .", "Mutations : O\ncause : O\nbreast : B\ncancer : I\n. : O",
     ("O", "O", "B-Disease", "I-Disease", "O")),
    ("BC5CDR-chem", "Aspirin helps .", "Aspirin : B\nhelps : O\n. : O", ("B-Chemical", "O", "O")),
    ("HoC", "Tumour cells invade and mutate .",
     "Activating invasion & metastasis (IM), Genome instability & mutation (GI)",
     ("activating invasion and metastasis", "genomic instability and mutation")),
    ("HoC", "Nothing here .", "None", ()),
    ("GAD", "@GENE$ is linked to @DISEASE$ .", "Positive", "1"),
    ("GAD", "@GENE$ is not linked to @DISEASE$ .", "Negative", "0"),
    ("i2b2-2010", "@treatment$ improved @problem$ .", "TrIP", "TrIP"),
    ("i2b2-2010", "@test$ was done for @problem$ .", "No Relations", "No Relations"),
    ("MedNLI", "Premise: he has a fever. Hypothesis: he is febrile.", "Entailment", "entailment"),
]  # fmt: skip


def _rows(extra: list[dict] | None = None) -> list[dict]:
    rows = [{"instruction": INSTRUCTION, "input": i, "output": o, "source": s} for s, i, o, _ in PUBLISHED]
    return rows + (extra or [])


def _write_all_kinds(tmp: Path, rows: list[dict]) -> dict[str, Path]:
    """The same rows as .jsonl, .json, .parquet, a save_to_disk Dataset, its .arrow file and a DatasetDict."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {"jsonl": tmp / "rows.jsonl", "json": tmp / "rows.json", "parquet": tmp / "rows.parquet"}
    paths["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    paths["json"].write_text(json.dumps({"test": rows}))
    pq.write_table(pa.Table.from_pylist(rows), paths["parquet"])
    ds = datasets.Dataset.from_list(rows)
    ds.save_to_disk(str(tmp / "disk"))
    paths["save_to_disk"] = tmp / "disk"
    paths["arrow"] = next((tmp / "disk").glob("*.arrow"))
    datasets.DatasetDict({"train": ds.select(range(2)), "test": ds}).save_to_disk(str(tmp / "dict"))
    paths["dataset_dict"] = tmp / "dict"
    return paths


def test_every_file_kind_reads_the_same_rows(tmp_path: Path) -> None:
    rows = _rows()
    for kind, path in _write_all_kinds(tmp_path, rows).items():
        records = load_instructions(path, "test")
        got = [
            {"instruction": r.instruction, "input": r.input, "output": r.output, "source": r.source}
            for r in records
        ]
        assert got == rows, kind
        assert len({r.id for r in records}) == len(rows), kind
    with pytest.raises(DataError, match="no split 'validation'.*train, test"):
        load_instructions(tmp_path / "dict", "validation")


def test_published_source_names_map_to_biotune_sources() -> None:
    assert [map_source(s) for s in ("NCBI-disease", "ncbi disease", "BC5CDR-Chem", "i2b2-2010", "HoC")] == [
        "ncbi_disease",
        "ncbi_disease",
        "bc5cdr_chem",
        "i2b2_2010_re",
        "hoc",
    ]
    assert map_source("ChatDoctor") is None
    assert map_source("ChatDoctor", {"ChatDoctor": "pubmedqa"}) == "pubmedqa"
    assert map_source("gad") == "gad"  # a biotune source name maps to itself


def _eval_cfg(path: Path, *extra: str) -> config.RunConfig:
    return config.load(
        None,
        [
            f"eval.instructions.pub.path={path}",
            "eval.instructions.pub.split=test",
            "data.root=@sample",
            *extra,
        ],
    )


def test_published_spellings_round_trip_and_gold_scores_perfectly(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    unmapped = {"instruction": "Chat.", "input": "Hi", "output": "Hello", "source": "ChatDoctor"}
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows([unmapped])))
    cfg = _eval_cfg(path)
    sets = {s.source: s for s in instruction_sets(cfg)}
    assert set(sets) == {"ncbi_disease", "bc5cdr_chem", "hoc", "gad", "i2b2_2010_re", "mednli"}
    golds = [g for s in sets.values() for g in (s.task.reference(r) for r in s.records)]
    expected = [g for name in sets for (src, _, _, g) in PUBLISHED if _maps(src) == name]
    assert [tuple(g) if isinstance(g, (list, tuple)) else g for g in golds] == expected
    # Gold -> the task's own rendering -> parse == gold, for every row.
    for s in sets.values():
        for record in s.records:
            assert s.task.parse(s.task.format_output(record), record).value == s.task.reference(record)
    preds = tmp_path / "pred.jsonl"
    preds.write_text(
        "".join(json.dumps({"id": r["id"], "completion": r["output"]}) + "\n" for r in _ids(sets))
    )
    scores = score_predictions(preds, cfg, tmp_path / "report")
    assert {sc.source for sc in scores} == set(sets)
    for sc in scores:
        assert sc.parse_failures == 0 and sc.metrics[sc.headline] == pytest.approx(1.0), sc.source
        assert sc.split == "test"
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["meta"]["unscored_rows"] == {
        "eval.instructions.pub": {"rows": 1, "unmapped": {"ChatDoctor": 1}, "unparsable": []}
    }


def _maps(source: str) -> str | None:
    return map_source(source)


def _ids(sets: dict) -> list[dict]:
    return [{"id": smp.id, "output": smp.output} for s in sets.values() for smp in s.samples]


def test_corpus_split_places_rows(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    cfg = _eval_cfg(path, "eval.instructions.pub.corpus_split=devel")
    assert {s.split for s in instruction_sets(cfg)} == {"devel"}


#: Rows as the paper's released evaluation set has them: a HoC row with an empty output, a GAD row whose label
#: is not one of the task's.
UNREADABLE = [
    {"instruction": "x", "input": "Cells divide .", "output": "", "source": "HoC"},
    {"instruction": "x", "input": "@GENE$ and @DISEASE$", "output": "perhaps", "source": "GAD"},
]


def test_a_gold_that_does_not_parse_is_left_out_listed_and_the_rest_scored(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(UNREADABLE)))
    cfg = _eval_cfg(path)
    unscored: dict = {}
    sets = {s.source: s for s in instruction_sets(cfg, unscored)}
    bad_ids = {f"rows:test:{len(PUBLISHED)}", f"rows:test:{len(PUBLISHED) + 1}"}
    assert not bad_ids & {i for s in sets.values() for i in s.ids}
    assert sum(len(s.samples) for s in sets.values()) == len(PUBLISHED)  # every readable row is kept
    entry = unscored["eval.instructions.pub"]
    assert entry.count == 2 and not entry.unmapped
    assert {(u["id"], u["source"], u["task"]) for u in entry.unparsable} == {
        (f"rows:test:{len(PUBLISHED)}", "HoC", "hoc"),
        (f"rows:test:{len(PUBLISHED) + 1}", "GAD", "gad"),
    }
    assert all(u["reason"].startswith("output cannot be read as gold") for u in entry.unparsable)
    # Scored through the report: the rows and their reasons are in report.json and report.md.
    preds = tmp_path / "pred.jsonl"
    every_row = [*_ids(sets), *({"id": i, "output": "anything"} for i in sorted(bad_ids))]  # as released
    preds.write_text(
        "".join(json.dumps({"id": r["id"], "completion": r["output"]}) + "\n" for r in every_row)
    )
    scores = score_predictions(preds, cfg, tmp_path / "report")
    assert all(sc.parse_failures == 0 and sc.metrics[sc.headline] == pytest.approx(1.0) for sc in scores)
    meta = json.loads((tmp_path / "report" / "report.json").read_text())["meta"]
    assert meta["unscored_rows"]["eval.instructions.pub"]["rows"] == 2
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "Rows not scored" in markdown and all(i in markdown for i in bad_ids)


def test_on_unparsable_error_makes_such_a_row_an_error(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(UNREADABLE[1:])))
    with pytest.raises(DataError, match=r"rows:test:9 .*cannot be read as gold") as err:
        instruction_sets(_eval_cfg(path, "eval.instructions.pub.on_unparsable=error"))
    assert "on_unparsable=skip" in str(err.value)
    with pytest.raises(ConfigError, match="on_unparsable"):
        _eval_cfg(path, "eval.instructions.pub.on_unparsable=ignore")


def test_eval_score_cli_scores_instruction_ids(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    ids = [f"rows:test:{i}" for i in range(len(PUBLISHED))]
    preds = tmp_path / "pred.jsonl"
    preds.write_text(
        "".join(
            json.dumps({"id": i, "completion": o}) + "\n"
            for i, (_, _, o, _) in zip(ids, PUBLISHED, strict=True)
        )
    )
    res = subprocess.run(
        [sys.executable, "-m", "biotune.cli", "eval", "score", str(preds), "data.root=@sample",
         f"eval.instructions.pub.path={path}", "eval.instructions.pub.split=test", "--out", str(tmp_path / "o")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads((tmp_path / "o" / "report.json").read_text())["rows"]
    assert {r["dataset"] for r in rows} == {f"{s}/test" for s in ("ncbi_disease", "bc5cdr_chem", "hoc", "gad",
                                                                  "i2b2_2010_re", "mednli")}  # fmt: skip
    assert all(r["parse_failures"] == 0 for r in rows)
