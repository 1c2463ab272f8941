"""Proxy fidelity on CPU: do cheap runs rank composition variants as the full fine-tuning does? (issue 21)

    .venv/bin/python benchmarks/proxy_agreement.py [--out runs/bench/proxy_agreement] [--workers 2]
        [--steps 300] [--n-boot 1000]

A real study through biotune's own sweep path: every cell is ``biotune sweep run SWEEP.yaml --local --nproc 1``
(data build -> DeepSpeed ZeRO-3 training, one CPU process -> Hugging Face export -> generation and scoring), and
the agreement is :func:`biotune.sweep.agreement.compare_levels` on the cells' per-example predictions.

Design (fixed before the full run; nothing below was tuned on its outcome):

1. **Data.** The seeded synthetic corpora of :mod:`biotune.data.synthetic` (2,000 train / 200 test sentences
   each): ``synthetic_re`` (relation label decided by a cue phrase; test = unseen frame x cue combinations) and
   ``synthetic_ner`` (the other source of the mixture, which fills the budget).
2. **"Pretrained" bases.** Two tiny Llamas of one family (:func:`biotune.testing.tiny.make_tiny_llama`, one
   2,000-token tokenizer trained on the corpora's text, checked identical): the *target* (hidden 128, 2 layers,
   tied embeddings, ~0.49M parameters) and the *small* model (hidden 48, 2 layers, ~0.11M, about 22% of the
   target). Each is first trained as a plain language model (:func:`pretrain`, AdamW, ``PRETRAIN_STEPS`` steps of
   32 sentences) on the raw training sentences of both corpora (no template, no labels, no instructions), so that
   fine-tuning, and LoRA above all, adapts a model that already knows the words. biotune has no plain-text
   language-modelling path (its trainer trains prompt-masked instruction samples), hence this short loop; it is
   set-up, not part of any measured cost.
3. **Variants** (one ``scale`` axis, budget ``fixed_samples``: every variant trains on the base's 2,000 samples):
   the base mixture holds 50% relation samples (1,000 + 1,000 NER), and six variants scale the relation share to
   5, 10, 20, 30, 70 and 90% (``scale`` multiplies the relation weight by
   0.05-9 before the shares are renormalised), the NER sentences filling the rest. The relation task's score
   should grow with its share in a graded way (more samples and more cue coverage), which the study checks at the
   target (``graded``: at least two variants score strictly between the worst and the best, 5 points inside).
4. **Evaluation.** The relation test split only (200 examples, each its own resampling unit, ``max_new_tokens``
   8): at the target's step budget the NER format is not learned yet (measured in the one-cell timing: 100% parse
   failures), so its scores would be noise, and its 40-token generations would have cost more than the training.
   The agreement is per set, so this is a one-set study; no macro.
5. **Levels** (one ordinary sweep per fidelity, the same variants and seed 0 in each; :func:`fidelity_sweeps`):

   ======== ========================================================================================
   target    full fine-tuning of the target model, ``--steps`` (300) optimizer steps, lr 3e-3 (cosine, 5% warmup)
   small     the same on the small model
   lora      LoRA rank 8 (alpha 16, dropout 0.05) on all seven linear projections of the target model; lr
             1e-2 (LoRA's usual larger learning rate; not tuned)
   short     the target run with a quarter of the steps (schedule compressed to them)
   sabotaged learning rate 1e-9 (0 is refused by the config; every variant stays the pretrained base),
             at the short run's steps
   ======== ========================================================================================

   Each fidelity's settings are its sweep's ``overrides:``; :func:`levels` turns the cells into one
   :class:`~biotune.sweep.agreement.Level` per fidelity (the one function to change for a single sweep with a
   ``fidelities:`` block: group the cells by ``CellResult.fidelity`` instead of by sweep).
6. **Statistics.** Spearman ρ, Kendall τ, pairwise agreement over the pairs the target separates, the top
   variant and its regret, each with a 95% paired bootstrap interval (1,000 resamples, the test examples drawn
   jointly for both levels), and the verdict rule of :mod:`biotune.sweep.agreement` (agrees: ρ >= 0.8 and CI low
   >= 0.5). One training seed per cell: every figure is conditional on the trained models (the seed variance
   is not in the intervals), and the output says so.
7. **Cost.** Per cell, from its own records: the training stage's wall seconds x processes (``state.json``
   ``train_seconds``: torchrun, DeepSpeed start-up, the steps, the checkpoint and the export) and the optimizer
   steps' seconds x processes (the trainer's own timing: the sum over ``metrics.jsonl`` windows of tokens /
   tokens-per-second). The cost ratio of a proxy is the sum over its cells divided by the target's. **The
   compute ratio that ``ok_proxy`` uses is the steps' one**: it scales with the model and the tokens, while the
   start-up (~10-20 s per cell here, whatever the model) is a fixed cost that is negligible at the scale
   proxies are meant for; the stage ratio is printed beside it, and so is the FLOPs ratio (tokens x the
   trainer's FLOPs per token, free of the machine's load, which the seconds carry). Two sweeps run at a time (``--workers``), the
   longest first (target with LoRA, then small with short), each with one thread (``OMP_NUM_THREADS=1``: two
   single-threaded sweeps fill the two cores, and no thread spins on a busy machine); seconds measured on a
   shared machine carry its load.

Measured numbers, the run's command and why each proxy did what it did: ``docs/readme_drafts/pbench.md``.

Targets (the last line's flags): ``ok_proxy``: some proxy (not the sabotaged one) has ρ >= 0.8 at <= 30% of the
target's measured step compute; ``ok_sabotage``: the sabotaged proxy's verdict is not "agrees". When no proxy reaches
0.8, the table shows what each measured and the notes say why; the study is not re-tuned to pass.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from _common import REPO, emit

from biotune.eval.layout import predictions_path
from biotune.io import read_json
from biotune.sweep import runner
from biotune.sweep.agreement import Level, LevelAgreement, SetAgreement, Verdict, compare_levels
from biotune.sweep.results import SCALE, CellResult, load_example_stats, report_sets
from biotune.sweep.state import CellState
from biotune.train import metric_names as names

log = logging.getLogger("proxy_agreement")

BASE_CONFIG = REPO / "configs" / "train" / "synthetic_probes.yaml"
EVAL_SET = "synthetic_re/test"
#: The scale factors of the variants: the relation weight times f against NER's 1 (the base: 1:1, a 50% share),
#: so a share of f / (1 + f): 5, 10, 20, 30, 70 and 90%.
FACTORS = (0.05, 0.11, 0.25, 0.43, 2.33, 9.0)
TARGET_MODEL = {"hidden_size": 128, "num_layers": 2}
SMALL_MODEL = {"hidden_size": 48, "num_layers": 2}
PRETRAIN_STEPS = 250
PRETRAIN_BATCH = 32
PRETRAIN_LR = 3e-3
LORA_LR = 1e-2
LORA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TARGET = "target"
SABOTAGED = "sabotaged"
#: The sabotaged proxy's learning rate: 0 is refused by the config (optim.lr must be > 0); 1e-9 moves no weight
#: far enough to change a prediction.
SABOTAGED_LR = 1e-9
#: The targets of the study.
RHO_TARGET = 0.8
COST_TARGET = 0.30
GRADED_MARGIN = 5.0  # points inside the target's worst and best


# ------------------------------------------------------------------------------------------- set-up


def training_sentences(corpus: Path) -> list[str]:
    """The raw training sentences of both synthetic corpora (NER tokens joined; relation sentences as written)."""
    out = []
    for block in (corpus / "synthetic_ner" / "train.tsv").read_text(encoding="utf-8").split("\n\n"):
        tokens = [line.split("\t")[0] for line in block.splitlines() if line.strip()]
        if tokens:
            out.append(" ".join(tokens))
    lines = (corpus / "synthetic_re" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    out += [line.split("\t")[1] for line in lines if line.strip()]
    return out


def pretrain(init_dir: Path, out_dir: Path, sentences: Sequence[str], seed: int = 0) -> dict[str, float]:
    """Train ``init_dir``'s random Llama as a plain language model on ``sentences``; save it to ``out_dir``.

    AdamW, ``PRETRAIN_STEPS`` steps of ``PRETRAIN_BATCH`` sentences, linear warmup (20 steps) then linear decay.
    Returns the first and last losses and the seconds taken.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(init_dir)
    model = AutoModelForCausalLM.from_pretrained(init_dir)
    opt = torch.optim.AdamW(model.parameters(), lr=PRETRAIN_LR, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 20) * max(0.05, 1 - s / PRETRAIN_STEPS)
    )
    rng = random.Random(f"pretrain:{seed}")
    start, losses = time.perf_counter(), []
    model.train()
    for _ in range(PRETRAIN_STEPS):
        enc = tok([s + tok.eos_token for s in rng.sample(list(sentences), PRETRAIN_BATCH)], return_tensors="pt",
                  padding=True)  # fmt: skip
        labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
        loss = model(**enc, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    (out_dir / "generation_config.json").write_text((init_dir / "generation_config.json").read_text())
    return {
        "loss_first": losses[0],
        "loss_last10": sum(losses[-10:]) / 10,
        "seconds": time.perf_counter() - start,
    }


def n_params(model_dir: Path) -> int:
    """Parameters of a saved model (tied embeddings counted once)."""
    from transformers import AutoModelForCausalLM

    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model_dir).parameters())


