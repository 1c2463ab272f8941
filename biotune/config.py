"""The typed configuration schema, and the one place that turns YAML + overrides into it.

``load(path, overrides)`` merges: dataclass defaults -> YAML file (which may name ``defaults:`` files to
merge first) -> ``key.sub=value`` overrides, then validates. Every problem (unknown key, wrong type,
inconsistent values) is collected and raised as a single :class:`~biotune.errors.ConfigError` naming each
key and its fix. Downstream code receives plain dataclasses; OmegaConf stays at this edge.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from biotune.errors import ConfigError, Problem
from biotune.names import config_name_problems

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_data_root() -> str:
    """Where the real corpora live: ``$BIOTUNE_DATA_DIR``, else ``../shared/data`` beside the repo."""
    return os.environ.get("BIOTUNE_DATA_DIR", str(REPO_ROOT.parent / "shared" / "data"))


# --------------------------------------------------------------------------------------------- sections


@dataclass
class SourceMix:
    """How one source enters the training mixture."""

    weight: float = 1.0
    """Relative share when ``data.total_samples`` is set (ignored otherwise)."""
    epochs: float = 1.0
    """Passes over the source when ``data.total_samples`` is unset; 2.5 = two full passes + half."""
    cap: int | None = None
    """Upper bound on the realised number of samples from this source (after weighting)."""
    include: bool = True
    """False leaves the source out (a leave-out ablation) while keeping it in the config."""
    split: str = "train"
    """Which split of the source to train on."""
    group: str = ""
    """Task group for reporting and leave-group-out sweeps; defaults to the source's task kind."""


@dataclass
class CustomSource:
    """A corpus of one's own, declared in a config (``data.custom_sources.NAME``): read by a built-in reader and
    used like a registered source (mixtures, leakage checks, evaluation, reports, sweeps, the manifest)."""

    kind: str = ""
    """Task kind: ``ner``, ``re``, ``nli``, ``qa`` or ``cls`` (multi-label classification)."""
    format: str = ""
    """Native file format, one of the readers: ``conll``, ``blue_tsv``, ``cls_tsv``, ``mednli_jsonl``, ... (see
    ``biotune.data.sources.FORMAT_KINDS``)."""
    files: dict[str, str] = field(default_factory=dict)
    """Split name -> file (or folder), absolute or relative to ``data.root``; e.g. ``{train: ..., test: ...}``."""
    labels: list[str] = field(default_factory=list)
    """NER: entity types; RE: relation labels incl. the negative; NLI/QA: the answers; CLS: the label names."""
    entity_type: str | None = None
    """NER with untyped ``B``/``I`` tags: the type they get (one of ``labels``)."""
    negative_label: str | None = None
    """RE: the label that means "no relation" (one of ``labels``)."""
    licence: str = ""
    """The corpus's licence, recorded in the manifest."""
    restricted: bool = True
    """True (the default) keeps anything built from it private: no dataset text or predictions uploaded."""
    description: str = ""
    """One line on what the corpus is (shown in the manifest)."""


@dataclass
class InstructionSet:
    """Rows in the published instruction schema (``instruction``, ``input``, ``output``, ``source``)."""

    path: str = ""
    """A ``.jsonl``/``.json``/``.parquet``/``.arrow`` file, a ``datasets`` ``save_to_disk`` directory, or a hub
    dataset written ``hf://org/name``."""
    split: str = "train"
    """The split to read (a JSON ``{split: rows}`` key, a ``DatasetDict`` split, a hub split)."""
    licence: str = ""
    """The rows' licence (e.g. ``CC BY-NC 4.0`` for nlpie/Llama2-MedTuned-Instructions), recorded in the manifest."""
    restricted: bool = True
    """Rows stay private (never uploaded) unless this is set to false; undeclared counts as restricted."""


@dataclass
class EvalInstructionSet(InstructionSet):
    """Instruction rows to evaluate on: each row's ``source`` names the biotune source whose task parses and
    scores it (``biotune.data.sources.instructions.PUBLISHED_SOURCES``, overridable here)."""

    source_map: dict[str, str] = field(default_factory=dict)
    """Row ``source`` value -> biotune source name, over the published defaults (e.g. ``{my-ner: ncbi_disease}``)."""
    corpus_split: str = ""
    """The corpus split the rows were made from (``devel`` for the paper's released NER sets), used to place
    published numbers; empty = ``split``."""


