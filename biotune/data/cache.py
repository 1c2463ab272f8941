"""What identifies a data build, and where it is written while it is made.

* :func:`cache_key`: the hash of everything that determines a build's output: the data config (without
  :data:`NOT_DATA`, with the sources in their config order, which the mixture depends on), the resolved
  ``data.root``, the tokenizer's fingerprint, :data:`BUILD_VERSION`, and the SHA-256 of every file a source
  split or an instruction set reads.
* :class:`FileHashes`: those file hashes, memoised in ``data.out_dir/.file_hashes.json`` by path, size, mtime,
  ctime (ns) and inode, so unchanged files are not read again.
* Temporary directories: a build writes into ``.<key>.tmp-<pid>@<host>-*`` beside its output
  (:func:`tmp_prefix`) and renames it at the end; :func:`clean_stale_tmp` removes those of builds that were
  killed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from biotune.config import DataConfig
from biotune.io import atomic_write_json
from biotune.sources import SourceSpec, available_splits, configured_spec
from biotune.sources.hub import hub_location

logger = logging.getLogger(__name__)

#: Bump when the build's output for the same inputs changes (tasks, templates, tokenization, packing).
BUILD_VERSION = "1"

#: The memo of file hashes, under ``data.out_dir`` (path -> [[size, mtime_ns, ctime_ns, inode], sha256]).
HASH_MEMO = ".file_hashes.json"


class FileHashes:
    """SHA-256 of files, memoised in ``out_dir/.file_hashes.json`` by resolved path and (size, st_mtime_ns,
    st_ctime_ns, inode): the ctime changes on every write and cannot be set back, so a rewrite that keeps the
    size and restores the mtime (``cp -p``, ``rsync -t``, ``tar``) is still hashed again."""

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / HASH_MEMO
        self.memo: dict[str, list[Any]] = {}
        self.dirty = False
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            self.memo = (
                {k: v for k, v in raw.items() if isinstance(v, list) and len(v) == 2}
                if isinstance(raw, dict)
                else {}
            )
        except (OSError, ValueError):  # no memo yet, or a damaged one: hash again and rewrite it
            self.memo = {}

    def digest(self, path: Path, resolved: bool = False) -> str:
        """The file's SHA-256, read again only when its size or mtime (ns) changed. ``resolved``: the caller
        passes a path with no links in it (the memo is keyed by resolved paths)."""
        path = path if resolved else path.resolve()
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        known = self.memo.get(str(path))
        if known and known[0] == stamp:
            return str(known[1])
        sha = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                sha.update(block)
        self.memo[str(path)] = [stamp, sha.hexdigest()]
        self.dirty = True
        return sha.hexdigest()

    def save(self) -> None:
        """Write the memo (atomically) if a hash was added; a read-only cache directory is not an error."""
        if not self.dirty:
            return
        try:
            atomic_write_json(self.path, self.memo, indent=None)
            self.dirty = False
        except OSError as err:
            logger.warning("cannot write the file-hash memo %s: %s", self.path, err)


def file_signature(root: Path, specs: list[SourceSpec], hashes: FileHashes) -> list[list[Any]]:
    """[source, split, file relative to root, sha256] for every file a source split reads (its siblings too:
    a split file's whole folder, a split folder's whole tree). Splits that share a folder (HoC's three) list
    and hash it once."""
    sig: list[list[Any]] = []
    listed: dict[tuple[Path, bool], list[tuple[str, str]]] = {}
    for spec in specs:
        found = available_splits(spec, root)
        for split in sorted(spec.split_names):
            path = found.get(split)
            if path is None:
                sig.append([spec.name, split, str(spec.candidates(split)[0]), "missing"])
                continue
            tree = (path if path.is_dir() else path.parent, path.is_dir())
            if tree not in listed:
                base = _relative(tree[0], root)
                listed[tree] = [
                    (
                        "/".join(parts if base == "." else (base, *parts)),
                        hashes.digest(Path(real), resolved=True),
                    )
                    for parts, real in _files(*tree)
                ]
            sig.extend([spec.name, split, name, digest] for name, digest in listed[tree])
    return sig


def _files(folder: Path, recursive: bool) -> list[tuple[tuple[str, ...], str]]:
    """The files in ``folder`` (and, if ``recursive``, below it, following links to folders once each), as
    (path parts under ``folder``, resolved path), sorted by those parts. One directory scan per folder: the
    kind of each entry comes from the scan itself."""
    out: list[tuple[tuple[str, ...], str]] = []
    seen: set[str] = set()

    def scan(parts: tuple[str, ...], real: str) -> None:
        if real in seen:  # a link back up the tree
            return
        seen.add(real)
        with os.scandir(real) as entries:
            for entry in entries:
                path = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
                if entry.is_file():
                    out.append(((*parts, entry.name), path))
                elif recursive and entry.is_dir():
                    scan((*parts, entry.name), path)

    scan((), os.path.realpath(folder))
    return sorted(out)


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` where it lies under it (a declared source's file may lie anywhere)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path.resolve())


def instruction_digest(ref: str, hashes: FileHashes) -> str:
    """The content of an instruction set: a file's SHA-256, a ``save_to_disk`` folder's files' hashes
    combined, or for a hub dataset its id and commit (``hf://org/name@<commit>``: config validation refuses an
    id without a commit, so the key follows the rows)."""
    hub = hub_location(ref)
    if hub is not None:
        return f"hub dataset {hub[0]} at commit {hub[1]}"
    local = Path(ref).expanduser()
    if local.is_file():
        return hashes.digest(local)
    if local.is_dir():
        parts = [f"{_relative(f, local)}:{hashes.digest(f)}" for f in sorted(local.rglob("*")) if f.is_file()]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return "no such file"  # load_instructions names the missing path


#: DataConfig fields that do not change what a build writes (where it goes, how many processes make it).
NOT_DATA = ("out_dir", "num_proc")


def data_settings(cfg: DataConfig) -> dict[str, Any]:
    """The data config without :data:`NOT_DATA`: what a build's output depends on, besides the files."""
    data = dataclasses.asdict(cfg)
    for key in NOT_DATA:
        data.pop(key, None)
    return data


def cache_key(cfg: DataConfig, root: Path, fingerprint: str, hashes: FileHashes | None = None) -> str:
    """Hash of everything that determines the build's output.

    ``root`` is the resolved ``data.root``; files are identified by their content (``hashes``, a memo under
    ``data.out_dir`` when not given). The sources keep their config order: :func:`biotune.data.mixture.compose`
    concatenates them in that order before its seeded shuffle, so reordering them changes the mixture.
    """
    hashes = hashes or FileHashes(cfg.out_dir)
    data = data_settings(cfg)
    for identified_elsewhere in ("root", "tokenizer"):  # by the resolved root and the tokenizer's fingerprint
        data.pop(identified_elsewhere, None)
    specs = [configured_spec(n, cfg) for n, m in cfg.sources.items() if m.include]
    instruction_files = [
        [name, one.path, one.split, instruction_digest(one.path, hashes)]
        for name, one in cfg.instructions.items()
    ]
    payload = {
        "data": data,
        "source_order": list(cfg.sources),
        "root": str(root.resolve()),
        "tokenizer": fingerprint,
        "version": BUILD_VERSION,
        "files": file_signature(root, specs, hashes),
        "instruction_files": instruction_files,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- temporary dirs

#: ``.<key>.tmp-<pid>@<host>-<random>``: a build's temporary directory, named after the process writing it.
_TMP_NAME = re.compile(r"^\.(?P<key>[0-9a-f]+)\.tmp-(?:(?P<pid>\d+)@(?P<host>.+)-)?[a-z0-9_]+$")
#: A temporary directory from another machine (or of unknown owner) is stale after this long untouched.
STALE_AFTER_S = 24 * 3600


def tmp_prefix(key: str) -> str:
    """The name prefix of a temporary build directory for ``key``, owned by this process."""
    return f".{key}.tmp-{os.getpid()}@{socket.gethostname()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_tmp(out_dir: Path) -> list[Path]:
    """Remove temporary build directories left by killed builds; returns what was removed.

    Stale: written by a process of this host that is gone, or (another host, or an unknown owner) untouched for
    :data:`STALE_AFTER_S`. A live build's directory is never touched.
    """
    removed: list[Path] = []
    if not out_dir.is_dir():
        return removed
    host = socket.gethostname()
    for path in out_dir.iterdir():
        found = _TMP_NAME.match(path.name)
        if not found or not path.is_dir():
            continue
        if found["pid"] and found["host"] == host:
            stale = not _pid_alive(int(found["pid"]))
        else:
            try:
                stale = time.time() - path.stat().st_mtime > STALE_AFTER_S
            except OSError:
                continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            logger.info("removed %s, the temporary directory of a build that was killed", path)
    return removed
