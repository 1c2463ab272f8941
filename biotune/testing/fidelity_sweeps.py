"""A prepared sweep directory with fidelities, its cells done with simulated evaluations (no training), for the
tests of ``biotune sweep collect`` on such a sweep (the tests and the bad-input suite share it).

The sweep is the small sweep base on the bundled sample with a leave-one-group-out axis (the base and four
variants, one seed). Its ``sweep.json`` is rewritten so that every cell runs at each given fidelity (named
``<fidelity>.<variant>-s<seed>``, as :func:`biotune.sweep.fidelity.cell_name`). Each done cell gets an
evaluation in the real format (a simulated NER set and an accuracy set, scored on the same examples at every
fidelity; the variants' effects are graded, the same order at every fidelity), a ``state.json`` with its train
stage's seconds, and a ``train/run_info.json`` with its processes, as the runner and the trainer write them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from biotune.io import atomic_write_json, read_json
from biotune.sweep import runner
from biotune.sweep.fidelity import TARGET, cell_name
from biotune.sweep.state import CellState
from biotune.testing.simulate import Arm, NerDesign, simulate_accuracy, simulate_ner, write_eval_dir
from biotune.testing.sweeps import write_sweep
from biotune.train.checkpoint import RUN_INFO_FILE

SWEEP = "name: fid\nbase: base.yaml\nseeds: [7]\naxes: [{type: leave_one_out, over: group}]\n"
#: Planted effects (points) of the base and the four variants, in the sweep's variant order.
EFFECTS = (0.0, -12.0, -6.0, 4.0, 10.0)
#: Train stage seconds per cell, and processes, by fidelity (the target's cells cost the most).
SECONDS = {"small": 30.0, TARGET: 120.0}
PROCESSES = 2


def prepare_fidelity_sweep(
    tmp: Path, fidelities: Sequence[str] = ("small", TARGET), variants: Mapping[str, int] | None = None
) -> runner.Sweep:
    """Write and prepare the sweep under ``tmp`` (``tmp/sweep.yaml``, directory ``tmp/sweep``), every cell at
    every fidelity and done; ``variants`` (fidelity -> how many variants besides the base) trims a fidelity."""
    path = write_sweep(tmp, SWEEP)
    sweep = runner.load(path, out=tmp / "sweep")
    runner.prepare(sweep)
    index_path = sweep.out / runner.SWEEP_FILE
    index = read_json(index_path, "")
    plain = index["cells"]
    cells = []
    for fidelity in fidelities:
        keep = (variants or {}).get(fidelity, len(plain))
        cells += [
            {**c, "name": cell_name(c["variant"], c["seed"], fidelity), "fidelity": fidelity}
            for c in plain[: keep + 1]
        ]
    atomic_write_json(index_path, {**index, "cells": cells})
    sweep = runner.from_dir(sweep.out)
    rng = np.random.default_rng(0)
    arms = [Arm(e, 1) for e in EFFECTS[: len(plain)]]
    sets = {
        "simner/test": simulate_ner(rng, arms, 0.0, NerDesign(40, 3)),
        "simcls/test": simulate_accuracy(rng, arms, 0.0, 300),
    }
    order = [c["variant"] for c in plain]
    for cell in sweep.cells:
        d = sweep.cell_dir(cell.name)
        arm = order.index(cell.variant)
        write_eval_dir(d / runner.EVAL_DIR, {name: (sim, arm, 0) for name, sim in sets.items()})
        atomic_write_json(d / runner.TRAIN_DIR / RUN_INFO_FILE, {"world_size": PROCESSES})
        runner.write_state(d, CellState.RUNNING, train_seconds=SECONDS.get(cell.fidelity, 60.0))
        runner.write_state(d, CellState.DONE)
    return sweep
