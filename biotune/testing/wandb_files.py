"""Read an offline wandb run's ``run-*.wandb`` file (tests assert on what a run recorded, without a server).

The file is a LevelDB-style log (a 7-byte header, then 32 KiB blocks of checksummed chunks) of
``wandb_internal_pb2.Record`` messages; wandb 0.31 no longer ships a Python reader for it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BLOCK = 32768
_HEADER = 7  # ":W&B", a 2-byte magic, a 1-byte version
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """What an offline run recorded: identity, config, the last value of each summary key, the history rows and
    the ``define_metric`` calls (``metrics``: each name or glob and its step metric, ``""`` for none)."""

    name: str = ""
    group: str = ""
    job_type: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, str] = field(default_factory=dict)


def _chunks(data: bytes) -> list[bytes]:
    out, buf, pos = [], b"", _HEADER
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:
            pos += _BLOCK - pos % _BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            break
        if kind == _FULL:
            out.append(chunk)
        elif kind == _FIRST:
            buf = chunk
        elif kind == _MIDDLE:
            buf += chunk
        elif kind == _LAST:
            out.append(buf + chunk)
    return out


def read_offline_run(run_dir: str | Path) -> OfflineRun:
    """Parse the ``run-*.wandb`` file of an ``offline-run-*`` directory."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = Path(run_dir).glob("run-*.wandb")
    run = OfflineRun()
    for raw in _chunks(path.read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            run.name, run.group, run.job_type = rec.run.display_name, rec.run.run_group, rec.run.job_type
            run.config.update({i.key: json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "config":
            run.config.update({i.key: json.loads(i.value_json) for i in rec.config.update})
        elif kind == "summary":
            run.summary.update({i.key: json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "history":
            row = {i.key or ".".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
            run.history.append(row)
            run.summary.update({k: v for k, v in row.items() if k and not k.startswith("_")})
        elif kind == "metric":
            run.metrics[rec.metric.name or rec.metric.glob_name] = rec.metric.step_metric
    return run


def offline_runs(root: str | Path) -> list[OfflineRun]:
    """Every offline run under ``root`` (any depth)."""
    return [read_offline_run(d) for d in sorted(Path(root).rglob("offline-run-*")) if d.is_dir()]