@dataclass
class DataConfig:
    """Sources -> instruction samples -> mixture -> tokenized, packed shards."""

    root: str = field(default_factory=default_data_root)
    """Directory of the corpora in their native layout, or ``@sample`` for the bundled sample."""
    sources: dict[str, SourceMix] = field(default_factory=dict)
    """Source name (see ``biotune.data.sources.SOURCES``) -> how it enters the mixture."""
    custom_sources: dict[str, CustomSource] = field(default_factory=dict)
    """Corpora of one's own: name -> declaration; name them in ``data.sources`` like built-in ones."""
    split_files: dict[str, dict[str, str]] = field(default_factory=dict)
    """Source -> split -> file (absolute or relative to ``data.root``): read that split from that file only."""
    instructions: dict[str, InstructionSet] = field(default_factory=dict)
    """Published-schema instruction sets joining the training mixture: name -> where and under what licence."""
    total_samples: int | None = None
    """If set, sources are sampled to this total by weight (upsampling with repeats where needed)."""
    seed: int = 1234
    """Seeds sampling, repeats, paraphrased instructions and the held-out split (not training: ``train.seed``)."""
    ner_format: str = "tags"
    """NER output format: ``tags`` (the paper's ``token : TAG`` lines) or ``entities`` (compact list)."""
    template: str = "medtuned"
    """Prompt template: ``medtuned`` (the paper's), ``alpaca`` or ``chat`` (the tokenizer's chat template)."""
    tokenizer: str = ""
    """Tokenizer directory or hub id; empty means the model's (``model.name_or_path``)."""
    max_seq_len: int = 2048
    """Longest sample (prompt + output + EOS) in tokens, and the capacity of a packed row."""
    truncation: str = "drop"
    """Over-long samples: ``drop`` them, or ``truncate`` the input side (the output is never cut)."""
    pack: bool = True
    """Pack samples into rows of ``max_seq_len`` (best-fit decreasing); False = one sample per row."""
    eval_fraction: float = 0.0
    """Fraction of the mixture held out for the trainer's eval loss (rows, after packing)."""
    leakage_splits: list[str] = field(default_factory=lambda: ["test", "devel", "dev"])
    """Evaluation splits checked for overlap with the training samples."""
    leakage: str = "warn"
    """``warn`` records overlaps in the manifest, ``error`` fails the build, ``off`` skips the check."""
    out_dir: str = "runs/data"
    """Built datasets go to ``out_dir/<content hash>/``."""
    num_proc: int = 1
    """Worker processes (spawned) that read the training splits, tokenize in chunks and run the leakage check; the
    output is byte-identical for every value, so it is kept out of the cache key and the manifest. 1 = all in this
    process. Each worker encodes on one thread (unless ``TOKENIZERS_PARALLELISM`` is set); in this process the
    Rust tokenizer spreads each batch over the cores unless ``TOKENIZERS_PARALLELISM=false``."""


@dataclass
class ModelConfig:
    """The base model."""

    name_or_path: str = ""
    """Local directory or hub id of a causal LM (Llama family)."""
    dtype: str = "bf16"
    """``bf16``, ``fp16`` or ``fp32``."""
    attn_implementation: str = "auto"
    """``auto`` (flash_attention_2 when installed and on CUDA, else sdpa_packed), ``sdpa_packed`` (sdpa run on each
    packed sequence alone, ``biotune.train.attention``), ``sdpa`` (one block-diagonal mask per row), ``eager``,
    ``flash_attention_2``."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass (less memory, ~30% more compute)."""
    trust_remote_code: bool = False
    """Allow model/tokenizer code from the model directory or hub repo (off: never run downloaded code)."""


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule."""

    lr: float = 2e-5
    """Peak learning rate (AdamW)."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    """AdamW (beta1, beta2)."""
    eps: float = 1e-8
    """AdamW epsilon."""
    schedule: str = "cosine"
    """``cosine``, ``linear`` or ``constant`` (all after linear warmup)."""
    warmup_steps: int = 0
    """Linear warmup from 0 over this many optimizer steps."""
    min_lr_ratio: float = 0.0
    """Final learning rate as a fraction of ``lr`` (cosine and linear schedules)."""
    grad_clip: float = 1.0
    """Global gradient-norm clipping threshold."""


@dataclass
class LoraConfig:
    """LoRA adapters (through peft) instead of full fine-tuning: only the adapters train (``train.lora``)."""

    rank: int = 8
    """Rank ``r`` of each adapter's low-rank update ``B @ A``."""
    alpha: float = 16.0
    """Scale numerator: the update is multiplied by ``alpha / rank``."""
    dropout: float = 0.05
    """Dropout on each adapter's input, in [0, 1)."""
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    """Linear modules that get an adapter, by name (``q_proj``) or dotted suffix (``self_attn.q_proj``); Llama's
    are ``q_proj k_proj v_proj o_proj gate_proj up_proj down_proj``."""


