"""Helpers for the training tests: a contract-conforming packed dataset from a real corpus, and launchers.

The dataset is made from NCBI-disease CoNLL sentences (``token : TAG`` outputs, the paper's NER format) with
biotune's own tokenizer/packer, so the trainer sees the same layout as ``biotune data build`` writes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from biotune.config import REPO_ROOT
from biotune.testing.launch import free_port, launch_env, torchrun_cmd

__all__ = [
    "REPO_ROOT",
    "free_port",
    "make_packed_dataset",
    "read_jsonl",
    "torchrun",
    "train_env",
    "write_config",
]


def conll_sentences(path: Path, limit: int) -> list[list[tuple[str, str]]]:
    """The first ``limit`` sentences of a CoNLL (token TAB tag) file."""
    sents: list[list[tuple[str, str]]] = [[]]
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if sents[-1]:
                sents.append([])
            if len(sents) > limit:
                break
            continue
        tok, tag = line.split("\t")[:2]
        sents[-1].append((tok, tag))
    return [s for s in sents if s][:limit]


def make_packed_dataset(
    out: Path, corpora: Path, tokenizer: Any, n_samples: int = 96, capacity: int = 192, eval_samples: int = 16
) -> Path:
    """Write ``out/manifest.json`` + ``out/train`` (+ ``out/eval``) per the built-dataset contract."""
    from datasets import Dataset

    from biotune.data.dataset import EVAL_SPLIT, TRAIN_SPLIT, Manifest, SourceEntry
    from biotune.data.packing import pack_rows
    from biotune.data.tokenize import tokenize_pairs, tokenizer_fingerprint

    sents = conll_sentences(corpora / "ncbi_disease" / "iob" / "train.tsv", 4 * (n_samples + eval_samples))
    sents = [s for s in sents if len(s) <= 12][: n_samples + eval_samples]
    prompts = [
        f"### Instruction: tag diseases\n### Input: {' '.join(t for t, _ in s)}\n### Output: " for s in sents
    ]
    targets = ["\n".join(f"{t} : {g}" for t, g in s) for s in sents]
    batch = tokenize_pairs(prompts, targets, tokenizer, capacity)
    ids = [f"ncbi_disease/train/{i}" for i in batch.kept]
    split_at = len(batch.kept) - eval_samples
    out.mkdir(parents=True, exist_ok=True)
    for name, sl in ((TRAIN_SPLIT, slice(0, split_at)), (EVAL_SPLIT, slice(split_at, None))):
        rows = pack_rows(batch.input_ids[sl], batch.labels[sl], ids[sl], capacity)
        cols = {k: [r[k].tolist() if hasattr(r[k], "tolist") else r[k] for r in rows] for k in rows[0]}
        Dataset.from_dict(cols).save_to_disk(str(out / name))
    Manifest(
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
        max_seq_len=capacity,
        template="medtuned",
        content_hash="test",
        sources={"ncbi_disease": SourceEntry(realised=split_at, restricted=False)},
    ).write(out)
    return out


def train_env() -> dict[str, str]:
    """Environment for spawned training (biotune's local-launch environment, one thread per rank)."""
    return launch_env(
        {"DS_ACCELERATOR": "cpu", "WANDB_MODE": "offline", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    )


def write_config(path: Path, model: Path, data: Path, output: Path, **train: Any) -> Path:
    """A run config YAML for the tiny model on ``data``."""
    import yaml

    cfg = {
        "name": "test",
        "model": {
            "name_or_path": str(model),
            "dtype": "fp32",
            "attn_implementation": "auto",
            "gradient_checkpointing": False,
        },
        "optim": {"lr": 3e-3, "warmup_steps": 1, "schedule": "cosine", "min_lr_ratio": 0.1},
        "train": {
            "data_dir": str(data),
            "output_dir": str(output),
            "micro_batch_size": 1,
            "grad_accum": 2,
            "log_every": 1,
            "save_every": 4,
            "keep_last": 2,
            "eval_every": 0,
            **train,
        },
        "tracking": {"wandb_mode": "offline", "project": "biotune-test", "tags": ["test"]},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def torchrun(
    config: Path, nproc: int, *overrides: str, env_extra: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """``torchrun --nproc_per_node N -m biotune.cli train CONFIG ...`` on CPU; returns the finished process."""
    return subprocess.run(
        torchrun_cmd(nproc, ["train", str(config), *overrides]),
        cwd=REPO_ROOT,
        env={**train_env(), **(env_extra or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every JSON line of ``path``."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
