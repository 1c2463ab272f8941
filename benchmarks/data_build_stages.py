"""Where a single-process data build spends its time, stage by stage, with the garbage collector paused (as
the build runs) and, side by side in the same run, with it left on.

    .venv/bin/python benchmarks/data_build_stages.py [--total 200000] [--max-seq-len 2048]

The same build as ``benchmarks/data_build.py`` (every staged corpus upsampled to ``--total`` samples, the real
Mistral-7B tokenizer, one tokenizer thread, cold: a fresh cache directory each time). The build's own
functions are wrapped with timers: the encode (``_encode``: the Rust calls and the ids they return), the
rest of tokenization, the source reads (training and evaluation splits), the leakage check, packing, the save,
the cache key and the mixture. A stage inside another is counted in both (``tokenize_pairs`` holds
``_encode``). Two builds run, the collector paused (``build.gc_paused``, what a build does) and the collector
on (``gc_paused`` replaced by a no-op); the JSON has every stage of both and their totals. Last line: one JSON
object.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import REPO, data_root, emit, mistral_tokenizer_dir

os.environ["TOKENIZERS_PARALLELISM"] = "false"

#: (module, function) pairs whose time is reported.
STAGES = {
    "biotune.data.build": (
        "cache_key",
        "read_split",
        "leakage_report",
        "_start_tokenize",
        "_pack_tokens",
        "_save_split",
        "_manifest",
    ),
    "biotune.data.mixture": ("compose",),
    "biotune.data.workers": ("tokenize_pairs",),  # the name the build's tokenization chunks call
    "biotune.data.tokenize": ("_encode",),
    "biotune.data.leakage": ("check_texts",),
    "biotune.data.packing": ("pack_rows",),
}


def _timed(times: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            times[name] = times.get(name, 0.0) + time.perf_counter() - start

    return inner


def main() -> None:
    import importlib

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=200_000)
    parser.add_argument("--max-seq-len", type=int, default=2048)
    args = parser.parse_args()

    from biotune import config
    from biotune.data import build
    from biotune.data.tokenize import load_tokenizer

    times: dict[str, float] = {}
    for module, names in STAGES.items():
        mod = importlib.import_module(module)
        for name in names:
            setattr(mod, name, _timed(times, name, getattr(mod, name)))

    work = Path(tempfile.mkdtemp(prefix="bench-data-stages-"))
    tok_dir = mistral_tokenizer_dir(work / "tokenizer")
    load_tokenizer(str(tok_dir)).save_pretrained(str(tok_dir))
    paused = build.gc_paused
    out: dict[str, Any] = {}
    for mode in ("collector_paused", "collector_on"):
        build.gc_paused = paused if mode == "collector_paused" else contextlib.nullcontext  # type: ignore[assignment]
        cfg = config.load(
            REPO / "configs/data/all_staged.yaml",
            [
                f"data.root={data_root()}",
                f"data.tokenizer={tok_dir}",
                f"data.out_dir={work / mode}",
                f"data.total_samples={args.total}",
                f"data.max_seq_len={args.max_seq_len}",
                "data.num_proc=1",
            ],
        )
        times.clear()
        start = time.perf_counter()
        build.build_dataset(cfg)
        total = time.perf_counter() - start
        shutil.rmtree(work / mode)
        out[mode] = {"total_seconds": round(total, 2), **{k: round(v, 2) for k, v in sorted(times.items())}}
    build.gc_paused = paused  # type: ignore[assignment]
    shutil.rmtree(work)
    emit(
        {
            "benchmark": "data_build_stages",
            "samples": args.total,
            "max_seq_len": args.max_seq_len,
            **out,
            "collector_on_over_paused": round(
                out["collector_on"]["total_seconds"] / out["collector_paused"]["total_seconds"], 3
            ),
        }
    )


if __name__ == "__main__":
    main()
