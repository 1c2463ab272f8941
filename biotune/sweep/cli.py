"""``biotune sweep plan|run|submit|status|collect|cell``: dataset-composition ablations.

    biotune sweep plan configs/sweep/medtuned_loo.yaml          # variants, samples/tokens, GPU-hours, disk, power
    biotune sweep run configs/sweep/demo.yaml --local           # every cell here, one after another
    biotune sweep submit configs/sweep/medtuned_loo.yaml --gpus-per-node 8 --max-concurrent 4   # SLURM arrays
    biotune sweep status configs/sweep/medtuned_loo.yaml        # done / running / failed (with log) / missing
    biotune sweep collect configs/sweep/medtuned_loo.yaml       # table with paired-bootstrap CIs, plots, fit
    biotune sweep collect configs/sweep/medtuned_loo.yaml --step 500   # the same at a checkpoint: results/step-500/

Re-running ``run`` or ``submit`` skips cells that are done; ``--failed`` re-runs only the failed ones. Every
command takes ``--out DIR`` (default ``runs/sweeps/<name>``), the sweep directory. A sweep whose target anchors
are chosen from a proxy's results (``fidelities:``, :mod:`biotune.sweep.stages`) runs in two stages::

    biotune sweep submit configs/sweep/medtuned_proxy.yaml                  # the proxy stage
    biotune sweep submit configs/sweep/medtuned_proxy.yaml --stage target   # anchors chosen, then run at the target
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from biotune import versions
from biotune.errors import ConfigError, Problem
from biotune.sweep import collect, collect_steps, fit, runner, slurm, stages, tables
from biotune.sweep import plan as planning
from biotune.sweep import variants as vr
from biotune.sweep.fidelity import STAGE_TARGET, STAGES, read_anchors

#: Most bootstrap resamples ``collect`` draws: each resample holds an index per resampling unit, so memory and time
#: grow with it, and a 95% interval's Monte Carlo error is already small at 10,000.
MAX_N_BOOT = 100_000


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (``--nproc -1`` is refused by the parser, naming the flag: exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number; give a positive one, e.g. 2"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}; give a positive number, e.g. 2")
    return value


def register(subparsers: Any) -> None:
    """Add the ``sweep`` command and its subcommands."""
    p = subparsers.add_parser(
        "sweep",
        help="dataset-composition ablation sweeps",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="sweep_command", required=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=help_)
        q.add_argument("sweep", help="sweep YAML, e.g. configs/sweep/demo.yaml")
        q.add_argument("--out", default=None, help="sweep directory (default runs/sweeps/<name>)")
        if name in ("plan", "run", "submit"):
            q.add_argument("overrides", nargs="*", help="key=value overrides applied to every variant")
        return q

    q = add("plan", "list the variants with their realised data, compute and disk estimates")
    q.add_argument("--json", action="store_true", help="print the rows as JSON")
    q.add_argument(
        "--gpus",
        type=positive_int,
        default=8,
        help="GPUs per cell for the GPU-hour estimate, >= 1 (default 8)",
    )
    q.add_argument(
        "--pilot",
        default=None,
        metavar="SWEEP_DIR",
        help="an earlier sweep's directory: measure the power's unit variance, correlation and seed sd from its "
        "base's (and variants') per-example predictions and per-seed scores",
    )
    q.set_defaults(func=_plan)
    q = add("run", "run the cells on this machine, one after another")
    q.add_argument("--local", action="store_true", required=True, help="run here (SLURM: use `sweep submit`)")
    q.add_argument("--failed", action="store_true", help="re-run only failed cells")
    q.add_argument(
        "--nproc",
        type=positive_int,
        default=None,
        help="training processes (default: GPUs, else launch.cpu_procs_per_node)",
    )
    q.add_argument("--collect", action="store_true", help="collect the results when every cell is done")
    _add_stage(q)
    q.set_defaults(func=_run)
    q = add("submit", "submit the cells as SLURM job arrays (returns at once)")
    q.add_argument("--failed", action="store_true", help="re-submit only failed cells")
    q.add_argument("--partition", default=None)
    q.add_argument("--data-partition", default=None, help="partition of the CPU data-build array")
    q.add_argument("--nodes", type=int, default=1, help="nodes per cell (default 1)")
    q.add_argument("--gpus-per-node", type=int, default=None)
    q.add_argument("--cpus-per-task", type=int, default=None)
    q.add_argument("--time", default=None, help="time limit per task, e.g. 24:00:00")
    q.add_argument("--max-concurrent", type=int, default=None, help="array throttle %%N")
    q.add_argument("--nproc", type=positive_int, default=None, help="training processes per node")
    _add_stage(q)
    q.set_defaults(func=_submit)
    q = add("status", "the state of every cell")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_status)
    q = add("collect", "results table with paired-bootstrap CIs, plots, and the fit for swarm axes")
    q.add_argument("--correction", choices=("holm", "bh"), default="holm")
    q.add_argument(
        "--n-boot", type=int, default=1000, help=f"bootstrap resamples, 100 to {MAX_N_BOOT:,} (default 1000)"
    )
    q.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples, >= 0 (default 0)")
    q.add_argument("--no-plots", action="store_true")
    q.add_argument(
        collect_steps.STEP_OPTION,
        type=int,
        default=None,
        help="compare the variants at this evaluated training step (eval.during_training); into results/step-N/",
    )
    q.add_argument(
        collect_steps.FRACTION_OPTION,
        type=float,
        default=None,
        help="compare the variants at the step evaluated at this fraction (0, 1] of each cell's run; into "
        "results/fraction-F/",
    )
    q.set_defaults(func=_collect)
    q = sub.add_parser("cell", help="run stages of one cell (what slurm/sweep.sh calls)")
    q.add_argument("sweep_dir")
    q.add_argument("cell")
    q.add_argument("--stage", action="append", choices=("data", "train", "eval", "finish"), default=None)
    q.add_argument("--nproc", type=positive_int, default=None)
    q.set_defaults(func=_cell)


def _add_stage(q: argparse.ArgumentParser) -> None:
    q.add_argument(
        "--stage",
        choices=STAGES,
        default=None,
        help="sweeps whose target anchors are chosen from results: 'proxy' runs what is known now; 'target' "
        "chooses the anchors from the finished proxy (written to anchors.json) and runs them (default: every "
        "cell known now)",
    )


def _staged(ns: argparse.Namespace) -> tuple[Any, list[str] | None]:
    """The sweep and the cells ``--stage`` selects (refusals before anything is written)."""

    sweep, only = stages.for_stage(_load(ns), ns.stage)
    record = read_anchors(sweep.out) if ns.stage == STAGE_TARGET else {}
    if record:
        print(stages.describe(record), flush=True)
    return sweep, only


def _load(ns: argparse.Namespace) -> Any:
    """The expanded sweep (plan/run/submit), or the one prepared in its directory (status/collect)."""

    if not hasattr(ns, "overrides"):
        spec = runner.load_sweep(ns.sweep)
        out = Path(ns.out) if ns.out else runner.default_out(spec)
        if not (out / runner.SWEEP_FILE).is_file():
            runner.require_prepared(runner.Sweep(spec, Path(ns.sweep), out, [], []))
        return runner.from_dir(out, ns.sweep)
    return runner.load(ns.sweep, ns.out, overrides=ns.overrides)


def _plan(ns: argparse.Namespace) -> int:

    spec = runner.with_overrides(runner.load_sweep(ns.sweep), ns.overrides)
    available = vr.count_available(spec)
    tokens = _tokens_or_none(spec)
    sweep = runner.load(ns.sweep, ns.out, available, ns.overrides)
    estimate = planning.cell_estimator(sweep, tokens, ns.gpus) if tokens else None
    rows = planning.plan_rows(spec, sweep.variants, available, tokens, estimate)
    sets = planning.eval_set_units(spec)
    pilot = planning.read_pilot(ns.pilot) if ns.pilot else None
    power = planning.power_rows(spec, sweep.variants, sets, pilot)
    warnings = planning.power_warnings(power)
    fid_costs = (
        planning.fidelity_costs(spec, sweep.variants, tokens, ns.gpus) if spec.fidelities and tokens else None
    )
    if ns.json:
        sizes = {k: dataclasses.asdict(s) for k, s in sets.items()}
        payload = {"rows": rows, "eval_sets": sizes, "power": [dataclasses.asdict(p) for p in power]}
        if spec.fidelities:
            payload["fidelities"] = stages.plan_rows(sweep)
        if fid_costs:
            payload["fidelity_costs"] = [dataclasses.asdict(c) for c in fid_costs[0]]
            payload["every_variant_at_target_gpu_hours"] = fid_costs[1]
        print(json.dumps({**payload, "warnings": warnings}, indent=1, default=str))
        return 0
    seeds = max(len(v.seeds) for v in sweep.variants)
    print(
        f"sweep {spec.name}: {len(sweep.variants)} variants x {seeds} seed(s) = {len(sweep.cells)} cells; "
        f"keep={spec.keep}; directory {sweep.out}\n"
    )
    print(planning.format_plan(rows))
    if spec.fidelities:
        print(
            "cells per fidelity (the base runs at every fidelity):\n"
            + stages.format_plan(stages.plan_rows(sweep))
        )
    if fid_costs:
        print(planning.format_fidelity_costs(*fid_costs))
    print(
        "evaluation sets: "
        + ", ".join(f"{k} (n={s.examples}, units={s.units}, items={s.items:g})" for k, s in sets.items())
    )
    print("\n" + planning.format_power(power))
    for w in warnings:
        print(f"warning: {w}")
    return 0


def _tokens_or_none(spec: Any) -> dict[str, float] | None:
    """Tokens per sample, or None (with a note) when the base's tokenizer is not there yet."""

    try:
        return vr.measure_tokens_per_sample(spec)
    except ConfigError as err:
        print(f"note: no token counts ({err.problems[0].problem.splitlines()[0]})", file=sys.stderr)
        return None


