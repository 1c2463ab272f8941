"""Training throughput on CPU: packed rows vs padded batches, and the loop's overhead over the bare engine.

    DS_ACCELERATOR=cpu python benchmarks/train_throughput.py [--steps 30] [--samples 600]

Same samples (real NCBI-disease sentences in the paper's ``token : TAG`` format), same tiny Llama, same ZeRO-3
engine (one process, gloo), all arms interleaved step by step. Packed = biotune's rows through the real
Trainer.train_step; padded = batches of as many samples as a packed row holds on average, drawn in a seeded random
order, from transformers' DataCollatorForSeq2Seq (input_ids/labels/attention_mask padded to the batch's longest).
Reported: non-pad tokens/s of each, their ratio, and the packing-efficiency ratio of the two layouts (target:
throughput ratio >= 0.9 x layout ratio). Also reported against "grouped": the very samples of each packed row as
one padded batch (same tokens, same optimizer steps; length-grouped batching, the stricter baseline).
Packed rows run with the trainer's default attention (``auto``: ``sdpa_packed`` on CPU, ``biotune.train.attention``);
for comparison, the same packed steps are timed again with transformers' ``sdpa`` (a block-diagonal mask over the
whole row), the implementation that missed the target before ``sdpa_packed`` existed.
Overhead = (Trainer.train_step time - bare forward/backward/step time on the same collated batches) / bare.
The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _samples(data_root: Path, n: int) -> tuple[list[str], list[str]]:
    sents, cur = [], []
    for line in (data_root / "ncbi_disease" / "iob" / "train.tsv").read_text().splitlines():
        if not line.strip():
            if cur:
                sents.append(cur)
                cur = []
            if len(sents) >= n:
                break
            continue
        tok, tag = line.split("\t")[:2]
        cur.append((tok, tag))
    prompts = [
        f"### Instruction: tag diseases\n ### Input: {' '.join(t for t, _ in s)}\n ### Output: "
        for s in sents
    ]
    targets = ["\n".join(f"{t} : {g}" for t, g in s) for s in sents]
    return prompts, targets


def _build(tmp: Path, data_root: Path, n_samples: int, capacity: int):
    from datasets import Dataset
    from transformers import AutoTokenizer

    from biotune.data.packing import pack_rows
    from biotune.data.tokenize import tokenize_pairs
    from biotune.testing.tiny import make_tiny_llama

    prompts, targets = _samples(data_root, n_samples)
    model_dir = make_tiny_llama(tmp / "model", prompts + targets, max_positions=capacity)
    tok = AutoTokenizer.from_pretrained(model_dir)
    batch = tokenize_pairs(prompts, targets, tok, capacity)
    ids = [str(i) for i in batch.kept]
    rows = pack_rows(batch.input_ids, batch.labels, ids, capacity)
    cols = {k: [r[k].tolist() if hasattr(r[k], "tolist") else r[k] for r in rows] for k in rows[0]}
    Dataset.from_dict(cols).save_to_disk(str(tmp / "data" / "train"))
    return model_dir, tok, batch, len(rows)


def _engine(model_dir: Path, out: Path, attn: str):
    from biotune.config import RunConfig
    from biotune.train.ds_config import build_ds_config
    from biotune.train.engine import build_engine

    cfg = RunConfig()
    cfg.model.name_or_path, cfg.model.dtype, cfg.model.attn_implementation = str(model_dir), "fp32", attn
    cfg.model.gradient_checkpointing = False
    cfg.optim.lr, cfg.optim.schedule = 1e-3, "constant"
    cfg.train.output_dir = str(out)
    return cfg, build_engine(cfg, build_ds_config(cfg, 1), total_steps=10**6)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _padded(collator, features: list[dict]) -> dict:
    b = collator(features)
    return {k: b[k] for k in ("input_ids", "labels", "attention_mask")}


def _bare_step(engine, batches, denominator: float) -> None:
    for b in batches:
        engine.backward_step(engine.forward_loss(b, denominator))


def run(args: argparse.Namespace) -> dict:
    import torch
    from transformers import DataCollatorForSeq2Seq

    from biotune import distributed as dist
    from biotune.data.loader import DataPosition, PackedSplit, loss_tokens, step_rows
    from biotune.train.tracking import NullTracker
    from biotune.train.trainer import Trainer

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    model_dir, tok, batch, n_rows = _build(tmp, Path(args.data_root), args.samples, args.capacity)
    dist.init_process_group(dist.DistEnv(master_port=str(args.port)))
    cfg, engine = _engine(model_dir, tmp / "run", args.attn)
    trainer = Trainer(
        cfg,
        engine,
        PackedSplit(tmp / "data" / "train"),
        None,
        NullTracker(),
        tmp / "run",
        10**6,
        None,
        tok.pad_token_id,
    )
    engine.train(True)

    # Every iteration times five arms back to back, so that machine noise hits all arms alike:
    #   packed  - the real Trainer.train_step on this step's packed row(s), with the configured attention;
    #   bare    - the engine's bare forward/backward/step on the same collated rows (the loop-overhead reference);
    #   block   - the same bare step with transformers' sdpa (block-diagonal mask over the whole row);
    #   grouped - the same samples as one batch from transformers' DataCollatorForSeq2Seq (pad to longest, sdpa):
    #             a packed row holds samples of similar length, so this is length-grouped batching;
    #   padded  - the standard padded run: batches of as many samples, drawn in a seeded random order, same collator.
    collator = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)
    feats = {
        str(k): {"input_ids": i, "labels": lab}
        for k, i, lab in zip(batch.kept, batch.input_ids, batch.labels, strict=True)
    }
    model = engine.ds.module
    per_batch = max(1, round(len(batch.kept) / n_rows))
    order = [str(k) for k in random.Random(0).sample(list(batch.kept), len(batch.kept))]
    times: dict[str, list[float]] = {"packed": [], "bare": [], "block": [], "grouped": [], "padded": []}
    tokens_per_step, grouped_slots, padded_tokens, padded_slots = [], [], [], []
    for i in range(args.warmup + args.steps):
        pos = DataPosition(trainer.state.epoch, trainer.state.step_in_epoch)
        mine = step_rows(trainer.data.lengths, trainer.layout, cfg.train.seed, pos)[0]
        rows = [trainer.data.rows(idx) for idx in mine]
        batches = [trainer._collate(r) for r in rows]
        denominator = float(max(1, sum(loss_tokens(b) for b in batches)))
        grouped = _padded(collator, [feats[sid] for r in rows for ids in r["sample_ids"] for sid in ids])
        start = (i * per_batch) % (len(order) - per_batch + 1)
        padded = _padded(collator, [feats[sid] for sid in order[start : start + per_batch]])
        step = {
            "packed": trainer.train_step,
            "bare": lambda b=batches, d=denominator: _bare_step(engine, b, d),
            "block": lambda b=batches, d=denominator: _bare_step(engine, b, d),
            "grouped": lambda b=grouped, d=denominator: _bare_step(engine, [b], d),
            "padded": lambda b=padded: _bare_step(engine, [b], float(max(1, loss_tokens(b)))),
        }
        for arm, fn in step.items():
            model.set_attn_implementation(engine.attn_implementation if arm in ("packed", "bare") else "sdpa")
            t = _timed(fn)
            if i >= args.warmup:
                times[arm].append(t)
        if i >= args.warmup:
            tokens_per_step.append(int(sum(trainer.data.lengths[j] for idx in mine for j in idx)))
            assert int(grouped["attention_mask"].sum()) == tokens_per_step[-1], (
                "grouped = the packed step's tokens"
            )
            grouped_slots.append(int(grouped["input_ids"].numel()))
            padded_tokens.append(int(padded["attention_mask"].sum()))
            padded_slots.append(int(padded["input_ids"].numel()))

    tokens = sum(tokens_per_step)
    packed_tps, blockmask_tps, grouped_tps = (tokens / sum(times[a]) for a in ("packed", "block", "grouped"))
    padded_tps = sum(padded_tokens) / sum(times["padded"])
    grouped_layout = sum(grouped_slots) / tokens
    trainer_t, bare_t = times["packed"], times["bare"]
    packed_eff = 1.0  # micro_batch_size=1: a packed row is never padded
    padded_eff = sum(padded_tokens) / sum(padded_slots)
    layout_ratio = packed_eff / padded_eff
    overhead = statistics.median(t - b for t, b in zip(trainer_t, bare_t, strict=True)) / statistics.median(
        bare_t
    )
    dist.destroy_process_group()
    return {
        "benchmark": "train_throughput",
        "device": "cpu",
        "threads": args.threads,
        "steps": args.steps,
        "samples": len(batch.kept),
        "packed_rows": n_rows,
        "capacity": args.capacity,
        "samples_per_padded_batch": per_batch,
        "packed_nonpad_tokens_per_s": round(packed_tps, 1),
        "padded_nonpad_tokens_per_s": round(padded_tps, 1),
        "throughput_ratio": round(packed_tps / padded_tps, 3),
        "packing_efficiency_packed": packed_eff,
        "packing_efficiency_padded": round(padded_eff, 4),
        "layout_ratio": round(layout_ratio, 3),
        "packed_attention": engine.attn_implementation,
        "throughput_vs_layout": round(packed_tps / padded_tps / layout_ratio, 3),
        "target_vs_layout": 0.9,
        "packed_sdpa_blockmask_nonpad_tokens_per_s": round(blockmask_tps, 1),
        "sdpa_blockmask_throughput_vs_layout": round(blockmask_tps / padded_tps / layout_ratio, 3),
        "grouped_nonpad_tokens_per_s": round(grouped_tps, 1),
        "packing_efficiency_grouped": round(1 / grouped_layout, 4),
        "throughput_vs_layout_grouped": round(packed_tps / grouped_tps / grouped_layout, 3),
        "loop_overhead": round(overhead, 4),
        "target_overhead": 0.05,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--samples", type=int, default=600)
    p.add_argument("--capacity", type=int, default=1024)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--port", type=int, default=29777)
    p.add_argument(
        "--attn", default="auto", help="model.attn_implementation for the packed rows (default: auto)"
    )
    p.add_argument(
        "--data-root", default=os.environ.get("BIOTUNE_DATA_DIR", str(REPO.parent / "shared" / "data"))
    )
    args = p.parse_args()
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
