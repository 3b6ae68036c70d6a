"""`EvalConfig`: what one evaluation measures, settable from flags or an `[eval]` TOML table.

Defaults follow how the CALM paper measures a model: the options in their dataset order
(no rotation, so the model is measured as it is, letter bias included) and `direct` mode,
which reads the exact probability of each option letter after the localized answer label.
Direct mode is exact (no sampling noise, no answer extraction that could fail) and costs one
forward pass per prompt instead of hundreds of generated tokens, which is what makes a full
six-language X-CSQA test run feasible on a CPU.

`OpenEvalConfig` is the same for open-question datasets: answers are generated (there are no
letters to read) and clustered by meaning, so it has no mode, rotation or balancing, but an
embedder and a cosine threshold, which only change scoring, never the cached answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from calm_rag.config import Range, check_fields, check_known_keys, check_values, read_toml_table
from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.sampling import SamplingConfig
from calm_rag.languages import PAPER_LANGUAGES, parse_languages
from calm_rag.prompts import Mode
from calm_rag.voting import DEFAULT_THRESHOLD, ClusterConfig

RANGES: dict[str, Range] = {"samples": (1, None), "batch_size": (1, None), "max_new_tokens": (1, None),
                             "dev_questions": (0, None),
                             "temperature": (0, None), "seed": (0, None), "top_k": (1, None)}
"""Single-setting ranges of both eval configs, checked with the types (`calm_rag.config.check_values`); a
non-positive --limit is the dataset reader's to refuse (`calm_rag.data.parallel.check_limit`)."""

SAMPLED_TEMPERATURE = 0.7
"""Temperature for chain-of-thought runs with several samples per language (one sample is greedy)."""


