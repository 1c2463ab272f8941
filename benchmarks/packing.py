"""Packing efficiency of biotune's best-fit-decreasing packer vs TRL's ``pack_dataset`` and naive padding.

Launch: ``.venv/bin/python benchmarks/packing.py [--data-dir ../shared/data] [--samples 200000]``

Token lengths are real: instruction samples rendered from the real corpora (CoNLL NER files as the paper's
``token : TAG`` lines, GAD relations, PubMedQA with its long contexts) are tokenized with the real Mistral-7B v0.1
SentencePiece tokenizer shipped in the ``mistral-common`` wheel (a Llama-2-like 32K BPE), with biotune's own
``tokenize_pairs``. Unique samples are tokenized once, then the mixture is upsampled (seeded) to ``--samples``.
All three methods see the SAME lengths at each capacity (samples over the capacity are dropped first, as
``data.truncation=drop`` would):

* biotune ``pack_bfd`` -> efficiency = tokens / (rows * capacity)
* TRL ``pack_dataset(strategy="bfd")`` -> same measure on its rows
* naive: micro-batches of 8 in (shuffled) dataset order, each padded to its longest sample ->
  tokens / sum(8 * longest)

Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from biotune.data.packing import pack_bfd, pack_rows, rows_to_arrow  # noqa: E402
from biotune.data.tokenize import tokenize_pairs  # noqa: E402

CONLL = {  # file -> entity type named in the instruction
    "ncbi_disease/iob/train.tsv": "disease",
    "bc5cdr/chem-iob/train.tsv": "chemical",
    "bc5cdr/disease-iob/train.tsv": "disease",
    "bc2gm/iob/train.tsv": "gene",
    "jnlpba/biobert-untyped/train.tsv": "protein, DNA, RNA, cell line and cell type",
    "linnaeus/iob/train.tsv": "species",
    "s800/biobert/train.tsv": "species",
}
CAPACITIES = (2048, 4096)
MICRO_BATCH = 8


def _prompt(instruction: str, text: str) -> str:
    return f"### Instruction: {instruction}\n ### Input: {text}\n ### Output: "


def _conll(path: Path, entity: str) -> list[tuple[str, str]]:
    pairs, sentence = [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if line.strip() and not line.startswith("-DOCSTART-"):
            token, tag = line.split("\t")[:2]
            sentence.append((token, tag))
        elif sentence:
            instruction = (
                f"Your task is to identify every {entity} mention in the input and tag each token with "
                "B (beginning of a mention), I (inside a mention) or O (outside)."
            )
            pairs.append(
                (
                    _prompt(instruction, " ".join(t for t, _ in sentence)),
                    "\n".join(f"{t} : {tag}" for t, tag in sentence),
                )
            )
            sentence = []
    return pairs


def _gad(path: Path) -> list[tuple[str, str]]:
    instruction = "Does the sentence state a relation between the masked gene @GENE$ and disease @DISEASE$? Answer 1 or 0."
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(_prompt(instruction, r[0]), r[-1]) for r in rows]


def _pubmedqa(path: Path) -> list[tuple[str, str]]:
    items = json.loads(path.read_text(encoding="utf-8"))
    instruction = "Answer the biomedical research question from the abstract with yes, no or maybe."
    return [
        (
            _prompt(instruction, f"Question: {it['QUESTION']}\nContext: {' '.join(it['CONTEXTS'])}"),
            f"{it['final_decision']}. {it['LONG_ANSWER']}",
        )
        for it in items.values()
    ]


def load_pairs(root: Path) -> dict[str, list[tuple[str, str]]]:
    """Unique (prompt, target) pairs per source, read directly from the corpora's native files."""
    sources = {rel: _conll(root / rel, entity) for rel, entity in CONLL.items()}
    sources["gad/fold1/train.tsv"] = _gad(root / "gad" / "fold1" / "train.tsv")
    sources["pubmedqa/ori_pqal.json"] = _pubmedqa(root / "pubmedqa" / "ori_pqal.json")
    return sources


