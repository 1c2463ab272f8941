"""Bad downloads: ``biotune data download`` with bad names, flags, mirrors and data roots.

Mirrors are ``file://`` folders the case writes (a copy of GAD fold 1 from the real data root, then damaged),
or a closed port on 127.0.0.1. Every case exits 2 naming the source, flag, URL or file and the fix, and leaves
nothing behind: no final file, no ``.part`` file, no directory it created. A link planted at a ``.part`` file is
refused and its target left as it was; the speed limits must be positive numbers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_case, run_selected, write

from biotune.config import default_data_root

GAD = "gad/fold1/train.tsv"


def _mirror(tmp: Path, damage: str | None = None) -> None:
    """``{tmp}/mirror``: GAD fold 1 from the real data root, with ``train.tsv`` damaged as asked."""
    src = Path(default_data_root()) / "gad" / "fold1"
    shutil.copytree(src, tmp / "mirror" / "gad" / "fold1")
    train = tmp / "mirror" / GAD
    data = train.read_bytes()
    if damage == "flip":
        train.write_bytes(data[:500] + bytes([data[500] ^ 0x20]) + data[501:])
    elif damage == "truncate":
        train.write_bytes(data[: len(data) // 2])
    elif damage == "remove":
        shutil.rmtree(tmp / "mirror" / "gad")


def get(
    case_id: str, args: tuple[str, ...], where: str, fix: str = "fix:", damage: str | None = None
) -> Case:
    """``biotune data download ARGS --root {tmp}/root`` (with a ``file://`` mirror when ``damage`` is given)."""
    mirror = ("--mirror", "file://{tmp}/mirror") if damage else ()
    setup = (lambda tmp: _mirror(tmp, damage)) if damage else None
    return Case(case_id, ("data", "download", *args, "--root", "{tmp}/root", *mirror), where, fix, setup)


def _foreign_file(tmp: Path) -> None:
    write(tmp / "root" / GAD, "my own file\t1\n")


def _planted_link(tmp: Path) -> None:
    """A link at ``train.tsv.part`` to a file of the user's, and a mirror to fetch from."""
    _mirror(tmp)
    write(tmp / "victim.txt", "precious\n")
    (tmp / "root" / "gad" / "fold1").mkdir(parents=True)
    (tmp / "root" / (GAD + ".part")).symlink_to(tmp / "victim.txt")


CASES = [
    get("unknown-source", ("ncbi_diseas",), "'ncbi_diseas'", "did you mean ncbi_disease"),
    get("unknown-accepted-licence", ("ddi", "--accept-licence", "dddi"), "'dddi'", "did you mean ddi"),
    get("restricted-not-accepted", ("gad", "s800"), "s800: restricted licence", "--accept-licence s800"),
    get("mirror-not-a-url", ("gad", "--mirror", "example.org/data"), "--mirror", "http://host"),
    get("mirror-file-corrupt", ("gad",), f"{{tmp}}/root/{GAD}", "intact mirror", damage="flip"),
    get(
        "mirror-file-truncated", ("gad",), f"file://{{tmp}}/mirror/{GAD}", "intact mirror", damage="truncate"
    ),
    get("mirror-file-missing", ("gad",), f"file://{{tmp}}/mirror/{GAD}", "check the URL", damage="remove"),
    get("mirror-refuses", ("gad", "--mirror", "http://127.0.0.1:9"), f"http://127.0.0.1:9/{GAD}", "rerun"),
    Case(
        "foreign-file-in-place",
        ("data", "download", "gad", "--root", "{tmp}/root"),
        f"{{tmp}}/root/{GAD}",
        "move it away",
        _foreign_file,
    ),
    Case(
        "root-is-a-file",
        ("data", "download", "gad", "--root", "{tmp}/afile"),
        "{tmp}/afile",
        "pass --root a directory",
        lambda tmp: write(tmp / "afile", "x"),
    ),
    Case(
        "part-file-is-a-link",
        ("data", "download", "gad", "--root", "{tmp}/root", "--mirror", "file://{tmp}/mirror"),
        f"{{tmp}}/root/{GAD}.part: is a symbolic link",
        "remove it",
        _planted_link,
    ),
    get("min-rate-zero", ("gad", "--min-rate", "0"), "--min-rate", "give bytes per second"),
    get("read-timeout-nan", ("gad", "--read-timeout", "nan"), "--read-timeout", "give seconds"),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_downloads"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_download(case: Case, results) -> None:
    check(case, results[case.id])


def test_the_planted_link_is_not_written_through(results, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "part-file-is-a-link")
    result = results.get(case.id) or run_case(case, tmp_path / case.id)
    assert (result.tmp / "victim.txt").read_text() == "precious\n"


def test_the_foreign_file_is_left_as_it_was(results, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "foreign-file-in-place")
    result = results.get(case.id) or run_case(case, tmp_path / case.id)
    assert (result.tmp / "root" / GAD).read_text() == "my own file\t1\n"
