"""Metric tracking: wandb on rank 0 (offline by default) plus an always-written ``metrics.jsonl``.

Metric names come from :mod:`biotune.train.metric_names` (sections ``train/``, ``perf/``, ``eval/``), the same in
wandb and in ``metrics.jsonl``; the wandb run plots every section against ``train/tokens`` (``define_metric``).
A run resumed from the checkpoint of a biotune that logged flat names (``loss``, ``eval_loss``...) has its
``metrics.jsonl`` rewritten once, atomically, with the section names (:func:`migrate_legacy_metrics`), and
:func:`read_metrics` maps them in any file it reads, so no earlier step is lost. The wandb history of such a run
keeps the flat names it was sent before the upgrade (wandb cannot rename logged history); metrics.jsonl is the store.

Other ranks get a :class:`NullTracker`. The wandb run id is persisted in ``<output_dir>/tracking.json`` (and
in each checkpoint's trainer state), so a resumed run continues the same wandb run. The resolved config and
the data manifest are attached to the run.

Dataset text is sent only by :meth:`RankZeroTracker.log_examples`, only when ``tracking.log_dataset_text`` is on,
only to wandb (never to ``metrics.jsonl``), and never from a source the data manifest flags restricted or does not
describe at all.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from biotune.config import TrackingConfig
from biotune.data.dataset import Manifest
from biotune.data.tokenize import IGNORE_INDEX
from biotune.io import atomic_write_json, read_jsonl, write_jsonl
from biotune.sources.records import parse_sample_id
from biotune.train.checkpoint import METRICS_FILE, RUN_ID_FILE
from biotune.train.metric_names import (
    DATA_EXAMPLES,
    STEP,
    STEP_METRICS,
    X_AXIS,
    has_legacy_names,
    rename_legacy,
)

log = logging.getLogger(__name__)


class Tracker(Protocol):
    """What the trainer logs to."""

    run_id: str | None

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Record ``metrics`` at optimizer step ``step``."""

    def restore(self, metrics: dict[str, float], step: int) -> None:
        """Write ``metrics`` of ``step`` back to metrics.jsonl only: a point that the resume trim dropped but
        wandb kept (it was sent before the crash, and wandb ignores a step it has passed)."""

    def finish(self) -> None:
        """Flush and close."""

    def log_examples(self, split: Any, manifest: Manifest, decode: Callable[[list[int]], str]) -> None:
        """Attach training examples as text, where the config allows it."""


class NullTracker:
    """The tracker of non-zero ranks: accepts everything, records nothing."""

    run_id: str | None = None

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Ignore ``metrics``."""

    def restore(self, metrics: dict[str, float], step: int) -> None:
        """Ignore ``metrics``."""

    def log_examples(self, split: Any, manifest: Manifest, decode: Callable[[list[int]], str]) -> None:
        """Ignore the examples."""

    def finish(self) -> None:
        """Nothing to close."""


class JsonlWriter:
    """Append one JSON object per line, flushed each time (survives a SIGKILL up to the last line)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record``."""
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


class RankZeroTracker:
    """metrics.jsonl always; wandb too unless ``tracking.wandb_mode == "disabled"``."""

    def __init__(
        self,
        cfg: TrackingConfig,
        output_dir: Path,
        run_name: str,
        config: dict[str, Any],
        manifest: Manifest | None,
        run_id: str | None = None,
    ) -> None:
        self.cfg = cfg
        migrate_legacy_metrics(output_dir / METRICS_FILE)
        self.jsonl = JsonlWriter(output_dir / METRICS_FILE)
        self.run_id = run_id or _stored_run_id(output_dir)
        self._wandb: Any = None
        if cfg.wandb_mode != "disabled":
            self._wandb = _start_wandb(cfg, output_dir, run_name, config, manifest, self.run_id)
            self.run_id = self._wandb.id
        _store_run_id(output_dir, self.run_id)

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Write ``metrics`` (names from :mod:`biotune.train.metric_names`) to metrics.jsonl and wandb."""
        self.jsonl.write({STEP: step, **metrics})
        if self._wandb is not None:
            self._wandb.log(metrics, step=step)

    def restore(self, metrics: dict[str, float], step: int) -> None:
        """Write ``metrics`` of ``step`` back to metrics.jsonl (not to wandb, which kept them)."""
        self.jsonl.write({STEP: step, **metrics})

    def log_examples(self, split: Any, manifest: Manifest, decode: Callable[[list[int]], str]) -> None:
        """A wandb table of up to ``tracking.dataset_text_examples`` training samples from unrestricted sources.

        Does nothing unless ``tracking.log_dataset_text`` is on and wandb is enabled.
        """
        if not self.cfg.log_dataset_text or self._wandb is None:
            return
        import wandb

        examples = dataset_examples(split, manifest, decode, self.cfg.dataset_text_examples)
        columns = ["sample_id", "source", "prompt", "response"]
        table = wandb.Table(columns=columns, data=[[e[c] for c in columns] for e in examples])
        self._wandb.log({DATA_EXAMPLES: table}, step=0)
        log.info("logged %d dataset examples (restricted sources excluded)", len(examples))

    def finish(self) -> None:
        """Close the JSONL file and the wandb run."""
        self.jsonl.close()
        if self._wandb is not None:
            self._wandb.finish()


def _stored_run_id(output_dir: Path) -> str | None:
    path = output_dir / RUN_ID_FILE
    return json.loads(path.read_text()).get("run_id") if path.is_file() else None


