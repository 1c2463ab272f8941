"""Every evaluation config loads, and every source it names has the splits it asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from biotune import config
from biotune.errors import ConfigError
from biotune.eval.sets import plan_sets, plan_sources

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs" / "eval").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_eval_config_is_valid(path: Path) -> None:
    cfg = config.load(path)
    assert cfg.eval.sources and plan_sources(cfg) == cfg.eval.sources
    assert [r.source for r in plan_sets(cfg)] == [s for s in cfg.eval.sources for _ in cfg.eval.splits]


def test_beam_config_uses_the_papers_four_beams() -> None:
    assert config.load(CONFIGS[0].parent / "medtuned_beam4.yaml").eval.num_beams == 4


def test_every_missing_split_is_reported_at_once() -> None:
    cfg = config.load(
        CONFIGS[0].parent / "medtuned.yaml", ["eval.sources=[gad,bc2gm,ddi,euadr]", "eval.splits=[dev]"]
    )
    with pytest.raises(ConfigError) as err:
        plan_sets(cfg)
    assert [p.problem.split("'")[1] for p in err.value.problems] == ["gad", "ddi", "euadr"]