def mistral_tokenizer(workdir: Path):
    """The real Mistral-7B v0.1 tokenizer from the mistral-common wheel, loaded as a fast Llama tokenizer."""
    import mistral_common
    from transformers import AutoTokenizer

    model = Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"
    shutil.copy(model, workdir / "tokenizer.model")
    (workdir / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "LlamaTokenizer",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "add_bos_token": True,
            }
        )
    )
    return AutoTokenizer.from_pretrained(workdir)


def naive_efficiency(lengths: np.ndarray, micro_batch: int) -> float:
    """Pad-to-longest micro-batches in dataset order: real tokens / padded tokens."""
    n = len(lengths) // micro_batch * micro_batch
    batches = lengths[:n].reshape(-1, micro_batch)
    padded = batches.max(axis=1).sum() * micro_batch + (
        lengths[n:].max() * (len(lengths) - n) if n < len(lengths) else 0
    )
    return float(lengths.sum() / padded)


def trl_efficiency(lengths: np.ndarray, capacity: int, whole: bool) -> tuple[float, int, float]:
    """TRL ``pack_dataset(strategy="bfd")`` on sequences of exactly these lengths: (efficiency, rows, seconds).

    TRL packs inside ``Dataset.map(batched=True)``, i.e. within windows of 1,000 samples by default (what
    ``SFTTrainer`` does); ``whole=True`` passes ``batch_size=None`` so it packs the whole dataset at once.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from datasets import Dataset
    from trl import pack_dataset

    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = pa.array(np.arange(offsets[-1], dtype=np.int64) % 32000, type=pa.int64())
    ds = Dataset(
        pa.table(
            {"input_ids": pa.LargeListArray.from_arrays(pa.array(offsets), values).cast(pa.list_(pa.int64()))}
        )
    )
    start = time.perf_counter()
    packed = pack_dataset(
        ds, seq_length=capacity, strategy="bfd", map_kwargs={"batch_size": None} if whole else None
    )
    seconds = time.perf_counter() - start
    total = int(pc.sum(pc.list_value_length(packed.data.column("input_ids"))).as_py())
    assert total == int(lengths.sum()), "TRL dropped or truncated tokens: lengths were not pre-filtered"
    return total / (len(packed) * capacity), len(packed), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    sources = load_pairs(args.data_dir)
    names = sorted(sources)
    flat = [p for n in names for p in sources[n]]
    prompts, targets = [p for p, _ in flat], [t for _, t in flat]
    with tempfile.TemporaryDirectory() as tmp:
        tok = mistral_tokenizer(Path(tmp))
        bare_runs = []
        for run in range(3):  # bare encode, ours, bare again: min of the bare runs (the machine is shared)
            start = time.perf_counter()
            if run == 1:
                batch = tokenize_pairs(prompts, targets, tok, max_seq_len=max(CAPACITIES), truncation="drop")
                ours_tok_s = time.perf_counter() - start
            else:
                tok(prompts + targets, add_special_tokens=True)
                bare_runs.append(time.perf_counter() - start)
        bare_s = min(bare_runs)
        for j in range(0, len(batch.kept), max(1, len(batch.kept) // 300)):  # ids are the tokenizer's own
            i = batch.kept[j]
            own = (
                tok(prompts[i]).input_ids
                + tok(targets[i], add_special_tokens=False).input_ids
                + [tok.eos_token_id]
            )
            assert batch.input_ids[j].tolist() == own, (
                f"sample {i}: tokenize_pairs ids differ from the tokenizer's"
            )
    unique_lengths = np.asarray(batch.lengths, dtype=np.int64)

    rng = random.Random(args.seed)  # upsample the mixture: every unique sample, then random repeats, shuffled
    picks = list(range(len(unique_lengths))) * (args.samples // len(unique_lengths))
    picks += rng.sample(range(len(unique_lengths)), args.samples - len(picks))
    rng.shuffle(picks)
    mixture = unique_lengths[picks]

    results: dict[str, dict[str, float | int | bool]] = {}
    for cap in CAPACITIES:
        keep = mixture <= cap
        lengths = mixture[keep]
        start = time.perf_counter()
        bins = pack_bfd(lengths.tolist(), cap)
        ours_s = time.perf_counter() - start
        ours = float(lengths.sum() / (len(bins) * cap))
        picked = [picks[i] for i in np.flatnonzero(keep).tolist()]
        start = time.perf_counter()
        rows = pack_rows(
            [batch.input_ids[i] for i in picked],
            [batch.labels[i] for i in picked],
            [str(i) for i in range(len(picked))],
            cap,
        )
        rows_s = time.perf_counter() - start
        start = time.perf_counter()
        rows_to_arrow(rows)
        arrow_s = time.perf_counter() - start
        assert len(rows) == len(bins)
        trl, trl_rows, trl_s = trl_efficiency(lengths, cap, whole=False)
        trl_whole, trl_whole_rows, trl_whole_s = trl_efficiency(lengths, cap, whole=True)
        results[str(cap)] = {
            "sequences": int(len(lengths)),
            "dropped_over_capacity": int((~keep).sum()),
            "tokens": int(lengths.sum()),
            "ours_efficiency": round(ours, 5),
            "ours_rows": len(bins),
            "ours_pack_bfd_s": round(ours_s, 3),
            "ours_pack_rows_s": round(rows_s, 3),
            "ours_rows_to_arrow_s": round(arrow_s, 3),
            "trl_efficiency": round(trl, 5),
            "trl_rows": trl_rows,
            "trl_pack_s": round(trl_s, 3),
            "trl_whole_efficiency": round(trl_whole, 5),
            "trl_whole_rows": trl_whole_rows,
            "trl_whole_pack_s": round(trl_whole_s, 3),
            "naive_pad_to_longest_efficiency": round(naive_efficiency(lengths, MICRO_BATCH), 5),
            "ours_ge_0_98": ours >= 0.98,
            "ours_ge_trl": len(bins) <= min(trl_rows, trl_whole_rows),
        }

    print(
        f"{len(flat)} unique samples from {len(names)} sources, upsampled to {len(mixture)}; "
        f"mean {mixture.mean():.0f} tokens, p50 {np.median(mixture):.0f}, p99 {np.percentile(mixture, 99):.0f}, "
        f"max {mixture.max()}"
    )
    print(
        f"tokenize {len(flat)} unique samples: bare tokenizer(prompts + targets) {bare_s:.2f}s (min of 2), "
        f"tokenize_pairs {ours_tok_s:.2f}s (ratio {ours_tok_s / bare_s:.2f})"
    )
    print(
        f"{'capacity':>8} {'ours':>8} {'trl bfd':>8} {'trl all':>8} {'naive/8':>8} {'rows':>7} {'trl rows':>8} "
        f"{'trl all':>8} {'bfd s':>6} {'rows s':>6} {'trl s':>6}"
    )
    for cap, r in results.items():
        print(
            f"{cap:>8} {r['ours_efficiency']:>8.4f} {r['trl_efficiency']:>8.4f} {r['trl_whole_efficiency']:>8.4f} "
            f"{r['naive_pad_to_longest_efficiency']:>8.4f} {r['ours_rows']:>7} {r['trl_rows']:>8} "
            f"{r['trl_whole_rows']:>8} {r['ours_pack_bfd_s']:>6.2f} {r['ours_pack_rows_s']:>6.2f} "
            f"{r['trl_pack_s']:>6.2f}"
        )
    print(
        "trl bfd = pack_dataset defaults (packs within map batches of 1,000 samples, as SFTTrainer does); "
        "trl all = map_kwargs batch_size=None (one batch); naive/8 = pad-to-longest micro-batches of 8"
    )
    summary = {
        "benchmark": "packing",
        "tokenizer": "mistral-7b-v0.1 (mistral-common tokenizer.model.v1)",
        "samples": len(mixture),
        "unique_samples": len(flat),
        "sources": names,
        "micro_batch_naive": MICRO_BATCH,
        "seed": args.seed,
        "tokenize_bare_s": round(bare_s, 3),
        "tokenize_pairs_s": round(ours_tok_s, 3),
        "tokenize_ratio": round(ours_tok_s / bare_s, 3),
        "capacities": results,
        "target_met": all(r["ours_ge_0_98"] and r["ours_ge_trl"] for r in results.values()),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
