"""`sweep plan` sizes the eval sets from the real corpora (`$BIOTUNE_DATA_DIR`): examples, units, scored items."""

from __future__ import annotations

from pathlib import Path

from biotune.sweep import plan as pl
from biotune.sweep.spec import load_sweep
from biotune.testing.sweeps import write_sweep


def test_eval_set_units_count_documents(tmp_path: Path) -> None:
    """NCBI-disease's PubTator test file: sentences are examples, abstracts are the resampling units."""
    base = "name: b\nmodel: {name_or_path: runs/tiny_llama}\ndata:\n  sources: {ncbi_disease: {}}\n"
    base += "eval: {sources: [ncbi_disease_pubtator], splits: [test]}\n"
    path = write_sweep(
        tmp_path, "name: u\nbase: base.yaml\naxes: [{type: values, key: optim.lr, values: [1e-5]}]\n", base
    )
    sets = pl.eval_set_units(load_sweep(path))
    s = sets["ncbi_disease_pubtator/test"]
    assert s.kind == "ner" and s.units == 100 and s.examples > 5 * s.units  # 100 abstracts, ~1,000 sentences
    assert 900 < s.items < 1000  # NCBI-disease's test set has 960 disease mentions
    assert pl.eval_set_sizes(load_sweep(path)) == {"ncbi_disease_pubtator/test": s.examples}
