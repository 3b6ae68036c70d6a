"""`CalmTrainConfig`: every knob of a CALM training run in one dataclass, loadable from TOML.

One flat dataclass (not nested sections) so that a recipe file, `--config`, and the CLI flags
all address a knob by the same name, and so that the whole run is recorded in `manifest.json`
and compared on `--resume` with one `to_dict()`.

Precedence: the defaults below < the TOML file (`[train]` table, or the whole file) < CLI flags.

Target threshold (why a consensus may *not* become a training target): CALM trains the model
towards the cross-lingual majority, so a weak or accidental majority teaches noise, and with a
small random-ish model it teaches the model's own letter bias (a real run collapsed to always
answering "C"). A question becomes a target only when the vote is not tied and
- `cot`: the winner holds at least `min_support` of the parsed votes (default 0.5: a true majority);
- `direct`: the soft vote's winner leads the runner-up by at least `min_margin` of the total
  probability mass (default 0.1); soft votes are rarely above 0.5 even when clear, so a margin is
  the meaningful test there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from calm_rag.config import (
    Range,
    check_device,
    check_dtype,
    check_fields,
    check_known_keys,
    check_values,
    read_toml_table,
)
from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.engines import EngineConfig
from calm_rag.generation.sampling import SamplingConfig
from calm_rag.languages import PAPER_LANGUAGES, parse_languages
from calm_rag.prompts import Mode
from calm_rag.voting import DEFAULT_THRESHOLD

LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")
"""The loss types TRL 1.16's DPOTrainer accepts (`DPOConfig.loss_type`)."""


DPO_MEMORY_SETTINGS = ("batch_size", "gradient_accumulation_steps", "gradient_checkpointing", "shared_prefix",
                       "precompute_ref")
"""How DPO fits in memory and time (none changes the result): may change when resuming a run whose rounds have
not finished (its samples and pairs do not depend on them), e.g. after running out of memory, with the same
effective batch."""


