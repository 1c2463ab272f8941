"""Sweep-spec bounds and silent acceptances (issue 20, items 7, 10 and 11): exit 2, the place and the fix.

* bounds: a swarm's ``n`` over ``MAX_SWARM_N`` and a sweep over ``MAX_VARIANTS`` are refused before anything is
  named, drawn or written (``n: 100000000`` used to plan forever);
* NaN and infinity are refused where the sweep file writes them (a NaN scale factor used to become a leave-out,
  and a NaN alpha was blamed on ``min_distance``);
* generated variant names (``mix-<name>``, ``<prefix>-<value>``) longer than a file name allows;
* the sweep's own values are blamed on the sweep file (an ``overrides:`` entry, an axis no corpus can realise);
* ``seeds: [a, b]`` names ``seeds[0]`` and says each seed is an integer;
* ``sweep plan --gpus 0``, a HoC labels file without its text, ``data build --dry-run`` with an unknown source.

The base is :func:`biotune.testing.sweeps.small_base` (five sources on the bundled sample), beside the sweep file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_selected, write

from biotune.sources.classification import hoc_split
from biotune.sweep import limits
from biotune.testing.sweeps import write_sweep

PLAN = ("sweep", "plan", "{tmp}/sweep.yaml")
#: The error's first line names the sweep file; the key follows on the next line.
IN_SWEEP = "{tmp}/sweep.yaml:\n  "
HOC_PMID = next(str(p) for p in range(10, 100) if hoc_split(str(p)) == "train")


def sweep(case_id: str, axes: str, where: str, fix: str = "fix:", head: str = "") -> Case:
    """``biotune sweep plan {tmp}/sweep.yaml`` with ``axes`` (YAML list items) and ``head`` (settings)."""

    def setup(tmp: Path) -> None:
        write_sweep(tmp, f"name: bad\nbase: base.yaml\n{head}axes:\n{axes}")

    return Case(case_id, PLAN, where, fix, setup)


def _hoc_without_text(tmp: Path) -> None:
    corpus = tmp / "corpus" / "hoc"
    write(corpus / "text" / f"{HOC_PMID}.txt", "One sentence .\n")
    write(corpus / "labels" / f"{HOC_PMID}.txt", "< \n")
    write(corpus / "labels" / "99999.txt", "<Sustaining proliferative signaling--x\n")
    base = f"data:\n  root: {tmp / 'corpus'}\n  sources:\n    hoc: {{}}\n"
    write_sweep(tmp, "name: ok\nbase: base.yaml\naxes: [{type: scale, target: hoc, factors: [2]}]\n", base)


FINITE = "no .nan or .inf"
CASES = [
    # bounds
    sweep(
        "swarm-n-over-the-bound",
        "  - {type: swarm, n: 100000000}\n",
        "axes[0].n",
        f"n <= {limits.MAX_SWARM_N}",
    ),
    sweep(
        "too-many-variants",
        "  - {type: values, key: optim.lr, values: ["
        + ", ".join(f"{j}.0e-6" for j in range(1, limits.MAX_VARIANTS + 1))
        + "]}\n",
        "axes: the sweep expands to",
        f"keep it to {limits.MAX_VARIANTS}",
    ),
    # NaN and infinity, where the file writes them
    sweep(
        "scale-factor-nan", "  - {type: scale, target: hoc, factors: [.nan]}\n", "axes[0].factors[0]", FINITE
    ),
    sweep(
        "scale-factor-inf",
        "  - {type: scale, target: hoc, factors: [2, .inf]}\n",
        "axes[0].factors[1]",
        FINITE,
    ),
    sweep(
        "mixture-weight-nan",
        "  - {type: mixtures, mixtures: {m: {hoc: .nan, gad: 1}}}\n",
        "axes[0].mixtures.m.hoc",
        FINITE,
    ),
    sweep("swarm-alpha-nan", "  - {type: swarm, n: 8, alpha: .nan}\n", "axes[0].alpha", FINITE),
    sweep(
        "swarm-min-distance-nan",
        "  - {type: swarm, n: 8, min_distance: .nan}\n",
        "axes[0].min_distance",
        FINITE,
    ),
    sweep(
        "values-axis-value-nan",
        "  - {type: values, key: optim.weight_decay, values: [0.1, .nan]}\n",
        "axes[0].values[1]",
        FINITE,
    ),
    # generated names
    sweep(
        "generated-mixture-name-too-long",
        "  - {type: mixtures, mixtures: {" + "m" * 97 + ": {hoc: 1}}}\n",
        "axes[0]: variant name 'mix-mmm",
        "use a shorter variant name",
    ),
    sweep(
        "generated-values-name-too-long",
        "  - {type: values, name: " + "p" * 96 + ", key: optim.lr, values: [1.0e-5]}\n",
        "axes[0]: variant name 'ppp",
        "use a shorter variant name",
    ),
    # the sweep's own values are blamed on the sweep file
    sweep(
        "sweep-override-is-the-sweeps",
        "  - {type: leave_one_out}\n",
        IN_SWEEP + "overrides[0]: optim.lr=-1",
        "set optim.lr to a positive value",
        head="overrides: [optim.lr=-1]\n",
    ),
    sweep(
        "unrealisable-axis-names-the-sweep",
        "  - {type: swarm, n: 8, min_distance: 1.9}\n",
        IN_SWEEP + "axes[0]: swarm-000",
        "lower min_distance",
    ),
    # seeds (item 11)
    sweep(
        "seeds-not-integers",
        "  - {type: leave_one_out}\n",
        "seeds[0]: each seed must be an integer, got 'a'",
        "seeds: [0, 1, 2]",
        head="seeds: [a, b]\n",
    ),
    sweep(
        "seed-out-of-range",
        "  - {type: leave_one_out}\n",
        "seeds[1]: -1 is not in [0, 4294967295]",
        "seeds: [0, 1, 2]",
        head="seeds: [0, -1]\n",
    ),
    # silent acceptances (item 10)
    Case(
        "plan-gpus-zero",
        (*PLAN, "--gpus", "0"),
        "--gpus",
        "give a positive number",
        lambda tmp: write_sweep(tmp, "name: ok\nbase: base.yaml\naxes: [{type: leave_one_out}]\n"),
    ),
    Case(
        "hoc-labels-without-text",
        PLAN,
        "{tmp}/corpus/hoc/labels/99999.txt",
        "restore the document's text/<PMID>.txt, or remove its labels file",
        _hoc_without_text,
    ),
    Case(
        "data-build-dry-run-unknown-source",
        ("data", "build", "{tmp}/build.yaml", "--dry-run"),
        "data.sources.ncbi_diseas",
        "did you mean ncbi_disease",
        lambda tmp: write(tmp / "build.yaml", "data:\n  root: '@sample'\n  sources:\n    ncbi_diseas: {}\n"),
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_sweep_spec"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_sweep_spec(case: Case, results) -> None:
    check(case, results[case.id])
