"""Run an open-question evaluation: load the data, the embedder and the model once, sample every
question in every language in batched calls, score by semantic match, and cache finished items so
that an interrupted run resumes.

The shape is `calm_rag.evaluation.choice_harness`'s: chunks of whole questions, each (question, language)
pair sampled as its own single-language `ParallelQuestion` so that every language's prompt carries
the passages retrieved with that language's version of the question, the chunk's records appended
to the cache, and the runs (`--compare-to base` on the same weights inside peft's `disable_adapter()`)
driven by the shared `calm_rag.evaluation.harness.run_harness`.

What differs: the answers are free text, so records store spans (`OpenItemRecord`) and scoring
needs the embedder. It is loaded before the generator (a missing embedder fails fast) and wrapped
in one `CachedEncoder`, so the adapter and base runs embed each distinct answer once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calm_rag.config import Settings, load_settings
from calm_rag.data.open import load_open_dataset
from calm_rag.data.parallel import dataset_hash
from calm_rag.evaluation.cache import ItemCache
from calm_rag.evaluation.choice_harness import answer_with_cache, open_index
from calm_rag.evaluation.config import OpenEvalConfig
from calm_rag.evaluation.harness import HarnessRun, Progress, ProgressFactory, run_harness
from calm_rag.evaluation.open_scoring import OpenItemRecord, score_open
from calm_rag.generation.base import Generator
from calm_rag.generation.engines import EngineConfig
from calm_rag.generation.open_sampling import gloss_responses, sample_open_responses
from calm_rag.generation.translation import Translator
from calm_rag.indexes.encoder import load_encoder
from calm_rag.prompts import Passage
from calm_rag.questions import ParallelQuestion
from calm_rag.responses import OpenResponse
from calm_rag.voting import CachedEncoder


@dataclass
class OpenEvalRun:
    """One model (or model + adapter) evaluated on one selection of an open-question dataset."""

    label: str
    """'model', 'adapter' or 'base': the run's role in a comparison."""
    model: str
    adapter: str | None
    config: OpenEvalConfig
    embedder: str
    data: str
    data_hash: str
    records: list[OpenItemRecord]
    summary: dict[str, Any]
    """`score_open` of the records (scored once: it needs the embedder, which the run does not keep)."""
    timings: dict[str, float | int] = field(default_factory=dict)
    cache: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `calm-rag eval --json` for one run: the multiple-choice report's headline keys,
        plus exact match, without the answer letters."""
        return {
            "label": self.label, "model": self.model, "adapter": self.adapter, "data": self.data,
            "data_hash": self.data_hash, "split": self.config.split, "languages": list(self.config.languages),
            "mode": "open", "samples": self.config.samples, "index": self.config.index,
            "top_k": self.config.top_k if self.config.index else None, "embedder": self.embedder,
            "threshold": self.config.threshold, **self.summary, "timings": self.timings, "cache": self.cache,
        }


def evaluate_open(generator: Generator, questions: Sequence[ParallelQuestion], config: OpenEvalConfig, *,
                  cache: ItemCache[OpenItemRecord] | None = None, index: Any | None = None,
                  progress: Progress | None = None) -> tuple[list[OpenItemRecord], dict[str, float | int]]:
    """Records for `questions` (cached ones reused, the rest sampled and cached) and the timings."""
    generation = config.generation()
    translator = Translator(generator)

    def answer_units(units: list[ParallelQuestion], passages: list[list[Passage]] | None,
                     progress: Progress | None) -> list[dict[str, list[OpenResponse]]]:
        drawn = sample_open_responses(generator, units, config.languages, config.samples, generation, passages,
                                      progress=progress, continue_spans=config.continue_spans,
                                      constrain_spans=config.constrain_spans)
        return gloss_responses(translator, drawn) if config.gloss_spans else drawn

    return answer_with_cache(questions, config.languages, config.samples, config.batch_size, answer_units,
                             OpenItemRecord.from_samples, cache=cache, index=index, top_k=config.top_k,
                             progress=progress)


def run_open_evaluation(data: Path, config: OpenEvalConfig, *, model: str, adapter: Path | None = None,
                        compare_base: bool = False, cache_dir: Path | None = None, fresh: bool = False,
                        engine: EngineConfig = EngineConfig(), settings: Settings | None = None,
                        progress: ProgressFactory | None = None) -> list[OpenEvalRun]:
    """Evaluate `model` (with `adapter`) on the open questions of `data`; with `compare_base` also the model
    without the adapter. Returns the runs, the adapter run first. Input is checked, and the index and the
    embedder (`config.embedder`, else the settings') are loaded, before the generator."""
    settings = settings or load_settings()
    questions = load_open_dataset(data, config.languages, config.split, config.limit)
    data_hash = dataset_hash(data, config.languages)
    index = open_index(config, settings) if config.index else None
    embedder = config.embedder or settings.embedder

    load_started = time.perf_counter()
    scorer = CachedEncoder(load_encoder(embedder))
    embedder_load_s = round(time.perf_counter() - load_started, 3)

    def report_run(run: HarnessRun[OpenItemRecord]) -> OpenEvalRun:
        score_started = time.perf_counter()
        summary = score_open(run.records, config.languages, scorer, config.threshold)
        timings = {"load_s": run.load_s, "embedder_load_s": embedder_load_s, **run.timings,
                   "score_s": round(time.perf_counter() - score_started, 3)}
        return OpenEvalRun(run.label, run.model, run.adapter, config, embedder, str(data), data_hash, run.records,
                           summary, timings, run.cache)

    return run_harness(questions, config, data_hash, OpenItemRecord, evaluate_open, report_run, model=model,
                       adapter=adapter, compare_base=compare_base, cache_dir=cache_dir, fresh=fresh, engine=engine,
                       index=index, progress=progress)
