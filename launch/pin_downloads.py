"""Regenerate ``biotune/data/downloads.json``, the pins of ``biotune data download``, from a data root.

Launch line::

    python launch/pin_downloads.py [--root ../shared/data] [--extra DIR ...] [--archive ORIGIN=ZIP ...]
                                   [--out biotune/data/downloads.json]

For every source of the registry that can be downloaded (not credentialed, not generated) it lists the files the
readers use (each split file, the files a folder split reads, and reader companions such as PubMedQA's test id
list), and pins each one: its path under the data root, where it comes from upstream (``ORIGINS``: a repository
at a fixed commit, and the file's path there), its SHA-256 and its size, computed from the bytes found. The data
root must hold unchanged copies of the pinned upstream files (``../shared/data`` does: see its READMEs).

A split the data root lacks is looked up, in this order, in:

* each ``--extra DIR``: another data root, same layout, holding upstream files the staged root leaves out (the
  official test splits ``bc2gm/iob/test.tsv`` and ``jnlpba/mtl-typed/train.tsv``);
* the ``--archive ORIGIN=ZIP`` of its origin: a local copy of that origin's pinned archive (checked against the
  SHA-256 and size in ``ORIGINS`` before use), whose members under the split's upstream path are pinned (DDI's
  ``Test/Test for DDI Extraction task/``). With an archive, every pin of its origin found in a data root is also
  checked against the archive member, and a difference stops the run.

A split found nowhere is reported and left out. The extra files come from the pinned commits, e.g. from a clone::

    git -C MTL-Bioinformatics-2016 show df0df02fae6dbb87d88ffcf323b9096528f06f84:data/BC2GM-IOB/test.tsv \\
        > EXTRA/bc2gm/iob/test.tsv
    git -C DDICorpus show 819b0fa538ed83ab2a8b4f5417bba3c03249b7f3:DDICorpus-2013.zip > DDICorpus-2013.zip
    python launch/pin_downloads.py --extra EXTRA --archive ddi_zip=DDICorpus-2013.zip

(``data/JNLPBA/train.tsv`` of MTL-Bioinformatics-2016, git blob ``5aa9d1ac3d60c924ac225d0c07695c82c31326a5``, was
absent from every snapshot available when the pins were made, so ``jnlpba_typed`` has no pinned train split yet:
put the file in an ``--extra`` root and rerun to pin it.)

The DDI corpus exists upstream only inside a zip; its files are pinned as members of that archive, whose own
SHA-256 and size are the constants in ``ORIGINS`` (they cannot be computed from the unpacked data root).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from biotune.config import default_data_root  # noqa: E402
from biotune.data.download import CATALOGUE, FORMAT_VERSION, write_catalogue  # noqa: E402
from biotune.sources import SOURCES  # noqa: E402
from biotune.sources.qa import TEST_IDS_FILE  # noqa: E402

_MTL = ("cambridgeltl/MTL-Bioinformatics-2016", "df0df02fae6dbb87d88ffcf323b9096528f06f84")
_BIOMEDBERT = ("BioMedBERT/biomedbert", "9e5e1019d79d07c7aecc4eb49106203af1012663")
_BIO_ELECTRA = ("SciCrunch/bio_electra", "7a53526773e047c02f03400f61a906a636b9054d")
_CDR = "CDR_Data/CDR.Corpus.v010516/"

#: Origin name -> the upstream repository, its pinned commit, and for an archive its path, SHA-256 and size.
ORIGINS: dict[str, dict[str, object]] = {
    "mtl": {"repo": _MTL[0], "commit": _MTL[1]},
    "ncbi_original": {"repo": "spyysalo/ncbi-disease", "commit": "5a266c6fc76fb2b5184cfa397ff0a5ecdb133aec"},
    "cdr_train": {"repo": "cryptoradon/biomedRelExt", "commit": "e42e94570138158963ae4696298bf09232071740"},
    "cdr": {"repo": "cryptoradon/biomedRelExt", "commit": "3f113ff1aefd03b7ecf053a6bc33cc6a75532f20"},
    "biomedbert": {"repo": _BIOMEDBERT[0], "commit": _BIOMEDBERT[1]},
    "bio_electra": {"repo": _BIO_ELECTRA[0], "commit": _BIO_ELECTRA[1]},
    "scibert": {"repo": "allenai/scibert", "commit": "06793f77d7278898159ed50da30d173cdc8fdea9"},
    "hoc": {"repo": "sb895/Hallmarks-of-Cancer", "commit": "3bc6e6deb90cf5bc4f9988c493fe2c32e9b3cf2a"},
    "pubmedqa": {"repo": "pubmedqa/pubmedqa", "commit": "1cbae8e92f72f20c8d3747cbb3bf5bc53554d997"},
    "ddi_zip": {
        "repo": "isegura/DDICorpus",
        "commit": "819b0fa538ed83ab2a8b4f5417bba3c03249b7f3",
        "archive": {
            "path": "DDICorpus-2013.zip",
            "sha256": "87fc63e32ebce20d9841c372e0c594ec72d60882ab5621550ca73c3eaf80ab60",
            "bytes": 1545162,
        },
    },
}

#: Data-root path (a file, or a folder ending in ``/``) -> (origin, upstream path). The longest match wins;
#: a folder maps the rest of the path unchanged. Checked against the READMEs of ../shared/data.
PLACES: dict[str, tuple[str, str]] = {
    "ncbi_disease/iob/": ("mtl", "data/NCBI-disease-IOB/"),
    "ncbi_disease/original/NCBItrainset_corpus.txt": (
        "ncbi_original",
        "original-data/train/NCBItrainset_corpus.txt",
    ),
    "ncbi_disease/original/NCBIdevelopset_corpus.txt": (
        "ncbi_original",
        "original-data/devel/NCBIdevelopset_corpus.txt",
    ),
    "ncbi_disease/original/NCBItestset_corpus.txt": (
        "ncbi_original",
        "original-data/test/NCBItestset_corpus.txt",
    ),
    "bc5cdr/chem-iob/": ("mtl", "data/BC5CDR-chem-IOB/"),
    "bc5cdr/disease-iob/": ("mtl", "data/BC5CDR-disease-IOB/"),
    "bc5cdr/combined-iob/": ("mtl", "data/BC5CDR-IOB/"),
    "bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt": ("cdr_train", _CDR + "CDR_TrainingSet.PubTator.txt"),
    "bc5cdr/pubtator/": ("cdr", _CDR),
    "bc2gm/iob/": ("mtl", "data/BC2GM-IOB/"),
    "jnlpba/biobert-untyped/": ("biomedbert", "datasets/NER/JNLPBA/"),
    "jnlpba/mtl-typed/": ("mtl", "data/JNLPBA/"),
    "linnaeus/iob/": ("mtl", "data/linnaeus-IOB/"),
    "s800/biobert/": ("biomedbert", "datasets/NER/s800/"),
    "chemprot/cpr-groups/": ("bio_electra", "electra/data/finetuning_data/chemprot/"),
    "chemprot/scibert-fine/train.jsonl": ("scibert", "data/text_classification/chemprot/train.txt"),
    "chemprot/scibert-fine/dev.jsonl": ("scibert", "data/text_classification/chemprot/dev.txt"),
    "chemprot/scibert-fine/test.jsonl": ("scibert", "data/text_classification/chemprot/test.txt"),
    "ddi/Train/": ("ddi_zip", "DDICorpus/Train/"),
    "ddi/Test/": ("ddi_zip", "DDICorpus/Test/"),
    "gad/fold1/": ("biomedbert", "datasets/RE/GAD/1/"),
    **{f"euadr/fold{k}/": ("biomedbert", f"datasets/RE/euadr/{k}/") for k in range(1, 11)},
    "hoc/": ("hoc", ""),
    "pubmedqa/": ("pubmedqa", "data/"),
    "bioasq_yesno/tsv/": ("bio_electra", "electra/data/finetuning_data/yesno/"),
}

#: Reader format -> the files a folder split reads (globs under the folder).
FOLDER_FILES = {"hoc": ("text/*.txt", "labels/*.txt"), "ddi_xml": ("**/*.xml",)}
#: Reader format -> files beside a split file that the reader also opens.
COMPANIONS = {"pubmedqa": (TEST_IDS_FILE,)}


def find_upstream(dest: str) -> tuple[str, str] | None:
    """(origin, upstream path) of a data-root path, by the longest matching entry of :data:`PLACES`, or ``None``.

    A folder given without its trailing ``/`` (a folder split such as ``hoc``) maps to the folder's upstream path.
    """
    matches = [p for p in PLACES if p in (dest, dest + "/") or (p.endswith("/") and dest.startswith(p))]
    if not matches:
        return None
    place = max(matches, key=len)
    origin, path = PLACES[place]
    if place == dest + "/":
        return origin, path.rstrip("/")
    return origin, path + dest[len(place) :] if place.endswith("/") else path


def upstream(dest: str) -> tuple[str, str]:
    """:func:`find_upstream`, for a path that must have a place."""
    found = find_upstream(dest)
    if found is None:
        raise SystemExit(f"pin_downloads: no upstream place for {dest}: add it to PLACES")
    return found


def used_files(root: Path, fmt: str, rel: str) -> tuple[list[str], list[str]]:
    """(files the reader of ``fmt`` uses for the split path ``rel``, split paths missing from ``root``)."""
    path = root / rel
    if path.is_dir():
        found = {p for pattern in FOLDER_FILES.get(fmt, ("**/*",)) for p in path.glob(pattern) if p.is_file()}
        return sorted(str(p.relative_to(root)) for p in found), []
    if not path.is_file():
        return [], [rel]
    extra = [str((path.parent / name).relative_to(root)) for name in COMPANIONS.get(fmt, ())]
    return [rel, *extra], []


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def member_matches(rel: str, pattern: str) -> bool:
    """Whether the ``/``-separated path ``rel`` matches ``pattern`` as :meth:`Path.glob` does (``**``: any depth)."""

    def match(parts: list[str], pats: list[str]) -> bool:
        if not pats:
            return not parts
        if pats[0] == "**":
            return any(match(parts[i:], pats[1:]) for i in range(len(parts) + 1))
        return bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0]) and match(parts[1:], pats[1:])

    return match(rel.split("/"), pattern.split("/"))


def open_archive(origin: str, path: Path) -> zipfile.ZipFile:
    """The local copy ``path`` of ``origin``'s archive, once its SHA-256 and size match :data:`ORIGINS`."""
    spec = ORIGINS.get(origin, {}).get("archive")
    if not isinstance(spec, dict):
        archived = sorted(name for name, o in ORIGINS.items() if "archive" in o)
        raise SystemExit(
            f"pin_downloads: --archive {origin}: not an origin with an archive (those are {archived})"
        )
    if not path.is_file():
        raise SystemExit(f"pin_downloads: --archive {origin}={path}: no such file")
    got = (sha256_of(path), path.stat().st_size)
    if got != (spec["sha256"], spec["bytes"]):
        raise SystemExit(
            f"pin_downloads: --archive {origin}={path} is not the pinned {spec['path']}: sha256 {got[0]}, "
            f"{got[1]} bytes; pinned sha256 {spec['sha256']}, {spec['bytes']} bytes"
        )
    return zipfile.ZipFile(path)


