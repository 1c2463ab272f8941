"""Multi-label classification (HoC): label lists and None, written from gold and read from prose."""

from __future__ import annotations

from biotune.data.tasks import ParseResult, task_for
from biotune.sources import SOURCES
from biotune.sources.records import DocLabels


def test_multilabel_classification() -> None:
    task = task_for(SOURCES["hoc"])
    rec = DocLabels(
        "d",
        "Tumour cells evade apoptosis and proliferate.",
        ("sustaining proliferative signaling", "resisting cell death"),
    )
    assert task.format_output(rec) == "resisting cell death, sustaining proliferative signaling"
    assert task.reference(rec) == ("resisting cell death", "sustaining proliferative signaling")
    noisy = "The hallmarks are: Sustaining proliferative  signaling, RESISTING CELL DEATH."
    assert task.parse(noisy, rec) == ParseResult(task.reference(rec), True)
    empty = DocLabels("e", "Nothing.", ())
    assert task.format_output(empty) == "None"
    assert task.parse("None", empty) == ParseResult((), True)
    failed = task.parse("angiogenesis maybe?", empty)
    assert failed.value == () and not failed.ok
