"""Shared helpers for the benchmarks: the real Mistral-7B tokenizer offline, and JSON output."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def data_root() -> Path:
    """The real corpora: ``$BIOTUNE_DATA_DIR`` or ``../shared/data`` (biotune's own default)."""
    from biotune.config import default_data_root

    return Path(default_data_root()).resolve()


def mistral_tokenizer_dir(dest: Path) -> Path:
    """A directory holding Mistral-7B v0.1's 32k SentencePiece tokenizer (shipped in the mistral-common wheel).

    It is close in kind to Llama-2's tokenizer, so token lengths are realistic (PLATFORM.md section 7).
    """
    import mistral_common

    src = Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest / "tokenizer.model")
    (dest / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "LlamaTokenizer",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
            }
        )
    )
    return dest


def emit(result: dict[str, Any]) -> None:
    """Print the result as the last output line: one JSON object."""
    print(json.dumps(result, sort_keys=True))