def archive_files(archive: zipfile.ZipFile, fmt: str, path: str) -> dict[str, bytes]:
    """Member -> bytes of the upstream ``path`` in ``archive``: the member itself, or the files a folder split of
    format ``fmt`` reads under it (:data:`FOLDER_FILES`); empty when the archive has neither."""
    names = [n for n in archive.namelist() if not n.endswith("/")]
    if path in names:
        return {path: archive.read(path)}
    prefix = path.rstrip("/") + "/"
    patterns = FOLDER_FILES.get(fmt, ("**/*",))
    chosen = [
        n
        for n in names
        if n.startswith(prefix) and any(member_matches(n[len(prefix) :], p) for p in patterns)
    ]
    return {n: archive.read(n) for n in chosen}


Found = dict[str, tuple[str, int]]
"""Data-root path -> (SHA-256, size) of the files found for one split."""


def split_files(roots: list[Path], archives: dict[str, zipfile.ZipFile], fmt: str, rel: str) -> Found | None:
    """The files the reader of ``fmt`` uses for the split path ``rel``: from the first data root that has it, else
    from its origin's archive; ``None`` when neither has it."""
    for root in roots:
        files, absent = used_files(root, fmt, rel)
        if not absent:
            return {f: (sha256_of(root / f), (root / f).stat().st_size) for f in files}
    origin, path = find_upstream(rel) or ("", "")
    if origin not in archives:
        return None
    members = archive_files(archives[origin], fmt, path)
    found = {
        rel + name[len(path) :]: (hashlib.sha256(data).hexdigest(), len(data))
        for name, data in members.items()
    }
    return dict(sorted(found.items())) or None


