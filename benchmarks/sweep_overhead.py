"""The sweep machinery's overhead per variant over a bare train + eval, data-cache reuse, and ``collect`` time.

    .venv/bin/python benchmarks/sweep_overhead.py [--pairs 5] [--max-steps 8] [--eval-max-examples 2]
        [--collect-sizes 50,100,250,500] [--n-boot 1000]

Everything runs on the tiny random Llama (``biotune.testing.tiny.make_sample_llama``) with
``configs/train/demo.yaml`` on the bundled sample, shortened by overrides (``train.max_steps``,
``eval.max_examples``, ``eval.max_new_tokens``) so that one train + eval takes tens of seconds. Every
command is ``python -m biotune.cli`` of this checkout, run from the repository root with the same environment.

1. Overhead, two arms run interleaved after one unmeasured warm-up sweep, in pairs whose order alternates
   (sweep, bare, bare, sweep, sweep, bare, ...: a drift in the machine's load falls on both arms alike):

   * **sweep**: ``biotune sweep run SWEEP.yaml --local --out DIR model.name_or_path=M <overrides>`` for a
     one-variant sweep file (``axes: []``: the base alone), a fresh ``DIR`` each time; the wall time of the
     whole command (start-up, ``load_sweep``, ``count_available``, expansion, ``prepare``, the cell's
     data/train/eval/finish stages, state files);
   * **bare**: the same work with the plain commands on the same resolved config (the ``config.yaml`` the
     warm-up sweep wrote for its cell, with train/eval/data output directories pointed at a fresh directory
     by overrides): ``biotune data build CFG``, ``bash launch/torchrun.sh CFG``, ``biotune eval CFG``; the
     wall time of the three commands.

   Reported: each pair's wall seconds and ratio, the median overhead (sweep / bare - 1; target <= 3 %), the
   same for the CPU seconds of each arm's process tree (user + system of the waited-for descendants: a busy
   shared machine slows the wall time of either arm by tens of percent, the CPU time much less), and where
   the difference goes: the sweep's stage seconds (its cell's ``state.json``) against the bare commands', the
   sweep's front end (its wall time minus its stages; as a share of the bare time it is the systematic part
   of the overhead, which the stages' run-to-run noise on a shared machine does not blur), and that front end
   timed piece by piece in fresh interpreters (imports, ``load_sweep``, overrides, ``count_available``,
   expansion, ``prepare``, the launch environment; the number and time of ``config.load`` calls).
2. Cache reuse: a sweep whose values axis changes only ``optim.lr`` (the base plus two values: three variants,
   one realised mixture) runs end to end (2 steps, evaluated on one source); the data directories holding a
   ``manifest.json`` under ``<out>/data/`` are the builds, against the variants.
3. ``collect`` time as a function of size, on the synthetic per-example predictions that
   ``benchmarks/sweep_collect.py`` writes (its ``make_cells`` is imported: 20 evaluation sets per cell);
   ``--collect-sizes ''`` skips it (``sweep_collect.py`` then covers it, with the figures).

Prints the pairs, the breakdown and a summary, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _common import REPO, emit

BASE_CONFIG = REPO / "configs" / "train" / "demo.yaml"
TARGET = 0.03
STAGE_NAMES = ("data", "train", "eval")

# The front end of `biotune sweep run --local`, step by step as cli._run / runner.load / runner.run_local /
# runner.run_cell do it before the first stage starts, in a fresh interpreter (cold imports, as in the real run).
_FRONT = r"""
import json, sys, time
from pathlib import Path
t = time.perf_counter
out, loads, torch_by = {}, {}, []
def step(name, fn):
    s = t()
    result = fn()
    out[name] = t() - s
    if "torch" in sys.modules and not torch_by:
        torch_by.append(name)
    return result
def cli():  # what `python -m biotune.cli sweep run` imports: the sweep command's module registers its parser
    import biotune.cli
    biotune.cli.build_parser(["sweep"])
    from biotune.sweep import runner, variants
    return runner, variants