@dataclass
class TrainConfig:
    """The training loop."""

    data_dir: str = ""
    """A built dataset directory (``biotune data build``); empty = build ``data`` first and use it."""
    output_dir: str = "runs/train"
    """The run directory: checkpoints, metrics, export (layout: ``biotune.train.checkpoint``)."""
    deepspeed: str = "configs/deepspeed/zero3.json"
    """ZeRO-3 JSON (no offload / optimizer offload / param+optimizer offload); batch fields are filled in."""
    micro_batch_size: int = 1
    """Packed rows per rank per micro-step."""
    grad_accum: int = 1
    """Micro-steps per optimizer step."""
    global_batch_size: int | None = None
    """If set, must equal micro_batch_size * grad_accum * world_size (checked at start)."""
    max_steps: int = -1
    """Optimizer steps; -1 = run ``epochs`` passes over the data."""
    epochs: float = 1.0
    """Passes over the packed rows when ``max_steps`` is -1."""
    save_every: int = 500
    """Save a checkpoint every this many optimizer steps (and always at the end)."""
    keep_last: int = 2
    """Complete checkpoints kept; older ones are deleted."""
    eval_every: int = 0
    """Held-out loss every this many steps (0 = only at the end, when there is a held-out split)."""
    log_every: int = 10
    """Log loss, throughput and MFU every this many steps."""
    resume: str = "auto"
    """``auto`` (newest COMPLETED checkpoint in output_dir, if any), ``none``, or a checkpoint path."""
    seed: int = 1234
    """Training seed: data order, dropout, initialisation of anything new (a sweep's seeds set this)."""
    peak_tflops: float | None = None
    """Per-device peak TFLOP/s that ``perf/mfu`` is taken against (positive, finite); None = the device table
    (``biotune.train.hardware.PEAK_TFLOPS``), else, on CPU or an unknown GPU, a matmul probe measured at start."""
    export_on_finish: bool = True
    """Export the last checkpoint to ``output_dir/hf`` (Hugging Face safetensors) when training ends."""
    lora: LoraConfig | None = None
    """LoRA adapters (peft) on a frozen base; null = full fine-tuning. ``train.lora.rank=16`` turns it on with
    the other keys at their defaults. Export writes merged full weights plus the adapter."""


@dataclass
class LaunchConfig:
    """How ``launch/`` starts processes (the SLURM scripts set nodes and GPUs)."""

    cpu_procs_per_node: int = 1
    """Processes per node on a machine without GPUs (with GPUs: one per GPU present)."""


@dataclass
class TrackingConfig:
    """wandb (rank 0 only) plus an always-written local metrics.jsonl."""

    wandb_mode: str = "offline"
    """``offline``, ``online`` or ``disabled``."""
    project: str = "biotune"
    """wandb project."""
    entity: str | None = None
    """wandb entity (team or user); None = the logged-in default."""
    group: str | None = None
    """wandb group: a sweep puts all its runs, training and evaluation, in the group named after it."""
    job_type: str = "train"
    """wandb job type of the training run (evaluation runs use ``eval``)."""
    tags: list[str] = field(default_factory=list)
    """wandb tags."""
    run_config: dict[str, Any] = field(default_factory=dict)
    """Extra entries of the wandb run config; a sweep records the variant, its axis value and mixture weights."""
    log_dataset_text: bool = False
    """Attach a table of training examples (text) to the wandb run; never from sources flagged restricted."""
    dataset_text_examples: int = 32
    """How many examples that table holds, when ``log_dataset_text`` is on."""


@dataclass
class EvalConfig:
    """Generation, parsing and scoring."""

    model: str = ""
    """Exported HF model dir or checkpoint dir; empty = the training run's export."""
    sources: list[str] = field(default_factory=list)
    """Sources to evaluate; empty = every source in ``data.sources`` that has the split."""
    splits: list[str] = field(default_factory=lambda: ["test"])
    """Splits to evaluate (``dev`` finds ``devel``/``validation`` spellings)."""
    max_examples: int | None = None
    """Evaluate at most this many examples per set (the first ones, in corpus order); None = all."""
    batch_size: int = 16
    """Prompts per generation batch (left-padded)."""
    max_new_tokens: int = 256
    """Generation length limit."""
    num_beams: int = 1
    """Beam width (1 = greedy)."""
    backend: str = "hf"
    """``hf`` or ``vllm`` (used only when installed)."""
    output_dir: str = "runs/eval"
    """Where report.json, report.md and predictions/ go."""
    upload_predictions: bool = False
    """Upload per-example predictions to wandb (never for restricted sources)."""
    instructions: dict[str, EvalInstructionSet] = field(default_factory=dict)
    """Instruction rows to evaluate (e.g. the paper's released eval sets): name -> rows and source mapping."""