def make_bases(work: Path) -> tuple[Path, Path, Path, dict[str, Any]]:
    """The corpus and the two pretrained bases (made once; reused when present): (corpus, target, small, info)."""
    from biotune.data import synthetic
    from biotune.testing.tiny import make_tiny_llama

    corpus = work / "corpus"
    if not (corpus / "synthetic_re" / "test.tsv").is_file():
        synthetic.write_corpora(corpus, n_train=2000, n_test=200, seed=0)
    texts = synthetic.probe_texts(corpus)
    sentences = training_sentences(corpus)
    info: dict[str, Any] = {"pretrain_sentences": len(sentences)}
    paths = {}
    for name, shape in (("target", TARGET_MODEL), ("small", SMALL_MODEL)):
        init, done = work / "models" / f"{name}_init", work / "models" / name
        if not (done / "config.json").is_file():
            make_tiny_llama(init, texts, vocab_size=2000, num_heads=4, tie_embeddings=True, **shape)
            info[f"pretrain_{name}"] = pretrain(init, done, sentences)
        info[f"params_{name}"] = n_params(done)
        paths[name] = done
    vocab = [json.loads((paths[n] / "tokenizer.json").read_text())["model"] for n in ("target", "small")]
    if vocab[0] != vocab[1]:
        raise SystemExit("the small and target models' tokenizers differ: they must be one family")
    info["param_ratio"] = info["params_small"] / info["params_target"]
    if info["param_ratio"] > 0.25:
        raise SystemExit(f"the small model has {info['param_ratio']:.0%} of the target's parameters (> 25%)")
    return corpus, paths["target"], paths["small"], info


