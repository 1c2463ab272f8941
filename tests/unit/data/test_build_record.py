"""``biotune data build --record FILE``: the machine-readable record of the built dataset's directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biotune.data.cli import RECORD_DATA_DIR, read_build_record, write_build_record
from biotune.errors import DataError


def test_the_record_round_trips_as_an_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_build_record(tmp_path / "rec.json", Path("runs/data/abc"))
    assert json.loads((tmp_path / "rec.json").read_text()) == {
        RECORD_DATA_DIR: str(tmp_path / "runs/data/abc")
    }
    assert read_build_record(tmp_path / "rec.json") == tmp_path / "runs/data/abc"


@pytest.mark.parametrize("content", ["{}", '{"data_dir": 3}', "[]", "not json"])
def test_a_bad_record_names_the_file_and_the_fix(tmp_path: Path, content: str) -> None:
    (tmp_path / "rec.json").write_text(content)
    with pytest.raises(DataError) as err:
        read_build_record(tmp_path / "rec.json")
    assert str(tmp_path / "rec.json") in str(err.value) and "fix:" in str(err.value)
