"""``biotune data download`` against a local mirror: an HTTP server on 127.0.0.1 (with Range support) serving
the real data root, run through the real CLI.

Covered: a download of several sources reads back through ``load_records`` with the original bytes; a corrupt
file on the mirror stops with the file named and nothing half-written; an interrupted transfer is resumed with a
Range request; a rerun fetches nothing; restricted sources need ``--accept-licence``; credentialed sources are
never fetched and the message names where their files go. Also: the pins match the data root, and every split
of every downloadable source is pinned (one known exception).
"""

from __future__ import annotations

import hashlib
import http.server
import re
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from biotune.data.download import load_catalogue
from biotune.sources import SOURCES, load_records

REPO = Path(__file__).resolve().parents[3]
#: Pinned official test splits that the staged data root leaves out on purpose (its bc2gm and ddi READMEs: "the
#: test split is intentionally not included"). ``launch/pin_downloads.py`` pinned them from the upstream commit
#: (``--extra``) and from the pinned DDI zip (``--archive``), so here they have nothing to be compared with.
NOT_STAGED = {"bc2gm/iob/test.tsv": 1, "ddi/Test/Test for DDI Extraction task/": 191}
#: Split paths with no pin: MTL-Bioinformatics-2016's ``data/JNLPBA/train.tsv`` (git blob 5aa9d1ac) was absent from
#: every repository snapshot the pins were made from, so its bytes, SHA-256 and size are unknown.
UNPINNED = {"jnlpba/mtl-typed/train.tsv"}


class Mirror(http.server.ThreadingHTTPServer):
    """Serves ``root`` on 127.0.0.1 with ``Range: bytes=N-`` support; records every request.

    ``cut`` maps a URL path to a byte count: the first response for it stops after that many body bytes and
    closes the connection (the declared Content-Length stays the full size), as a dropped transfer does.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.cut: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        """The mirror's base URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Mirror

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        rel = urllib.parse.unquote(urllib.parse.urlparse(self.path).path).lstrip("/")
        path = (self.server.root / rel).resolve()
        rng = self.headers.get("Range")
        with self.server.lock:
            self.server.requests.append((rel, rng))
            cut = self.server.cut.pop(rel, None)
        if not path.is_file() or self.server.root.resolve() not in path.parents:
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        if rng:
            match = re.fullmatch(r"bytes=(\d+)-", rng)
            assert match, rng
            start = int(match.group(1))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start : start + cut] if cut is not None else data[start:])
        self.close_connection = True


