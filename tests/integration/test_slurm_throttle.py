"""``--max-concurrent`` over arrays split at MaxArraySize, on the real local SLURM (MaxArraySize=2, 4 CPUs).

The arrays and their dependencies are made by :func:`biotune.sweep.slurm.arrays` and
:func:`biotune.sweep.slurm.dependency`, exactly as ``sweep submit`` makes them; each task records when it ran,
and the most tasks running at one time is compared with the throttle. Unchained, the same arrays would run up to
4 tasks at once here (two arrays of ``%2`` side by side).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import slurm_cluster as cluster_helpers
from slurm_cluster import SlurmCluster

from biotune.sweep.slurm import arrays, dependency

slurm_cluster = cluster_helpers.slurm_cluster  # the session fixture that installs and starts SLURM

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals that overlap at one instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_the_throttle_holds_over_chained_arrays(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    n, throttle = 6, 2
    script = (
        f'echo "$(date +%s.%N) $(sleep 3; date +%s.%N)" > {tmp_path}/"$SLURM_JOB_ID"_"$SLURM_ARRAY_TASK_ID"'
    )
    jobs: list[str] = []
    for part in arrays(n, 2, throttle):
        args = [
            "sbatch",
            "--parsable",
            f"--array={part.array}",
            "--ntasks=1",
            "--cpus-per-task=1",
            f"--output={tmp_path}/%A_%a.out",
            *dependency([], jobs[-1] if part.after_previous else None),
            "--wrap",
            script,
        ]
        jobs.append(
            subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip().split(";")[0]
        )
    assert len(jobs) == 3
    deadline = time.monotonic() + 300
    while len(list(tmp_path.glob("*_[0-9]"))) < n:
        assert time.monotonic() < deadline, sorted(p.name for p in tmp_path.iterdir())
        time.sleep(1)
    time.sleep(1)
    intervals = [tuple(map(float, p.read_text().split())) for p in tmp_path.glob("*_[0-9]")]
    assert len(intervals) == n
    assert most_at_once(intervals) <= throttle  # type: ignore[arg-type]