@dataclass
class RunConfig:
    """The root of every biotune config."""

    name: str = "biotune"
    """Run name (wandb run name; eval runs append ``-eval``)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)


# --------------------------------------------------------------------------------------------- loading


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _unwrap_optional(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


#: Keys of earlier versions -> how to write them now.
RENAMED = {
    "data.instruction_files": "write each file as data.instructions.NAME: {path: FILE, licence: ..., restricted: "
    "true|false} (an undeclared licence counts as restricted)",
}


def _check_keys(schema: type, data: Any, prefix: str, problems: list[Problem]) -> None:
    """Recursively report keys in ``data`` that the dataclass ``schema`` does not have."""
    if not isinstance(data, dict):
        return
    hints = get_type_hints(schema)
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if dotted in RENAMED:
            problems.append(Problem(dotted, "this key was replaced", RENAMED[dotted]))
            continue
        if key not in hints:
            close = difflib.get_close_matches(str(key), list(hints), n=1)
            fix = (
                f"did you mean '{prefix}{close[0]}'?"
                if close
                else f"remove it; valid keys: {', '.join(hints)}"
            )
            problems.append(Problem(dotted, "unknown key", fix))
            continue
        tp = _unwrap_optional(hints[key])
        if _is_dataclass_type(tp):
            if value is not None and not isinstance(value, dict):
                problems.append(
                    Problem(dotted, f"expected a mapping, got {value!r}", f"give {dotted} sub-keys")
                )
            else:
                _check_keys(tp, value, dotted + ".", problems)
        elif get_origin(tp) is dict:
            val_tp = get_args(tp)[1]
            if _is_dataclass_type(val_tp) and isinstance(value, dict):
                for sub, subval in value.items():
                    if subval is not None and not isinstance(subval, dict):
                        problems.append(
                            Problem(
                                f"{dotted}.{sub}",
                                f"expected a mapping, got {subval!r}",
                                f"write {dotted}.{sub}: {{weight: 1.0}} or similar",
                            )
                        )
                    else:
                        _check_keys(val_tp, subval or {}, f"{dotted}.{sub}.", problems)


_SCALARS = (str, int, float, bool)


def _check_items(schema: type, data: Any, prefix: str, problems: list[Problem]) -> None:
    """Report each list or mapping of plain values (``tracking.tags``, ``eval.sources``, ``source_map``, ...) that
    holds a list or a mapping where a value belongs (``tracking.tags=[[a]]``); the bad container is removed from
    ``data`` so that the rest can still be checked."""
    if not isinstance(data, dict):
        return
    hints = get_type_hints(schema)
    for key, value in list(data.items()):
        if key not in hints:
            continue
        dotted, tp = f"{prefix}{key}", _unwrap_optional(hints[key])
        if _is_dataclass_type(tp):
            _check_items(tp, value, dotted + ".", problems)
            continue
        origin, args = get_origin(tp), get_args(tp)
        if origin is dict and args and _is_dataclass_type(args[1]) and isinstance(value, dict):
            for sub, subval in value.items():
                _check_items(args[1], subval, f"{dotted}.{sub}.", problems)
            continue
        items = (
            list(enumerate(value))
            if origin is list and isinstance(value, list)
            else list(value.items())
            if origin is dict and isinstance(value, dict) and args and args[1] in _SCALARS
            else []
        )
        for index, item in items:
            if isinstance(item, list | dict):
                where = f"{dotted}[{index}]" if origin is list else f"{dotted}.{index}"
                kind = "a list" if isinstance(item, list) else "a mapping"
                problems.append(
                    Problem(
                        where,
                        f"expected a plain value, got {kind}: {item!r}"[:200],
                        f"write {dotted} as {'a flat list, e.g. [a, b]' if origin is list else 'key: value pairs'}",
                    )
                )
                del data[key]
                break


def _section_schema(schema_cfg: DictConfig, key: str) -> DictConfig | None:
    """The schema of ``key`` when it is a section, also an optional one that is null by default (``train.lora``)."""
    if not isinstance(schema_cfg, DictConfig) or key not in schema_cfg:
        return None
    node = schema_cfg._get_node(key)
    if not isinstance(node, DictConfig):
        return None
    ref = node._metadata.ref_type
    return OmegaConf.structured(ref) if node._is_none() and _is_dataclass_type(ref) else node


def _check_types(schema_cfg: DictConfig, data: Any, prefix: str, problems: list[Problem]) -> None:
    """Report each leaf whose value cannot be merged into the structured schema (a wrong type).

    Bad leaves are removed from ``data`` so that the remaining keys can still be validated together.
    """
    if not isinstance(data, dict):
        return
    for key, value in list(data.items()):
        dotted = f"{prefix}{key}"
        section = _section_schema(schema_cfg, key)
        if isinstance(value, dict):
            if section is not None:
                _check_types(section, value, dotted + ".", problems)
            continue
        if section is not None and value is not None:  # reported by _check_keys ("expected a mapping")
            del data[key]
            continue
        probe = OmegaConf.structured(schema_cfg) if not isinstance(schema_cfg, DictConfig) else schema_cfg
        try:
            OmegaConf.merge(probe, {key: value})
        except OmegaConfBaseException as err:
            if key not in probe:  # unknown keys are reported by _check_keys; dict-of-dataclass is open
                continue
            expected = OmegaConf.get_type(probe, key)
            msg = str(err).splitlines()[0]
            problems.append(
                Problem(
                    dotted,
                    f"wrong type: {msg}",
                    f"give a value of type {getattr(expected, '__name__', expected)}",
                )
            )
            del data[key]


def _read_yaml(path: Path, seen: tuple[Path, ...] = (), included_by: Path | None = None) -> dict[str, Any]:
    """Read a YAML file, merging the files it lists under ``defaults:`` (relative to it) first.

    ``defaults`` is a list of paths or one path. A missing or broken included file is reported against the file
    that includes it (``included_by``), so the user knows which ``defaults:`` line to fix.
    """
    if not path.is_file():
        if included_by is not None:
            raise ConfigError(
                [
                    Problem(
                        "defaults",
                        f"included file {path} does not exist",
                        f"fix the path under defaults: in {included_by} (paths there are relative "
                        "to that file)",
                    )
                ],
                included_by,
            )
        what = "is a directory, not a YAML file" if path.is_dir() else "does not exist"
        raise ConfigError(
            [
                Problem(
                    "<file>",
                    f"config file {path} {what}",
                    "pass the path of a YAML file, e.g. configs/train/demo.yaml",
                )
            ]
        )
    if path in seen:
        raise ConfigError([Problem("defaults", f"{path} includes itself", "remove the cycle")], path)
    try:
        raw = OmegaConf.load(path)
    except UnicodeDecodeError as err:
        raise ConfigError(
            [
                Problem(
                    "<file>", f"not UTF-8 text ({err.reason} at byte {err.start})", "save the config as UTF-8"
                )
            ],
            path,
        ) from None
    except Exception as err:  # yaml.YAMLError carries the line in its message; OmegaConf: duplicate keys
        what = " ".join(str(err).split())
        raise ConfigError(
            [Problem("<yaml>", f"cannot parse: {what}", "fix the YAML syntax at that line")], path
        ) from None
    data = OmegaConf.to_container(raw, resolve=False) or {}
    if not isinstance(data, dict):
        raise ConfigError([Problem("<root>", "the file must hold a mapping", "write key: value pairs")], path)
    includes = data.pop("defaults", None) or []
    if isinstance(includes, str):  # `defaults: base.yaml` means one file, not one file per character
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) and i for i in includes):
        raise ConfigError(
            [
                Problem(
                    "defaults",
                    f"expected a list of YAML paths, got {includes!r}",
                    "write defaults: [../model/tiny.yaml, ../data/sample.yaml]",
                )
            ],
            path,
        )
    merged: DictConfig = OmegaConf.create({})
    for inc in includes:
        included = _read_yaml((path.parent / inc).resolve(), (*seen, path), included_by=path)
        try:
            merged = OmegaConf.merge(merged, included)
        except OmegaConfBaseException as err:
            raise ConfigError(
                [
                    Problem(
                        "defaults",
                        f"{inc} cannot be merged: {str(err).splitlines()[0]}",
                        "give each key the same kind of value (mapping, list or scalar) in every "
                        "included file",
                    )
                ],
                path,
            ) from None
    try:
        merged = OmegaConf.merge(merged, data)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "defaults"
        raise ConfigError(
            [
                Problem(
                    str(key),
                    f"cannot be merged over the defaults: {str(err).splitlines()[0]}",
                    "give it the same kind of value (mapping, list or scalar) as the included files do",
                )
            ],
            path,
        ) from None
    return OmegaConf.to_container(merged, resolve=False)  # type: ignore[return-value]


#: Characters YAML reserves at the start of a plain value: ``data.root=@sample`` means the string ``@sample``.
_RESERVED_VALUE_START = ("@", "`")


def _parse_overrides(overrides: list[str]) -> tuple[list[tuple[str, dict[str, Any]]], list[Problem]]:
    """``key.sub=value`` strings -> one (key, nested dict) per override, in order, plus their problems.

    The overrides are merged one by one by :func:`load`, so that one bad override is reported by itself.
    """
    problems: list[Problem] = []
    parsed: list[tuple[str, dict[str, Any]]] = []
    for ov in overrides:
        key, _, value = ov.partition("=")
        key = key.strip()
        if not _ or not key or any(not part for part in key.split(".")):
            problems.append(
                Problem(
                    ov,
                    "an override must look like key.sub=value",
                    f"write e.g. train.max_steps=10, not '{ov}'",
                )
            )
            continue
        try:
            if value.startswith(_RESERVED_VALUE_START):
                one = OmegaConf.to_container(OmegaConf.from_dotlist([f"{key}=x"]), resolve=False)
                node = one
                for part in key.split(".")[:-1]:
                    node = node[part]  # type: ignore[index]
                node[key.split(".")[-1]] = value  # type: ignore[index]
            else:
                one = OmegaConf.to_container(OmegaConf.from_dotlist([ov]), resolve=False)
        except Exception as err:  # a YAML scanner error, e.g. an unclosed bracket
            problems.append(
                Problem(
                    key,
                    f"cannot parse the value {value!r}: {str(err).splitlines()[0]}",
                    f"quote it, e.g. {key}='\"{value}\"', or fix its YAML (lists: [a,b])",
                )
            )
            continue
        parsed.append((key, one))  # type: ignore[arg-type]
    return parsed, problems


def _sources_problem(data: dict[str, Any], where: str) -> Problem | None:
    """A Problem (and the bad value removed) when ``data.sources`` is not a mapping, e.g. a list of names."""
    section = data.get("data")
    if not isinstance(section, dict) or "sources" not in section:
        return None
    sources = section["sources"]
    if sources is None or isinstance(sources, dict):
        return None
    del section["sources"]
    names = sources if isinstance(sources, list) else ["ncbi_disease"]
    example = ", ".join(f"{n}: {{}}" for n in names[:3] if isinstance(n, str)) or "ncbi_disease: {}"
    return Problem(
        "data.sources",
        f"expected a mapping of source name -> settings, got {sources!r} ({where})",
        f"write data.sources as a mapping, e.g. data: {{sources: {{{example}}}}}; on the command line: "
        "data.sources.NAME.weight=1",
    )


def load(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a config: schema defaults <- YAML (with its ``defaults:``) <- ``key=value`` overrides.

    A problem caused by an override is reported against the overrides, not the YAML file.

    Raises:
        ConfigError: listing every unknown key, wrong type and inconsistent value.
    """
    overrides = list(overrides or [])
    data: dict[str, Any] = _read_yaml(Path(path).resolve()) if path else {}
    yaml_problems: list[Problem] = []
    bad = _sources_problem(data, "in the YAML file")
    yaml_problems += [bad] if bad else []
    parsed, problems = _parse_overrides(overrides)
    merged_cfg: DictConfig = OmegaConf.create(data)
    for key, one in parsed:
        bad = _sources_problem(one, f"from the override {key}=...")
        if bad:
            problems.append(bad)
            continue
        try:
            merged_cfg = OmegaConf.merge(merged_cfg, one)  # type: ignore[assignment]
        except (OmegaConfBaseException, TypeError, ValueError) as err:
            problems.append(
                Problem(
                    key,
                    f"cannot apply this override: {str(err).splitlines()[0]}",
                    f"give {key} the same kind of value (mapping, list or scalar) as the config",
                )
            )
    data = OmegaConf.to_container(merged_cfg, resolve=False)  # type: ignore[assignment]
    section = data.get("data")
    if isinstance(section, dict) and section.get("leakage") is False:  # YAML 1.1 reads `off` as false
        section["leakage"] = "off"
    problems = yaml_problems + problems
    _check_keys(RunConfig, data, "", problems)
    _drop_unknown(RunConfig, data)
    _check_items(RunConfig, data, "", problems)
    schema = OmegaConf.structured(RunConfig)
    _check_types(schema, data, "", problems)
    try:
        merged = OmegaConf.merge(schema, data)
        cfg: RunConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as err:
        problems.append(
            Problem(getattr(err, "full_key", "?") or "?", str(err).splitlines()[0], "correct the value")
        )
        raise ConfigError(problems, _blame(path, overrides, problems)) from err
    problems += validate(cfg)
    if problems:
        raise ConfigError(problems, _blame(path, overrides, problems))
    return cfg