runner, vr = step("cli_imports_and_parser", cli)
from biotune import config
real_load = config.load
def counted(*a, **k):
    s = t(); r = real_load(*a, **k); key = current[0]; loads[key] = loads.get(key, 0) + 1
    load_s[key] = load_s.get(key, 0.0) + t() - s; return r
current, load_s = [""], {}
config.load = counted
def timed(name, fn):
    current[0] = name
    return step(name, fn)
sweep_yaml, sweep_out, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
spec = timed("load_sweep", lambda: runner.load_sweep(sweep_yaml))
spec = timed("with_overrides", lambda: runner.with_overrides(spec, overrides))
available = timed("count_available", lambda: vr.count_available(spec))
variants = timed("expand", lambda: vr.expand(spec, available, None))
cells = vr.cells(spec, variants)
sweep = runner.Sweep(spec, Path(sweep_yaml).resolve(), Path(sweep_out).resolve(), variants, cells, tuple(overrides))
timed("prepare", lambda: (runner.prepare(sweep), runner.select(sweep)))
timed("launch_env", lambda: runner._env(None))
out["config_loads"] = loads
out["config_load_seconds"] = load_s
out["torch_imported_by"] = torch_by[0] if torch_by else None
print(json.dumps(out))
"""


def _env() -> dict[str, str]:
    """One environment for every command of both arms: this checkout first on the path, CPU, offline."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for key, value in (
        ("WANDB_MODE", "offline"),
        ("TOKENIZERS_PARALLELISM", "false"),
        ("PYTHONUNBUFFERED", "1"),
    ):
        env.setdefault(key, value)
    try:
        import torch

        if not torch.cuda.is_available():
            env.setdefault("DS_ACCELERATOR", "cpu")
    except ImportError:
        env.setdefault("DS_ACCELERATOR", "cpu")
    return env


def _cpu() -> float:
    """User + system CPU seconds of every finished (and waited-for) descendant of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str], log: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd`` from the repository root with its output appended to ``log``: wall and CPU seconds (the
    CPU time of its whole process tree, which a busy shared machine inflates far less than the wall time)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        cpu, start = _cpu(), time.perf_counter()
        code = subprocess.run(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
        seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise SystemExit(f"{' '.join(cmd)} exited {code}; log {log}:\n{tail}")
    return seconds, cpu


def _sweep_file(path: Path, axes: list[dict[str, Any]], name: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "base": str(BASE_CONFIG),
                "budget": "fixed_samples",
                "controls": False,
                "axes": axes,
            }
        )
    )
    return path


def _only_cell(out: Path) -> Path:
    cells = sorted((out / "cells").iterdir())
    if len(cells) != 1:
        raise SystemExit(f"expected one cell under {out / 'cells'}, found {[c.name for c in cells]}")
    return cells[0]


def run_sweep(
    py: list[str], sweep_yaml: Path, out: Path, overrides: list[str], env: dict[str, str], log: Path
) -> dict[str, Any]:
    """The sweep arm: the whole ``sweep run --local`` command; its seconds and the cell's stage seconds."""
    seconds, cpu = _run(
        [*py, "sweep", "run", str(sweep_yaml), "--local", "--out", str(out), *overrides], log, env
    )
    state = json.loads((_only_cell(out) / "state.json").read_text())
    if state.get("state") != "done":
        raise SystemExit(f"sweep cell not done: {state}")
    stages = {s: float(state[f"{s}_seconds"]) for s in STAGE_NAMES}
    return {"seconds": seconds, "cpu": cpu, "stages": stages, "front_end": seconds - sum(stages.values())}


def run_bare(py: list[str], cfg: Path, out: Path, env: dict[str, str], log: Path) -> dict[str, Any]:
    """The bare arm: data build, torchrun training and eval of the cell's config, outputs under ``out``."""
    dirs = [
        f"train.output_dir={out / 'train'}",
        f"eval.output_dir={out / 'eval'}",
        f"data.out_dir={out / 'data'}",
    ]
    commands = {
        "data": [*py, "data", "build", str(cfg), *dirs],
        "train": ["bash", str(REPO / "launch" / "torchrun.sh"), str(cfg), *dirs],
        "eval": [*py, "eval", str(cfg), *dirs],
    }
    runs = {stage: _run(cmd, log, env) for stage, cmd in commands.items()}
    if not (out / "eval" / "report.json").is_file():
        raise SystemExit(f"bare eval wrote no report under {out / 'eval'}")
    stages = {stage: wall for stage, (wall, _) in runs.items()}
    return {"seconds": sum(stages.values()), "cpu": sum(cpu for _, cpu in runs.values()), "stages": stages}


