"""Bad sweep configs through ``biotune sweep plan BAD.yaml``: exit 2, the sweep file, the key and the fix.

The base is a small train config of our own on the bundled sample (five sources in four groups), written beside
the sweep file; see ``tests/unit/sweep/test_spec.py`` for the same rules checked in-process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_selected, write

from biotune.sweep.state import SWEEP_LOCK_FILE, Lock
from biotune.testing.sweeps import small_base, write_sweep

BASE = small_base()


def sweep(case_id: str, axes: str, where: str, fix: str = "fix:", head: str = "", base: str = BASE) -> Case:
    """``biotune sweep plan {tmp}/sweep.yaml`` with ``axes`` (YAML list items) over ``base``."""

    def setup(tmp: Path) -> None:
        write_sweep(tmp, f"name: bad\nbase: base.yaml\n{head}axes:\n{axes}", base)

    return Case(case_id, ("sweep", "plan", "{tmp}/sweep.yaml"), where, fix, setup)


def _held_by_this_process(tmp: Path) -> None:
    """A sweep whose runner lock is held (by the test process, for its lifetime): a first runner at work."""
    write_sweep(tmp, "name: ok\nbase: base.yaml\naxes: [{type: leave_one_out}]\n")
    Lock(tmp / "out" / SWEEP_LOCK_FILE, "sweep ok").acquire("unused")


CASES = [
    sweep(
        "unknown-source",
        "  - {type: leave_one_out, over: source, only: [ncbi_disease, no_such_source]}\n",
        "axes[0].only[1]",
        "use a source of biotune.sources.SOURCES",
    ),
    sweep(
        "unknown-group",
        "  - {type: scale, over: group, target: nerr, factors: [2]}\n",
        "axes[0].target",
        "fix:",
    ),
    sweep(
        "source-not-in-base",
        "  - {type: scale, target: bc2gm, factors: [2]}\n",
        "axes[0].target",
        "not in the base mixture",
    ),
    sweep(
        "axis-empties-the-mixture",
        "  - {type: leave_one_out, over: source}\n",
        "axes[0]",
        "empties the mixture",
        base="data:\n  root: '@sample'\n  sources:\n    hoc: {}\n",
    ),
    sweep(
        "duplicate-variant-names",
        "  - {type: leave_one_out, only: [hoc]}\n  - {type: leave_one_out, only: [hoc, gad]}\n",
        "axes[1]",
        "'loo-source-hoc' is also made by axes[0]",
    ),
    sweep(
        "unknown-top-level-key",
        "  - {type: leave_one_out}\n",
        "seedz",
        "did you mean 'seeds'",
        head="seedz: [1]\n",
    ),
    sweep(
        "unknown-override-key",
        "  - {type: leave_one_out}\n",
        "train.max_stepz",
        "did you mean 'train.max_steps'",
        head="overrides: [train.max_stepz=5]\n",
    ),
    sweep(
        "negative-weight",
        "  - {type: mixtures, mixtures: {m1: {ncbi_disease: -1, hoc: 1}}}\n",
        "axes[0].mixtures.m1.ncbi_disease",
        "fix:",
    ),
    sweep(
        "all-weights-zero",
        "  - {type: mixtures, mixtures: {m1: {ncbi_disease: 0, hoc: 0}}}\n",
        "axes[0].mixtures.m1",
        "fix:",
    ),
    sweep("swarm-too-small-to-fit", "  - {type: swarm, n: 4, fit: true}\n", "axes[0].n", "n >= 6"),
    sweep("unknown-axis-type", "  - {type: shuffle, over: source}\n", "axes[0].type", "fix:"),
    # the swarm fit's keys (issue 19): model, min_share, max_l1, top_k; only with fit: true
    sweep(
        "swarm-unknown-fit-model",
        "  - {type: swarm, n: 8, fit: true, model: cubic}\n",
        "axes[0].model",
        "auto",
    ),
    sweep(
        "swarm-min-share-too-large",
        "  - {type: swarm, n: 8, fit: true, min_share: 0.3}\n",
        "axes[0].min_share",
        "or drop the key to use min_weight",
    ),
    sweep(
        "swarm-max-l1-zero",
        "  - {type: swarm, n: 8, fit: true, max_l1: 0}\n",
        "axes[0].max_l1",
        "max_l1: 0.25",
    ),
    sweep(
        "swarm-top-k-zero", "  - {type: swarm, n: 8, fit: true, top_k: 0}\n", "axes[0].top_k", "top_k: 100"
    ),
    sweep(
        "swarm-fit-key-without-fit",
        "  - {type: swarm, n: 8, top_k: 10}\n",
        "axes[0].top_k",
        "set fit: true, or drop it",
    ),
    sweep(
        "negative-scale-factor",
        "  - {type: scale, target: hoc, factors: [2, -1]}\n",
        "axes[0].factors[1]",
        "fix:",
    ),
    sweep(
        "bad-budget", "  - {type: leave_one_out}\n", "budget", "fixed_samples", head="budget: fixed_sample\n"
    ),
    sweep(
        "yaml-syntax", "  - {type: leave_one_out, over: source\n", "{tmp}/sweep.yaml:", "fix the YAML syntax"
    ),
    Case(
        "missing-base",
        ("sweep", "plan", "{tmp}/sweep.yaml"),
        "configs/train/nope.yaml",
        "give a train config path relative to the sweep file",
        lambda tmp: write(
            tmp / "sweep.yaml", "name: bad\nbase: configs/train/nope.yaml\naxes: [{type: leave_one_out}]\n"
        ),
    ),
    Case("sweep-file-missing", ("sweep", "plan", "{tmp}/absent.yaml"), "does not exist"),
    # the other sweep commands: reading a directory that holds no sweep, and their own arguments
    Case(
        "status-no-sweep-dir",
        ("sweep", "status", "{tmp}/sweep.yaml", "--out", "{tmp}/nowhere"),
        "{tmp}/nowhere/sweep.json",
        "sweep run",
        lambda tmp: write_sweep(tmp, "name: ok\nbase: base.yaml\naxes: [{type: leave_one_out}]\n"),
    ),
    Case(
        "collect-no-sweep-dir",
        ("sweep", "collect", "{tmp}/sweep.yaml", "--out", "{tmp}/nowhere"),
        "{tmp}/nowhere/sweep.json",
        "sweep run",
        lambda tmp: write_sweep(tmp, "name: ok\nbase: base.yaml\naxes: [{type: leave_one_out}]\n"),
    ),
    Case(
        "collect-too-few-resamples",
        ("sweep", "collect", "{tmp}/sweep.yaml", "--n-boot", "10"),
        "--n-boot",
        "use at least 1000",
        lambda tmp: write_sweep(tmp, "name: ok\nbase: base.yaml\naxes: [{type: leave_one_out}]\n"),
    ),
    # the power block and sweep plan --pilot
    sweep(
        "power-seed-sd-nan",
        "  - {type: leave_one_out}\n",
        "power.seed_sd",
        "use e.g. power.seed_sd: 0.01",
        head="power: {seed_sd: .nan}\n",
    ),
    sweep(
        "power-seed-sd-negative",
        "  - {type: leave_one_out}\n",
        "power.seed_sd",
        "or measure it with --pilot",
        head="power: {seed_sd: -0.01}\n",
    ),
    sweep(
        "power-correlation-not-below-one",
        "  - {type: leave_one_out}\n",
        "power.correlation",
        "use e.g. power.correlation: 0.7",
        head="power: {correlation: 1.0}\n",
    ),
    sweep(
        "power-unknown-key",
        "  - {type: leave_one_out}\n",
        "power.seedsd",
        "did you mean 'power.seed_sd'",
        head="power: {seedsd: 0.01}\n",
    ),
    Case(
        "plan-pilot-not-a-sweep-dir",
        ("sweep", "plan", "{tmp}/sweep.yaml", "--pilot", "{tmp}/nowhere"),
        "{tmp}/nowhere/sweep.json",
        "sweep directory",
        lambda tmp: write_sweep(tmp, "name: ok\nbase: base.yaml\naxes: [{type: leave_one_out}]\n"),
    ),
    Case(
        "plan-pilot-without-a-done-base",
        ("sweep", "plan", "{tmp}/sweep.yaml", "--pilot", "{tmp}/earlier"),
        "{tmp}/earlier/sweep.json",
        "run the earlier sweep's base",
        lambda tmp: (
            write_sweep(tmp, "name: ok\nbase: base.yaml\naxes: [{type: leave_one_out}]\n"),
            write(
                tmp / "earlier" / "sweep.json",
                json.dumps(
                    {"name": "ok", "sweep_file": str(tmp / "sweep.yaml"), "variants": [], "cells": []}
                ),
            ),
        ),
    ),
    Case(
        "second-runner-on-a-sweep",
        ("sweep", "run", "{tmp}/sweep.yaml", "--local", "--out", "{tmp}/out"),
        "{tmp}/out/.runner.lock",
        "wait for that runner to finish or stop it",
        _held_by_this_process,
    ),
    Case(
        "cell-not-a-sweep-dir",
        ("sweep", "cell", "{tmp}/nowhere", "base-s0"),
        "{tmp}/nowhere/sweep.json",
        "sweep directory",
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_sweeps"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_sweep(case: Case, results) -> None:
    check(case, results[case.id])
