"""The download plan and the file fetcher on ``file://`` URLs: archive members (DDI's zip), restarts when the
server ignores Range, stale part files, mirror URLs, and which sources a plan fetches."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from biotune.data import download as dl
from biotune.data.sources import SOURCES, UnknownSourceError
from biotune.errors import ConfigError, DataError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_plan_without_names_fetches_the_public_sources_and_lists_the_restricted_ones() -> None:
    catalogue = dl.load_catalogue()
    plan = dl.make_plan([], [], catalogue)
    assert set(plan.fetch) == {n for n in catalogue if not SOURCES[n].restricted}
    assert set(plan.restricted_left_out) == {"s800", "euadr", "chemprot", "ddi", "bioasq_yesno"}
    assert "--accept-licence ddi" in dl.describe(plan, Path("/r"))
    plan = dl.make_plan([], ["ddi"], catalogue)
    assert "ddi" in plan.fetch and "ddi" not in plan.restricted_left_out


def test_plan_sorts_credentialed_generated_and_refuses_restricted() -> None:
    catalogue = dl.load_catalogue()
    plan = dl.make_plan(["gad", "mednli", "synthetic_re"], [], catalogue)
    assert (plan.fetch, plan.credentialed, plan.generated) == (["gad"], ["mednli"], ["synthetic_re"])
    text = dl.describe(plan, Path("/r"))
    assert "/r/mednli/mli_dev_v1.jsonl" in text and "write_re_corpus" in text
    with pytest.raises(ConfigError, match="--accept-licence euadr") as err:
        dl.make_plan(["euadr", "ddi"], ["ddi"], catalogue)
    assert [p.key for p in err.value.problems] == ["euadr"]
    with pytest.raises(UnknownSourceError, match="did you mean hoc"):
        dl.make_plan(["hocc"], [], catalogue)


def test_mirror_urls_quote_the_data_root_path() -> None:
    pin = dl.Pin("ddi/Train/DrugBank/Acetohydroxamic Acid_ddi.xml", "m", "0" * 64, 1, dl.Archive("u", "s", 1))
    (moved,) = dl.with_mirror([pin], "http://127.0.0.1:8/data/")
    assert moved.url == "http://127.0.0.1:8/data/ddi/Train/DrugBank/Acetohydroxamic%20Acid_ddi.xml"
    assert moved.archive is None
    with pytest.raises(ConfigError, match="--mirror"):
        dl.check_mirror("example.org/data")


def test_archive_members_are_unpacked_checked_and_the_archive_removed(tmp_path: Path) -> None:
    members = {"C/Train/a b.xml": b"<a/>", "C/Train/x/y.xml": b"<y/>" * 100}
    zpath = tmp_path / "up" / "c.zip"
    zpath.parent.mkdir()
    with zipfile.ZipFile(zpath, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    archive = dl.Archive(zpath.as_uri(), sha(zpath.read_bytes()), zpath.stat().st_size)
    pins = [dl.Pin(f"ddi/{n[2:]}", n, sha(d), len(d), archive) for n, d in members.items()]
    root = tmp_path / "root"
    complete: set[str] = set()
    done = dl.fetch_source(pins, root, complete)
    assert (done.fetched, done.bytes) == (2, archive.size)
    assert (root / "ddi/Train/a b.xml").read_bytes() == b"<a/>"
    assert not (root / dl.ARCHIVE_DIR).exists()
    assert complete == {p.dest for p in pins}

    bad = [dl.Pin("ddi/Train/z.xml", "C/Train/a b.xml", "f" * 64, 4, archive)]
    with pytest.raises(DataError, match="checksum mismatch") as err:
        dl.fetch_source(bad, root, set())
    assert err.value.path == str(root / "ddi/Train/z.xml")
    assert not (root / "ddi/Train/z.xml").exists()


def test_a_part_file_is_restarted_when_the_server_ignores_range(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    dest = tmp_path / "root" / "f.bin"
    dest.parent.mkdir()
    part = dest.with_name("f.bin.part")
    part.write_bytes(b"garbage!")  # file:// answers a Range request with the whole file
    assert dl.fetch_file(src.as_uri(), dest, sha(data), len(data)) == len(data)
    assert dest.read_bytes() == data and not part.exists()

    dest.unlink()
    part.write_bytes(data + b"extra")  # longer than the pinned size: stale, started over
    dl.fetch_file(src.as_uri(), dest, sha(data), len(data))
    assert dest.read_bytes() == data and not part.exists()


def test_a_complete_part_file_is_checked_without_a_request(tmp_path: Path) -> None:
    data = b"done\n"
    dest = tmp_path / "f.txt"
    dest.with_name("f.txt.part").write_bytes(data)
    assert dl.fetch_file((tmp_path / "nowhere").as_uri(), dest, sha(data), len(data)) == 0
    assert dest.read_bytes() == data


def test_a_foreign_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("mine")
    pin = dl.Pin("a.txt", "file:///x", sha(b"theirs"), 6)
    with pytest.raises(DataError, match="move it away"):
        dl.complete_files([pin], tmp_path)
    same = dl.Pin("a.txt", "file:///x", sha(b"mine"), 4)
    assert dl.complete_files([same], tmp_path) == {"a.txt"}
