"""The typed configuration schema, and the one place that turns YAML + overrides into it.

``load(path, overrides)`` merges: dataclass defaults -> YAML file (which may name ``defaults:`` files to
merge first) -> ``key.sub=value`` overrides, then validates. Every problem (unknown key, wrong type,
inconsistent values) is collected and raised as a single :class:`~biotune.errors.ConfigError` naming each
key and its fix. Downstream code receives plain dataclasses; OmegaConf stays at this edge.

The values a choice key accepts (``NER_FORMATS``, ``TEMPLATES``, ``PRECISIONS``, ``SCHEDULES``, ...) are declared
here, beside the field that takes them; the modules that act on a choice import it from here. The corpus
catalogue (:mod:`biotune.sources`: the registered sources, their kinds and reader formats) sits below this
module, so validation names unknown sources and splits; it never imports the config.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from biotune.config_checks import (
    check_choice,
    check_items,
    check_keys,
    check_positive,
    check_types,
    drop_unknown,
    parse_overrides,
    read_yaml,
)
from biotune.errors import ConfigError, Problem, shown
from biotune.names import config_name_problems
from biotune.sources import SOURCES, UnknownSourceError, custom
from biotune.sources.hub import hub_pin_problem

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
    ``biotune.sources.FORMAT_KINDS``)."""
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
    dataset pinned to a commit, written ``hf://org/name@<40-hex commit>``."""
    split: str = "train"
    """The split to read (a JSON ``{split: rows}`` key, a ``DatasetDict`` split, a hub split)."""
    licence: str = ""
    """The rows' licence (e.g. ``CC BY-NC 4.0`` for nlpie/Llama2-MedTuned-Instructions), recorded in the manifest."""
    restricted: bool = True
    """Rows stay private (never uploaded) unless this is set to false; undeclared counts as restricted."""


#: What ``eval.instructions.NAME.on_unparsable`` may say.
ON_UNPARSABLE: tuple[str, ...] = ("skip", "error")


@dataclass
class EvalInstructionSet(InstructionSet):
    """Instruction rows to evaluate on: each row's ``source`` names the biotune source whose task parses and
    scores it (``biotune.sources.instructions.PUBLISHED_SOURCES``, overridable here)."""

    source_map: dict[str, str] = field(default_factory=dict)
    """Row ``source`` value -> biotune source name, over the published defaults (e.g. ``{my-ner: ncbi_disease}``)."""
    corpus_split: str = ""
    """The corpus split the rows were made from (``devel`` for the paper's released NER sets), used to place
    published numbers; empty = ``split``."""
    on_unparsable: str = "skip"
    """A row whose ``output`` its task cannot read as gold: ``skip`` leaves it out and lists its id and reason
    in the report's ``unscored_rows``; ``error`` stops the evaluation (``ON_UNPARSABLE``)."""


#: What ``data.ner_format`` accepts (:mod:`biotune.data.tasks`): the paper's ``token : TAG`` lines, or a compact
#: entity list.
NER_FORMATS: tuple[str, ...] = ("tags", "entities")
#: What ``data.template`` accepts (:mod:`biotune.data.templates`).
TEMPLATES: tuple[str, ...] = ("medtuned", "alpaca", "chat")
#: What ``data.truncation`` accepts (:mod:`biotune.data.tokenize`).
TRUNCATION_POLICIES: tuple[str, ...] = ("drop", "truncate")
#: ``data.leakage``: record overlaps in the manifest, fail the build, or skip the check (:mod:`biotune.data.build`).
LEAKAGE_WARN, LEAKAGE_ERROR, LEAKAGE_OFF = "warn", "error", "off"
#: What ``data.leakage`` accepts.
LEAKAGE_MODES: tuple[str, ...] = (LEAKAGE_WARN, LEAKAGE_ERROR, LEAKAGE_OFF)


@dataclass
class DataConfig:
    """Sources -> instruction samples -> mixture -> tokenized, packed shards."""

    root: str = field(default_factory=default_data_root)
    """Directory of the corpora in their native layout, or ``@sample`` for the bundled sample."""
    sources: dict[str, SourceMix] = field(default_factory=dict)
    """Source name (see ``biotune.sources.SOURCES``) -> how it enters the mixture."""
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