# ------------------------------------------------------------------------------------------- sweeps


def fidelity_overrides(small: Path, steps: int) -> dict[str, list[str]]:
    """Each fidelity's overrides on top of the common ones (their order is the run order, longest first)."""
    short = max(1, steps // 4)
    return {
        TARGET: [],
        "lora": [
            "train.lora.rank=8",
            "train.lora.alpha=16",
            "train.lora.dropout=0.05",
            f"train.lora.target_modules=[{','.join(LORA_MODULES)}]",
            f"optim.lr={LORA_LR}",
        ],
        "small": [f"model.name_or_path={small}"],
        "short": [f"train.max_steps={short}", f"optim.warmup_steps={max(1, short // 20)}"],
        SABOTAGED: [
            f"train.max_steps={short}",
            f"optim.warmup_steps={max(1, short // 20)}",
            f"optim.lr={SABOTAGED_LR}",
        ],
    }


def common_overrides(corpus: Path, target: Path, steps: int) -> list[str]:
    """What every cell of every fidelity shares: data, base model, steps, evaluation."""
    return [
        f"data.root={corpus}",
        f"model.name_or_path={target}",
        "data.sources.synthetic_ner.epochs=0.5",
        "data.sources.synthetic_re.epochs=0.5",
        f"train.max_steps={steps}",
        f"optim.warmup_steps={max(1, steps // 20)}",
        f"train.save_every={10 * steps}",
        "train.log_every=5",
        "eval.sources=[synthetic_re]",
        "eval.max_new_tokens=8",
        "eval.max_examples=200",
        "tracking.wandb_mode=disabled",
    ]


def write_sweep(path: Path, fidelity: str, overrides: list[str]) -> Path:
    """One ordinary sweep file: the same scale axis for every fidelity, the fidelity as its overrides."""
    body = {
        "name": f"proxy-agreement-{fidelity}",
        "base": str(BASE_CONFIG),
        "overrides": overrides,
        "budget": "fixed_samples",
        "seeds": [0],
        "controls": False,
        "keep": "predictions",
        "axes": [{"type": "scale", "over": "source", "target": "synthetic_re", "factors": list(FACTORS)}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


def run_sweep(sweep_file: Path, out: Path, log_file: Path) -> tuple[int, float]:
    """``biotune sweep run SWEEP --local --nproc 1``; returns (exit code, wall seconds)."""
    start = time.perf_counter()
    with log_file.open("w", encoding="utf-8") as fh:
        cmd = [
            sys.executable,
            "-m",
            "biotune.cli",
            "sweep",
            "run",
            str(sweep_file),
            "--local",
            "--nproc",
            "1",
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        code = subprocess.run(
            [*cmd, "--out", str(out)], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False
        ).returncode
    return code, time.perf_counter() - start


def fidelity_sweeps(
    work: Path, corpus: Path, target: Path, small: Path, steps: int, workers: int
) -> dict[str, Path]:
    """Write and run one sweep per fidelity (``workers`` at a time); returns fidelity -> sweep directory."""
    common = common_overrides(corpus, target, steps)
    jobs = {
        fid: (write_sweep(work / "sweeps" / f"{fid}.yaml", fid, [*common, *extra]), work / "sweeps" / fid)
        for fid, extra in fidelity_overrides(small, steps).items()
    }
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            fid: pool.submit(run_sweep, f, out, work / "sweeps" / f"{fid}.log")
            for fid, (f, out) in jobs.items()
        }
        for fid, fut in futures.items():
            code, wall = fut.result()
            print(f"sweep {fid}: exit {code} in {wall:.0f}s", flush=True)
            if code != 0:
                raise SystemExit(f"sweep {fid} failed (exit {code}); see {work / 'sweeps' / f'{fid}.log'}")
    return {fid: out for fid, (_, out) in jobs.items()}


# ------------------------------------------------------------------------------------------- levels and costs


@dataclass(frozen=True)
class CellCost:
    """A cell's training cost from its own records, in process-seconds."""

    stage_s: float
    """The training stage's wall seconds x processes (``state.json``)."""
    steps_s: float
    """The optimizer steps' seconds x processes (the trainer's windows in ``metrics.jsonl``)."""
    flops: float
    """Training FLOPs: tokens x the trainer's FLOPs per token (``perf/mfu`` x peak / tokens per s per device;
    LoRA counts only the adapter's weight gradients). Load-free, unlike the seconds; printed beside them."""


def cell_cost(cell_dir: Path, nproc: int = 1) -> CellCost:
    """The cost of one done cell (see :class:`CellCost`)."""
    state = read_json(cell_dir / "state.json", "re-run the cell")
    steps_s, flops, prev = 0.0, 0.0, 0.0
    for line in (cell_dir / runner.TRAIN_DIR / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if names.PERF_TOKENS_PER_S in rec:
            tokens = rec[names.TRAIN_TOKENS]
            steps_s += (tokens - prev) / rec[names.PERF_TOKENS_PER_S]
            per_token = rec[names.PERF_MFU] * rec[names.PERF_PEAK_TFLOPS] * 1e12
            flops += (tokens - prev) * per_token / rec[names.PERF_TOKENS_PER_S_PER_DEVICE]
            prev = tokens
    return CellCost(float(state["train_seconds"]) * nproc, steps_s * nproc, flops)


def levels(cells: Mapping[str, Iterable[CellResult]]) -> tuple[dict[str, Level], str]:
    """One :class:`Level` per fidelity from its done cells' predictions; returns (levels, base variant).

    ``cells``: fidelity -> its cells (today each fidelity's sweep; with a ``fidelities:`` sweep, its cells
    grouped by ``CellResult.fidelity``). Raises SystemExit when a cell is not done.
    """
    out: dict[str, Level] = {}
    base = ""
    for fid, fid_cells in cells.items():
        arms: dict[str, dict[str, list[Any]]] = {}
        for c in fid_cells:
            if c.state != CellState.DONE or c.eval_dir is None:
                raise SystemExit(f"cell {c.name} of {fid} is {c.state}; see {c.log_path}")
            if c.is_base:
                base = c.variant
            for name, info in report_sets(c).items():
                ex = load_example_stats(predictions_path(c.eval_dir, info.source, info.split), info.reducer)
                arms.setdefault(c.variant, {}).setdefault(name, []).append(ex)
        out[fid] = Level(fid, arms, key=f"fidelity {fid}")
    return out, base


def scores(cells: Iterable[CellResult]) -> dict[str, float]:
    """Variant -> its headline score on ``EVAL_SET`` (percent), from the report."""
    out = {}
    for c in cells:
        assert c.eval_dir is not None
        rows = read_json(c.eval_dir / "report.json", "re-run the cell")["rows"]
        out[c.variant] = next(float(r["score"]) for r in rows if f"{r['source']}/{r['split']}" == EVAL_SET)
    return out


# ------------------------------------------------------------------------------------------- report


def _ci(x: Any, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    if not math.isfinite(x.estimate):
        return "n/a"
    f = fmt.format
    return f"{f(scale * x.estimate)} [{f(scale * x.ci_low)}, {f(scale * x.ci_high)}]"


def one_set(result: LevelAgreement) -> SetAgreement:
    """The agreement on ``EVAL_SET`` (SystemExit, with the reason, when it was skipped)."""
    for s in result.sets:
        if s.eval_set == EVAL_SET:
            return s
    raise SystemExit(f"no agreement on {EVAL_SET} for {result.proxy}: {result.skipped}")


def summary_rows(
    results: Mapping[str, SetAgreement], costs: Mapping[str, list[CellCost]]
) -> list[dict[str, Any]]:
    """One JSON-ready row per proxy."""
    t_stage = sum(c.stage_s for c in costs[TARGET])
    t_steps = sum(c.steps_s for c in costs[TARGET])
    rows = []
    for fid, s in results.items():
        rows.append(
            {
                "proxy": fid,
                "rho": s.spearman.estimate,
                "rho_ci": [s.spearman.ci_low, s.spearman.ci_high],
                "tau": s.kendall.estimate,
                "tau_ci": [s.kendall.ci_low, s.kendall.ci_high],
                "pairwise": None if math.isnan(s.pairwise.estimate) else s.pairwise.estimate,
                "pairwise_ci": [s.pairwise.ci_low, s.pairwise.ci_high],
                "separated_pairs": len(s.separated),
                "pairs": s.n_pairs,
                "top_proxy": s.top_proxy,
                "top_target": s.top_target,
                "top_agrees": s.top_agrees,
                "top_agree_share": s.top_agree_share,
                "regret_points": SCALE * s.regret.estimate,
                "verdict": s.verdict.value,
                "cost_ratio_steps": sum(c.steps_s for c in costs[fid]) / t_steps,
                "cost_ratio_stage": sum(c.stage_s for c in costs[fid]) / t_stage,
                "cost_ratio_flops": sum(c.flops for c in costs[fid]) / sum(c.flops for c in costs[TARGET]),
                "n_variants": s.n_variants,
                "n_units": s.n_units,
                "seeds": list(s.min_seeds),
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]], table: dict[str, dict[str, float]], deltas: dict[str, Any]) -> str:
    """The printed tables: per-variant scores at each level, then the agreement per proxy."""
    fids = list(table)
    variants = list(table[TARGET])
    lines = [
        f"Scores on {EVAL_SET} (micro-F1, %), one seed per cell; Δ vs the base at the target with its 95% CI:",
        "",
        "| variant | relation share | " + " | ".join(fids) + " | target Δ [95% CI] |",
        "|---|---|" + "---|" * len(fids) + "---|",
    ]
    for v in variants:
        share = relation_share(_factor(v))
        d = deltas.get(v)
        lines.append(
            f"| {v} | {share:.0%} | "
            + " | ".join(f"{table[f][v]:.1f}" for f in fids)
            + f" | {_ci(d, SCALE, '{:+.1f}') if d is not None else '(base)'} |"
        )
    lines += [
        "",
        "| proxy | ρ [95% CI] | τ [95% CI] | pairwise [95% CI] (separated pairs) | top agrees (share) | verdict "
        "| cost: steps | cost: stage | cost: FLOPs | n variants | n units | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pw = "n/a" if r["pairwise"] is None else (
            f"{r['pairwise']:.2f} [{r['pairwise_ci'][0]:.2f}, {r['pairwise_ci'][1]:.2f}]"
        )  # fmt: skip
        lines.append(
            f"| {r['proxy']} | {r['rho']:.2f} [{r['rho_ci'][0]:.2f}, {r['rho_ci'][1]:.2f}] | "
            f"{r['tau']:.2f} [{r['tau_ci'][0]:.2f}, {r['tau_ci'][1]:.2f}] | {pw} ({r['separated_pairs']}/"
            f"{r['pairs']}) | {'yes' if r['top_agrees'] else 'no'} ({r['top_agree_share']:.2f}) | "
            f"{r['verdict']} | {r['cost_ratio_steps']:.2f} | {r['cost_ratio_stage']:.2f} | {r['cost_ratio_flops']:.2f} | "
            f"{r['n_variants']} | "
            f"{r['n_units']} | {r['seeds'][0]} |"
        )
    lines += [
        "",
        "One training seed per cell: every interval is over the test examples only, conditional on these trained "
        "models (the seed-to-seed variance is not in it).",
    ]
    return "\n".join(lines)


def _factor(variant: str) -> float:
    """The scale factor in a variant's name (1 for the base)."""
    try:
        return float(variant.rsplit("-", 1)[-1].replace("x", ""))
    except ValueError:
        return 1.0


def relation_share(factor: float) -> float:
    """The relation share of a variant with scale factor ``factor`` (the base mixture is 1:1)."""
    return factor / (1.0 + factor)


def graded(target_scores: Mapping[str, float]) -> tuple[bool, int]:
    """Whether the target's scores are graded: at least two variants strictly inside (worst, best) by the margin."""
    lo, hi = min(target_scores.values()), max(target_scores.values())
    inside = sum(1 for s in target_scores.values() if lo + GRADED_MARGIN < s < hi - GRADED_MARGIN)
    return inside >= 2, inside


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study; prints the tables and one JSON object as the last line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "runs" / "bench" / "proxy_agreement"), help="work directory")
    p.add_argument("--steps", type=int, default=300, help="the target's optimizer steps (default 300)")
    p.add_argument("--workers", type=int, default=2, help="sweeps run at a time (default 2)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    work = Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)

    corpus, target, small, info = make_bases(work)
    print(f"bases: {json.dumps(info)} ({time.perf_counter() - start:.0f}s)", flush=True)
    sweep_dirs = fidelity_sweeps(work, corpus, target, small, args.steps, args.workers)
    cells = {fid: runner.cell_results(runner.from_dir(d)) for fid, d in sweep_dirs.items()}
    lvls, base = levels(cells)
    costs = {fid: [cell_cost(runner.from_dir(sweep_dirs[fid]).cell_dir(c.name)) for c in cs]
             for fid, cs in cells.items()}  # fmt: skip
    results = {
        fid: one_set(compare_levels(lvl, lvls[TARGET], base=base, n_boot=args.n_boot, seed=0))
        for fid, lvl in lvls.items()
        if fid != TARGET
    }
    rows = summary_rows(results, costs)
    table = {fid: scores(cs) for fid, cs in cells.items()}
    first = next(iter(results.values()))
    deltas = dict(zip(first.variants, first.target_delta, strict=True))
    print(markdown(rows, table, deltas), flush=True)

    is_graded, inside = graded(table[TARGET])
    ok_proxy = any(
        r["proxy"] != SABOTAGED and r["rho"] >= RHO_TARGET and r["cost_ratio_steps"] <= COST_TARGET
        for r in rows
    )
    ok_sabotage = all(r["verdict"] != Verdict.AGREES.value for r in rows if r["proxy"] == SABOTAGED)
    emit(
        {
            "benchmark": "proxy_agreement",
            "eval_set": EVAL_SET,
            "base": base,
            "variants": list(table[TARGET]),
            "proxies": rows,
            "scores": table,
            "target_graded": is_graded,
            "target_inside_variants": inside,
            "ok_proxy": ok_proxy,
            "ok_sabotage": ok_sabotage,
            "conditional_on_trained_models": True,
            "config": {
                "steps": args.steps,
                "factors": list(FACTORS),
                "relation_shares": [relation_share(f) for f in FACTORS],
                "fidelity_overrides": fidelity_overrides(small, args.steps),
                "common_overrides": common_overrides(corpus, target, args.steps),
                "base_config": str(BASE_CONFIG.relative_to(REPO)),
                "nproc": 1,
                "workers": args.workers,
                "n_boot": args.n_boot,
                **info,
            },
            "costs_process_seconds": {
                fid: {
                    "stage": sum(c.stage_s for c in cs),
                    "steps": sum(c.steps_s for c in cs),
                    "flops": sum(c.flops for c in cs),
                }
                for fid, cs in costs.items()
            },
            "seconds": time.perf_counter() - start,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
