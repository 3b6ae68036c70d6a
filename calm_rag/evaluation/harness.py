"""The run loop both eval harnesses share: load the model under test once, then for each run (the model, or
the base and the adapter of a comparison) open its item cache, answer the questions in the run's context
and turn the result into the harness's own report row.

`--compare-to base` loads the model once: the base run goes first, on the untouched weights
inside peft's `disable_adapter()` context, then the adapter is merged into the weights for the
adapter run (unmerged LoRA layers made CPU inference about 2.5x slower).

What differs between the multiple-choice and the open-question harness is passed in: the record type,
the function that answers (`evaluate`, `evaluate_open`) and the one that builds a report row from a run
(the open harness scores with its embedder there).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from calm_rag.errors import CalmRagError
from calm_rag.evaluation.cache import ItemCache, model_fingerprint, prompts_fingerprint
from calm_rag.evaluation.config import EvalConfig, OpenEvalConfig
from calm_rag.generation.base import Generator
from calm_rag.generation.engines import EngineConfig, load_generator, pin_engine
from calm_rag.models import adapter_fingerprint
from calm_rag.questions import ParallelQuestion

Progress = Callable[[int], None]
ProgressFactory = Callable[[str, int], Progress]
"""(run label, prompts to answer) -> a callback taking the number of prompts just answered."""


class CachedRecord(Protocol):
    """What the harness needs of a per-question record: its question id."""

    @property
    def id(self) -> str: ...


Record = TypeVar("Record", bound=CachedRecord)
Row = TypeVar("Row")


class Answer(Protocol[Record]):
    """Answers `questions` on `generator` (`evaluate`, `evaluate_open`): the records and the timings."""

    def __call__(self, generator: Generator, questions: Sequence[ParallelQuestion], config: Any, *,
                 cache: ItemCache[Record] | None, index: Any | None,
                 progress: Progress | None) -> tuple[list[Record], dict[str, float | int]]: ...


@dataclass
class HarnessRun(Generic[Record]):
    """One finished run, before a harness turns it into its report row."""

    label: str
    """'model', 'adapter' or 'base': the run's role in a comparison."""
    model: str
    adapter: str | None
    """The adapter's path; None without one and for the base run."""
    records: list[Record]
    load_s: float
    timings: dict[str, float | int]
    """The answering's timings; `load_s` is kept apart so each harness can put its own load times first."""
    cache: str | None


def run_harness(questions: Sequence[ParallelQuestion], config: EvalConfig | OpenEvalConfig, data_hash: str,
                record_type: type[Record], answer: Answer[Record], report_run: Callable[[HarnessRun[Record]], Row],
                *, model: str, adapter: Path | None, compare_base: bool, cache_dir: Path | None, fresh: bool,
                engine: EngineConfig, index: Any | None, progress: ProgressFactory | None) -> list[Row]:
    """Load `model` (with `adapter`) and answer `questions` in each run; `report_run` builds each run's row
    as soon as it finishes. Returns the rows, the adapter run first."""
    under_test = EvalModel.load(model, adapter, config, data_hash, compare_base=compare_base, engine=engine)
    rows = []
    prompts = len(questions) * len(config.languages) * config.samples
    for label, context, cache, callback in under_test.runs(record_type, cache_dir, fresh, progress, prompts):
        with context:
            records, timings = answer(under_test.generator, questions, config, cache=cache, index=index,
                                      progress=callback)
        rows.append(report_run(HarnessRun(label, under_test.generator.name,
                                          str(adapter) if adapter and label != "base" else None, records,
                                          under_test.load_s, timings, str(cache.path) if cache else None)))
    return rows[::-1] if compare_base else rows


@contextmanager
def _merged(model: Any) -> Iterator[None]:
    """The LoRA weights folded into the base weights while the adapter run generates (see `calm_rag.generation.load_generator`)."""
    model.merge_adapter()
    try:
        yield
    finally:
        model.unmerge_adapter()


PlannedRun = tuple[str, AbstractContextManager[Any], ItemCache[Record] | None, Progress | None]
"""(label, the context to generate in, the run's item cache, its progress callback)."""


@dataclass
class EvalModel:
    """The generator under evaluation and what its runs share; used by `run_harness`."""

    generator: Generator
    adapter_id: str | None
    """The adapter's fingerprint, None without one; with `compare_base` the adapter stays switchable."""
    compare_base: bool
    cache_key: dict[str, Any]
    """Model, dtype, config, prompts and data: an item cache is valid only while all of them match."""
    load_s: float

    @classmethod
    def load(cls, model: str, adapter: Path | None, config: EvalConfig | OpenEvalConfig, data_hash: str, *,
             compare_base: bool, engine: EngineConfig) -> EvalModel:
        """The adapter is checked (fingerprinted) before the model loads; it is merged into the weights
        unless a base run needs it switchable."""
        if compare_base and adapter is None:
            raise CalmRagError("--compare-to base needs --adapter (the base run is the model without it)")
        engine = pin_engine(model, engine)  # `auto` resolved once: the check, the cache key and the load reuse it
        if compare_base and engine.engine != "transformers":
            raise CalmRagError("--compare-to base switches the adapter off between runs, which needs --engine "
                               "transformers; on other engines evaluate the base once (--out DIR) and pass "
                               "--compare-to DIR/report.json")
        adapter_id = adapter_fingerprint(Path(adapter)) if adapter is not None else None
        fingerprint = model_fingerprint(model, engine)
        started = time.perf_counter()
        generator = load_generator(model, engine, adapter=adapter, merge_adapter=not compare_base)
        load_s = round(time.perf_counter() - started, 3)
        cache_key = {"model": fingerprint,
                     "config": config.fingerprint(), "prompts": prompts_fingerprint(config.languages),
                     "data": data_hash}
        return cls(generator, adapter_id, compare_base, cache_key, load_s)

    def runs(self, record_type: type[Record], cache_dir: Path | None, fresh: bool,
             progress: ProgressFactory | None, prompts: int) -> Iterator[PlannedRun[Record]]:
        """Each run (see `run_plans`) with its item cache (the cache key plus the adapter; emptied first
        when `fresh`) and its progress callback over `prompts`."""
        try:
            for label, fingerprint, context in run_plans(self.generator, self.adapter_id, self.compare_base):
                cache = (ItemCache(cache_dir, {**self.cache_key, "adapter": fingerprint}, record_type)
                         if cache_dir is not None else None)
                if cache and fresh:
                    cache.clear()
                yield label, context, cache, progress(label, prompts) if progress else None
        finally:
            self.generator.close()  # a llama.cpp server stops with the last run


Plan = tuple[str, str | None, AbstractContextManager[Any]]


def run_plans(generator: Generator, adapter_id: str | None, compare_base: bool) -> list[Plan]:
    """(label, adapter fingerprint, context) of each run, in the order to run them. With `compare_base` the
    adapter stays switchable (a PeftModel): the base run goes first, on the untouched base weights inside
    `disable_adapter()`, then the adapter is merged for its own run. Callers report the adapter run first."""
    if not compare_base:
        return [("adapter" if adapter_id is not None else "model", adapter_id, nullcontext())]
    model = generator.model
    return [("base", None, model.disable_adapter()), ("adapter", adapter_id, _merged(model))]