def front_end(
    py_exe: str, sweep_yaml: Path, tmp: Path, overrides: list[str], env: dict[str, str], reps: int
) -> dict[str, Any]:
    """The sweep front end piece by piece, median over ``reps`` fresh interpreters (plus the bare start-up)."""
    runs, walls, starts = [], [], []
    for i in range(reps):
        start = time.perf_counter()
        res = subprocess.run(
            [py_exe, "-c", _FRONT, str(sweep_yaml), str(tmp / f"front{i}"), *overrides],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        walls.append(time.perf_counter() - start)
        if res.returncode != 0:
            raise SystemExit(f"front-end probe failed:\n{res.stderr[-3000:]}")
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        start = time.perf_counter()
        subprocess.run([py_exe, "-c", "pass"], cwd=REPO, env=env, check=True)
        starts.append(time.perf_counter() - start)
    extra = ("config_loads", "config_load_seconds", "torch_imported_by")
    pieces = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0] if k not in extra}
    pieces["interpreter_start"] = round(statistics.median(starts), 3)
    load_s = {
        k: round(statistics.median(r["config_load_seconds"].get(k, 0.0) for r in runs), 3)
        for k in runs[0]["config_load_seconds"]
    }
    return {
        "pieces_seconds": pieces,
        "probe_wall_seconds": round(statistics.median(walls), 3),
        "torch_imported_by": runs[0]["torch_imported_by"],
        "config_loads": runs[0]["config_loads"],
        "config_load_seconds": load_s,
        "config_load_seconds_total": round(sum(load_s.values()), 3),
    }


def cache_reuse(
    py: list[str], model: Path, tmp: Path, env: dict[str, str], quick: list[str]
) -> dict[str, Any]:
    """Three variants that differ only in ``optim.lr``: how many data builds the sweep makes."""
    sweep_yaml = _sweep_file(
        tmp / "cache.yaml",
        [{"type": "values", "key": "optim.lr", "values": [1.0e-3, 2.0e-3]}],
        "overhead-cache",
    )
    out = tmp / "cache"
    seconds, _ = _run(
        [
            *py,
            "sweep",
            "run",
            str(sweep_yaml),
            "--local",
            "--out",
            str(out),
            f"model.name_or_path={model}",
            *quick,
        ],
        tmp / "logs" / "cache.log",
        env,
    )
    index = json.loads((out / "sweep.json").read_text())
    builds = sorted(p.parent.name for p in (out / "data").glob("*/manifest.json"))
    hits = sum(
        p.read_text(encoding="utf-8", errors="replace").count("cache hit")
        for p in (out / "cells").glob("*/cell.log")
    )
    states = {
        c: json.loads((out / "cells" / c / "state.json").read_text())["state"]
        for c in (p.name for p in (out / "cells").iterdir())
    }
    return {
        "variants": len(index["variants"]),
        "cells": len(index["cells"]),
        "distinct_content_hashes": len({v["content_hash"] for v in index["variants"]}),
        "builds": len(builds),
        "build_dirs": builds,
        "cache_hit_lines": hits,
        "cell_states": states,
        "seconds": round(seconds, 1),
    }


