"""``sweep submit``'s arrays: split at MaxArraySize, and throttled as a whole by ``--max-concurrent``."""

from __future__ import annotations

import pytest

from biotune.sweep.slurm import arrays, dependency


def most_at_once(parts: list, n_tasks: int) -> int:
    """The most tasks SLURM may run at once: unchained arrays run side by side, a chained one after its previous.

    Each group of arrays that may run together contributes its throttle (or its size, unthrottled).
    """
    groups: list[list] = []
    for part in parts:
        if part.after_previous:
            groups.append([part])
        elif groups:
            groups[0].append(part)
        else:
            groups.append([part])

    def cap(part) -> int:
        return int(part.array.split("%")[1]) if "%" in part.array else part.count

    return max(sum(min(cap(p), p.count) for p in group) for group in groups)


@pytest.mark.parametrize(("n", "limit", "throttle"), [(5, 2, 2), (3, 2, 2), (2500, 1001, 4), (7, 3, 1)])
def test_a_throttle_holds_over_split_arrays(n: int, limit: int, throttle: int) -> None:
    parts = arrays(n, limit, throttle)
    assert sum(p.count for p in parts) == n and all(p.count <= limit for p in parts)
    assert [p.offset for p in parts] == [sum(q.count for q in parts[:i]) for i in range(len(parts))]
    assert all(p.array == f"0-{p.count - 1}%{throttle}" for p in parts)
    assert [p.after_previous for p in parts] == [False] + [True] * (len(parts) - 1)
    assert most_at_once(parts, n) <= throttle


def test_without_a_throttle_the_arrays_run_side_by_side() -> None:
    parts = arrays(5, 2, None)
    assert [p.array for p in parts] == ["0-1", "0-1", "0-0"]
    assert not any(p.after_previous for p in parts)
    assert most_at_once(parts, 5) == 5


def test_the_dependency_joins_success_of_the_data_and_end_of_the_previous_array() -> None:
    assert dependency(["11", "12"], "13") == ["--dependency=afterok:11:12,afterany:13"]
    assert dependency(["11"], None) == ["--dependency=afterok:11"]
    assert dependency([], "13") == ["--dependency=afterany:13"]
    assert dependency([], None) == []