def _run(ns: argparse.Namespace) -> int:

    sweep, only = _staged(ns)
    code = runner.run_local(sweep, ns.nproc, ns.failed, only)
    if code == 0 and ns.collect:
        return _collect_sweep(sweep, "holm", 1000, 0, plots=True)
    return code


def _submit(ns: argparse.Namespace) -> int:

    slurm.require_sbatch()  # before --stage target writes its choice down
    sweep, only = _staged(ns)
    res = slurm.Resources(
        partition=ns.partition,
        nodes=ns.nodes,
        gpus_per_node=ns.gpus_per_node,
        cpus_per_task=ns.cpus_per_task,
        time=ns.time,
        max_concurrent=ns.max_concurrent,
        nproc=ns.nproc,
        data_partition=ns.data_partition,
    )
    record = slurm.submit(sweep, res, ns.failed, only)
    if not record["cells"]:
        print(f"sweep {sweep.spec.name}: every cell is done; nothing submitted")
        return 0
    print(
        f"sweep {sweep.spec.name}: submitted {record['cells']} cell(s) and {record['data_tasks']} data "
        f"build(s) as job(s) {', '.join(record['jobs'])}; follow with `biotune sweep status {ns.sweep}`"
    )
    return 0


def _status(ns: argparse.Namespace) -> int:

    sweep = _load(ns)
    runner.require_prepared(sweep)
    rows = runner.status_rows(sweep)
    print(json.dumps(rows, indent=1) if ns.json else runner.format_status(rows), end="")
    return 0


