"""Prompt templates: exact layouts for medtuned/alpaca, and the tokenizer's chat template for chat."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from biotune.config import TEMPLATES
from biotune.data.templates import render_prompt, render_target
from biotune.errors import ConfigError


def test_template_names() -> None:
    assert TEMPLATES == ("medtuned", "alpaca", "chat")


def test_medtuned_is_the_papers_layout() -> None:
    prompt = render_prompt("medtuned", "Tag each token.", "aspirin induced asthma")
    assert prompt == "### Instruction: Tag each token.\n ### Input: aspirin induced asthma\n ### Output: "
    assert render_target("medtuned", "aspirin : O") == "aspirin : O"


def test_alpaca_layout_with_and_without_input() -> None:
    assert render_prompt("alpaca", "Classify.", "Some text.") == (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nClassify.\n\n### Input:\nSome text.\n\n### Response:\n"
    )
    assert render_prompt("alpaca", "Say hi.", "") == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\nSay hi.\n\n### Response:\n"
    )
    assert render_target("alpaca", "TrAP") == "TrAP"


@pytest.mark.parametrize(
    "call", [lambda: render_prompt("llama2", "i", "x"), lambda: render_target("Alpaca", "o")]
)
def test_unknown_template_names_the_config_key(call: Any) -> None:
    with pytest.raises(ConfigError) as info:
        call()
    assert info.value.problems[0].key == "data.template"
    assert "medtuned" in str(info.value)


def test_chat_uses_the_tokenizers_template(tiny_tokenizer: Any) -> None:
    prompt = render_prompt("chat", "Tag each token.", "aspirin asthma", tiny_tokenizer)
    target = render_target("chat", "aspirin : O\nasthma : B", tiny_tokenizer)
    # the tiny template is Llama-2 style; its BOS text is left to the tokenizer, which adds the BOS id itself
    assert prompt == "[INST] Tag each token.\n\naspirin asthma [/INST]"
    assert target == " aspirin : O\nasthma : B"
    full = tiny_tokenizer.apply_chat_template(
        [
            {"role": "user", "content": "Tag each token.\n\naspirin asthma"},
            {"role": "assistant", "content": "aspirin : O\nasthma : B"},
        ],
        tokenize=False,
    )
    assert tiny_tokenizer.bos_token + prompt + target == full
    ids = tiny_tokenizer(prompt)["input_ids"]
    assert ids.count(tiny_tokenizer.bos_token_id) == 1 and ids[0] == tiny_tokenizer.bos_token_id


def test_chat_without_input_sends_the_instruction_alone(tiny_tokenizer: Any) -> None:
    assert render_prompt("chat", "Say hi.", "", tiny_tokenizer) == "[INST] Say hi. [/INST]"


def test_chat_target_drops_the_eos_text(tiny_tokenizer: Any) -> None:
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'user' %}<|user|>{{ m['content'] }}\n"
        "{% else %}<|assistant|>{{ m['content'] }}{{ eos_token }}\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    assert render_prompt("chat", "Q?", "ctx", tok) == "<|user|>Q?\n\nctx\n<|assistant|>"
    assert render_target("chat", "yes", tok) == "yes"


def test_chat_needs_a_tokenizer_with_a_chat_template(tiny_tokenizer: Any) -> None:
    with pytest.raises(ConfigError, match="needs a tokenizer"):
        render_prompt("chat", "i", "x")
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = None
    with pytest.raises(ConfigError, match="no chat template") as info:
        render_target("chat", "o", tok)
    assert info.value.problems[0].key == "data.template"


def test_chat_template_whose_prompt_is_not_a_prefix_is_refused(tiny_tokenizer: Any) -> None:
    tok = copy.deepcopy(tiny_tokenizer)
    # the generation prompt says 'Bot:' but a finished conversation writes 'Assistant:'
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'user' %}User: {{ m['content'] }}\n"
        "{% else %}Assistant: {{ m['content'] }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}Bot: {% endif %}"
    )
    assert render_prompt("chat", "i", "x", tok) == "User: i\n\nx\nBot: "
    with pytest.raises(ConfigError, match="not a prefix") as info:
        render_target("chat", "o", tok)
    assert info.value.problems[0].key == "data.template"
