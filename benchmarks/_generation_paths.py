"""Generation seconds per example of the evaluation paths, side by side in one training process (a worker).

    python -m torch.distributed.run --nproc_per_node 2 benchmarks/_generation_paths.py CFG CKPT EXPORT OUT_JSON REPEATS [KEY=VALUE ...]

Run by ``benchmarks/eval_during_training.py`` (part 3). Every rank builds the training engine of the run config
``CFG`` with the overrides (``biotune.train.engine.build_engine``), loads the checkpoint ``CKPT`` into it, builds the evaluation during
training (:class:`biotune.eval.during_training.StepEvaluation`: its sets and tokenizer), and loads ``EXPORT`` (that
checkpoint exported) as ``biotune eval`` loads a model (:func:`biotune.eval.generate.load_model`). Then, on this
rank's shard of the same examples, in the same batches, interleaved (the order rotates each repeat), it generates
with:

* ``biotune_eval``: the exported model under ``torch.inference_mode`` (what ``biotune eval`` runs);
* ``in_process``: the engine's :meth:`~biotune.train.engine.Engine.generation_model` with the weights gathered,
  under ``torch.inference_mode`` (what the evaluation during training runs);
* ``in_process_no_grad``: the same under ``torch.no_grad`` (the grad-mode factor alone);
* ``in_process_before``: DeepSpeed's ``unwrap_model_for_generation`` alone under ``torch.no_grad``: the path
  before :func:`biotune.train.engine.bare_forwards` (DeepSpeed's forward hooks and ``ZeROOrderedDict`` left on).

Same process, same threads, same memory, same load: the differences are the paths'. Both wall seconds (the
slowest rank's, as the reports count them) and CPU seconds (``time.process_time``, summed over ranks: robust to
other jobs on a shared machine) per example, and each arm's CPU seconds over ``biotune_eval``'s paired by repeat
(mean, 95% t interval, n repeats). Every arm must give the same completions (checked). Rank 0 writes ``OUT_JSON``.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the repository on sys.path)

ARMS = ("biotune_eval", "in_process", "in_process_no_grad", "in_process_before")


def _paired_ratio(parts: list[Any], arm: str, repeats: int) -> dict[str, Any]:
    """``arm``'s CPU seconds over ``biotune_eval``'s, per repeat (both ranks summed; the two ran one after the
    other in that repeat): the mean ratio with a 95% t interval over the repeats, and the n."""
    from scipy import stats

    per_rep = [
        sum(p[2][arm][r] for p in parts) / sum(p[2]["biotune_eval"][r] for p in parts) for r in range(repeats)
    ]
    mean = statistics.fmean(per_rep)
    half = 0.0
    if repeats > 1:
        half = float(stats.t.ppf(0.975, repeats - 1)) * statistics.stdev(per_rep) / repeats**0.5
    return {"mean": mean, "ci95": [mean - half, mean + half], "n_repeats": repeats, "per_repeat": per_rep}


def main() -> None:
    """Build, generate with every arm ``REPEATS`` times, write the medians (rank 0)."""
    from transformers.integrations.deepspeed import set_hf_deepspeed_config, unset_hf_deepspeed_config

    from biotune import config
    from biotune import distributed as dist
    from biotune.eval import generate
    from biotune.eval.during_training import StepEvaluation
    from biotune.eval.runner import render_prompts
    from biotune.train.ds_config import build_ds_config
    from biotune.train.engine import build_engine

    cfg_path, ckpt, export, out_json, repeats_arg, *overrides = sys.argv[1:]
    repeats = int(repeats_arg)
    cfg = config.load(cfg_path, overrides)
    denv = dist.read_env()
    dist.init_process_group(denv)
    engine = build_engine(cfg, build_ds_config(cfg, denv.world_size), cfg.train.max_steps)
    engine.load(Path(ckpt))
    engine.train(False)
    with tempfile.TemporaryDirectory() as tmp:
        evaluation = StepEvaluation(cfg, engine.generation_model, Path(tmp), cfg.train.max_steps, None)
    unset_hf_deepspeed_config()  # load the export whole, as `biotune eval` does, not partitioned
    exported, exported_tok = generate.load_model(Path(export), cfg.model.dtype, cfg.model.attn_implementation)
    set_hf_deepspeed_config(engine.hf_ds)
    rank, world = dist.rank(), dist.world_size()
    shards = []
    for eval_set in evaluation.sets:
        prompts = render_prompts(eval_set, cfg.data.template, evaluation.tokenizer)
        shards.append({i: prompts[i] for i in generate.shard(sorted(prompts), rank, world)})
    e = cfg.eval

    @contextlib.contextmanager
    def before() -> Iterator[Any]:
        from deepspeed.runtime.zero.stage3 import unwrap_model_for_generation

        with unwrap_model_for_generation(engine.ds):
            yield engine.ds.module

    @contextlib.contextmanager
    def plain(model: Any) -> Iterator[Any]:
        yield model

    arms: dict[str, tuple[Callable[[], Any], Any, bool]] = {
        "biotune_eval": (lambda: plain(exported), exported_tok, True),
        "in_process": (lambda: engine.generation_model(True), evaluation.tokenizer, True),
        "in_process_no_grad": (lambda: engine.generation_model(True), evaluation.tokenizer, False),
        "in_process_before": (before, evaluation.tokenizer, False),
    }

    def run(arm: str) -> tuple[float, float, dict[str, str]]:
        enter, tokenizer, inference = arms[arm]
        wall = cpu = 0.0
        completions: dict[str, str] = {}
        dist.barrier()
        with enter() as model:
            for prompts in shards:
                c0 = time.process_time()
                out = generate.generate_hf(
                    model,
                    tokenizer,
                    prompts,
                    e.batch_size,
                    e.max_new_tokens,
                    e.num_beams,
                    False,
                    inference_mode=inference,
                )
                cpu += time.process_time() - c0
                wall += out.seconds
                completions.update(out.completions)
        return wall, cpu, completions

    for arm in ARMS:  # warm-up: first calls pay one-time costs
        run(arm)
    wall: dict[str, list[float]] = {a: [] for a in ARMS}
    cpu: dict[str, list[float]] = {a: [] for a in ARMS}
    first: dict[str, str] = {}
    for rep in range(repeats):
        for arm in ARMS[rep % len(ARMS) :] + ARMS[: rep % len(ARMS)]:
            w, c, completions = run(arm)
            wall[arm].append(w)
            cpu[arm].append(c)
            first = first or completions
            assert completions == first, f"{arm} generated other completions"
    parts = dist.all_gather_objects((len(first), wall, cpu))
    if rank == 0:
        n = sum(p[0] for p in parts)
        per_ex: dict[str, dict[str, float]] = {}
        for arm in ARMS:
            walls = [max(p[1][arm][r] for p in parts) for r in range(repeats)]
            cpus = [sum(p[2][arm][r] for p in parts) for r in range(repeats)]
            per_ex[arm] = {
                "wall_s_per_example": statistics.median(walls) / n,
                "cpu_s_per_example": statistics.median(cpus) / n,
            }
        ratios = {
            arm: {
                k: per_ex[arm][k] / per_ex["biotune_eval"][k]
                for k in ("wall_s_per_example", "cpu_s_per_example")
            }
            for arm in ARMS
        }
        paired = {arm: _paired_ratio(parts, arm, repeats) for arm in ARMS[1:]}
        result = {
            "examples": n,
            "repeats": repeats,
            "world_size": world,
            "per_example": per_ex,
            "ratio_vs_biotune_eval": ratios,
            "cpu_ratio_vs_biotune_eval_paired": paired,
        }
        Path(out_json).write_text(json.dumps(result, sort_keys=True))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
