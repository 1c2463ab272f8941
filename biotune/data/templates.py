"""Prompt templates: how an instruction sample becomes the text a model reads and the text it must write.

Three layouts (``data.template``):

``medtuned``
    The Llama2-MedTuned training layout: ``### Instruction: {instruction}\\n ### Input: {input}\\n ### Output: ``
    followed by the output.
``alpaca``
    The Alpaca layout with blank lines (the paper's evaluation layout): a preamble sentence, then
    ``### Instruction:``, ``### Input:`` (left out when the input is empty, as Alpaca does) and ``### Response:``
    blocks separated by blank lines.
``chat``
    The tokenizer's own chat template: one user message (instruction, a blank line, input) and one assistant
    message (the output). The prompt is the conversation rendered with ``add_generation_prompt=True``; the target is
    what rendering the full conversation adds after that prompt.

The target never carries the end-of-sequence text: tokenization appends the EOS token id (for ``chat`` a trailing
``tokenizer.eos_token`` that the template writes is removed from the target for the same reason). Likewise, when a chat
template writes the BOS text and the tokenizer adds the BOS id when encoding, the BOS text is removed from the
front of the prompt, so that encoding the prompt with special tokens yields exactly one BOS.
"""

from __future__ import annotations

import logging
from typing import Any

from biotune.config import TEMPLATES
from biotune.errors import ConfigError, Problem

logger = logging.getLogger(__name__)

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request."
)
ALPACA_PREAMBLE_NO_INPUT = "Below is an instruction that describes a task. Write a response that appropriately completes the request."

# Stands in for the user turn when only the target is rendered: the assistant turn a chat template writes does
# not depend on what the user said.
_PLACEHOLDER_USER = "Placeholder instruction.\n\nPlaceholder input."


def render_prompt(template: str, instruction: str, input: str, tokenizer: Any = None) -> str:  # noqa: A002
    """Everything the model reads before its output starts, in the ``template`` layout.

    ``tokenizer`` is needed (and used) only by ``chat``. Raises :class:`ConfigError` naming ``data.template`` for an
    unknown template, or a ``chat`` template without a usable tokenizer chat template.
    """
    _check_name(template)
    if template == "medtuned":
        return f"### Instruction: {instruction}\n ### Input: {input}\n ### Output: "
    if template == "alpaca":
        if not input:
            return f"{ALPACA_PREAMBLE_NO_INPUT}\n\n### Instruction:\n{instruction}\n\n### Response:\n"
        return (
            f"{ALPACA_PREAMBLE}\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
        )
    return _chat_prompt(_chat_tokenizer(tokenizer), user_message(instruction, input))


def render_target(template: str, output: str, tokenizer: Any = None) -> str:
    """The text the model must write after the prompt (the part that carries the loss), without EOS text."""
    _check_name(template)
    if template in ("medtuned", "alpaca"):
        return output
    tok = _chat_tokenizer(tokenizer)
    prompt = _chat_prompt(tok, _PLACEHOLDER_USER)
    full = _drop_bos(
        tok,
        _render(
            tok,
            [{"role": "user", "content": _PLACEHOLDER_USER}, {"role": "assistant", "content": output}],
            add_generation_prompt=False,
        ),
    )
    if not full.startswith(prompt):
        raise ConfigError(
            [
                Problem(
                    "data.template",
                    "the tokenizer's chat template renders the prompt (with add_generation_prompt) as something that is not "
                    f"a prefix of the full conversation: prompt ends {prompt[-40:]!r}, conversation has "
                    f"{full[len(prompt) - 40 : len(prompt)]!r} there; the loss mask cannot be placed",
                    "use data.template=medtuned or alpaca, or a tokenizer (data.tokenizer) whose chat template only appends "
                    "the assistant turn after the generation prompt",
                )
            ]
        )
    return _strip_eos(full[len(prompt) :], getattr(tok, "eos_token", None))


def user_message(instruction: str, input: str) -> str:  # noqa: A002
    """The single user turn of the ``chat`` template: the instruction, a blank line, then the input (if any)."""
    return f"{instruction}\n\n{input}" if input else instruction


def _check_name(template: str) -> None:
    if template not in TEMPLATES:
        raise ConfigError(
            [Problem("data.template", f"unknown template {template!r}", f"use one of {', '.join(TEMPLATES)}")]
        )


def _chat_tokenizer(tokenizer: Any) -> Any:
    if tokenizer is None:
        raise ConfigError(
            [
                Problem(
                    "data.template",
                    "template 'chat' needs a tokenizer, none was given",
                    "pass the tokenizer (data.tokenizer or model.name_or_path), or use medtuned/alpaca",
                )
            ]
        )
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise ConfigError(
            [
                Problem(
                    "data.template",
                    f"the tokenizer {name!r} has no chat template",
                    "use data.template=medtuned or alpaca, or a tokenizer with a chat template",
                )
            ]
        )
    return tokenizer


def _chat_prompt(tokenizer: Any, user: str) -> str:
    return _drop_bos(
        tokenizer, _render(tokenizer, [{"role": "user", "content": user}], add_generation_prompt=True)
    )


def _drop_bos(tokenizer: Any, prompt: str) -> str:
    """Remove the BOS text a chat template writes when encoding the prompt adds the BOS id anyway."""
    bos = getattr(tokenizer, "bos_token", None)
    if not bos or not prompt.startswith(bos):
        return prompt
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return prompt[len(bos) :] if ids and ids[0] == tokenizer.bos_token_id else prompt


def _render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    if not isinstance(text, str):  # batched or tokenized output would be a caller bug, not a user error
        raise TypeError(f"apply_chat_template(tokenize=False) returned {type(text).__name__}, expected str")
    return text


def _strip_eos(target: str, eos_token: str | None) -> str:
    """Drop a trailing EOS text (and whitespace after it): tokenization adds the EOS id itself."""
    if eos_token:
        trimmed = target.rstrip()
        if trimmed.endswith(eos_token):
            return trimmed[: -len(eos_token)]
    return target
