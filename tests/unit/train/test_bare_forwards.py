"""``engine.bare_forwards``: forwards without hooks and with plain parameter dicts inside, all restored on exit."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from biotune.train.engine import bare_forwards


def _model() -> tuple[torch.nn.Module, list[str]]:
    """Two linear layers with a pre-hook (with kwargs), a hook and an always-called hook that log their calls;
    the first layer's parameters in DeepSpeed's ``ZeROOrderedDict``."""
    from deepspeed.runtime.zero.parameter_offload import ZeROOrderedDict

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    calls: list[str] = []
    model.register_forward_pre_hook(lambda m, args, kwargs: calls.append("pre"), with_kwargs=True)
    model[0].register_forward_hook(lambda m, i, o: calls.append("post"))
    model[1].register_forward_hook(lambda m, i, o: calls.append("always"), always_call=True)
    model[0]._parameters = ZeROOrderedDict(model[0], model[0]._parameters)
    return model, calls


def _state(model: torch.nn.Module) -> list[Any]:
    """Every hook dict's content (ids in order, hooks) and each module's parameter dict (the object itself)."""
    names = (
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
        "_forward_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_hooks_always_called",
    )
    return [
        ([list(getattr(m, n).items()) for n in names], m._parameters, dict(m._parameters))
        for m in model.modules()
    ]


def test_inside_no_hook_runs_and_parameters_are_read_from_plain_dicts() -> None:
    model, calls = _model()
    x = torch.randn(3, 4)
    expected = model(x)
    assert calls == ["pre", "post", "always"]
    calls.clear()
    with bare_forwards(model) as bare:
        assert bare is model
        assert all(type(m._parameters) is dict for m in model.modules())
        assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
        torch.testing.assert_close(model(x), expected)
        assert calls == [], "no hook ran inside the block"
        assert model[0].weight is model[0]._parameters["weight"]


def test_on_exit_hooks_and_parameter_dicts_are_back_exactly() -> None:
    model, calls = _model()
    before = _state(model)
    with bare_forwards(model):
        model(torch.randn(1, 4))
    after = _state(model)
    assert [s[0] for s in after] == [s[0] for s in before], "same hooks, same ids, same order"
    assert all(a[1] is b[1] and a[2] == b[2] for a, b in zip(after, before, strict=True))
    assert type(model[0]._parameters).__name__ == "ZeROOrderedDict"
    model(torch.randn(1, 4))
    assert calls == ["pre", "post", "always"]


def test_restored_when_the_block_raises() -> None:
    model, calls = _model()
    before = _state(model)
    with pytest.raises(RuntimeError), bare_forwards(model):
        model(torch.randn(1, 5))  # wrong width: the forward fails inside the block
    assert [s[0] for s in _state(model)] == [s[0] for s in before]
    assert all(a[1] is b[1] for a, b in zip(_state(model), before, strict=True))
