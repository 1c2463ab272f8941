"""The data build: sources -> tasks -> mixture -> tokenize (prompt-masked) -> pack -> Arrow on disk + manifest.

``build_dataset(cfg)`` is the one entry point (``biotune data build`` and the trainer call it); it never changes
``cfg``. The output directory is ``data.out_dir/<cache key>/`` (:func:`biotune.data.cache.cache_key`: the data
config, the resolved ``data.root``, the tokenizer's fingerprint, the content of every file read and
:data:`biotune.data.cache.BUILD_VERSION`); a rerun with the same inputs is a cache hit. The build writes into a
temporary sibling directory (:func:`biotune.data.cache.tmp_prefix`) and renames it at the end, so a failed build
leaves nothing half-written; SIGTERM during a build removes it and exits 75 (rerun to build again), and the next
build removes the temporary directories of builds that were killed (:func:`biotune.data.cache.clean_stale_tmp`).

``data.num_proc > 1`` reads the training splits, tokenizes the distinct samples in contiguous chunks and runs
the leakage check (which reads the evaluation splits) in a pool of that many spawned worker processes
(:mod:`biotune.data.workers`); the results are put back in input order, so every file written is byte-identical
to ``num_proc=1`` (which is why ``num_proc`` is not in the cache key). The leakage check is queued after the
tokenization chunks: a worker runs it while the parent packs (a serial build checks before it tokenizes, so an
overlap under ``data.leakage=error`` fails early). A spawned worker imports the main module, so a script that
builds with ``num_proc > 1`` must do it under ``if __name__ == "__main__":``. The jobs a worker runs
(:func:`read_split`, :func:`leakage_report`) are functions of this module: pure functions of their picklable
arguments.

Instruction sets (``data.instructions``) are read apart and passed to :func:`biotune.data.mixture.compose` as
their own input, after the configured sources.

Memory: the cyclic garbage collector is paused for the build (:func:`gc_paused`), a serial build tokenizes in
chunks of :data:`biotune.data.tokenize.ENCODE_CHUNK` samples (small temporaries, reused), and packing reads the
chunks' token arrays where they lie (:class:`biotune.data.tokenize.ChunkedBatch`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import json
import logging
import shutil
import signal
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from biotune import __version__
from biotune.config import LEAKAGE_ERROR, LEAKAGE_OFF, DataConfig, RunConfig
from biotune.data import leakage, mixture
from biotune.data.cache import BUILD_VERSION, NOT_DATA, FileHashes, cache_key, clean_stale_tmp, tmp_prefix
from biotune.data.dataset import MANIFEST_FILE, Manifest, SourceEntry
from biotune.data.packing import pack_rows, rows_to_arrow
from biotune.data.tasks import make_samples, task_for
from biotune.data.templates import render_prompt, render_target
from biotune.data.tokenize import (
    ChunkedBatch,
    load_tokenizer,
    log_counts,
    tokenizer_fingerprint,
    tokenizer_of,
)
from biotune.data.workers import Job, Runner, open_runner
from biotune.errors import EXIT_PREEMPTED, ConfigError, DataError, Problem
from biotune.io import swap_in_dir, write_failed
from biotune.sources import (
    available_splits,
    catalog,
    configured_spec,
    load_instructions,
    load_records,
    reader_counts,
    resolve_root,
)
from biotune.sources.records import Sample, base_id, sample_id

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------- inputs


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (back on after it, if it was on).

    A build makes millions of container objects (samples, records, the id lists of each encode chunk) and frees
    them by reference counting; meanwhile every full collection would walk all of them again, about a tenth of
    a cold build's time (benchmarks/data_build.py). The few reference cycles made meanwhile are collected
    after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class BuildInterrupted(SystemExit):
    """SIGTERM during a build: the temporary directory is removed and the command exits 75 (rerun to build)."""

    def __init__(self) -> None:
        super().__init__(EXIT_PREEMPTED)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While building, SIGTERM raises :class:`BuildInterrupted` (so cleanup runs) instead of killing the process.

    Only in the main thread (where Python delivers signals); the previous handler comes back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum: int, frame: Any) -> None:
        logger.error("data build interrupted by SIGTERM: nothing was written; run the command again to build")
        raise BuildInterrupted()

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------------------------- samples


@dataclasses.dataclass
class SplitRead:
    """One source split read into samples, with what its reader repaired (``biotune.sources.reader_counts``)."""

    samples: list[Sample]
    repairs: dict[str, int]


def read_split(spec: Any, split: str, root: Path, ner_format: str, seed: int) -> SplitRead:
    """Every record of one split of the source ``spec`` as an instruction sample (paraphrase choice seeded per
    source). A pure function of its (picklable) arguments: the worker processes of a parallel build run it."""
    task = task_for(spec, ner_format)
    samples = make_samples(task, load_records(spec, split, root), spec.name, split, seed)
    return SplitRead(samples, reader_counts().get(f"{spec.name}/{split}", {}))


def source_samples(spec: Any, split: str, root: Path, ner_format: str, seed: int) -> list[Sample]:
    """Every record of one source split as an instruction sample (paraphrase choice seeded per source)."""
    return read_split(spec, split, root, ner_format, seed).samples


def _instruction_samples(cfg: DataConfig) -> tuple[dict[str, list[Sample]], dict[str, tuple[str, bool]]]:
    """Published-schema instruction sets (``data.instructions``), grouped by their ``source`` column, and each
    ``source`` value's (licence, restricted): a value found in several sets lists every licence and is
    restricted if any set is (or declares no licence)."""
    out: dict[str, list[Sample]] = {}
    terms: dict[str, tuple[str, bool]] = {}
    for one in cfg.instructions.values():
        records = load_instructions(one.path, one.split)
        for source in dict.fromkeys(r.source for r in records):
            licence, restricted = terms.get(source, ("", False))
            licences = "; ".join(x for x in dict.fromkeys([licence, one.licence]) if x)
            terms[source] = (licences, restricted or one.restricted or not one.licence)
        for rec in records:
            out.setdefault(rec.source, []).append(
                Sample(
                    id=sample_id(rec.source, "train", rec.id),
                    source=rec.source,
                    task=mixture.INSTRUCTION_GROUP,
                    instruction=rec.instruction,
                    input=rec.input,
                    output=rec.output,
                )
            )
    return out, terms


def _eval_splits(cfg: DataConfig, root: Path) -> list[tuple[str, Any, str]]:
    """``("<source>/<split>", spec, split)`` for every evaluation split on disk of every included source (what
    the leakage check reads)."""
    known = catalog(cfg)
    out: list[tuple[str, Any, str]] = []
    for name, mix in cfg.sources.items():
        if not mix.include or name not in known:  # instruction-set sources have no eval splits
            continue
        spec = known[name]
        found = available_splits(spec, root)
        out.extend(
            (f"{name}/{split}", spec, split)
            for split in cfg.leakage_splits
            if split in found and split != mix.split
        )
    return out


def leakage_report(
    train_texts: list[str], splits: list[tuple[str, Any, str]], root: Path, ner_format: str, seed: int
) -> leakage.LeakageReport:
    """Read each evaluation split ``(key, spec, split)`` into samples and count those whose text is among the
    training texts (:func:`biotune.data.leakage.check_texts`). A pure function of its (picklable) arguments:
    a worker of a parallel build runs it, so the evaluation samples never cross to the parent."""
    evaluation = {key: read_split(spec, split, root, ner_format, seed).samples for key, spec, split in splits}
    return leakage.check_texts(train_texts, evaluation)


# ----------------------------------------------------------------------------------------------- tokens


@dataclasses.dataclass
class _Tokenizing:
    """Samples whose distinct texts are being tokenized: ``which[i]`` is sample i's index among the distinct."""

    samples: list[Sample]
    unique: list[Sample]
    which: list[int]
    jobs: list[Job]


