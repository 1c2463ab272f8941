"""Data build throughput: the full mixture of every staged corpus, upsampled to ~200K samples, at 2048.

    .venv/bin/python benchmarks/data_build.py [--total 200000] [--max-seq-len 2048]

Measures, in one run, (a) the wall time of ``biotune.data.build.build_dataset`` from the raw corpora to
packed Arrow shards (a cold build: fresh cache dir) and (b) the floor: one bare fast-tokenizer batch
encode of the same texts (prompt + output of every sample in the realised mixture). Target: ratio <= 1.5.
It also reports the ratio to the encode of the distinct texts only, since the build tokenizes each distinct
sample once and upsampled repeats reuse its tokens.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from _common import REPO, data_root, emit, mistral_tokenizer_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=200_000)
    parser.add_argument("--max-seq-len", type=int, default=2048)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from biotune import config
    from biotune.data import mixture
    from biotune.data.build import _collect, build_dataset, load_tokenizer
    from biotune.data.dataset import Manifest
    from biotune.data.templates import render_prompt, render_target

    work = Path(tempfile.mkdtemp(prefix="bench-data-build-"))
    tok_dir = mistral_tokenizer_dir(work / "tokenizer")
    cfg = config.load(
        REPO / "configs/data/all_staged.yaml",
        [
            f"data.root={data_root()}",
            f"data.tokenizer={tok_dir}",
            f"data.out_dir={work / 'out'}",
            f"data.total_samples={args.total}",
            f"data.max_seq_len={args.max_seq_len}",
        ],
    )
    tokenizer = load_tokenizer(str(tok_dir))
    tokenizer("warm up")

    start = time.perf_counter()
    out = build_dataset(cfg)
    build_s = time.perf_counter() - start
    manifest = Manifest.read(out)

    # The floor: the same realised samples' texts, encoded in one batch by the bare fast tokenizer.
    by_source, kinds = _collect(cfg, Path(cfg.data.root))
    mixed, _ = mixture.compose(by_source, cfg.data, kinds)
    texts = [
        render_prompt(cfg.data.template, s.instruction, s.input, tokenizer)
        + render_target(cfg.data.template, s.output, tokenizer)
        for s in mixed
    ]
    start = time.perf_counter()
    enc = tokenizer(texts, add_special_tokens=True)
    floor_s = time.perf_counter() - start
    floor_tokens = sum(len(x) for x in enc["input_ids"])
    # The build tokenizes each distinct sample once (upsampled repeats share tokens): the stricter floor is the
    # bare encode of the distinct texts only.
    distinct = list(dict.fromkeys(texts))
    start = time.perf_counter()
    tokenizer(distinct, add_special_tokens=True)
    floor_distinct_s = time.perf_counter() - start

    emit(
        {
            "benchmark": "data_build",
            "samples": len(mixed),
            "max_seq_len": args.max_seq_len,
            "build_seconds": round(build_s, 2),
            "floor_encode_seconds": round(floor_s, 2),
            "ratio_to_floor": round(build_s / floor_s, 3),
            "target_ratio": 1.5,
            "meets_target": build_s / floor_s <= 1.5,
            "distinct_samples": len(distinct),
            "floor_distinct_encode_seconds": round(floor_distinct_s, 2),
            "ratio_to_distinct_floor": round(build_s / floor_distinct_s, 3),
            "rows": manifest.packing["rows"],
            "packing_efficiency": manifest.packing["efficiency"],
            "tokens": manifest.totals["tokens"],
            "floor_tokens": floor_tokens,
            "dropped": manifest.truncation["dropped"],
            "config": "configs/data/all_staged.yaml",
            "tokenizer": "mistral-7b-v0.1 (mistral-common)",
        }
    )


if __name__ == "__main__":
    main()
