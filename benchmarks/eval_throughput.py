"""Evaluation generation throughput: batched (length-sorted, left-padded) vs one sample at a time.

    .venv/bin/python benchmarks/eval_throughput.py [--n 200] [--batch-size 32] [--max-new-tokens 32]

The same tiny random Llama and the same N real prompts (NCBI-disease test sentences, then GAD and PubMedQA,
rendered by the training task objects and template) are generated greedily twice through
``biotune.eval.generate.generate_hf``: once in batches of ``--batch-size``, once with one ``generate`` call per
sample. Each way runs ``--repeats`` times, alternating, and its fastest run counts (the CPU is shared
with other work, which otherwise dominates the variance). Reports samples/s for both and their ratio (target: >= 5x on CPU); also checks that both runs
produce the same completions. The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import data_root, emit


def build_prompts(root: Path, n: int, template: str, tokenizer: object) -> dict[str, str]:
    """``n`` real evaluation prompts, through the same builders ``biotune eval`` uses."""
    from biotune.eval.runner import render_prompts
    from biotune.eval.score import build_eval_set

    prompts: dict[str, str] = {}
    for source in ("ncbi_disease", "gad", "pubmedqa"):
        eval_set = build_eval_set(source, "test", root, max_examples=n - len(prompts))
        prompts.update(render_prompts(eval_set, template, tokenizer))
        if len(prompts) >= n:
            break
    return prompts


def main() -> None:
    """Run both ways and print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--template", default="medtuned")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each way; the fastest is reported")
    args = parser.parse_args()

    import torch

    from biotune.eval.generate import Generations, generate_hf, load_model
    from biotune.testing.tiny import make_tiny_llama

    root = data_root()
    with tempfile.TemporaryDirectory() as tmp:
        text = (root / "ncbi_disease" / "iob" / "train.tsv").read_text(encoding="utf-8").splitlines()[:3000]
        model_dir = make_tiny_llama(
            Path(tmp) / "tiny",
            [" ".join(line.replace("\t", " : ") for line in text), "### Instruction: ### Input: ### Output:"],
        )
        model, tokenizer = load_model(model_dir, dtype="fp32", attn_implementation="sdpa")
        prompts = build_prompts(root, args.n, args.template, tokenizer)
        lengths = [len(tokenizer(p)["input_ids"]) for p in prompts.values()]
        generate_hf(
            model, tokenizer, dict(list(prompts.items())[:4]), batch_size=4, max_new_tokens=4, progress=False
        )  # warm-up
        runs: dict[str, Generations] = {}
        for _ in range(args.repeats):  # alternate the two ways; keep each one's fastest run (CPU is shared)
            for name, batch_size in (("batched", args.batch_size), ("sequential", 1)):
                start = time.perf_counter()
                result = generate_hf(
                    model,
                    tokenizer,
                    prompts,
                    batch_size=batch_size,
                    max_new_tokens=args.max_new_tokens,
                    progress=False,
                )
                result.seconds = time.perf_counter() - start
                if name not in runs or result.seconds < runs[name].seconds:
                    runs[name] = result
    batched, sequential = runs["batched"], runs["sequential"]
    same = sum(batched.completions[i] == sequential.completions[i] for i in prompts)
    result = {
        "benchmark": "eval_throughput",
        "n_prompts": len(prompts),
        "prompt_tokens_mean": round(sum(lengths) / len(lengths), 1),
        "prompt_tokens_max": max(lengths),
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "batched_samples_per_s": round(len(prompts) / batched.seconds, 2),
        "sequential_samples_per_s": round(len(prompts) / sequential.seconds, 2),
        "batched_tokens_per_s": round(batched.new_tokens / batched.seconds, 1),
        "sequential_tokens_per_s": round(sequential.new_tokens / sequential.seconds, 1),
        "ratio": round(sequential.seconds / batched.seconds, 2),
        "target_ratio": 5.0,
        "identical_completions": same,
    }
    emit(result)


if __name__ == "__main__":
    main()