def _blame(path: str | Path | None, overrides: list[str], problems: list[Problem]) -> str | None:
    """Where the problems come from: the YAML file, the ``key=value`` overrides, or both."""

    def caused(ov: str, p: Problem) -> bool:
        key = ov.partition("=")[0].strip()
        return (
            p.key == ov
            or bool(key)
            and (p.key == key or p.key.startswith((f"{key}.", f"{key}[")) or key.startswith(f"{p.key}."))
        )

    blamed = [ov for ov in overrides if any(caused(ov, p) for p in problems)]
    from_yaml = [p for p in problems if not any(caused(ov, p) for ov in overrides)]
    if not blamed:
        return str(path) if path else None
    named = ("the overrides " if len(blamed) > 1 else "the override ") + " ".join(blamed)
    if not from_yaml:
        return f"{named} (on top of {path})" if path else named
    return f"{path} and {named}" if path else named


def _drop_unknown(schema: type, data: Any) -> None:
    """Remove keys already reported as unknown, so the rest of the config can still be checked."""
    if not isinstance(data, dict):
        return
    hints = get_type_hints(schema)
    for key in list(data):
        if key not in hints:
            del data[key]
            continue
        tp = _unwrap_optional(hints[key])
        if _is_dataclass_type(tp):
            _drop_unknown(tp, data[key])
        elif get_origin(tp) is dict and _is_dataclass_type(get_args(tp)[1]) and isinstance(data[key], dict):
            for sub in data[key].values():
                _drop_unknown(get_args(tp)[1], sub)