def _distinct(samples: list[Sample]) -> tuple[list[Sample], list[int]]:
    """The distinct samples (upsampled repeats share their base id and text) and each sample's index among them."""
    first: dict[str, int] = {}
    unique: list[Sample] = []
    which: list[int] = []
    for s in samples:
        base = base_id(s.id)
        if base not in first:
            first[base] = len(unique)
            unique.append(s)
        which.append(first[base])
    return unique, which


def _start_tokenize(samples: list[Sample], cfg: RunConfig, tokenizer: Any, runner: Runner) -> _Tokenizing:
    """Render the distinct samples and start tokenizing them (prompt-masked), in ``runner``'s processes.

    Upsampled repeats of a sample are identical text, so only distinct samples are tokenized; repeats reuse
    the same token arrays.
    """
    d = cfg.data
    unique, which = _distinct(samples)
    prompts = [render_prompt(d.template, s.instruction, s.input, tokenizer) for s in unique]
    targets = [render_target(d.template, s.output, tokenizer) for s in unique]
    return _Tokenizing(samples, unique, which, runner.tokenize(prompts, targets, d.max_seq_len, d.truncation))


def _pack_tokens(pending: _Tokenizing, cfg: RunConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The tokenized samples (repeats included), packed. Returns (rows, stats)."""
    d = cfg.data
    samples, which = pending.samples, pending.which
    # The chunks' tokens are packed from where they lie: no joined copy of them first.
    tok = ChunkedBatch([job.result() for job in pending.jobs])
    log_counts(tok)
    slot = {u: j for j, u in enumerate(tok.kept)}
    ids_u, labels_u = tok.input_ids, tok.labels
    kept_index = [i for i, u in enumerate(which) if u in slot]
    slots = [slot[which[i]] for i in kept_index]
    input_ids = [ids_u[j] for j in slots]
    labels = [labels_u[j] for j in slots]
    sample_ids = [samples[i].id for i in kept_index]
    loss = tok.loss_counts[np.asarray(slots, dtype=np.int64)]
    rows = pack_rows(input_ids, labels, sample_ids, d.max_seq_len, one_per_row=not d.pack, loss_counts=loss)
    dropped_u, truncated_u = set(tok.dropped_indices), set(tok.truncated_indices)
    stats = {
        "samples_in": len(samples),
        "samples_kept": len(kept_index),
        "dropped": sum(1 for u in which if u in dropped_u),
        "truncated": sum(1 for u in which if u in truncated_u),
        "lengths": [len(x) for x in input_ids],
        "kept_index": kept_index,
    }
    return rows, stats


def _length_stats(lengths: list[int], max_seq_len: int) -> dict[str, Any]:
    if not lengths:
        return {"count": 0}
    arr = np.asarray(lengths)
    edges = [0, 64, 128, 256, 512, 1024, 2048, 4096, 8192, max(max_seq_len, 8192) + 1]
    hist, _ = np.histogram(arr, bins=edges)
    return {
        "count": int(arr.size),
        "total": int(arr.sum()),
        "mean": round(float(arr.mean()), 2),
        "p50": int(np.percentile(arr, 50)),
        "p90": int(np.percentile(arr, 90)),
        "p99": int(np.percentile(arr, 99)),
        "max": int(arr.max()),
        "histogram": {
            f"{lo}-{hi - 1}": int(c) for lo, hi, c in zip(edges[:-1], edges[1:], hist, strict=True)
        },
    }


def _save_split(rows: list[dict[str, Any]], path: Path, fingerprint: str) -> str:
    """Write one split with ``datasets`` (deterministic fingerprint) and return its content hash."""
    from datasets import Dataset

    table = rows_to_arrow(rows)
    digest = hashlib.sha256()
    for name in table.column_names:
        for chunk in table.column(name).chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    digest.update(buf)
    content = digest.hexdigest()
    Dataset(table, fingerprint=f"{fingerprint}-{content[:16]}").save_to_disk(str(path))
    return content


# ----------------------------------------------------------------------------------------------- build


def build_dataset(cfg: RunConfig, force: bool = False) -> Path:
    """Build (or find in the cache) the packed training data for ``cfg``; return its directory."""
    d = cfg.data
    if not d.sources and not d.instructions:
        raise ConfigError(
            [
                Problem(
                    "data.sources",
                    "no sources configured",
                    "add sources, e.g. data.sources.ncbi_disease.weight=1, or use configs/data/*.yaml",
                )
            ]
        )
    root = resolve_root(d.root)
    tok_path = tokenizer_of(cfg)
    tokenizer = load_tokenizer(tok_path, cfg.model.trust_remote_code)
    fingerprint = tokenizer_fingerprint(tokenizer)
    hashes = FileHashes(d.out_dir)
    key = cache_key(d, root, fingerprint, hashes)
    out = Path(d.out_dir) / key
    if (out / MANIFEST_FILE).is_file() and not force:
        logger.info("data cache hit: %s", out)
        hashes.save()
        return out
    clean_stale_tmp(out.parent)
    start = time.perf_counter()
    with _sigterm_raises(), gc_paused():
        manifest = _build_into(out, cfg, root, tokenizer, tok_path, fingerprint, key)
    hashes.save()
    logger.info(
        "built %s rows (%s samples) in %.1fs -> %s",
        manifest.packing["rows"],
        manifest.totals["samples_kept"],
        time.perf_counter() - start,
        out,
    )
    return out


def _collect(
    cfg: RunConfig, root: Path, runner: Runner | None = None
) -> tuple[dict[str, list[Sample]], dict[str, str], dict[str, int]]:
    """The training samples of every included source in config order (read by ``runner``: all reads start
    before the first is awaited), each source's kind, and what the readers repaired (``"<source>/<split>:
    <what>"`` -> count). A problem with a source is raised in its turn, as a serial build meets it. The
    instruction sets are read apart (:func:`_instruction_samples`)."""
    d = cfg.data
    runner = runner or Runner(None)
    kinds: dict[str, str] = {}
    reads: dict[str, Job | ConfigError] = {}
    for name, mix in d.sources.items():
        try:
            spec = configured_spec(name, d)
        except ConfigError as err:
            reads[name] = err
            continue
        kinds[name] = spec.kind
        if not mix.include:
            continue
        if mix.split not in spec.split_names:
            reads[name] = ConfigError(
                [
                    Problem(
                        f"data.sources.{name}.split",
                        f"source {name} has no split '{mix.split}'",
                        f"use one of: {', '.join(spec.split_names)}",
                    )
                ]
            )
            continue
        reads[name] = runner.submit(read_split, spec, mix.split, root, d.ner_format, d.seed)
    by_source: dict[str, list[Sample]] = {}
    repairs: dict[str, int] = {}
    for name, job in reads.items():
        if isinstance(job, ConfigError):
            raise job
        split = d.sources[name].split
        got = job.result()
        by_source[name] = got.samples
        repairs.update({f"{name}/{split}: {what}": n for what, n in got.repairs.items() if n})
        logger.info("source %-24s %-6s %7d samples", name, split, len(by_source[name]))
    return by_source, kinds, repairs


def _build_into(
    out: Path, cfg: RunConfig, root: Path, tokenizer: Any, tok_path: str, fingerprint: str, key: str
) -> Manifest:
    d = cfg.data
    with open_runner(d.num_proc, tokenizer) as runner:
        by_source, kinds, repairs = _collect(cfg, root, runner)
        instructions, instruction_terms = _instruction_samples(d)
        mixed, table = mixture.compose(by_source, d, kinds, instructions)
        train, held = mixture.split_heldout(mixed, d.eval_fraction, d.seed)
        train_tok = _start_tokenize(train, cfg, tokenizer, runner)
        held_tok = _start_tokenize(held, cfg, tokenizer, runner) if held else None
        leak_job = _start_leakage(d, root, train_tok, runner)
        # A serial build checks first (an overlap under data.leakage=error fails before tokenizing); in a
        # parallel one a worker checks after its last tokenization chunk, while this process packs.
        leak = _leakage_verdict(d, leak_job) if runner.pool is None else None
        created = [d for d in (out.parent, *out.parent.parents) if not d.exists()]
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix(key), dir=out.parent))
        except OSError as err:  # data.out_dir under a file, read-only, full
            for d in created:
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise write_failed(out, err) from None
        try:
            train_cols, train_stats = _pack_tokens(train_tok, cfg)
            heldout_stats = None
            if held_tok is not None:
                eval_cols, heldout_stats = _pack_tokens(held_tok, cfg)
            warnings = mixture.truncation_losses(
                Counter(s.source for s in train),
                Counter(train[i].source for i in train_stats["kept_index"]),
                d,
                (len(held), heldout_stats["samples_kept"]) if heldout_stats else (0, 0),
            )
            for warning in warnings:
                logger.warning("%s", warning)
            content = {"train": _save_split(train_cols, tmp / "train", key)}
            if heldout_stats is not None:
                content["eval"] = _save_split(eval_cols, tmp / "eval", key)
            if runner.pool is not None:
                leak = _leakage_verdict(d, leak_job)
            manifest = _manifest(
                BuildRecord(
                    cfg=cfg,
                    cache_key=key,
                    tokenizer=tok_path,
                    fingerprint=fingerprint,
                    table=table,
                    train=train,
                    train_stats=train_stats,
                    train_rows=train_cols,
                    heldout_stats=heldout_stats,
                    leak=leak,
                    split_hashes=content,
                    instruction_terms=instruction_terms,
                    repairs=repairs,
                    warnings=warnings,
                )
            )
            manifest.write(tmp)
            swap_in_dir(tmp, out)
        except BaseException as err:
            shutil.rmtree(tmp, ignore_errors=True)
            for d in created:  # innermost first; a directory another build uses now is not empty and stays
                with contextlib.suppress(OSError):
                    d.rmdir()
            if isinstance(err, OSError):  # disk full, file-size limit, quota: name the build directory
                raise write_failed(out, err) from None
            raise
    return manifest


def _start_leakage(d: DataConfig, root: Path, train: _Tokenizing, runner: Runner) -> Job | None:
    """Start the leakage check of ``data.leakage`` (None when off) on the distinct training texts: repeats add
    no text, and two samples of one sentence (BC5CDR's chemical and disease sets) give one text."""
    if d.leakage == LEAKAGE_OFF:
        return None
    texts = list(dict.fromkeys(map(leakage.sample_text, train.unique)))
    return runner.submit(leakage_report, texts, _eval_splits(d, root), root, d.ner_format, d.seed)


def _leakage_verdict(d: DataConfig, job: Job | None) -> leakage.LeakageReport | None:
    """The leakage report (None when off); an overlap fails the build under ``data.leakage=error``."""
    if job is None:
        return None
    leak: leakage.LeakageReport = job.result()
    if leak.total_normalised:
        msg = (
            f"{leak.total_normalised} evaluation examples overlap the training mixture "
            f"({leak.total_exact} exactly): {leak.normalised}"
        )
        if d.leakage == LEAKAGE_ERROR:
            raise DataError(d.out_dir, msg, "remove the overlapping sources/splits, or set data.leakage=warn")
        logger.warning("leakage: %s", msg)
    return leak


@dataclasses.dataclass(frozen=True)
class BuildRecord:
    """What a build made, from which :func:`_manifest` writes the :class:`Manifest`."""

    cfg: RunConfig
    """The run config built from (only ``data`` is recorded)."""
    cache_key: str
    """:func:`biotune.data.cache.cache_key` of the build."""
    tokenizer: str
    """The tokenizer built with (:func:`biotune.data.tokenize.tokenizer_of`)."""
    fingerprint: str
    """Its :func:`biotune.data.tokenize.tokenizer_fingerprint`."""
    table: list[mixture.SourceCount]
    """Requested vs realised samples per source (:func:`biotune.data.mixture.compose`)."""
    train: list[Sample]
    """The training samples as mixed (before tokenization dropped any)."""
    train_stats: dict[str, Any]
    """:func:`_pack_tokens`'s stats of the training split (``kept_index``, ``lengths``, counts)."""
    train_rows: list[dict[str, Any]]
    """The packed training rows."""
    heldout_stats: dict[str, Any] | None
    """The same stats of the held-out split, or None when ``data.eval_fraction`` holds none out."""
    leak: leakage.LeakageReport | None
    """The leakage check's report, or None when ``data.leakage=off``."""
    split_hashes: dict[str, str]
    """Split name -> SHA-256 of its Arrow buffers."""
    instruction_terms: dict[str, tuple[str, bool]]
    """Instruction-set source -> (licence, restricted)."""
    repairs: dict[str, int]
    """What the readers repaired (``"<source>/<split>: <what>"`` -> count)."""
    warnings: list[str]
    """The build's warnings (e.g. samples lost to truncation)."""


def _manifest(rec: BuildRecord) -> Manifest:
    """The manifest of a build: per-source counts, licences and token statistics, packing, leakage, hashes."""
    cfg, stats, heldout, leak = rec.cfg, rec.train_stats, rec.heldout_stats, rec.leak
    table, train, cols, content = rec.table, rec.train, rec.train_rows, rec.split_hashes
    d = cfg.data
    known = catalog(d)
    kept = [train[i] for i in stats["kept_index"]]
    per_source_tokens: dict[str, list[int]] = {}
    for s, n in zip(kept, stats["lengths"], strict=True):
        per_source_tokens.setdefault(s.source, []).append(n)
    realised_after_tok: dict[str, int] = {k: len(v) for k, v in per_source_tokens.items()}
    sources = {}
    for row in table:
        spec = known.get(row.source)
        licence, restricted = (
            (spec.licence, spec.restricted)
            if spec is not None
            else rec.instruction_terms.get(row.source, ("", True))
        )
        sources[row.source] = SourceEntry(
            **dataclasses.asdict(row),
            kept_after_tokenize=realised_after_tok.get(row.source, 0),
            licence=licence or "not declared (treated as restricted)",
            restricted=bool(restricted),
            credentialed=bool(getattr(spec, "credentialed", False)),
            paper_count=getattr(spec, "paper_count", None),
            tokens=_length_stats(per_source_tokens.get(row.source, []), d.max_seq_len),
        )
    tasks: dict[str, dict[str, int]] = {}
    for row in table:
        t = tasks.setdefault(row.group, {"requested": 0, "realised": 0})
        t["requested"] += row.requested
        t["realised"] += row.realised
    n_rows = len(cols)
    n_tok = int(sum(int(r["num_tokens"]) for r in cols))
    return Manifest(
        biotune_version=__version__,
        build_version=BUILD_VERSION,
        cache_key=rec.cache_key,
        content_hash=hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest(),
        split_hashes=content,
        config={k: v for k, v in dataclasses.asdict(d).items() if k not in NOT_DATA},
        template=d.template,
        ner_format=d.ner_format,
        tokenizer=rec.tokenizer,
        tokenizer_fingerprint=rec.fingerprint,
        max_seq_len=d.max_seq_len,
        truncation={"policy": d.truncation, "dropped": stats["dropped"], "truncated": stats["truncated"]},
        sources=sources,
        tasks=tasks,
        totals={
            "samples_mixed": stats["samples_in"],
            "samples_kept": stats["samples_kept"],
            "tokens": n_tok,
            "loss_tokens": int(sum(int(r["num_loss_tokens"]) for r in cols)),
        },
        length_stats=_length_stats(stats["lengths"], d.max_seq_len),
        packing={
            "enabled": d.pack,
            "rows": n_rows,
            "capacity": d.max_seq_len,
            "efficiency": round(n_tok / max(1, n_rows * d.max_seq_len), 6),
            "mean_seqs_per_row": round(statistics.fmean(len(r["seq_lens"]) for r in cols), 3)
            if n_rows
            else 0,
        },
        heldout=None
        if heldout is None
        else {"samples": heldout["samples_kept"], "dropped": heldout["dropped"]},
        leakage=leak.to_dict() if leak else None,
        restricted_sources=sorted(name for name, e in sources.items() if e.restricted and e.realised),
        repairs=rec.repairs,
        warnings=rec.warnings,
    )
