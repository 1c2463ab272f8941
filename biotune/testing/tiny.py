"""A tiny random Llama and a byte-level BPE tokenizer trained locally: no hub, no network.

Used by the main demo job and by the tests. ``make_tiny_llama(out_dir, texts)`` writes a directory that
``AutoTokenizer``/``AutoModelForCausalLM.from_pretrained`` load like any exported model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from biotune.data import synthetic
from biotune.sources import resolve_root

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]

# A minimal chat template (Llama-2 style) so that data.template=chat works with the tiny tokenizer.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% elif m['role'] == 'assistant' %} {{ m['content'] }}{% endif %}{% endfor %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """Train a byte-level BPE tokenizer on ``texts``; returns a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_tiny_llama(
    out_dir: str | Path,
    texts: Iterable[str],
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    max_positions: int = 1024,
    seed: int = 0,
    initializer_range: float = 0.02,
    tie_embeddings: bool = False,
) -> Path:
    """Write a random ``LlamaForCausalLM`` + trained tokenizer to ``out_dir`` and return the path.

    ``tie_embeddings`` shares the output layer with the input embeddings (as small Llamas such as 3.2-1B do):
    copying an input token is then an identity map the model gets for free.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(texts, vocab_size)
    tok.save_pretrained(out)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=tie_embeddings,
        initializer_range=initializer_range,
        use_cache=True,
    )
    model = LlamaForCausalLM(cfg)
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(out, safe_serialization=True)
    (out / "biotune_tiny.json").write_text(
        json.dumps({"vocab_size": len(tok), "hidden_size": hidden_size, "num_layers": num_layers})
    )
    return out


def make_sample_llama(path: str | Path) -> Path:
    """The demo's tiny random Llama: a tokenizer trained on every text file of the bundled sample corpus.

    Made once: an existing model at ``path`` is returned as it is. Unit tests use it, so they need no
    ``../shared/data``.
    """
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    sample_root = resolve_root("@sample")
    texts = [
        p.read_text(encoding="utf-8")
        for p in sorted(sample_root.rglob("*"))
        if p.is_file() and p.suffix in (".tsv", ".txt", ".json", ".jsonl")
    ]
    texts.append("### Instruction: ### Input: ### Output: Below is an instruction that describes a task.")
    return make_tiny_llama(path, texts, vocab_size=1024, hidden_size=128, num_layers=2)


def make_probe_llama(path: str | Path, corpus_root: str | Path) -> Path:
    """The learnability probes' and the demo's tiny Llama: hidden 128, 2 layers, tied embeddings, and a
    2,000-token tokenizer trained on the rendered synthetic samples under ``corpus_root``
    (:func:`biotune.data.synthetic.probe_texts`), which keeps each entity, cue and label one or two tokens."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    return make_tiny_llama(
        path,
        synthetic.probe_texts(corpus_root),
        vocab_size=2000,
        hidden_size=128,
        num_layers=2,
        max_positions=1024,
        tie_embeddings=True,
    )
