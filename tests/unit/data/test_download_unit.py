"""The download plan and the file fetcher on ``file://`` URLs: archive members (DDI's zip), restarts when the
server ignores Range, stale part files, mirror URLs, and which sources a plan fetches."""

from __future__ import annotations

import hashlib
import importlib.util
import zipfile
from pathlib import Path

import pytest

from biotune.data import download as dl
from biotune.errors import ConfigError, DataError
from biotune.sources import SOURCES, UnknownSourceError


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


# ----------------------------------------------------------------------------- the pin generator (launch/)


def _pin_downloads():
    """``launch/pin_downloads.py`` as a module (it is a script, not part of the package)."""
    path = Path(__file__).resolve().parents[3] / "launch" / "pin_downloads.py"
    spec = importlib.util.spec_from_file_location("pin_downloads", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _zip(path: Path, members: dict[str, bytes]) -> zipfile.ZipFile:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return zipfile.ZipFile(path)


def test_generator_pins_a_split_from_an_extra_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = _pin_downloads()
    root, extra = tmp_path / "root", tmp_path / "extra"
    files = {root / "bc2gm/iob/train.tsv": b"a\tO\n", root / "bc2gm/iob/devel.tsv": b"b\tO\n"}
    files[extra / "bc2gm/iob/test.tsv"] = b"c\tB-GENE\n\n"
    files[extra / "bc2gm/iob/train.tsv"] = b"other\tO\n"  # the first root that has a split wins
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    out = tmp_path / "downloads.json"
    assert gen.main(["--root", str(root), "--extra", str(extra), "--out", str(out)]) == 0
    pins = {p.dest: p for p in dl.load_catalogue(out)["bc2gm"]}
    assert list(pins) == ["bc2gm/iob/train.tsv", "bc2gm/iob/devel.tsv", "bc2gm/iob/test.tsv"]
    test = pins["bc2gm/iob/test.tsv"]
    assert (test.sha256, test.size) == (sha(b"c\tB-GENE\n\n"), 10)
    assert test.url.endswith("/df0df02fae6dbb87d88ffcf323b9096528f06f84/data/BC2GM-IOB/test.tsv")
    assert pins["bc2gm/iob/train.tsv"].sha256 == sha(b"a\tO\n")
    printed = capsys.readouterr().out
    assert "not pinned: ddi: ddi/Test/Test for DDI Extraction task" in printed
    assert not [line for line in printed.splitlines() if "bc2gm:" in line]  # complete: not listed as missing


def test_generator_pins_the_xml_members_of_an_archive_folder(tmp_path: Path) -> None:
    gen = _pin_downloads()
    test = "DDICorpus/Test/Test for DDI Extraction task/"
    zf = _zip(
        tmp_path / "c.zip",
        {
            test + "DrugBank/B b.xml": b"<b/>",
            test + "MedLine/1.xml": b"<m/>",
            test + "MedLine/.DS_Store": b"\0",
            test + ".DS_Store": b"\0",
            "DDICorpus/Test/Test for DrugNER task/DrugBank/n.xml": b"<n/>",
        },
    )
    rel = "ddi/Test/Test for DDI Extraction task"
    found = gen.split_files([tmp_path / "empty"], {"ddi_zip": zf}, "ddi_xml", rel)
    assert found == {f"{rel}/DrugBank/B b.xml": (sha(b"<b/>"), 4), f"{rel}/MedLine/1.xml": (sha(b"<m/>"), 4)}
    assert gen.upstream(f"{rel}/MedLine/1.xml") == ("ddi_zip", test + "MedLine/1.xml")
    assert gen.split_files([tmp_path / "empty"], {}, "ddi_xml", rel) is None
    assert gen.member_matches("a/b/c.xml", "**/*.xml") and gen.member_matches("c.xml", "**/*.xml")
    assert not gen.member_matches("a/.DS_Store", "**/*.xml")
    assert gen.member_matches("text/1.txt", "text/*.txt") and not gen.member_matches(
        "text/x/1.txt", "text/*.txt"
    )


def test_generator_refuses_an_archive_that_is_not_the_pinned_one(tmp_path: Path) -> None:
    gen = _pin_downloads()
    _zip(tmp_path / "c.zip", {"DDICorpus/Train/DrugBank/a.xml": b"<a/>"})
    out = tmp_path / "downloads.json"
    with pytest.raises(SystemExit, match="is not the pinned DDICorpus-2013.zip"):
        gen.main(["--root", str(tmp_path), "--archive", f"ddi_zip={tmp_path / 'c.zip'}", "--out", str(out)])
    assert not out.exists()
    with pytest.raises(SystemExit, match="not an origin with an archive"):
        gen.open_archive("mtl", tmp_path / "c.zip")


def test_generator_stops_when_the_data_root_differs_from_the_archive(tmp_path: Path) -> None:
    gen = _pin_downloads()
    zf = _zip(tmp_path / "c.zip", {"DDICorpus/Train/DrugBank/a.xml": b"<a/>"})
    staged = tmp_path / "root/ddi/Train/DrugBank/a.xml"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"<a/>")
    catalogue, _ = gen.pin(tmp_path / "root", [], {"ddi_zip": zf})
    row = ["ddi/Train/DrugBank/a.xml", "ddi_zip", "DDICorpus/Train/DrugBank/a.xml", sha(b"<a/>"), 4]
    assert catalogue["sources"]["ddi"] == [row]
    staged.write_bytes(b"<A/>")
    with pytest.raises(SystemExit, match="ddi/Train/DrugBank/a.xml differs from the ddi_zip archive member"):
        gen.pin(tmp_path / "root", [], {"ddi_zip": zf})