#: What ``model.dtype`` accepts: the precisions the peak table (:mod:`biotune.train.hardware`) and the engine know.
PRECISIONS: tuple[str, ...] = ("bf16", "fp16", "fp32")
#: sdpa run on each packed sequence alone (:mod:`biotune.train.attention`).
SDPA_PACKED = "sdpa_packed"
#: What ``model.attn_implementation`` accepts.
IMPLEMENTATIONS: tuple[str, ...] = ("auto", SDPA_PACKED, "sdpa", "eager", "flash_attention_2")


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


#: What ``optim.schedule`` accepts (:mod:`biotune.train.schedule`): cosine, linear or constant after the warmup.
SCHEDULES: tuple[str, ...] = ("cosine", "linear", "constant")


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


#: What ``tracking.wandb_mode`` accepts.
WANDB_MODES: tuple[str, ...] = ("offline", "online", "disabled")


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


#: What ``eval.backend`` accepts (``vllm`` is used only when installed).
EVAL_BACKENDS: tuple[str, ...] = ("hf", "vllm")


@dataclass
class DuringTrainingConfig:
    """Generative evaluation at checkpoints inside the training job (``eval.during_training``).

    Off unless ``every_steps`` or ``at_fractions`` is set. Each evaluated step writes the same files as
    ``biotune eval`` under ``<train.output_dir>/eval/step-N/`` and logs ``eval/<source>/<split>/<metric>``.
    Generation settings (``batch_size``, ``max_new_tokens``, ``num_beams``) are the ``eval`` section's.
    """

    every_steps: int | None = None
    """Evaluate every this many optimizer steps (and not also ``at_fractions``); None = not by count."""
    at_fractions: list[float] = field(default_factory=list)
    """Evaluate at these fractions of the run's steps, each in (0, 1] (1.0 = the last step)."""
    sources: list[str] = field(default_factory=list)
    """Sources to evaluate; empty = the ``eval.sources`` plan (every included task source of the mixture)."""
    splits: list[str] = field(default_factory=lambda: ["dev"])
    """Splits to evaluate (``dev`` finds ``devel``/``validation`` spellings)."""
    max_examples: int | None = None
    """At most this many examples per set (the first ones, in corpus order); None = all."""
    gather_weights: bool = True
    """Under ZeRO-3, gather the full weights on every rank once per evaluation (each rank then generates alone);
    false = gather them layer by layer at every decoding step, ranks in lockstep (slower; for models whose full
    weights do not fit one device beside the training state)."""

    @property
    def enabled(self) -> bool:
        """True when a schedule is set."""
        return bool(self.every_steps) or bool(self.at_fractions)


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
    during_training: DuringTrainingConfig = field(default_factory=DuringTrainingConfig)
    """Evaluation at checkpoints while training (off by default; sweep cells turn it on)."""


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
    data: dict[str, Any] = read_yaml(Path(path).resolve()) if path else {}
    yaml_problems: list[Problem] = []
    bad = _sources_problem(data, "in the YAML file")
    yaml_problems += [bad] if bad else []
    parsed, problems = parse_overrides(overrides)
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
    check_keys(RunConfig, data, "", problems)
    drop_unknown(RunConfig, data)
    check_items(RunConfig, data, "", problems)
    schema = OmegaConf.structured(RunConfig)
    check_types(schema, data, "", problems)
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
    named = ("the overrides " if len(blamed) > 1 else "the override ") + " ".join(
        shown(ov, 300) for ov in blamed
    )
    if not from_yaml:
        return f"{named} (on top of {path})" if path else named
    return f"{path} and {named}" if path else named


def to_yaml(cfg: RunConfig) -> str:
    """The resolved config as YAML (printed by ``--dry-run`` and saved beside every run)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain-dict view of a config dataclass (for hashing and trackers)."""
    return dataclasses.asdict(cfg)


