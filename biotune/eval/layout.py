"""The evaluation output directory (``eval.output_dir``): the one owner of its file names and set labels.

::

    <eval.output_dir>/
        report.json                        rows (one per set), raw scores, run metadata (unscored_rows...)
        report.md                          the same as a table beside the published numbers
        predictions.jsonl                  id + completion per example (re-scorable with ``biotune eval score``)
        predictions/<source>__<split>.jsonl   per-example rows: id, completion, prediction, reference, parse
                                           status, resampling unit, additive stats (what ``sweep collect`` reads)
        exported_model/                    the Hugging Face export of a checkpoint given as ``eval.model``

Evaluation during training (``eval.during_training``) writes one such directory per evaluated step inside the
training run's directory, plus a record of what was logged (:func:`step_eval_dir`)::

    <train.output_dir>/eval/step-N/        report.json, report.md, predictions.jsonl, predictions/ as above
        during_training.json               step, train/tokens, the logged eval/ metrics: the step is done

An evaluation set is named by its label ``<source>/<split>`` (:func:`set_label`, :func:`parse_set_label`,
owned by the split vocabulary :mod:`biotune.sources.splits` and re-exported here), the split in the
source's own spelling. :func:`predictions_path` is the only place a set's source and split become a path.
"""

from __future__ import annotations

from pathlib import Path

from biotune.io import inside
from biotune.sources.splits import parse_set_label, set_label

__all__ = [
    "EXPORT_CACHE_DIR",
    "PREDICTIONS_DIR",
    "PREDICTIONS_FILE",
    "REPORT_JSON",
    "REPORT_MD",
    "DURING_TRAINING_RECORD",
    "export_cache_dir",
    "step_eval_dir",
    "step_eval_dirs",
    "replaced_step_evals_dir",
    "step_name",
    "parse_set_label",
    "predictions_path",
    "report_path",
    "set_label",
]

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PREDICTIONS_FILE = "predictions.jsonl"
PREDICTIONS_DIR = "predictions"
EXPORT_CACHE_DIR = "exported_model"
#: The record that marks a step's evaluation during training as done (written inside its directory, which
#: is swapped in whole: the directory exists only complete).
DURING_TRAINING_RECORD = "during_training.json"
_DURING_TRAINING_DIR = "eval"
_STEP_PREFIX = "step-"
#: Joins source and split in a per-set predictions file name (a ``/`` cannot be part of a file name).
_FILE_SEP = "__"


def report_path(out_dir: str | Path) -> Path:
    """``report.json`` of an eval output directory."""
    return Path(out_dir) / REPORT_JSON


def predictions_path(out_dir: str | Path, source: str, split: str) -> Path:
    """The per-example predictions file of one evaluation set in an eval output directory.

    Rows: ``id``, ``completion``, ``prediction``, ``reference``, ``parse_ok``, ``parse_error``, ``unit`` (the
    resampling unit) and ``stats`` (the additive per-example statistics of ``biotune.eval.example_stats``).
    The path is checked to stay inside ``out_dir`` (:func:`biotune.io.inside`).
    """
    return inside(out_dir, Path(out_dir) / PREDICTIONS_DIR / f"{source}{_FILE_SEP}{split}.jsonl")


def export_cache_dir(out_dir: str | Path) -> Path:
    """Where ``biotune eval`` exports a checkpoint given as ``eval.model`` (reused while it is current)."""
    return Path(out_dir) / EXPORT_CACHE_DIR


def step_name(step: int) -> str:
    """``step-N``: the name of optimizer step ``step``'s evaluation (its directory, and its level and results
    directory in ``sweep collect``)."""
    return f"{_STEP_PREFIX}{int(step)}"


def step_eval_dir(train_output_dir: str | Path, step: int) -> Path:
    """``<train.output_dir>/eval/step-N/``: the evaluation output directory of optimizer step ``step``."""
    return Path(train_output_dir) / _DURING_TRAINING_DIR / step_name(step)


def step_eval_dirs(train_output_dir: str | Path) -> dict[int, Path]:
    """Step -> ``eval/step-N/`` for every step evaluation with a record in a run directory (others are not
    ours: left out)."""
    root = Path(train_output_dir) / _DURING_TRAINING_DIR
    found: dict[int, Path] = {}
    for child in sorted(root.glob(f"{_STEP_PREFIX}*")) if root.is_dir() else []:
        number = child.name[len(_STEP_PREFIX) :]
        if number.isdigit() and (child / DURING_TRAINING_RECORD).is_file():
            found[int(number)] = child
    return found


def replaced_step_evals_dir(train_output_dir: str | Path, stamp: str) -> Path:
    """``<train.output_dir>/eval/replaced-<stamp>/``: where a run that starts from step 0 moves the step
    evaluations an earlier run left in its directory (never deleted; ``sweep collect`` reads only ``step-N``)."""
    return Path(train_output_dir) / _DURING_TRAINING_DIR / f"replaced-{stamp}"
