"""Every evaluation config loads, and every source it names has the splits it asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from biotune import config
from biotune.errors import ConfigError
from biotune.eval.runner import eval_sources

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs" / "eval").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_eval_config_is_valid(path: Path) -> None:
    cfg = config.load(path)
    assert cfg.eval.sources and eval_sources(cfg) == cfg.eval.sources


def test_beam_config_uses_the_papers_four_beams() -> None:
    assert config.load(CONFIGS[0].parent / "medtuned_beam4.yaml").eval.num_beams == 4


def test_every_missing_split_is_reported_at_once() -> None:
    cfg = config.load(
        CONFIGS[0].parent / "medtuned.yaml", ["eval.sources=[gad,bc2gm,ddi,euadr]", "eval.splits=[dev]"]
    )
    with pytest.raises(ConfigError) as err:
        eval_sources(cfg)
    assert [p.problem.split("'")[1] for p in err.value.problems] == ["gad", "ddi", "euadr"]
