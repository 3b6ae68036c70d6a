"""Run an evaluation: load the data and the model once, answer every question in every language in
batched calls, score, and cache finished items so that an interrupted run resumes.

Work is cut into chunks of whole questions (about `CHUNK_BATCHES` generation batches each):
inside a chunk every (question, language) prompt goes through one `sample_choice_responses` call,
so batches are full and length-sorted across questions and languages; after a chunk its
items are appended to the cache. Each (question, language) pair is passed as its own
single-language `ParallelQuestion`, which is what lets every language's prompt carry the
passages retrieved for that language's version of the question.

Loading the model and running it (once, or as base and adapter for `--compare-to base`) is
`calm_rag.evaluation.harness.run_harness`, shared with the open-question harness.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from calm_rag.config import Settings, load_settings
from calm_rag.data.dev_split import split_dev
from calm_rag.data.parallel import dataset_hash, load_parallel_dataset
from calm_rag.errors import CalmRagError
from calm_rag.evaluation.cache import ItemCache
from calm_rag.evaluation.choice_scoring import ItemRecord, score
from calm_rag.evaluation.config import EvalConfig, OpenEvalConfig
from calm_rag.evaluation.harness import HarnessRun, Progress, ProgressFactory, Record, run_harness
from calm_rag.generation.base import Generator
from calm_rag.generation.engines import EngineConfig
from calm_rag.generation.sampling import sample_choice_responses
from calm_rag.prompts import Passage
from calm_rag.questions import ParallelQuestion
from calm_rag.responses import ChoiceResponse

CHUNK_BATCHES = 4
"""Generation batches per cached chunk: bigger chunks pad less, smaller ones lose less on a kill."""


@dataclass
class EvalRun:
    """One model (or model + adapter) evaluated on one selection of a dataset."""

    label: str
    """'model', 'adapter' or 'base': the run's role in a comparison."""
    model: str
    adapter: str | None
    config: EvalConfig
    data: str
    data_hash: str
    records: list[ItemRecord]
    timings: dict[str, float | int] = field(default_factory=dict)
    cache: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `calm-rag eval --json` for one run."""
        summary = score(self.records, self.config.languages, self.config.balanced)
        return {
            "label": self.label, "model": self.model, "adapter": self.adapter, "data": self.data,
            "data_hash": self.data_hash, "split": self.config.split, "languages": list(self.config.languages),
            "mode": self.config.mode, "samples": self.config.samples, "permute": self.config.permute,
            "balanced": self.config.balanced, "index": self.config.index,
            "continue_letters": self.config.continue_letters if self.config.mode == "cot" else None,
            "top_k": self.config.top_k if self.config.index else None,
            "dev_questions": self.config.dev_questions or None,
            "n_questions": summary.pop("questions"), **summary, "timings": self.timings, "cache": self.cache,
        }


def _chunks(items: Sequence[ParallelQuestion], size: int) -> Iterator[Sequence[ParallelQuestion]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def retrieve_passages(index: Any, questions: Sequence[ParallelQuestion], languages: Sequence[str],
                      top_k: int) -> list[dict[str, list[Passage]]]:
    """For each question, language -> the passages retrieved with that language's version as the query
    (a multilingual index then serves each prompt in its own language, as it would serve a user)."""
    queries = [question.versions[lang].question for question in questions for lang in languages]
    hits = iter(index.search(queries, top_k))
    return [{lang: [Passage(hit.text, hit.source, hit.lang) for hit in next(hits)] for lang in languages}
            for _ in questions]


Sample = TypeVar("Sample")


AnswerUnits = Callable[[list[ParallelQuestion], list[list[Passage]] | None, Progress | None],
                       list[dict[str, list[Sample]]]]
"""Answers single-language questions (with each one's passages) in one batched call: one {lang: samples}
per question."""


def answer_with_cache(questions: Sequence[ParallelQuestion], languages: Sequence[str], samples: int,
                      batch_size: int, answer_units: AnswerUnits[Sample],
                      make_record: Callable[[ParallelQuestion, dict[str, list[Sample]]], Record], *,
                      cache: ItemCache[Record] | None = None, index: Any | None = None, top_k: int = 5,
                      progress: Progress | None = None) -> tuple[list[Record], dict[str, float | int]]:
    """Records for `questions` (cached ones reused, the rest answered chunk by chunk and cached) and the
    timings; the multiple-choice and the open-question harness differ only in `answer_units`/`make_record`."""
    started, cpu_started = time.perf_counter(), time.process_time()
    cached = cache.load() if cache else {}
    pending = [question for question in questions if question.id not in cached]
    per_question = len(languages) * samples
    if progress and len(pending) < len(questions):
        progress((len(questions) - len(pending)) * per_question)
    fresh: dict[str, Record] = {}
    retrieve_s = 0.0
    for chunk in _chunks(pending, max(1, batch_size * CHUNK_BATCHES // per_question)):
        passages: list[list[Passage]] | None = None
        if index is not None:
            retrieve_started = time.perf_counter()
            found = retrieve_passages(index, chunk, languages, top_k)
            retrieve_s += time.perf_counter() - retrieve_started
            passages = [found[number][lang] for number in range(len(chunk)) for lang in languages]
        units = [ParallelQuestion(question.id, {lang: question.versions[lang]}, lang, question.answer)
                 for question in chunk for lang in languages]
        answered = iter(answer_units(units, passages, progress))
        records = []
        for question in chunk:
            by_lang: dict[str, list[Sample]] = {}
            for _ in languages:
                by_lang.update(next(answered))
            records.append(make_record(question, by_lang))
        if cache:
            cache.append(records)
        fresh.update((record.id, record) for record in records)
    elapsed = time.perf_counter() - started
    prompts = len(pending) * per_question
    timings: dict[str, float | int] = {
        "questions_cached": len(questions) - len(pending), "questions_answered": len(pending),
        "prompts": prompts, "retrieve_s": round(retrieve_s, 3), "run_s": round(elapsed, 3),
        "cpu_s": round(time.process_time() - cpu_started, 3),
        "prompts_per_s": round(prompts / (elapsed - retrieve_s), 3) if prompts and elapsed > retrieve_s else None}
    return [cached.get(question.id) or fresh[question.id] for question in questions], timings


def evaluate(generator: Generator, questions: Sequence[ParallelQuestion], config: EvalConfig, *,
             cache: ItemCache[ItemRecord] | None = None, index: Any | None = None, progress: Progress | None = None
             ) -> tuple[list[ItemRecord], dict[str, float | int]]:
    """Records for `questions` (cached ones reused, the rest answered and cached) and the timings."""
    sampling = config.sampling()

    def answer_units(units: list[ParallelQuestion], passages: list[list[Passage]] | None,
                     progress: Progress | None) -> list[dict[str, list[ChoiceResponse]]]:
        return sample_choice_responses(generator, units, sampling, passages, progress=progress)

    return answer_with_cache(questions, config.languages, config.samples, config.batch_size, answer_units,
                             ItemRecord.from_responses, cache=cache, index=index, top_k=config.top_k,
                             progress=progress)


def open_index(config: EvalConfig | OpenEvalConfig, settings: Settings) -> Any:
    """The retrieval index, imported only when one is asked for."""
    try:
        from calm_rag.indexes import Index
    except ImportError as error:
        raise CalmRagError(f"retrieval is not available in this installation ({error})") from None
    return Index.open(config.index, index_dir=config.index_dir or settings.index_dir)


def run_evaluation(data: Path, config: EvalConfig, *, model: str, adapter: Path | None = None,
                   compare_base: bool = False, cache_dir: Path | None = None, fresh: bool = False,
                   engine: EngineConfig = EngineConfig(), settings: Settings | None = None,
                   progress: ProgressFactory | None = None) -> list[EvalRun]:
    """Evaluate `model` (with `adapter`) on `data`; with `compare_base` also the model without the adapter.
    Returns the runs, the adapter run first. Input is checked before the model is loaded."""
    settings = settings or load_settings()
    questions = load_parallel_dataset(data, config.languages, config.split, config.limit)
    if config.dev_questions:
        questions = split_dev(questions, config.dev_questions)[1]
    data_hash = dataset_hash(data, config.languages)
    index = open_index(config, settings) if config.index else None

    def report_run(run: HarnessRun[ItemRecord]) -> EvalRun:
        return EvalRun(run.label, run.model, run.adapter, config, str(data), data_hash, run.records,
                       {"load_s": run.load_s, **run.timings}, run.cache)

    return run_harness(questions, config, data_hash, ItemRecord, evaluate, report_run, model=model, adapter=adapter,
                       compare_base=compare_base, cache_dir=cache_dir, fresh=fresh, engine=engine, index=index,
                       progress=progress)
