"""A prepared sweep directory whose cells were evaluated during training (no training: simulated evaluations in
the real format), for the tests of ``biotune sweep collect --step/--fraction``, the learning curves and the
checkpoint-vs-final agreement (the unit tests and the bad-input suite share it).

The sweep is the small sweep base on the bundled sample with a leave-one-group-out axis (the base and four
variants). Each done cell gets its final evaluation (``eval/``) and, in its training directory, one evaluation
per step of ``steps`` (``train/eval/step-N/`` with ``during_training.json``, as the trainer writes them; its
``train/tokens`` is ``TOKENS_PER_STEP`` x step). The last step's predictions, and those of the steps in
``same_as_final``, equal the final ones; the other steps' come from another simulation whose planted effects are
reversed (so the ranking differs from the final one).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from biotune.eval.layout import DURING_TRAINING_RECORD, step_eval_dir
from biotune.io import atomic_write_json
from biotune.sweep import runner
from biotune.sweep.state import CellState
from biotune.testing.simulate import (
    Arm,
    NerDesign,
    SimulatedSet,
    simulate_accuracy,
    simulate_ner,
    write_eval_dir,
)
from biotune.testing.sweeps import write_sweep
from biotune.train import metric_names as names

#: Planted effects (points) of the base and the four variants, in the sweep's variant order.
EFFECTS = (0.0, -12.0, -6.0, 4.0, 10.0)
TOKENS_PER_STEP = 1000


def _sets(seed: int, effects: Sequence[float], n_seeds: int) -> dict[str, SimulatedSet]:
    rng = np.random.default_rng(seed)
    arms = [Arm(e, n_seeds) for e in effects]
    return {
        "simner/test": simulate_ner(rng, arms, 1.0, NerDesign(40, 3)),
        "simcls/test": simulate_accuracy(rng, arms, 1.0, 300),
    }


def prepare_step_sweep(
    tmp: Path,
    steps: Sequence[int] = (2, 4),
    seeds: int = 1,
    same_as_final: Sequence[int] = (),
    dev_at_steps: bool = False,
) -> runner.Sweep:
    """Write and prepare the sweep under ``tmp`` (``tmp/sweep.yaml``, directory ``tmp/sweep``), every cell done
    with its final evaluation and one evaluation during training per step of ``steps`` (the last one's
    predictions equal the final ones); with ``dev_at_steps`` the steps' sets are the dev splits (``simner/dev``,
    ``simcls/dev``: the sweep default evaluates dev splits during training) while the final evaluation is on
    the test splits."""
    seed_list = ", ".join(str(7 + i) for i in range(seeds))
    body = (
        f"name: steps\nbase: base.yaml\nseeds: [{seed_list}]\naxes: [{{type: leave_one_out, over: group}}]\n"
    )
    sweep = runner.load(write_sweep(tmp, body), out=tmp / "sweep")
    runner.prepare(sweep)
    order = list(dict.fromkeys(c.variant for c in sweep.cells))
    seed_of = {s: i for i, s in enumerate(sorted({c.seed for c in sweep.cells}))}
    final = _sets(0, EFFECTS[: len(order)], seeds)
    early = _sets(1, [-e for e in EFFECTS[: len(order)]], seeds)
    for cell in sweep.cells:
        d = sweep.cell_dir(cell.name)
        arm, s = order.index(cell.variant), seed_of[cell.seed]
        write_eval_dir(d / runner.EVAL_DIR, {name: (sim, arm, s) for name, sim in final.items()})
        for step in steps:
            sets = final if step == steps[-1] or step in same_as_final else early
            out = step_eval_dir(d / runner.TRAIN_DIR, step)
            labels = {n: n.replace("/test", "/dev") if dev_at_steps else n for n in sets}
            write_eval_dir(out, {labels[name]: (sim, arm, s) for name, sim in sets.items()})
            record = {"step": step, names.TRAIN_TOKENS: TOKENS_PER_STEP * step, "metrics": {}, "examples": 0}
            atomic_write_json(out / DURING_TRAINING_RECORD, record)
        runner.write_state(d, CellState.RUNNING)
        runner.write_state(d, CellState.DONE)
    return runner.from_dir(sweep.out)
