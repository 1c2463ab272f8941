"""``biotune data download``: fetch the public corpora at pinned versions into a data root, checksummed.

The pins live in ``downloads.json`` beside this module (regenerate it with ``launch/pin_downloads.py``): per
registry source, the files its reader uses, each with its path under the data root, its upstream origin (a
GitHub repository at a fixed commit, raw file URL; DDI's files are members of the corpus zip) and its SHA-256
and size. The contract:

* a file already at its place with the pinned SHA-256 is not fetched again; a different file there is never
  overwritten (the command stops and names it);
* a file is fetched into ``<file>.part`` and renamed into place only once its size and SHA-256 match, so a final
  path holds either nothing or the pinned bytes. An interrupted transfer keeps the ``.part`` file and the next
  run resumes it with an HTTP ``Range`` request; a wrong size or checksum removes it and stops, naming the URL
  and the destination;
* a transfer that is too slow stops: each read waits at most ``read_timeout_s`` (``--read-timeout``), and the
  whole file must arrive within ``read_timeout_s + bytes / min_rate`` (``--min-rate``, bytes per second), so a
  server that trickles a byte now and then cannot hold the command forever; what arrived is kept for a resume;
* links are never followed: a symbolic link (or anything but a regular file) at ``<file>.part`` or at the file's
  place stops the command, naming it, and the part file is opened with ``O_NOFOLLOW``;
* with ``mirror``, the file whose data-root path is ``a/b.tsv`` is fetched from ``<mirror>/a/b.tsv`` (any data
  root served over HTTP, or a ``file://`` folder, is a mirror), and DDI's files are fetched one by one;
* restricted corpora are fetched only when their licence was accepted; credentialed ones never (the plan says
  where to apply and where the files go); generated ones are written by code, not downloaded.

Only the standard library talks HTTP (``urllib.request``).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import math
import os
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from biotune.errors import ConfigError, DataError, Problem
from biotune.io import atomic_path, atomic_write_text, read_json
from biotune.sources import SOURCES, SourceSpec, get_spec

log = logging.getLogger(__name__)

#: The pinned file list shipped with the package.
CATALOGUE = Path(__file__).resolve().with_name("downloads.json")
#: Version of the ``downloads.json`` layout; :func:`load_catalogue` refuses any other.
FORMAT_VERSION = 1
#: Where a pinned GitHub file is served from.
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
#: Hidden folder under the data root that holds an archive while its members are unpacked.
ARCHIVE_DIR = ".downloads"
MIRROR_SCHEMES = ("http", "https", "file")
CHUNK = 1 << 16
_REGENERATE = "regenerate the pins with `python launch/pin_downloads.py --root DIR` from a verified data root"

#: Credentialed source -> where to apply for the files.
APPLY_AT = {
    "mednli": "PhysioNet (credentialed access and the data use agreement): https://physionet.org/content/mednli/",
    "i2b2_2010_re": "the n2c2 (formerly i2b2) NLP data sets, DBMI Data Portal: "
    "https://portal.dbmi.hms.harvard.edu/projects/n2c2-nlp/",
    "i2b2_2012": "the n2c2 (formerly i2b2) NLP data sets, DBMI Data Portal: "
    "https://portal.dbmi.hms.harvard.edu/projects/n2c2-nlp/",
}


@dataclass(frozen=True)
class Limits:
    """How slow a transfer may be before it is stopped (what arrived is kept, so a rerun resumes)."""

    read_timeout_s: float = 60.0
    """Longest wait for one read from the server (``--read-timeout``)."""
    min_rate: float = 16_384.0
    """Slowest average rate in bytes per second (``--min-rate``): a file of B bytes must arrive within
    ``read_timeout_s + B / min_rate`` seconds."""

    def deadline_s(self, nbytes: int) -> float:
        """Seconds allowed to transfer ``nbytes``."""
        return self.read_timeout_s + nbytes / self.min_rate

    def check(self) -> None:
        """Both limits must be positive finite numbers; else a ConfigError naming the flag."""
        problems = [
            Problem(flag, f"must be a positive number, got {value}", fix)
            for flag, value, fix in (
                ("--read-timeout", self.read_timeout_s, "give seconds, e.g. --read-timeout 60"),
                ("--min-rate", self.min_rate, "give bytes per second, e.g. --min-rate 16384"),
            )
            if not (math.isfinite(value) and value > 0)
        ]
        if problems:
            raise ConfigError(problems, "the download options")


class TooSlow(Exception):
    """A transfer missed its deadline (internal: turned into a DataError naming the URL)."""


@dataclass(frozen=True)
class Archive:
    """An upstream archive whose members are pinned files (DDI's corpus zip)."""

    url: str
    sha256: str
    size: int

    @property
    def name(self) -> str:
        """The archive's file name."""
        return urllib.parse.unquote(self.url.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class Pin:
    """One file to fetch: its path under the data root, where it comes from, and what it must hash to."""

    dest: str
    url: str
    """The file's URL, or for an archive member the member's path inside :attr:`archive`."""
    sha256: str
    size: int
    archive: Archive | None = None

    @property
    def source_url(self) -> str:
        """The URL to name in messages (``<archive url>#<member>`` for an archive member)."""
        return f"{self.archive.url}#{self.url}" if self.archive else self.url


@dataclass
class Plan:
    """What a download does with each requested source."""

    fetch: list[str] = field(default_factory=list)
    """Sources whose files are fetched (public, or restricted with the licence accepted)."""
    credentialed: list[str] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)
    restricted_left_out: list[str] = field(default_factory=list)
    """With no SOURCE named: restricted sources not fetched because their licence was not accepted."""


@dataclass
class Summary:
    """What fetching one source did."""

    fetched: int = 0
    complete: int = 0
    """Files already in place with the pinned checksum (or fetched earlier in this run for another source)."""
    bytes: int = 0
    """Bytes transferred (an archive counts once)."""


# ------------------------------------------------------------------------------------------------ catalogue


def raw_url(repo: str, commit: str, path: str) -> str:
    """The pinned raw-file URL of ``path`` in ``repo`` at ``commit``."""
    return RAW_URL.format(repo=repo, commit=commit, path=urllib.parse.quote(path))


def load_catalogue(path: str | Path = CATALOGUE) -> dict[str, list[Pin]]:
    """``downloads.json`` -> source name -> its pinned files (canonical upstream URLs)."""
    data = read_json(path, _REGENERATE)
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        raise DataError(path, f"not a downloads catalogue of format {FORMAT_VERSION}", _REGENERATE)
    try:
        origins = {name: _origin(o) for name, o in data["origins"].items()}
        return {source: [_pin(row, origins) for row in rows] for source, rows in data["sources"].items()}
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(path, f"malformed catalogue ({type(err).__name__}: {err})", _REGENERATE) from None


def _origin(origin: dict[str, Any]) -> tuple[str, str, Archive | None]:
    repo, commit = str(origin["repo"]), str(origin["commit"])
    archive = origin.get("archive")
    if archive is None:
        return repo, commit, None
    url = raw_url(repo, commit, str(archive["path"]))
    return repo, commit, Archive(url, str(archive["sha256"]), int(archive["bytes"]))


def _pin(row: list[Any], origins: dict[str, tuple[str, str, Archive | None]]) -> Pin:
    dest, origin, path, sha256, size = row
    repo, commit, archive = origins[origin]
    url = str(path) if archive else raw_url(repo, commit, str(path))
    return Pin(str(dest), url, str(sha256), int(size), archive)


def write_catalogue(catalogue: dict[str, Any], path: str | Path) -> None:
    """Write a catalogue as JSON with one pinned file per line (readable diffs when pins change)."""
    lines = ["{", f' "format": {json.dumps(catalogue["format"])},', ' "origins": {']
    origins = list(catalogue["origins"].items())
    lines += [
        f"  {json.dumps(k)}: {json.dumps(v)}{',' if i < len(origins) - 1 else ''}"
        for i, (k, v) in enumerate(origins)
    ]
    lines += [" },", ' "sources": {']
    sources = list(catalogue["sources"].items())
    for i, (name, rows) in enumerate(sources):
        lines.append(f"  {json.dumps(name)}: [")
        lines += [f"   {json.dumps(r)}{',' if j < len(rows) - 1 else ''}" for j, r in enumerate(rows)]
        lines.append(f"  ]{',' if i < len(sources) - 1 else ''}")
    lines += [" }", "}"]
    atomic_write_text(path, "\n".join(lines) + "\n")


def with_mirror(pins: Iterable[Pin], mirror: str) -> list[Pin]:
    """The same files fetched from ``mirror``: ``<mirror>/<data-root path>``, one file at a time."""
    base = mirror.rstrip("/")
    return [replace(p, url=f"{base}/{urllib.parse.quote(p.dest)}", archive=None) for p in pins]


def check_mirror(mirror: str) -> None:
    """A mirror must be an ``http(s)://`` or ``file://`` base URL."""
    parsed = urllib.parse.urlparse(mirror)
    if parsed.scheme not in MIRROR_SCHEMES or not (parsed.netloc or parsed.path):
        raise ConfigError(
            [
                Problem(
                    "--mirror",
                    f"{mirror!r} is not an {'/'.join(MIRROR_SCHEMES)} URL",
                    "give the base URL of a served data root, e.g. http://host:8000/data or file:///srv/data",
                )
            ]
        )


# ---------------------------------------------------------------------------------------------------- plan


def make_plan(names: list[str], accepted: list[str], catalogue: dict[str, list[Pin]]) -> Plan:
    """Sort the requested sources (none = every source in the catalogue) into fetch / credentialed / generated.

    Unknown names raise :class:`~biotune.sources.UnknownSourceError` (with close matches); a named
    restricted source whose licence is not in ``accepted`` is a :class:`ConfigError` naming it and the flag.
    """
    for name in [*names, *accepted]:
        get_spec(name)
    plan = Plan()
    problems: list[Problem] = []
    for name in dict.fromkeys(names or catalogue):
        spec = SOURCES[name]
        if spec.credentialed:
            plan.credentialed.append(name)
        elif spec.generated:
            plan.generated.append(name)
        elif name not in catalogue:
            raise DataError(CATALOGUE, f"source {name!r} has no pinned files", _REGENERATE)
        elif spec.restricted and name not in accepted:
            if names:
                problems.append(
                    Problem(
                        name,
                        f"restricted licence: {spec.licence}",
                        f"read it, then pass --accept-licence {name} to fetch it",
                    )
                )
            else:
                plan.restricted_left_out.append(name)
        else:
            plan.fetch.append(name)
    if problems:
        raise ConfigError(problems, "the sources to download")
    return plan


def describe(plan: Plan, root: Path) -> str:
    """Each source's licence; for credentialed ones where to apply and where the files go."""
    lines: list[str] = []
    for name in plan.fetch:
        spec = SOURCES[name]
        note = " (restricted; licence accepted)" if spec.restricted else ""
        lines.append(f"{name}: licence {spec.licence}{note}")
    for name in plan.credentialed:
        lines += _credentialed(SOURCES[name], root)
    for name in plan.generated:
        spec = SOURCES[name]
        lines.append(f"{name}: generated, not downloadable: {spec.description}")
    if plan.restricted_left_out:
        flags = " ".join(f"--accept-licence {n}" for n in plan.restricted_left_out)
        lines.append(f"not fetched (restricted licence not accepted): {', '.join(plan.restricted_left_out)}")
        lines += [f"  {n}: {SOURCES[n].licence}" for n in plan.restricted_left_out]
        lines.append(f"  to fetch them too, pass: {flags}")
    return "\n".join(lines)


def _credentialed(spec: SourceSpec, root: Path) -> list[str]:
    apply = APPLY_AT.get(spec.name, f"the licence holder ({spec.licence})")
    lines = [
        f"{spec.name}: credentialed ({spec.licence}), never downloaded by biotune",
        f"  apply at {apply}",
        "  then put the files at:",
    ]
    for split, rel in spec.splits.items():
        path = root / rel
        lines.append(f"    {path}  ({split}{', present' if path.exists() else ''})")
    return lines


# --------------------------------------------------------------------------------------------------- fetch


def unique_pins(
    catalogue: dict[str, list[Pin]], names: Iterable[str], mirror: str | None
) -> dict[str, list[Pin]]:
    """The pins of each source (rebased on ``mirror`` when given); a file shared by sources appears once."""
    out: dict[str, list[Pin]] = {}
    seen: set[str] = set()
    for name in names:
        pins = with_mirror(catalogue[name], mirror) if mirror else catalogue[name]
        out[name] = [p for p in pins if p.dest not in seen]
        seen.update(p.dest for p in pins)
    return out


def complete_files(pins: Iterable[Pin], root: Path) -> set[str]:
    """The pins already at their place with the pinned checksum; a different file in the way is a DataError, and
    so is a link (or a non-file) at a pin's place or at its part file: all are checked before anything is fetched.
    """
    complete: set[str] = set()
    for pin in pins:
        path = root / pin.dest
        _refuse_non_file(path)
        _refuse_non_file(part_path(path))
        if not path.exists():
            continue
        if path.is_file() and path.stat().st_size == pin.size and sha256_file(path) == pin.sha256:
            complete.add(pin.dest)
            continue
        raise DataError(
            path,
            f"exists and is not the pinned file (expected {pin.size} bytes, sha256 {pin.sha256})",
            "biotune never overwrites a file it did not fetch: move it away (or use another --root) and rerun",
        )
    return complete


def fetch_source(pins: list[Pin], root: Path, complete: set[str], limits: Limits = Limits()) -> Summary:
    """Fetch the pins of one source that are not in ``complete`` (which this updates), within ``limits``."""
    summary = Summary(complete=sum(p.dest in complete for p in pins))
    todo = [p for p in pins if p.dest not in complete]
    for pin in todo:
        if pin.archive is None:
            summary.bytes += fetch_file(pin.url, root / pin.dest, pin.sha256, pin.size, limits)
            summary.fetched += 1
            complete.add(pin.dest)
    archives = {p.archive for p in todo if p.archive is not None}
    for archive in archives:
        members = [p for p in todo if p.archive == archive]
        summary.bytes += _unpack(archive, members, root, limits)
        summary.fetched += len(members)
        complete.update(p.dest for p in members)
    return summary


def _unpack(archive: Archive, members: list[Pin], root: Path, limits: Limits) -> int:
    """Fetch ``archive`` under ``root/.downloads``, write each member to its place, then remove the archive."""
    path = root / ARCHIVE_DIR / archive.name
    transferred = fetch_file(archive.url, path, archive.sha256, archive.size, limits)
    with zipfile.ZipFile(path) as zf:
        for pin in members:
            try:
                data = zf.read(pin.url)
            except KeyError:
                raise DataError(path, f"has no member {pin.url}", _REGENERATE) from None
            digest = hashlib.sha256(data).hexdigest()
            if digest != pin.sha256:
                raise DataError(
                    root / pin.dest,
                    f"checksum mismatch for {pin.source_url}: sha256 {digest}, pinned {pin.sha256}",
                    _REGENERATE,
                )
            with _new_dirs((root / pin.dest).parent), atomic_path(root / pin.dest) as tmp:
                tmp.write_bytes(data)
    path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()
    return transferred


def fetch_file(url: str, dest: Path, sha256: str, size: int, limits: Limits = Limits()) -> int:
    """Fetch ``url`` to ``dest`` through ``dest.part`` (resumed when present); return the bytes transferred.

    The part file is renamed to ``dest`` only when its size and SHA-256 match. A wrong size or checksum
    removes it and raises a :class:`DataError` naming ``dest`` and ``url``; a network error or a transfer slower
    than ``limits`` keeps what arrived (the next call resumes it) and raises a :class:`DataError` naming ``url``.
    A link (or anything but a regular file) at ``dest`` or ``dest.part`` is a DataError naming it.
    """
    part = part_path(dest)
    for path in (dest, part):
        _refuse_non_file(path)
    with _new_dirs(dest.parent) as created:
        offset = part.lstat().st_size if part.exists() else 0
        if offset > size:
            part.unlink()
            offset = 0
        transferred = 0 if offset == size else _transfer(url, part, offset, size, created, limits)
        got = part.stat().st_size
        digest = sha256_file(part)
        if got != size or digest != sha256:
            part.unlink()
            if offset:  # the part file of an earlier run may be what is damaged, not the mirror
                blame = (
                    f"the {offset:,} bytes kept in {part.name} by an earlier run, or the mirror's file, are "
                    "corrupt (the part file was removed)"
                )
                fix = "rerun to fetch the whole file again; if it fails again, fetch from an intact mirror"
            else:
                blame = "the mirror's file is corrupt (or the pins are stale)"
                fix = (
                    "fetch from an intact mirror (or the canonical source: drop --mirror), or " + _REGENERATE
                )
            raise DataError(
                dest,
                f"checksum mismatch for {url}: got {got} bytes with sha256 {digest}, "
                f"pinned {size} bytes with sha256 {sha256}; {blame}",
                fix,
            )
        os.replace(part, dest)
        created.clear()  # the directories now hold a file: keep them
    log.debug("fetched %s (%d bytes) from %s", dest, transferred, url)
    return transferred


def part_path(dest: Path) -> Path:
    """Where the bytes of ``dest`` gather while they arrive."""
    return dest.with_name(dest.name + ".part")


def _refuse_non_file(path: Path) -> None:
    """A DataError when ``path`` is a symbolic link or exists as anything but a regular file (never follows)."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode):
        return
    what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
    raise DataError(
        path,
        f"is {what}: biotune never writes through a link or over a non-file",
        "remove it (or use another --root), then rerun",
    )


def _open_part(part: Path, append: bool) -> Any:
    """Open the part file for writing without following a link planted there (``O_NOFOLLOW``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(part, flags, 0o666)
    except OSError as err:
        if part.is_symlink():
            _refuse_non_file(part)
        raise DataError(part, f"cannot write the part file ({err.strerror})", "check the data root") from None
    return os.fdopen(fd, "ab" if append else "wb")


def _transfer(url: str, part: Path, offset: int, size: int, created: list[Path], limits: Limits) -> int:
    """Append the bytes of ``url`` from ``offset`` to ``part`` (from 0 when the server ignores the range)."""
    headers = {"User-Agent": "biotune-download"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    transferred = 0
    allowed = limits.deadline_s(size - offset)
    deadline = time.monotonic() + allowed
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=limits.read_timeout_s) as resp:
            if offset and getattr(resp, "status", None) != 206:
                offset = 0  # no range support: start over
            read = getattr(
                resp, "read1", resp.read
            )  # at most one read from the socket: the deadline is checked
            with _open_part(part, append=bool(offset)) as fh:
                while offset + transferred <= size:
                    if time.monotonic() > deadline:
                        raise TooSlow(
                            f"{transferred:,} of {size - offset:,} bytes in {allowed:.1f} s, slower than "
                            f"--min-rate {limits.min_rate:g} bytes/s"
                        )
                    block = read(CHUNK)
                    if not block:
                        missing = getattr(resp, "length", None)  # urllib reads a cut-off body as a short one
                        if missing and offset + transferred < size:  # a complete file under a wrong length
                            # is judged by its checksum, not by the header
                            raise http.client.IncompleteRead(b"", missing)
                        break
                    fh.write(block)
                    transferred += len(block)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the range is past the end: the part file is stale
            part.unlink()
            return _transfer(url, part, 0, size, created, limits)
        _network_error(url, f"HTTP {err.code} {err.reason}", part, created)
    except TooSlow as err:
        _network_error(url, f"too slow: {err}", part, created, slow=True)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        reason = getattr(err, "reason", None) or err
        _network_error(url, f"{type(err).__name__}: {reason}", part, created)
    return transferred


def _network_error(url: str, what: str, part: Path, created: list[Path], slow: bool = False) -> None:
    kept = part.is_file() and part.stat().st_size > 0
    if part.is_file() and not kept:
        part.unlink()
    if kept:
        created.clear()
        fix = f"rerun the same command to resume ({part.stat().st_size} bytes kept in {part})"
    else:
        fix = "check the URL and the network (or pass --mirror URL), then rerun"
    if slow:
        fix += "; on a slow link lower --min-rate (bytes/s) or raise --read-timeout (s), or use a faster --mirror"
    raise DataError(url, f"download failed: {what}", fix)


@contextlib.contextmanager
def _new_dirs(folder: Path) -> Iterator[list[Path]]:
    """Create ``folder`` (and missing parents); on error remove the ones created here that are still empty.

    The caller clears the yielded list to keep them (once a file, or a resumable part file, is in them).
    """
    created = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield created
    except BaseException:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_root(root: Path) -> None:
    """The data root must be a directory, or not exist yet."""
    if root.exists() and not root.is_dir():
        raise DataError(
            root, "the data root is not a directory", "pass --root a directory (it may not exist yet)"
        )
