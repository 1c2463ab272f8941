"""Bad ``fidelities:`` blocks and ``--stage`` commands (issue 21): exit 2, the sweep file's key and the fix.

The sweep leaves out the ``qa`` and ``cls`` groups of :func:`biotune.testing.sweeps.small_base` (two variants
besides the base). ``--stage target`` before the proxy's cells are done and ``--stage`` on a sweep whose anchors
are not chosen from results are refused before anything is written (no sweep directory appears).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_selected

from biotune.testing.sweeps import write_sweep

AXES = "axes: [{type: leave_one_out, over: group, only: [qa, cls]}]\n"
SHORT = "  short: {overrides: [train.max_steps=2], variants: all}\n"
TARGET = "  target: {variants: {anchors: 1, choose: spread, by: short}}\n"
PLAN = ("sweep", "plan", "{tmp}/sweep.yaml")


def fidelities(case_id: str, block: str, where: str, fix: str = "fix:", args: tuple[str, ...] = PLAN) -> Case:
    """``biotune sweep plan`` (or ``args``) of the sweep with ``block`` as its ``fidelities:``."""

    def setup(tmp: Path) -> None:
        write_sweep(tmp, f"name: bad\nbase: base.yaml\n{AXES}fidelities:\n{block}")

    return Case(case_id, args, where, fix, setup)


def _no_fidelities(tmp: Path) -> None:
    write_sweep(tmp, f"name: ok\nbase: base.yaml\n{AXES}")


RUN_TARGET = ("sweep", "run", "{tmp}/sweep.yaml", "--local", "--stage", "target")
SUBMIT_TARGET = ("sweep", "submit", "{tmp}/sweep.yaml", "--stage", "target")
FIRST = "run the proxy stage and let it finish first"

CASES = [
    fidelities("missing-target", SHORT, "fidelities: no 'target' fidelity", "add target:"),
    fidelities(
        "by-unknown-fidelity",
        SHORT + "  target: {variants: {anchors: 1, by: shrot}}\n",
        "fidelities.target.variants.by",
        "name a proxy fidelity with variants: all (short)",
    ),
    fidelities(
        "by-a-proxy-that-runs-a-list",
        "  few: {overrides: [train.max_steps=2], variants: [loo-group-qa]}\n"
        + "  target: {variants: {anchors: 1, by: few}}\n",
        "fidelities.target.variants.by",
        "does not run every variant",
    ),
    fidelities(
        "anchors-larger-than-the-variants",
        SHORT + "  target: {variants: {anchors: 5, choose: spread}}\n",
        "fidelities.target.variants.anchors",
        "set anchors between 1 and 2",
    ),
    fidelities(
        "zero-anchors",
        SHORT + "  target: {variants: {anchors: 0}}\n",
        "fidelities.target.variants.anchors",
        "set anchors between 1 and 2",
    ),
    fidelities(
        "anchors-without-a-proxy-that-runs-all",
        "  target: {variants: {anchors: 1}}\n",
        "fidelities.target.variants.anchors",
        "add a proxy with variants: all",
    ),
    fidelities(
        "unknown-chooser",
        SHORT + "  target: {variants: {anchors: 1, choose: best}}\n",
        "fidelities.target.variants.choose",
        "use one of spread",
    ),
    fidelities(
        "anchors-on-a-proxy",
        "  short: {overrides: [train.max_steps=2], variants: {anchors: 1}}\n" + TARGET,
        "fidelities.short.variants.anchors",
        "give short variants: all or a list",
    ),
    fidelities(
        "data-override",
        "  short: {overrides: [train.max_steps=2, data.total_samples=10], variants: all}\n" + TARGET,
        "fidelities.short.overrides[1]",
        "every fidelity trains each variant on the same mixture",
    ),
    fidelities(
        "unknown-override-key",
        "  short: {overrides: [train.max_stepz=2], variants: all}\n" + TARGET,
        "fidelities.short.overrides[0]",
        "fix:",
    ),
    fidelities(
        "bad-override-value",
        "  short: {overrides: [train.max_steps=-5], variants: all}\n" + TARGET,
        "fidelities.short.overrides[0]",
        "set train.max_steps=-1 or a step count",
    ),
    fidelities(
        "unknown-variant-in-a-list",
        "  short: {variants: [loo-group-qaa]}\n  target: {}\n",
        "fidelities.short.variants[0]",
        "loo-group-qa",
    ),
    fidelities(
        "dot-in-a-fidelity-name",
        "  short.1: {variants: all}\n" + "  target: {}\n",
        "fidelities.short.1",
        "no dot",
    ),
    fidelities(
        "unknown-fidelity-key",
        "  short: {overides: [train.max_steps=2]}\n  target: {}\n",
        "fidelities.short.overides",
        "use overrides or variants",
    ),
    fidelities("run-stage-target-before-the-proxy", SHORT + TARGET, "--stage target", FIRST, RUN_TARGET),
    fidelities(
        "submit-stage-target-before-the-proxy", SHORT + TARGET, "--stage target", FIRST, SUBMIT_TARGET
    ),
    Case(
        "stage-without-anchors-from-results",
        ("sweep", "run", "{tmp}/sweep.yaml", "--local", "--stage", "proxy"),
        "--stage",
        "drop --stage",
        _no_fidelities,
    ),
    fidelities(
        "stage-with-listed-anchors",
        SHORT + "  target: {variants: {anchors: [loo-group-qa]}}\n",
        "--stage",
        "drop --stage",
        RUN_TARGET,
    ),
]


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_fidelities"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_fidelities(case: Case, results) -> None:
    check(case, results[case.id])