def collect_timing(tmp: Path, sizes: list[int], n_boot: int, seed: int) -> dict[str, Any]:
    """``collect`` (no plots) on the base and the first N synthetic variants of sweep_collect.py, each size."""
    from sweep_collect import SOURCES, make_cells

    from biotune.sweep.collect import collect

    start = time.perf_counter()
    cells = make_cells(tmp / "collect" / "cells", sizes[-1], seed)
    write_s = time.perf_counter() - start
    timings = {}
    for size in sizes:
        start = time.perf_counter()
        collect(cells[: size + 1], tmp / "collect" / f"out{size}", n_boot=n_boot, seed=seed, plots=False)
        timings[size] = time.perf_counter() - start
        print(
            f"collect {size:>4} variants x {len(SOURCES)} sets: {timings[size]:6.2f} s "
            f"({1000 * timings[size] / size:.1f} ms per variant)",
            flush=True,
        )
    linearity = (timings[sizes[-1]] / sizes[-1]) / (timings[sizes[0]] / sizes[0])
    return {
        "source": "benchmarks/sweep_collect.py make_cells (imported) + biotune.sweep.collect.collect",
        "sets": len(SOURCES),
        "n_boot": n_boot,
        "write_seconds": round(write_s, 2),
        "seconds": {str(k): round(v, 3) for k, v in timings.items()},
        "seconds_per_variant": {str(k): round(v / k, 5) for k, v in timings.items()},
        "linearity_ratio": round(linearity, 3),
        "largest_under_60s": timings[sizes[-1]] < 60.0,
    }