# --------------------------------------------------------------------------------------------- validation


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
    d = cfg.data
    p += custom.problems(d.custom_sources)
    _check_split_files(d, p)
    _check_instruction_sets("data.instructions", d.instructions, p)
    check_choice(p, "data.ner_format", d.ner_format, NER_FORMATS)
    check_choice(p, "data.template", d.template, TEMPLATES)
    check_choice(p, "data.truncation", d.truncation, TRUNCATION_POLICIES)
    check_choice(p, "data.leakage", d.leakage, LEAKAGE_MODES)
    check_positive(p, "data.max_seq_len", d.max_seq_len)
    check_positive(p, "data.total_samples", d.total_samples)
    check_positive(p, "data.num_proc", d.num_proc)
    if not 0.0 <= d.eval_fraction < 1.0:
        p.append(Problem("data.eval_fraction", f"must be in [0, 1), got {d.eval_fraction}", "use e.g. 0.01"))
    for name, mix in d.sources.items():
        key = f"data.sources.{name}"
        check_positive(p, f"{key}.weight", mix.weight, allow_zero=True)
        check_positive(p, f"{key}.epochs", mix.epochs, allow_zero=True)
        check_positive(p, f"{key}.cap", mix.cap, allow_zero=True)
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
                    "give a .jsonl/.json/.parquet/.arrow file, a save_to_disk directory or "
                    "hf://org/name@<commit>",
                )
            )
        if (pin := hub_pin_problem(f"{key}.{name}.path", one.path)) is not None:
            p.append(pin)
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
    check_choice(p, "model.dtype", cfg.model.dtype, PRECISIONS)
    check_choice(p, "model.attn_implementation", cfg.model.attn_implementation, IMPLEMENTATIONS)


def _validate_optim(cfg: RunConfig, p: list[Problem]) -> None:
    o = cfg.optim
    check_choice(p, "optim.schedule", o.schedule, SCHEDULES)
    check_positive(p, "optim.lr", o.lr)
    check_positive(p, "optim.warmup_steps", o.warmup_steps, allow_zero=True)
    check_positive(p, "optim.eps", o.eps)
    check_positive(p, "optim.weight_decay", o.weight_decay, allow_zero=True)
    check_positive(p, "optim.grad_clip", o.grad_clip, allow_zero=True)
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
        check_positive(p, f"train.{key}", getattr(t, key))
    check_positive(p, "train.eval_every", t.eval_every, allow_zero=True)
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
    check_choice(p, "tracking.wandb_mode", cfg.tracking.wandb_mode, WANDB_MODES)
    check_positive(p, "tracking.dataset_text_examples", cfg.tracking.dataset_text_examples)


def _validate_eval(cfg: RunConfig, p: list[Problem]) -> None:
    e = cfg.eval
    check_choice(p, "eval.backend", e.backend, EVAL_BACKENDS)
    for key in ("batch_size", "max_new_tokens", "num_beams", "max_examples"):
        check_positive(p, f"eval.{key}", getattr(e, key))
    _validate_during_training(cfg, p)


def _validate_during_training(cfg: RunConfig, p: list[Problem]) -> None:
    """``eval.during_training``: one schedule, fractions in (0, 1], steps within ``train.max_steps``."""
    d = cfg.eval.during_training
    key = "eval.during_training"
    check_positive(p, f"{key}.every_steps", d.every_steps)
    check_positive(p, f"{key}.max_examples", d.max_examples)
    if d.every_steps and d.at_fractions:
        p.append(
            Problem(
                f"{key}.at_fractions",
                "both every_steps and at_fractions are set",
                f"keep one schedule: set {key}.every_steps=null or {key}.at_fractions=[]",
            )
        )
    for i, frac in enumerate(d.at_fractions):
        if not 0.0 < frac <= 1.0:
            p.append(
                Problem(
                    f"{key}.at_fractions[{i}]",
                    f"must be in (0, 1], got {frac}",
                    "give fractions of the run, e.g. [0.25, 0.5, 1.0] (1.0 = the last step)",
                )
            )
    steps = cfg.train.max_steps
    if d.every_steps and steps > 0 and d.every_steps > steps:
        p.append(
            Problem(
                f"{key}.every_steps",
                f"{d.every_steps} is beyond the run's {steps} steps (train.max_steps): nothing would be evaluated",
                f"set {key}.every_steps to at most {steps}, or use {key}.at_fractions",
            )
        )
    if not d.splits:
        p.append(
            Problem(f"{key}.splits", "is empty", f"name the splits to evaluate, e.g. {key}.splits=[dev]")
        )


def _validate_eval_instructions(cfg: RunConfig, p: list[Problem]) -> None:
    _check_instruction_sets("eval.instructions", cfg.eval.instructions, p)
    known = set(SOURCES) | set(cfg.data.custom_sources)
    for name, one in cfg.eval.instructions.items():
        check_choice(p, f"eval.instructions.{name}.on_unparsable", one.on_unparsable, ON_UNPARSABLE)
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
    check_positive(p, "launch.cpu_procs_per_node", cfg.launch.cpu_procs_per_node)