@dataclass(frozen=True)
class CalmTrainConfig:
    # ---- model ----------------------------------------------------------------------------
    model: str | None = None
    """Generator to align: short name, hub id or local folder (default: settings.generator)."""
    device: str = "auto"
    dtype: str = "auto"
    """auto = bfloat16 on CUDA, float32 on CPU."""
    seed: int = 0
    engine: str = "transformers"
    """Engine of the sampling stage: transformers (the model being trained, in process), llama.cpp (its GGUF
    with the newest round's adapter converted to a GGUF LoRA: several times faster on a CPU) or openai (a
    server at `base_url` serving `model`; key from CALM_RAG_OPENAI_API_KEY). DPO always runs in transformers."""
    base_url: str | None = None
    """openai engine: the server's /v1 URL."""

    # ---- sampling and voting --------------------------------------------------------------
    languages: tuple[str, ...] = PAPER_LANGUAGES
    samples: int = 3
    """K: samples per language (option rotations per language in direct mode)."""
    mode: Mode = "cot"
    permute: bool = True
    """Rotate option order across samples; on by default because it is the main letter-bias guard."""
    balanced: bool = False
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 256
    sample_batch_size: int = 32
    sample_chunk: int = 64
    """Questions per sampling chunk: each finished chunk is written to the round's folder, so a stopped run
    loses at most one chunk of sampling and `--resume` continues with the rest."""
    min_support: float = 0.5
    """cot: the winner's share of the parsed votes needed to become a target."""
    min_margin: float = 0.1
    """direct: the soft-vote lead of the winner over the runner-up needed to become a target."""
    rounds: int = 1
    """Round n+1 samples with the adapter of round n and continues training it."""
    embedder: str | None = None
    """Open questions only: the embedder that clusters answers by meaning (default: settings.embedder)."""
    cluster_threshold: float = DEFAULT_THRESHOLD
    """Open questions only: cosine similarity at which two answers count as the same answer."""
    gloss_spans: bool = True
    """Open questions only: translate every span into English too and let answers agree through it, as `ask`
    and `eval` do (`calm_rag.generation.open_sampling.gloss_responses`): the targets are voted like answers."""
    letter_warn_share: float = 0.5
    """Warn when one letter is more than this share of the training targets."""
    dev_questions: int = 0
    """Hold out this many of the selected questions as a dev split (never sampled for pairs): their direct-mode
    accuracy is measured before training and after each DPO epoch (see `training/dev_check.py`)."""
    dev_check: bool = True
    """Measure the dev questions during DPO. Off, `dev_questions` only holds them out (they stay unseen): the
    in-training check runs in transformers, and on a 2-core CPU it cost more than the DPO itself (with --dev 100
    in 6 languages, 600 direct prompts of a 1.5B model in bfloat16 per measurement), while `calm-rag eval DATASET --split train
    --dev N --adapter CHECKPOINT` measures the same questions afterwards on any engine, e.g. llama.cpp."""
    samples_from: Path | None = None
    """Multiple-choice runs: round 1 reads each training question's samples from this `samples.jsonl` of an
    earlier `calm-rag train` run instead of sampling, then votes and plans pairs with this run's settings:
    sampling is the costly part of a round, so a new --min-margin or --min-support is tried in seconds (what
    is checked: `training/reuse_samples.py`). Later rounds sample from the trained model as usual. A relative
    path, in a TOML recipe too, is read from the working directory, like the dataset argument."""

    # ---- DPO ------------------------------------------------------------------------------
    beta: float = 0.1
    loss_type: str = "sigmoid"
    learning_rate: float = 5e-5
    """LoRA needs a larger step than full fine-tuning (TRL's full-model default, 1e-6, barely moves it)."""
    epochs: float = 1.0
    batch_size: int = 4
    gradient_accumulation_steps: int = 4
    max_length: int | None = 1024
    """Longest prompt+answer in tokens; longer pairs are truncated (prompts that fill it are dropped)."""
    warmup: float = 0.1
    """Warmup: a float in [0, 1) is a share of the steps, a larger number is a step count."""
    gradient_checkpointing: bool = False
    """Trades compute for memory; worth it from ~1.5B parameters on a GPU, slower on small CPU runs. It turns
    `shared_prefix` off (checkpointed layers keep no key/value cache)."""
    shared_prefix: bool = True
    """Run each pair's shared start (the prompt, and the answer label in direct mode) once for both answers instead
    of twice (see `shared_prefix.py`): same loss and gradients as TRL's plain forward, a fraction of the work."""
    precompute_ref: bool = True
    """Compute the reference log-probabilities once, batched and without gradients, before training (TRL's
    `precompute_ref_log_probs`) instead of in every step."""
    save_steps: int = 50
    """Checkpoint every this many optimizer steps (what `--resume` continues from)."""
    logging_steps: int = 1

    # ---- LoRA -----------------------------------------------------------------------------
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: tuple[str, ...] = ("all-linear",)
    """Module names, or ("all-linear",) for every linear layer except the LM head."""
    lora_layers: int = 0
    """Put LoRA only on the top this-many transformer blocks (0: every block). The backward pass then stops at
    the lowest adapted block, so a step costs the forward plus a fraction of the backward: on CPU the lever that
    lets a 1.5B model see the whole train split (bench/train.py --speed measures it)."""

    ranges: ClassVar[Mapping[str, Range]] = {"seed": (0, None), "temperature": (0, None), "max_new_tokens": (1, None),
                                             "sample_batch_size": (1, None), "sample_chunk": (1, None),
                                             "dev_questions": (0, None), "lora_layers": (0, None)}
    """Single-setting ranges, checked with the types (see `calm_rag.config.check_values`)."""

    def __post_init__(self) -> None:
        check_fields(self)
        check_device(self.device)
        check_dtype(self.dtype)
        self.engine_config()
        checks = [
            (self.mode in ("cot", "direct"), f"mode must be cot or direct, got {self.mode!r}"),
            (self.samples >= 1, "samples must be at least 1"),
            (self.rounds >= 1, "rounds must be at least 1"),
            (0.0 <= self.min_support <= 1.0, "min_support must be in [0, 1]"),
            (0.0 <= self.min_margin <= 1.0, "min_margin must be in [0, 1]"),
            (0.0 < self.cluster_threshold <= 1.0, "cluster_threshold must be in (0, 1]"),
            (0.0 < self.letter_warn_share <= 1.0, "letter_warn_share must be in (0, 1]"),
            (self.beta > 0, "beta must be positive"),
            (self.loss_type in LOSS_TYPES, f"unknown loss_type {self.loss_type!r}; one of: {', '.join(LOSS_TYPES)}"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (self.epochs > 0, "epochs must be positive"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be at least 1"),
            (self.max_length is None or self.max_length >= 16, "max_length must be at least 16 tokens"),
            (self.warmup >= 0, "warmup must be >= 0"),
            (self.save_steps >= 1 and self.logging_steps >= 1, "save_steps and logging_steps must be at least 1"),
            (self.lora_r >= 1 and self.lora_alpha >= 1, "lora_r and lora_alpha must be at least 1"),
            (0.0 <= self.lora_dropout < 1.0, "lora_dropout must be in [0, 1)"),
            (bool(self.lora_target_modules), "lora_target_modules must name at least one module"),
        ]
        for ok, message in checks:
            if not ok:
                raise CalmRagError(message)
        # Validates the sampling knobs (languages, temperature, ...) with the sampler's own rules.
        self.sampling_config()

    def engine_config(self) -> EngineConfig:
        """The sampling stage's engine (never `auto`: which engine samples is part of the run's recipe)."""
        if self.engine == "auto":
            raise CalmRagError("train's --engine must be transformers, llama.cpp or openai (not auto)")
        local = self.engine == "transformers"
        return EngineConfig(engine=self.engine, device=self.device if local else "auto",
                            dtype=self.dtype if local else "auto", base_url=self.base_url,
                            api_key=os.environ.get("CALM_RAG_OPENAI_API_KEY") if self.engine == "openai" else None)

    def sampling_config(self, round_number: int = 1, seed_offset: int = 0) -> SamplingConfig:
        """The sampler's config; each round gets its own seed so that rounds do not repeat samples.

        `seed_offset`: the number of the round's prompts sampled before this call (a chunk's place in the
        round). The engines seed their i-th prompt or batch from seed + i, so a chunk seeded past its
        predecessors' prompts never repeats their seeds; the openai and llama.cpp engines then see the same
        seed for every prompt as in one unchunked call."""
        generation = GenerationConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                                      top_p=self.top_p, seed=self.seed + round_number - 1 + seed_offset,
                                      batch_size=self.sample_batch_size)
        return SamplingConfig(languages=self.languages, samples=self.samples, mode=self.mode, permute=self.permute,
                              balanced=self.balanced, generation=generation)

    @property
    def target_modules(self) -> str | list[str]:
        """What `LoraConfig.target_modules` takes: the string "all-linear" or a list of names."""
        return "all-linear" if self.lora_target_modules == ("all-linear",) else list(self.lora_target_modules)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every setting's default value, as `to_dict` writes it."""
        return cls().to_dict()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {key: list(value) if isinstance(value, tuple) else str(value) if isinstance(value, Path) else value
                for key, value in data.items()}

    def with_overrides(self, **overrides: Any) -> CalmTrainConfig:
        """A copy with the given knobs replaced; None values mean 'not given' and are ignored."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return replace(self, **_coerce(given)) if given else self

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> CalmTrainConfig:
        check_known_keys(cls, data, "training settings", where=where)
        check_values(cls, data, where)
        try:
            return cls(**_coerce(data))
        except CalmRagError as error:
            raise CalmRagError(f"{where}: {error}") from None

    @classmethod
    def from_toml(cls, path: Path | str) -> CalmTrainConfig:
        """A `[train]` table, or the whole file when it has none."""
        return cls.from_dict(read_toml_table(path, "train"), where=str(path))


def _coerce(data: dict[str, Any]) -> dict[str, Any]:
    """TOML/CLI values -> field types: 'en,zh' or lists become tuples, numbers keep their kind."""
    values = dict(data)
    if "languages" in values:
        values["languages"] = tuple(parse_languages(values["languages"]))
    if "lora_target_modules" in values:
        modules = values["lora_target_modules"]
        values["lora_target_modules"] = tuple(modules.split(",") if isinstance(modules, str) else modules)
    if isinstance(values.get("samples_from"), str):
        values["samples_from"] = Path(values["samples_from"])
    for name in ("learning_rate", "epochs", "beta", "min_support", "min_margin", "lora_dropout", "warmup",
                 "temperature", "top_p", "letter_warn_share", "cluster_threshold"):
        if isinstance(values.get(name), int) and not isinstance(values[name], bool):
            values[name] = float(values[name])
    return values