def to_yaml(cfg: RunConfig) -> str:
    """The resolved config as YAML (printed by ``--dry-run`` and saved beside every run)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain-dict view of a config dataclass (for hashing and trackers)."""
    return dataclasses.asdict(cfg)


# --------------------------------------------------------------------------------------------- validation


def _choice(problems: list[Problem], key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        problems.append(
            Problem(key, f"'{value}' is not one of {', '.join(allowed)}", f"set {key} to one of {allowed}")
        )


def _positive(problems: list[Problem], key: str, value: float | int | None, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        problems.append(
            Problem(
                key,
                f"must be {'>= 0' if allow_zero else '> 0'}, got {value}",
                f"set {key} to a positive value",
            )
        )


#: What ``tracking.wandb_mode`` accepts.
WANDB_MODES: tuple[str, ...] = ("offline", "online", "disabled")
#: What ``eval.backend`` accepts (``vllm`` is used only when installed).
EVAL_BACKENDS: tuple[str, ...] = ("hf", "vllm")


def validate(cfg: RunConfig) -> list[Problem]:
    """Semantic checks, section by section. Returns every problem found (empty list = valid)."""
    p: list[Problem] = []
    for check in (
        _validate_data,
        _validate_model,
        _validate_optim,
        _validate_train,
        _validate_lora,
        _validate_tracking,
        _validate_eval,
        _validate_eval_instructions,
        _validate_launch,
    ):
        check(cfg, p)
    return config_name_problems(cfg) + p


def _validate_data(cfg: RunConfig, p: list[Problem]) -> None:
    from biotune.data.leakage import LEAKAGE_MODES
    from biotune.data.tasks.base import NER_FORMATS
    from biotune.data.templates import TEMPLATES
    from biotune.data.tokenize import TRUNCATION_POLICIES

    d = cfg.data
    from biotune.data.sources import custom

    p += custom.problems(d.custom_sources)
    _check_split_files(d, p)
    _check_instruction_sets("data.instructions", d.instructions, p)
    _choice(p, "data.ner_format", d.ner_format, NER_FORMATS)
    _choice(p, "data.template", d.template, TEMPLATES)
    _choice(p, "data.truncation", d.truncation, TRUNCATION_POLICIES)
    _choice(p, "data.leakage", d.leakage, LEAKAGE_MODES)
    _positive(p, "data.max_seq_len", d.max_seq_len)
    _positive(p, "data.total_samples", d.total_samples)
    _positive(p, "data.num_proc", d.num_proc)
    if not 0.0 <= d.eval_fraction < 1.0:
        p.append(Problem("data.eval_fraction", f"must be in [0, 1), got {d.eval_fraction}", "use e.g. 0.01"))
    for name, mix in d.sources.items():
        key = f"data.sources.{name}"
        _positive(p, f"{key}.weight", mix.weight, allow_zero=True)
        _positive(p, f"{key}.epochs", mix.epochs, allow_zero=True)
        _positive(p, f"{key}.cap", mix.cap, allow_zero=True)
    included = {n: s for n, s in d.sources.items() if s.include}
    if d.sources and not included:
        p.append(
            Problem(
                "data.sources",
                "every source has include: false: the mixture is empty",
                "set include: true on at least one source",
            )
        )
    if d.total_samples and included and sum(s.weight for s in included.values()) <= 0:
        p.append(
            Problem(
                "data.sources.*.weight",
                "all included weights are zero while data.total_samples is set",
                "give at least one included source a weight > 0",
            )
        )


def _check_split_files(d: DataConfig, p: list[Problem]) -> None:
    from biotune.data.sources import SOURCES, UnknownSourceError

    for name, files in d.split_files.items():
        known: tuple[str, ...] | None = (
            None  # the splits a mapped file may replace or add (None: unknown source)
        )
        if name in SOURCES:
            known = SOURCES[name].split_names
        elif name in d.custom_sources:
            known = tuple(d.custom_sources[name].files)
        else:
            p.append(
                Problem(f"data.split_files.{name}", f"unknown source '{name}'", UnknownSourceError(name).fix)
            )
        for split, path in files.items():
            key = f"data.split_files.{name}.{split}"
            if not str(path).strip():
                p.append(Problem(key, "empty path", "give the file's path"))
            if known is not None and split not in known:
                p.append(
                    Problem(
                        key,
                        f"source '{name}' has no split '{split}' (its splits: {', '.join(known) or 'none'})",
                        f"map the file to one of {name}'s splits, e.g. data.split_files.{name}."
                        f"{known[0] if known else 'train'}=PATH",
                    )
                )


def _check_instruction_sets(key: str, sets: dict[str, Any], p: list[Problem]) -> None:
    for name, one in sets.items():
        if not one.path.strip():
            p.append(
                Problem(
                    f"{key}.{name}.path",
                    "no path",
                    "give a .jsonl/.json/.parquet/.arrow file, a save_to_disk directory or hf://org/name",
                )
            )
        if not one.split.strip():
            p.append(Problem(f"{key}.{name}.split", "empty split", "name the split to read, e.g. train"))
        if not one.restricted and not one.licence.strip():
            p.append(
                Problem(
                    f"{key}.{name}.restricted",
                    "restricted: false without a licence",
                    f"declare {key}.{name}.licence (e.g. CC BY-NC 4.0), or keep restricted: true",
                )
            )


def _validate_model(cfg: RunConfig, p: list[Problem]) -> None:
    from biotune.train.attention import IMPLEMENTATIONS
    from biotune.train.hardware import PRECISIONS

    _choice(p, "model.dtype", cfg.model.dtype, PRECISIONS)
    _choice(p, "model.attn_implementation", cfg.model.attn_implementation, IMPLEMENTATIONS)


def _validate_optim(cfg: RunConfig, p: list[Problem]) -> None:
    from biotune.train.schedule import SCHEDULES

    o = cfg.optim
    _choice(p, "optim.schedule", o.schedule, SCHEDULES)
    _positive(p, "optim.lr", o.lr)
    _positive(p, "optim.warmup_steps", o.warmup_steps, allow_zero=True)
    _positive(p, "optim.eps", o.eps)
    _positive(p, "optim.weight_decay", o.weight_decay, allow_zero=True)
    _positive(p, "optim.grad_clip", o.grad_clip, allow_zero=True)
    if len(o.betas) != 2 or not all(0.0 <= b < 1.0 for b in o.betas):
        p.append(
            Problem("optim.betas", f"must be two numbers in [0, 1), got {o.betas}", "use e.g. [0.9, 0.95]")
        )
    if not 0.0 <= o.min_lr_ratio <= 1.0:
        p.append(Problem("optim.min_lr_ratio", f"must be in [0, 1], got {o.min_lr_ratio}", "use e.g. 0.1"))


def _validate_train(cfg: RunConfig, p: list[Problem]) -> None:
    t = cfg.train
    for key in (
        "micro_batch_size",
        "grad_accum",
        "global_batch_size",
        "save_every",
        "keep_last",
        "log_every",
        "epochs",
        "peak_tflops",
    ):
        _positive(p, f"train.{key}", getattr(t, key))
    _positive(p, "train.eval_every", t.eval_every, allow_zero=True)
    if t.peak_tflops is not None and (math.isnan(t.peak_tflops) or t.peak_tflops == math.inf):  # -inf: above
        p.append(
            Problem(
                "train.peak_tflops",
                f"must be a finite number of TFLOP/s, got {t.peak_tflops}",
                "set train.peak_tflops to the device's peak (e.g. 989 for an H100 in bf16), or null to use the "
                "device table or a measured peak",
            )
        )
    if t.max_steps == 0 or t.max_steps < -1:
        p.append(
            Problem(
                "train.max_steps",
                f"must be -1 (use epochs) or > 0, got {t.max_steps}",
                "set train.max_steps=-1 or a step count",
            )
        )
    if t.global_batch_size and t.global_batch_size % (t.micro_batch_size * t.grad_accum):
        p.append(
            Problem(
                "train.global_batch_size",
                f"{t.global_batch_size} is not divisible by micro_batch_size*grad_accum = "
                f"{t.micro_batch_size * t.grad_accum}",
                "make global_batch_size = micro_batch_size * grad_accum * world_size",
            )
        )


def _validate_lora(cfg: RunConfig, p: list[Problem]) -> None:
    lora = cfg.train.lora
    if lora is None:
        return
    if lora.rank <= 0:
        p.append(
            Problem("train.lora.rank", f"must be > 0, got {lora.rank}", "set train.lora.rank to e.g. 8 or 16")
        )
    if not lora.alpha > 0:
        p.append(
            Problem(
                "train.lora.alpha",
                f"must be > 0, got {lora.alpha}",
                "set train.lora.alpha to e.g. 2 x the rank",
            )
        )
    if not 0.0 <= lora.dropout < 1.0:
        p.append(
            Problem("train.lora.dropout", f"must be in [0, 1), got {lora.dropout}", "use e.g. 0.05 (0 = off)")
        )
    if not lora.target_modules or not all(str(m).strip() for m in lora.target_modules):
        p.append(
            Problem(
                "train.lora.target_modules",
                f"must name at least one module, got {lora.target_modules}",
                "list linear module names, e.g. [q_proj, v_proj]",
            )
        )


def _validate_tracking(cfg: RunConfig, p: list[Problem]) -> None:
    _choice(p, "tracking.wandb_mode", cfg.tracking.wandb_mode, WANDB_MODES)
    _positive(p, "tracking.dataset_text_examples", cfg.tracking.dataset_text_examples)


def _validate_eval(cfg: RunConfig, p: list[Problem]) -> None:
    e = cfg.eval
    _choice(p, "eval.backend", e.backend, EVAL_BACKENDS)
    for key in ("batch_size", "max_new_tokens", "num_beams", "max_examples"):
        _positive(p, f"eval.{key}", getattr(e, key))


def _validate_eval_instructions(cfg: RunConfig, p: list[Problem]) -> None:
    from biotune.data.sources import SOURCES, UnknownSourceError

    _check_instruction_sets("eval.instructions", cfg.eval.instructions, p)
    known = set(SOURCES) | set(cfg.data.custom_sources)
    for name, one in cfg.eval.instructions.items():
        for raw, target in one.source_map.items():
            if target and target not in known:
                p.append(
                    Problem(
                        f"eval.instructions.{name}.source_map.{raw}",
                        f"unknown source '{target}'",
                        UnknownSourceError(target).fix,
                    )
                )


def _validate_launch(cfg: RunConfig, p: list[Problem]) -> None:
    _positive(p, "launch.cpu_procs_per_node", cfg.launch.cpu_procs_per_node)