def check_against_archives(
    sources: dict[str, list[list[object]]], archives: dict[str, zipfile.ZipFile]
) -> None:
    """Every pin of an origin with a local archive must equal that archive's member (stops on a difference)."""
    for rows in sources.values():
        for dest, origin, member, sha, size in rows:
            if origin not in archives:
                continue
            try:
                data = archives[origin].read(str(member))
            except KeyError:
                raise SystemExit(
                    f"pin_downloads: {dest}: the {origin} archive has no member {member}"
                ) from None
            if (hashlib.sha256(data).hexdigest(), len(data)) != (sha, size):
                raise SystemExit(f"pin_downloads: {dest} differs from the {origin} archive member {member}")


def pin(
    root: Path, extra: list[Path] | None = None, archives: dict[str, zipfile.ZipFile] | None = None
) -> tuple[dict[str, object], list[str]]:
    """The catalogue for ``root`` (then the ``extra`` roots, then the origins' ``archives``) and the split paths
    found in none of them."""
    roots = [root, *(extra or [])]
    archives = archives or {}
    sources: dict[str, list[list[object]]] = {}
    missing: list[str] = []
    for name, spec in SOURCES.items():
        if spec.credentialed or spec.generated:
            continue
        files: Found = {}
        for rel in dict.fromkeys(spec.splits.values()):
            found = split_files(roots, archives, spec.format, rel)
            if found is None:
                missing.append(f"{name}: {rel}")
            else:
                files.update((dest, pinned) for dest, pinned in found.items() if dest not in files)
        sources[name] = [[dest, *upstream(dest), sha, size] for dest, (sha, size) in files.items()]
    check_against_archives(sources, archives)
    return {"format": FORMAT_VERSION, "origins": ORIGINS, "sources": sources}, missing