@pytest.fixture
def mirror_of(corpora: Path) -> Iterator:
    """Start a mirror of a folder (the real data root by default); stopped after the test."""
    servers: list[Mirror] = []

    def start(root: Path = corpora) -> Mirror:
        server = Mirror(root)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def download(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m biotune.cli data download ARGS``."""
    return subprocess.run(
        [sys.executable, "-m", "biotune.cli", "data", "download", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def pinned(*sources: str) -> list[str]:
    """The distinct data-root paths pinned for ``sources``."""
    catalogue = load_catalogue()
    return list(dict.fromkeys(p.dest for s in sources for p in catalogue[s]))


def leftovers(root: Path) -> list[str]:
    """Temporary or partial files under ``root``."""
    return [str(p) for p in root.rglob("*") if p.name.endswith((".part", ".tmp"))]


def test_pins_match_the_data_root(corpora: Path) -> None:
    """Every downloadable source is pinned; every pin is a GitHub file at a commit and matches the data root,
    except the :data:`NOT_STAGED` test splits, which the data root does not hold."""
    catalogue = load_catalogue()
    downloadable = {n for n, s in SOURCES.items() if not (s.credentialed or s.generated)}
    assert downloadable <= set(catalogue)
    not_staged = dict.fromkeys(NOT_STAGED, 0)
    for pins in catalogue.values():
        for pin in pins:
            url = pin.archive.url if pin.archive else pin.url
            assert re.match(r"https://raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/", url), url
            path = corpora / pin.dest
            if not path.exists():
                (place,) = [
                    p for p in NOT_STAGED if pin.dest == p or (p.endswith("/") and pin.dest.startswith(p))
                ]
                not_staged[place] += 1
                continue
            data = path.read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (pin.size, pin.sha256), pin.dest
    assert not_staged == NOT_STAGED  # exactly these pins were skipped


def test_every_split_is_pinned() -> None:
    """Each split path of a downloadable source is a pinned file, or a folder with pinned files under it."""
    catalogue = load_catalogue()
    unpinned = set()
    for name, spec in SOURCES.items():
        if spec.credentialed or spec.generated:
            continue
        dests = [p.dest for p in catalogue[name]]
        for rel in spec.splits.values():
            if not any(d == rel or d.startswith(rel + "/") for d in dests):
                unpinned.add(rel)
    assert unpinned == UNPINNED
    assert sum(p.dest.startswith("ddi/Test/") for p in catalogue["ddi"]) == 191  # 158 DrugBank + 33 MedLine


def test_download_reads_back_and_a_rerun_fetches_nothing(tmp_path: Path, corpora: Path, mirror_of) -> None:
    mirror = mirror_of()
    root = tmp_path / "root"
    sources = ("gad", "ncbi_disease", "pubmedqa", "hoc")
    proc = download(*sources, "--root", str(root), "--mirror", mirror.url)
    assert proc.returncode == 0, proc.stderr
    for name in sources:
        assert f"{name}: licence {SOURCES[name].licence}" in proc.stdout
    files = pinned(*sources)
    assert sorted(rel for rel, _ in mirror.requests) == sorted(files)  # each file once
    for rel in files:
        assert (root / rel).read_bytes() == (corpora / rel).read_bytes(), rel
    assert not leftovers(root)
    for name in sources:
        for split in SOURCES[name].splits:
            assert load_records(name, split, root) == load_records(name, split, corpora), (name, split)

    seen = len(mirror.requests)
    again = download(*sources, "--root", str(root), "--mirror", mirror.url)
    assert again.returncode == 0, again.stderr
    assert len(mirror.requests) == seen
    assert "hoc: 0 fetched (0 bytes), 3704 already complete" in again.stdout


def test_corrupt_file_on_the_mirror(tmp_path: Path, corpora: Path, mirror_of) -> None:
    served = tmp_path / "mirror"
    shutil.copytree(corpora / "gad", served / "gad")
    bad = served / "gad/fold1/test.tsv"
    data = bytearray(bad.read_bytes())
    data[1000] ^= 0x20  # one flipped letter case: same size, different checksum
    bad.write_bytes(bytes(data))
    mirror = mirror_of(served)
    root = tmp_path / "root"
    proc = download("gad", "--root", str(root), "--mirror", mirror.url)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{mirror.url}/gad/fold1/test.tsv" in proc.stderr
    assert str(root / "gad/fold1/test.tsv") in proc.stderr
    assert "corrupt" in proc.stderr
    assert not (root / "gad/fold1/test.tsv").exists()
    assert not leftovers(root)
    assert (root / "gad/fold1/train.tsv").read_bytes() == (corpora / "gad/fold1/train.tsv").read_bytes()


def test_interrupted_transfer_is_resumed(tmp_path: Path, corpora: Path, mirror_of) -> None:
    mirror = mirror_of()
    target = "gad/fold1/train.tsv"
    mirror.cut[target] = 300_000
    root = tmp_path / "root"
    first = download("gad", "--root", str(root), "--mirror", mirror.url)
    assert first.returncode == 2, first.stderr
    assert f"{mirror.url}/{target}" in first.stderr and "resume" in first.stderr
    assert not (root / target).exists()
    assert (root / (target + ".part")).stat().st_size == 300_000

    second = download("gad", "--root", str(root), "--mirror", mirror.url)
    assert second.returncode == 0, second.stderr
    assert (target, "bytes=300000-") in mirror.requests
    assert (root / target).read_bytes() == (corpora / target).read_bytes()
    assert not leftovers(root)


def test_restricted_needs_the_licence_and_credentialed_is_never_fetched(tmp_path: Path, mirror_of) -> None:
    mirror = mirror_of()
    root = tmp_path / "root"
    refused = download("euadr", "--root", str(root), "--mirror", mirror.url)
    assert refused.returncode == 2
    assert "euadr" in refused.stderr and "--accept-licence euadr" in refused.stderr
    assert not mirror.requests and not root.exists()

    creds = download("mednli", "i2b2_2012", "--root", str(root), "--mirror", mirror.url)
    assert creds.returncode == 0, creds.stderr
    assert not mirror.requests and not root.exists()
    assert str(root / "mednli/mli_train_v1.jsonl") in creds.stdout
    assert str(root / "i2b2_2012/iob/train.tsv") in creds.stdout
    assert "physionet.org" in creds.stdout and "n2c2" in creds.stdout

    accepted = download("euadr", "--accept-licence", "euadr", "--root", str(root), "--mirror", mirror.url)
    assert accepted.returncode == 0, accepted.stderr
    assert len(mirror.requests) == len(pinned("euadr")) == 20
    assert load_records("euadr", "fold3_test", root)