@dataclass(frozen=True)
class EvalConfig:
    split: str | None = "test"
    """Dataset split to evaluate; None evaluates every line."""
    languages: tuple[str, ...] = PAPER_LANGUAGES
    mode: Mode = "direct"
    samples: int = 1
    """Answers per language: rotations in direct mode (needs `permute`), sampled texts in cot mode."""
    permute: bool = False
    """Rotate the options between samples (CALM's debiasing); off measures the model as-is."""
    balanced: bool = False
    """Language-balanced vote (each language's samples share one vote)."""
    limit: int | None = None
    """First N questions of the split only."""
    dev_questions: int = 0
    """Only the questions `calm-rag train --dev N` holds out of the same selection (split, languages, limit):
    a checkpoint is judged on the dev split, on any engine, and the test split stays untouched. 0: all."""
    batch_size: int = 16
    max_new_tokens: int = 384
    """cot mode only: room for the explanation and the answer line."""
    temperature: float | None = None
    """cot mode only; None means greedy for one sample and 0.7 for several."""
    seed: int = 0
    index: str | None = None
    """Retrieval index name: each language's prompt gets passages retrieved by its own question."""
    index_dir: Path | None = None
    top_k: int = 5
    continue_letters: bool = True
    """cot mode only: read the letter after the answer label, appended to a sample's text, where that text
    states none (`calm_rag.generation.choice_continuation`); off measures the model's own answers alone."""

    ranges: ClassVar[Mapping[str, Range]] = RANGES

    def __post_init__(self) -> None:
        check_fields(self)
        if self.mode == "direct" and self.samples > 1 and not self.permute:
            raise CalmRagError("--samples > 1 in direct mode without --permute repeats one exact distribution; "
                               "add --permute (K rotations per language) or use --samples 1")
        if self.top_k < 1:
            raise CalmRagError("--top-k must be a positive integer")
        self.sampling()  # validates samples, mode, languages and the generation settings up front

    def generation(self) -> GenerationConfig:
        temperature = self.temperature if self.temperature is not None else (
            SAMPLED_TEMPERATURE if self.samples > 1 else 0.0)
        return GenerationConfig(max_new_tokens=self.max_new_tokens, temperature=temperature, seed=self.seed,
                                batch_size=self.batch_size)

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(languages=self.languages, samples=self.samples, mode=self.mode, permute=self.permute,
                              balanced=self.balanced, continue_letters=self.continue_letters,
                              generation=self.generation())

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change the answers (cache key material): not limit, dev, batch size or balancing,
        which only select items, split work, or re-count cached ballots. In cot mode the letter rule is part
        of it (the letters are stored, not how they were read), so cot caches from before the continuation
        existed are not mixed with new ones; direct mode never continues, and its keys stay as they were."""
        generation = self.generation()
        parts: dict[str, Any] = {
            "split": self.split, "languages": list(self.languages), "mode": self.mode, "samples": self.samples,
            "permute": self.permute, "index": self.index, "top_k": self.top_k if self.index else None,
            "generation": None if self.mode == "direct" else {
                "max_new_tokens": generation.max_new_tokens, "temperature": generation.temperature,
                "top_p": generation.top_p, "seed": generation.seed}}
        if self.mode == "cot":
            parts["letters"] = "text, continued" if self.continue_letters else "text"
        return parts

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalConfig:
        return _build(cls, data, "eval settings")


Config = TypeVar("Config", "EvalConfig", "OpenEvalConfig")


def _build(cls: type[Config], data: dict[str, Any], what: str) -> Config:
    """A config from TOML/CLI values: unknown keys refused, types and ranges checked, languages parsed,
    paths made paths."""
    check_known_keys(cls, data, what)
    check_values(cls, data)
    values = dict(data)
    if "languages" in values:
        values["languages"] = tuple(parse_languages(values["languages"]))
    if values.get("index_dir") is not None:
        values["index_dir"] = Path(values["index_dir"])
    try:
        return cls(**values)
    except TypeError as error:
        raise CalmRagError(f"bad eval settings: {error}") from None


def _settings(cls: type, path: Path | None, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The file's `[eval]` table (its keys, types and ranges checked, so errors name the file) under the
    explicit `overrides`."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_toml_table(path, "eval")
        check_known_keys(cls, data, "eval settings", where=str(path))
        check_values(cls, data, where=str(path))
    data.update(overrides or {})
    if data.get("split") == "all":
        data["split"] = None
    return data


def load_eval_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> EvalConfig:
    """Defaults <- the `[eval]` table of `path` (or the whole file) <- `overrides` (explicit flags).
    A split of "all" means every line of the dataset."""
    return EvalConfig.from_dict(_settings(EvalConfig, path, overrides))


@dataclass(frozen=True)
class OpenEvalConfig:
    split: str | None = None
    """Dataset split to evaluate; None (the default: open sets such as XQuAD-R have no splits) evaluates
    every question."""
    languages: tuple[str, ...] = PAPER_LANGUAGES
    samples: int = 1
    """Answers sampled per language; the language's own answer is its majority cluster's."""
    limit: int | None = None
    batch_size: int = 16
    max_new_tokens: int = 192
    """Room for the short explanation and the answer line the open-question prompt asks for."""
    temperature: float | None = None
    """None means greedy for one sample and 0.7 for several."""
    seed: int = 0
    index: str | None = None
    """Retrieval index name: each language's prompt gets passages retrieved by its own question."""
    index_dir: Path | None = None
    top_k: int = 5
    embedder: str | None = None
    """Embeds answers for clustering and semantic match; None: the settings' embedder."""
    threshold: float = DEFAULT_THRESHOLD
    """Cosine at or above which two answers (or an answer and the gold) mean the same."""
    continue_spans: bool = True
    """Ask for the short span after the answer label when a response has no short answer line of its own
    (`calm_rag.generation.open_sampling`); off measures the model's own answer lines alone."""
    constrain_spans: bool = False
    """Sample under the answer-line grammar where the engine can (`answer_line_grammar`, llama.cpp)."""
    gloss_spans: bool = True
    """Translate every span into English too and let answers agree through it (`gloss_responses`)."""

    ranges: ClassVar[Mapping[str, Range]] = RANGES

    def __post_init__(self) -> None:
        check_fields(self)
        if self.samples < 1:
            raise CalmRagError("--samples must be a positive integer")
        if self.top_k < 1:
            raise CalmRagError("--top-k must be a positive integer")
        parse_languages(list(self.languages))
        ClusterConfig(threshold=self.threshold)
        self.generation()

    def generation(self) -> GenerationConfig:
        temperature = self.temperature if self.temperature is not None else (
            SAMPLED_TEMPERATURE if self.samples > 1 else 0.0)
        return GenerationConfig(max_new_tokens=self.max_new_tokens, temperature=temperature, seed=self.seed,
                                batch_size=self.batch_size)

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change the answers (cache key material); not the embedder or the threshold,
        which only re-score the cached spans."""
        generation = self.generation()
        return {"task": "open", "split": self.split, "languages": list(self.languages), "samples": self.samples,
                "index": self.index, "top_k": self.top_k if self.index else None,
                # the spans are stored, not the continuations: a run with other span rules must not reuse them
                "spans": "continued, shortened" if self.continue_spans else "own",
                **({"glosses": "en"} if self.gloss_spans else {}),  # off: the key of the runs before glosses
                **({"grammar": "answer line"} if self.constrain_spans else {}),
                "generation": {"max_new_tokens": generation.max_new_tokens, "temperature": generation.temperature,
                               "top_p": generation.top_p, "seed": generation.seed}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpenEvalConfig:
        return _build(cls, data, "open-question eval settings")


def load_open_eval_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> OpenEvalConfig:
    """`load_eval_config` for open-question datasets: the same `[eval]` table and precedence."""
    return OpenEvalConfig.from_dict(_settings(OpenEvalConfig, path, overrides))