def _collect(ns: argparse.Namespace) -> int:
    problems = []
    if ns.n_boot < 100:
        problems.append(
            Problem(
                "--n-boot",
                f"{ns.n_boot} resamples are too few for a 95% CI",
                "use at least 1000 (100 for a quick look)",
            )
        )
    elif ns.n_boot > MAX_N_BOOT:
        problems.append(
            Problem(
                "--n-boot",
                f"{ns.n_boot:,} resamples: more than {MAX_N_BOOT:,} costs memory and time and adds no precision",
                "use 1000 to 10000",
            )
        )
    if ns.seed < 0:
        problems.append(
            Problem("--seed", f"must be >= 0, got {ns.seed}", "give a non-negative seed, e.g. --seed 0")
        )
    try:
        collect_steps.check_options(ns.step, ns.fraction)
    except ConfigError as err:
        problems.extend(err.problems)
    if problems:
        raise ConfigError(problems)
    return _collect_sweep(
        _load(ns),
        ns.correction,
        ns.n_boot,
        ns.seed,
        plots=not ns.no_plots,
        step=ns.step,
        fraction=ns.fraction,
    )


def _collect_sweep(
    sweep: Any,
    correction: str,
    n_boot: int,
    seed: int,
    plots: bool,
    step: int | None = None,
    fraction: float | None = None,
) -> int:
    """Collect the final evaluations into ``results/`` (with learning curves and checkpoint agreement where
    the cells were evaluated during training), or with ``step``/``fraction`` the evaluations at that checkpoint
    into ``results/step-N/`` (``results/fraction-F/``)."""
    runner.require_prepared(sweep)
    cells = runner.cell_results(sweep)
    train_dirs = {c.name: sweep.cell_dir(c.name) / runner.TRAIN_DIR for c in cells}
    out = sweep.out / runner.RESULTS_DIR
    at_checkpoint = step is not None or fraction is not None
    if at_checkpoint:
        cells = collect_steps.at_checkpoint(cells, train_dirs, step=step, fraction=fraction)
        out = out / collect_steps.output_name(step, fraction)
    results = collect.collect(
        cells,
        out,
        correction=correction,
        n_boot=n_boot,
        seed=seed,
        plots=plots,
        train_dirs=None if at_checkpoint else train_dirs,
    )
    print((out / tables.RESULTS_MD).read_text(encoding="utf-8"))
    print(f"results: {out}")
    _warn_on_mixed_versions(runner.cell_versions(sweep))
    _fit_if_swarm(sweep, out, results)
    if not at_checkpoint:
        collect.log_to_wandb(out, sweep.spec.load_base().tracking, sweep.spec.name)
    return 0


def _warn_on_mixed_versions(recorded: dict[str, dict[str, str]]) -> None:
    """Warn when the cells of one sweep trained under different library versions (their run_info.json)."""
    diffs = versions.differences(recorded)
    if diffs:
        print(
            "warning: the cells of this sweep ran with different library versions, so their differences may "
            "include the libraries' (re-run the odd cells under launch/constraints.txt):\n"
            + versions.describe(diffs),
            file=sys.stderr,
        )


def _fit_if_swarm(sweep: Any, out: Path, results: Any) -> None:

    for index, report in fit.fit_swarm_axes(sweep.spec, results, out):
        print("\n".join(fit.fit_summary(index, report)))


def _cell(ns: argparse.Namespace) -> int:

    sweep = runner.from_dir(ns.sweep_dir)
    stages = tuple(ns.stage or runner.STAGES)
    return runner.run_cell(sweep, sweep.cell(ns.cell), ns.nproc, echo=False, stages=stages)
