"""``biotune data download`` against hostile or slow servers and planted links, through the real CLI.

A small HTTP server on 127.0.0.1 serves one file of the real data root and misbehaves as each test asks:
it trickles the body a byte at a time, or declares an absurd Content-Length. Covered: a trickling server is
stopped at the per-file deadline (``--read-timeout`` + size / ``--min-rate``) with what arrived kept for a
resume, and the resume completes; a complete file under a wrong Content-Length is accepted on its checksum; a
symbolic link planted at ``<file>.part`` or at the file's place is refused before anything is fetched, and its
target is left as it was; a damaged local part file is blamed on itself, not on the mirror.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
GAD = ("gad/fold1/train.tsv", "gad/fold1/test.tsv")


class Server(http.server.ThreadingHTTPServer):
    """Serves ``root``; ``trickle_s`` > 0 sends the body one byte per that many seconds; ``length`` overrides
    the declared Content-Length. Range requests are honoured (``bytes=N-``)."""

    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.trickle_s = 0.0
        self.length: int | None = None
        self.ranges: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        rel = urllib.parse.unquote(urllib.parse.urlparse(self.path).path).lstrip("/")
        path = self.server.root / rel
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        self.server.ranges.append(rng)
        start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(self.server.length or len(data) - start))
        self.end_headers()
        body = data[start:]
        try:
            if self.server.trickle_s:
                for i in range(len(body)):
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(self.server.trickle_s)
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


@pytest.fixture
def server(corpora: Path) -> Iterator[Server]:
    srv = Server(corpora)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def download(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "biotune.cli", "data", "download", "gad", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_trickling_server_meets_the_per_file_deadline_and_the_rerun_resumes(
    tmp_path: Path, corpora: Path, server: Server
) -> None:
    server.trickle_s = 0.05  # 20 bytes/s, each read well inside --read-timeout: only the deadline stops it
    root = tmp_path / "root"
    started = time.monotonic()
    slow = download("--root", str(root), "--mirror", server.url, "--read-timeout", "1", "--min-rate", "1e9")
    took = time.monotonic() - started
    assert slow.returncode == 2, slow.stderr
    assert "Traceback" not in slow.stderr
    assert "too slow" in slow.stderr and "--min-rate" in slow.stderr and "resume" in slow.stderr
    assert took < 30, f"the deadline (about 1 s per file) did not stop the transfer: {took:.1f} s"
    (part,) = [p for p in root.rglob("*.part")]
    assert 0 < part.stat().st_size < (corpora / part.relative_to(root).with_suffix("")).stat().st_size

    server.trickle_s = 0.0
    again = download("--root", str(root), "--mirror", server.url)
    assert again.returncode == 0, again.stderr
    assert any(r and r != "bytes=0-" for r in server.ranges), "the rerun resumed with a Range request"
    for rel in GAD:
        assert (root / rel).read_bytes() == (corpora / rel).read_bytes()
    assert not list(root.rglob("*.part"))


def test_a_complete_file_under_an_absurd_content_length_is_accepted(
    tmp_path: Path, corpora: Path, server: Server
) -> None:
    server.length = 10**12
    root = tmp_path / "root"
    proc = download("--root", str(root), "--mirror", server.url)
    assert proc.returncode == 0, proc.stderr
    for rel in GAD:
        assert (root / rel).read_bytes() == (corpora / rel).read_bytes()


@pytest.mark.parametrize("at", ["part", "dest"])
def test_a_planted_link_is_never_written_through(tmp_path: Path, server: Server, at: str) -> None:
    root = tmp_path / "root"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    place = root / (GAD[1] + (".part" if at == "part" else ""))
    place.parent.mkdir(parents=True)
    place.symlink_to(victim)
    proc = download("--root", str(root), "--mirror", server.url)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(place) in proc.stderr and "symbolic link" in proc.stderr and "remove it" in proc.stderr
    assert victim.read_text() == "precious\n"
    assert not server.ranges, "refused before anything was fetched"
    assert sorted(p.name for p in place.parent.iterdir()) == [place.name]


def test_a_damaged_local_part_file_is_blamed_on_itself(tmp_path: Path, corpora: Path, server: Server) -> None:
    root = tmp_path / "root"
    rel = GAD[0]
    good = (corpora / rel).read_bytes()
    part = root / (rel + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"X" * 1000)  # not the file's first bytes: the resumed file fails its checksum
    proc = download("--root", str(root), "--mirror", server.url)
    assert proc.returncode == 2, proc.stderr
    assert "kept in train.tsv.part by an earlier run" in proc.stderr, proc.stderr
    assert "rerun to fetch the whole file again" in proc.stderr
    assert not part.exists()
    rerun = download("--root", str(root), "--mirror", server.url)
    assert rerun.returncode == 0, rerun.stderr
    assert (root / rel).read_bytes() == good