def _store_run_id(output_dir: Path, run_id: str | None) -> None:
    atomic_write_json(output_dir / RUN_ID_FILE, {"run_id": run_id})


def open_run(
    tracking: TrackingConfig,
    *,
    name: str,
    out_dir: Path,
    job_type: str,
    group: str | None,
    config: dict[str, Any] | None = None,
    tags: bool = False,
    resume_id: str | None = None,
    resume: bool = False,
) -> Any:
    """Start a wandb run: the only ``wandb.init`` of biotune (training, ``biotune eval``, ``sweep collect``).

    The project, entity and mode come from ``tracking``; ``group`` and ``job_type`` place the run in its sweep or
    training run (wandb is a view: group = sweep or run, job_type = stage). ``tags``: send ``tracking.tags``.
    ``config``: the run's config (none sent when None). ``resume``: continue the run ``resume_id`` if it exists
    (``resume="allow"``; a new run when ``resume_id`` is None). The run's files go under ``out_dir/wandb``.
    """
    import wandb

    kwargs: dict[str, Any] = {
        "project": tracking.project,
        "entity": tracking.entity,
        "group": group,
        "job_type": job_type,
        "name": name,
        "dir": str(out_dir),
        "mode": tracking.wandb_mode,
    }
    if tags:
        kwargs["tags"] = list(tracking.tags)
    if config is not None:
        kwargs["config"] = config
    if resume:
        kwargs.update(id=resume_id, resume="allow")
    return wandb.init(**kwargs)


def _start_wandb(
    cfg: TrackingConfig,
    output_dir: Path,
    run_name: str,
    config: dict[str, Any],
    manifest: Manifest | None,
    run_id: str | None,
) -> Any:
    os.environ.setdefault("WANDB_MODE", cfg.wandb_mode)
    full_config = {**config, **dict(cfg.run_config), "data_manifest": manifest.summary() if manifest else {}}
    run = open_run(
        cfg,
        name=run_name,
        out_dir=output_dir,
        job_type=cfg.job_type,
        group=cfg.group,
        config=full_config,
        tags=True,
        resume_id=run_id,
        resume=True,
    )
    define_sections(run)
    log.info("wandb run %s (%s) in %s", run.id, cfg.wandb_mode, output_dir)
    return run


def define_sections(run: Any) -> None:
    """Plot every section (``train/*``, ``perf/*``, ``eval/*``) of ``run`` against ``train/tokens``."""
    run.define_metric(X_AXIS)
    for glob, step_metric in STEP_METRICS.items():
        run.define_metric(glob, step_metric=step_metric)


def migrate_legacy_metrics(path: Path) -> int:
    """Rewrite ``path`` (a metrics.jsonl) with section names where an older biotune logged flat ones.

    Atomic (a temporary file renamed over the old one), and only when a line holds a flat name. Returns the
    number of lines renamed.
    """
    if not path.is_file():
        return 0
    rows = read_jsonl(path)
    renamed = sum(has_legacy_names(r) for r in rows)
    if renamed:
        write_jsonl(path, [rename_legacy(r) for r in rows])
        log.info("%s: %d lines logged under flat names now use the section names", path, renamed)
    return renamed


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a metrics.jsonl, flat names of older runs mapped to their section names.

    A missing file or a malformed line is a :class:`~biotune.errors.DataError` naming the file and line.
    """
    return [rename_legacy(r) for r in read_jsonl(path, fix="metrics.jsonl holds one JSON object per line")]


def dataset_examples(
    split: Any, manifest: Manifest, decode: Callable[[list[int]], str], limit: int
) -> list[dict[str, str]]:
    """Up to ``limit`` samples of a packed split as text: ``sample_id``, ``source``, ``prompt``, ``response``.

    A sample's source is its id's first path part. Only sources the manifest lists with ``restricted: false``
    qualify; anything else (flagged, or unknown to the manifest) is skipped. Rows are read in order, a few at a time.
    """
    allowed = manifest.unrestricted_sources()
    out: list[dict[str, str]] = []
    for start in range(0, len(split), 64):
        rows = split.rows(list(range(start, min(len(split), start + 64))))
        for ids, labels, sids, lens in zip(
            rows["input_ids"], rows["labels"], rows["sample_ids"], rows["seq_lens"], strict=True
        ):
            offset = 0
            for sid, n in zip(sids, lens, strict=True):
                seq = list(zip(ids[offset : offset + n], labels[offset : offset + n], strict=True))
                offset += n
                source = parse_sample_id(sid)[0]
                if source not in allowed:
                    continue
                out.append(
                    {
                        "sample_id": sid,
                        "source": source,
                        "prompt": decode([t for t, lab in seq if lab == IGNORE_INDEX]),
                        "response": decode([t for t, lab in seq if lab != IGNORE_INDEX]),
                    }
                )
                if len(out) >= limit:
                    return out
    return out


def build_tracker(
    cfg: TrackingConfig,
    output_dir: Path,
    run_name: str,
    config: dict[str, Any],
    manifest: Manifest | None,
    is_rank_zero: bool,
    run_id: str | None = None,
) -> Tracker:
    """The rank-0 tracker, or a :class:`NullTracker` on other ranks."""
    if not is_rank_zero:
        return NullTracker()
    return RankZeroTracker(cfg, output_dir, run_name, config, manifest, run_id)