def parse_archive(value: str) -> tuple[str, Path]:
    """``ORIGIN=ZIP`` -> (origin, path)."""
    origin, sep, path = value.partition("=")
    if not (sep and origin and path):
        raise argparse.ArgumentTypeError(f"{value!r}: expected ORIGIN=ZIP, e.g. ddi_zip=DDICorpus-2013.zip")
    return origin, Path(path)


def main(argv: list[str] | None = None) -> int:
    """Pin the files of ``--root`` (and ``--extra``, ``--archive``) into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=default_data_root(), help="data root (default: $BIOTUNE_DATA_DIR)")
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="DIR",
        help="another data root for split files --root lacks (repeatable; searched in order)",
    )
    parser.add_argument(
        "--archive",
        action="append",
        default=[],
        type=parse_archive,
        metavar="ORIGIN=ZIP",
        help="local copy of an origin's pinned archive, e.g. ddi_zip=DDICorpus-2013.zip (repeatable)",
    )
    parser.add_argument("--out", default=str(CATALOGUE), help="catalogue to write")
    args = parser.parse_args(argv)
    archives = {origin: open_archive(origin, path) for origin, path in args.archive}
    catalogue, missing = pin(Path(args.root), [Path(d) for d in args.extra], archives)
    write_catalogue(catalogue, Path(args.out))
    for line in missing:
        print(f"in no data root or archive, not pinned: {line}")
    sources = catalogue["sources"]
    assert isinstance(sources, dict)
    n = sum(len(v) for v in sources.values())
    print(f"pinned {n} files of {len(sources)} sources -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