def main() -> None:
    """Warm up, run the pairs interleaved, probe the front end, the cache sweep and collect; print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="sweep/bare pairs, interleaved (default 5)")
    parser.add_argument("--max-steps", type=int, default=8, help="train.max_steps (default 8)")
    parser.add_argument("--eval-max-examples", type=int, default=2, help="eval.max_examples (default 2)")
    parser.add_argument("--eval-max-new-tokens", type=int, default=16)
    parser.add_argument(
        "--front-reps", type=int, default=3, help="fresh interpreters for the front-end probe"
    )
    parser.add_argument("--collect-sizes", default="50,100,250,500", help="'' skips the collect timing")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (printed)")
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    logging.basicConfig(level=logging.WARNING)
    env = _env()
    py = [sys.executable, "-m", "biotune.cli"]
    tmp = Path(tempfile.mkdtemp(prefix="biotune-sweep-overhead-"))
    try:
        from biotune.testing.tiny import make_sample_llama

        model = make_sample_llama(tmp / "model")
        overrides = [
            f"model.name_or_path={model}",
            f"train.max_steps={args.max_steps}",
            f"eval.max_examples={args.eval_max_examples}",
            f"eval.max_new_tokens={args.eval_max_new_tokens}",
        ]
        sweep_yaml = _sweep_file(tmp / "one.yaml", [], "overhead")
        logs = tmp / "logs"

        print("warm-up sweep (unmeasured) ...", flush=True)
        warm = run_sweep(py, sweep_yaml, tmp / "warmup", overrides, env, logs / "warmup.log")
        cfg = tmp / "cell_config.yaml"
        shutil.copy(_only_cell(tmp / "warmup") / "config.yaml", cfg)
        print(f"  {warm['seconds']:.1f} s; the bare arm runs its cell's config {cfg}", flush=True)

        pairs = []
        for i in range(args.pairs):
            first = "sweep" if i % 2 == 0 else "bare"  # alternate which arm goes first: drift cancels
            if first == "bare":
                b = run_bare(py, cfg, tmp / f"bare{i}", env, logs / f"bare{i}.log")
            s = run_sweep(py, sweep_yaml, tmp / f"sweep{i}", overrides, env, logs / f"sweep{i}.log")
            if first == "sweep":
                b = run_bare(py, cfg, tmp / f"bare{i}", env, logs / f"bare{i}.log")
            ratio = s["seconds"] / b["seconds"] - 1
            cpu_ratio = s["cpu"] / b["cpu"] - 1
            pairs.append(
                {
                    "first": first,
                    "sweep_seconds": round(s["seconds"], 2),
                    "bare_seconds": round(b["seconds"], 2),
                    "overhead": round(ratio, 4),
                    "sweep_cpu_seconds": round(s["cpu"], 2),
                    "bare_cpu_seconds": round(b["cpu"], 2),
                    "cpu_overhead": round(cpu_ratio, 4),
                    "sweep_stage_seconds": s["stages"],
                    "sweep_front_end_seconds": round(s["front_end"], 2),
                    "bare_stage_seconds": {k: round(v, 2) for k, v in b["stages"].items()},
                }
            )
            print(
                f"pair {i} ({first} first): sweep {s['seconds']:6.1f} s  bare {b['seconds']:6.1f} s  "
                f"overhead {100 * ratio:+5.1f} %  | CPU sweep {s['cpu']:.1f} s bare {b['cpu']:.1f} s "
                f"overhead {100 * cpu_ratio:+5.1f} %  | sweep stages {s['stages']} front end {s['front_end']:.1f} s"
                f" | bare stages { {k: round(v, 1) for k, v in b['stages'].items()} }",
                flush=True,
            )
        median = statistics.median(p["overhead"] for p in pairs)
        cpu_median = statistics.median(p["cpu_overhead"] for p in pairs)
        med = {
            "sweep_seconds": statistics.median(p["sweep_seconds"] for p in pairs),
            "bare_seconds": statistics.median(p["bare_seconds"] for p in pairs),
            "sweep_cpu_seconds": statistics.median(p["sweep_cpu_seconds"] for p in pairs),
            "bare_cpu_seconds": statistics.median(p["bare_cpu_seconds"] for p in pairs),
            "sweep_front_end_seconds": statistics.median(p["sweep_front_end_seconds"] for p in pairs),
            **{
                f"stage_{k}_sweep_minus_bare_seconds": round(
                    statistics.median(
                        p["sweep_stage_seconds"][k] - p["bare_stage_seconds"][k] for p in pairs
                    ),
                    2,
                )
                for k in STAGE_NAMES
            },
        }
        med["front_end_share_of_bare"] = round(med["sweep_front_end_seconds"] / med["bare_seconds"], 4)
        print(
            f"median overhead: wall {100 * median:+.1f} %, CPU {100 * cpu_median:+.1f} %, front end "
            f"{100 * med['front_end_share_of_bare']:.1f} % of the bare time (target <= {100 * TARGET:.0f} %); "
            f"medians {med}",
            flush=True,
        )

        print("front end of `sweep run` piece by piece (fresh interpreters) ...", flush=True)
        front = front_end(sys.executable, sweep_yaml, tmp, overrides, env, args.front_reps)
        print(f"  {front}", flush=True)

        print("cache reuse: values axis over optim.lr (3 variants, identical data) ...", flush=True)
        quick = [
            "train.max_steps=2",
            "train.save_every=2",
            "eval.max_examples=1",
            "eval.max_new_tokens=4",
            "eval.sources=[gad]",
        ]
        cache = cache_reuse(py, model, tmp, env, quick)
        print(
            f"  builds {cache['builds']} for {cache['variants']} variants ({cache['cache_hit_lines']} cache-hit "
            f"lines; states {cache['cell_states']})",
            flush=True,
        )

        sizes = sorted(int(s) for s in args.collect_sizes.split(",") if s.strip())
        collect_result = (
            collect_timing(tmp, sizes, args.n_boot, args.seed)
            if sizes
            else {"skipped": "benchmarks/sweep_collect.py covers collect time vs size"}
        )

        emit(
            {
                "benchmark": "sweep_overhead",
                "config": {
                    "base": str(BASE_CONFIG.relative_to(REPO)),
                    "model": "make_sample_llama",
                    "overrides": overrides[1:],
                    "pairs": args.pairs,
                    "order": "pairs interleaved, first arm alternating (sweep first in pair 0)",
                    "sweep_axes": "[] (base only)",
                    "cpus": os.cpu_count(),
                },
                "overhead": {
                    "median": round(median, 4),
                    "cpu_median": round(cpu_median, 4),
                    "front_end_share_of_bare": med["front_end_share_of_bare"],
                    "target": TARGET,
                    "within_target": median <= TARGET,
                    "pairs": pairs,
                    "medians": med,
                },
                "front_end": front,
                "cache_reuse": cache,
                "collect": collect_result,
            }
        )
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
