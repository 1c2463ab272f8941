"""Data build throughput: the full mixture of every staged corpus, upsampled to ~200K samples, at 2048.

    .venv/bin/python benchmarks/data_build.py [--total 200000] [--max-seq-len 2048] [--repeats 2]

Measures, in one run and side by side:

* the single-process build (``biotune.data.build.build_dataset`` with ``data.num_proc=1``, from the raw corpora
  to packed Arrow shards, cold: a fresh cache directory each time) against the *distinct-text floor*: one bare
  fast-tokenizer batch encode of the distinct texts (prompt + output of each distinct sample of the realised
  mixture; the build tokenizes each distinct sample once and upsampled repeats reuse its tokens). Target:
  build <= 1.3x the floor. The floor is ``tokenizer(texts)`` (transformers' call, ids as Python lists: the
  issue's floor); the encode by the Rust backend alone (``encode_batch_fast``, no offsets, ids left in Rust)
  is reported beside it as the stricter floor.
* the speed-up of ``data.num_proc=2`` over ``data.num_proc=1`` (target >= 1.6x on this 2-core machine), and
  whether the two builds wrote byte-identical files.

Builds alternate 1, 2, 2, 1, ... (``--repeats`` of each) with the floors measured between them, and the best
time of each is compared; every time is in the JSON, with wall and CPU seconds (this process and its workers)
and the load average before and after: the machine is shared, and the load of others slows a parallel build
most. The tokenizer directory holds ``tokenizer.json`` as a model's does (saved once from the SentencePiece
model, so a build does not convert it again). ``TOKENIZERS_PARALLELISM=false`` is set: every encode, the
floor's too, runs on one thread. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import filecmp
import logging
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, data_root, emit, mistral_tokenizer_dir

# One thread per process on both sides: the floor and the single-process build each encode on one core (the
# Rust backend would otherwise spread a batch over every core), and each num_proc=2 worker on its own core.
os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the build's worker processes)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def _timed(fn: Any, *args: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    value = fn(*args)
    return value, time.perf_counter() - wall, _cpu() - cpu


def _same_files(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=200_000)
    parser.add_argument("--max-seq-len", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2, help="builds of each num_proc (and floor encodes)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from biotune import config
    from biotune.data import mixture
    from biotune.data.build import _collect, build_dataset
    from biotune.data.dataset import Manifest
    from biotune.data.templates import render_prompt, render_target
    from biotune.data.tokenize import load_tokenizer

    work = Path(tempfile.mkdtemp(prefix="bench-data-build-"))
    tok_dir = mistral_tokenizer_dir(work / "tokenizer")
    tokenizer = load_tokenizer(str(tok_dir))
    tokenizer.save_pretrained(str(tok_dir))

    def cfg(num_proc: int, out: Path) -> config.RunConfig:
        return config.load(
            REPO / "configs/data/all_staged.yaml",
            [
                f"data.root={data_root()}",
                f"data.tokenizer={tok_dir}",
                f"data.out_dir={out}",
                f"data.total_samples={args.total}",
                f"data.max_seq_len={args.max_seq_len}",
                f"data.num_proc={num_proc}",
            ],
        )

    # The floor's texts: the realised mixture's distinct samples, rendered as the build renders them.
    base = cfg(1, work / "unused")
    by_source, kinds, *_ = _collect(base, Path(base.data.root))
    mixed, _ = mixture.compose(by_source, base.data, kinds)
    texts = [
        render_prompt(base.data.template, s.instruction, s.input, tokenizer)
        + render_target(base.data.template, s.output, tokenizer)
        for s in mixed
    ]
    distinct = list(dict.fromkeys(texts))
    del by_source, mixed, texts
    backend = tokenizer.backend_tokenizer

    def floors() -> None:
        _, wall, cpu = _timed(lambda: tokenizer(distinct, add_special_tokens=True))
        times["floor"].append((wall, cpu))
        _, wall, cpu = _timed(lambda: backend.encode_batch_fast(distinct, add_special_tokens=True))
        times["backend_floor"].append((wall, cpu))

    times: dict[str, list[tuple[float, float]]] = {"1": [], "2": [], "floor": [], "backend_floor": []}
    load_before = os.getloadavg()
    first: dict[int, Path] = {}
    order = [1, 2, 2, 1] * ((args.repeats + 1) // 2)
    for i, num_proc in enumerate(order[: 2 * args.repeats]):
        out = work / f"out-{i}-np{num_proc}"
        built, wall, cpu = _timed(build_dataset, cfg(num_proc, out))
        times[str(num_proc)].append((wall, cpu))
        if num_proc in first:
            shutil.rmtree(out)  # only the first build of each is kept, to compare
        first.setdefault(num_proc, built)
        if i % 2 == 1:
            floors()
    load_after = os.getloadavg()
    identical = _same_files(first[1].parent, first[2].parent)
    manifest = Manifest.read(first[1])

    def best(key: str) -> tuple[float, float]:
        return min(times[key])

    one, two, floor, backend_floor = best("1"), best("2"), best("floor"), best("backend_floor")
    shutil.rmtree(work)
    emit(
        {
            "benchmark": "data_build",
            "samples": manifest.totals["samples_mixed"],
            "distinct_samples": len(distinct),
            "max_seq_len": args.max_seq_len,
            "cpus": os.cpu_count(),
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in load_after],
            "build_1proc_seconds": round(one[0], 2),
            "build_1proc_cpu_seconds": round(one[1], 2),
            "floor_distinct_encode_seconds": round(floor[0], 2),
            "floor_distinct_encode_cpu_seconds": round(floor[1], 2),
            "ratio_to_distinct_floor": round(one[0] / floor[0], 3),
            "ratio_to_distinct_floor_cpu": round(one[1] / floor[1], 3),
            "target_ratio": 1.3,
            "meets_ratio_target": one[0] / floor[0] <= 1.3,
            "floor_backend_encode_seconds": round(backend_floor[0], 2),
            "ratio_to_backend_floor": round(one[0] / backend_floor[0], 3),
            "build_2proc_seconds": round(two[0], 2),
            "build_2proc_cpu_seconds": round(two[1], 2),
            "speedup_2proc": round(one[0] / two[0], 3),
            "target_speedup": 1.6,
            "meets_speedup_target": one[0] / two[0] >= 1.6,
            "identical_outputs": identical,
            "all_seconds": {k: [[round(w, 2), round(c, 2)] for w, c in v] for k, v in times.items()},
            "rows": manifest.packing["rows"],
            "packing_efficiency": manifest.packing["efficiency"],
            "tokens": manifest.totals["tokens"],
            "dropped": manifest.truncation["dropped"],
            "config": "configs/data/all_staged.yaml",
            "tokenizer": "mistral-7b-v0.1 (mistral-common), saved with tokenizer.json",
        }
    )


if __name__ == "__main__":
    main()
