"""A round's sampling in chunks of questions, each written as soon as it is done.

Sampling the whole train split takes hours on a CPU. A run stopped in the middle (a kill, the end of the
working day) keeps every finished chunk (`round-N/samples.chunks/0000.jsonl`, ...), and `--resume` samples
only the rest. When every chunk is there they are joined into `round-N/samples.jsonl`, which is all the rest
of the round reads (and what a resumed run reuses whole); the chunk files are then removed.

Chunks sample the questions in the run's order, and each chunk's seed continues where the prompts of the
chunks before it ended (`CalmTrainConfig.sampling_config`):
- direct mode reads exact letter distributions, no randomness: a chunked run gives the samples of one
  unchunked call, up to float rounding (a prompt's padding depends on the prompts batched with it);
- sampled text (cot, open questions) on the openai and llama.cpp engines gets the same seed per prompt as
  in one call. The transformers engine sorts a call's prompts by length into batches and seeds each batch,
  so its samples depend on which prompts share a call: a chunked run equals itself (same `sample_chunk`,
  resumed or not), and an unchunked run only when one chunk holds every question.
`sample_chunk` is part of the run's recorded config, so a resumed run cannot change the chunking.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from calm_rag.data.jsonl import read_records, write_jsonl
from calm_rag.errors import CalmRagError
from calm_rag.generation.base import Generator
from calm_rag.progress import StageProgress, stage_counter
from calm_rag.questions import ParallelQuestion
from calm_rag.training.config import CalmTrainConfig
from calm_rag.training.rounds import RoundKind

CHUNKS = "samples.chunks"
"""The folder of finished chunks, beside the round's samples.jsonl."""


def prompt_count(question: ParallelQuestion, config: CalmTrainConfig) -> int:
    """How many prompts sampling one question takes: K per configured language it has a version in."""
    return sum(lang in question.versions for lang in config.languages) * config.samples


def sample_in_chunks(kind: RoundKind[Any], generator: Callable[[], Generator], number: int, config: CalmTrainConfig,
                     samples_file: Path, progress: StageProgress | None) -> tuple[list[dict[str, Any]], int]:
    """Every question's sample record, in order, written to `samples_file`: finished chunks are read back,
    the others sampled (with `generator()`, asked for only when a chunk needs it) and written one by one.
    Returns the records and how many chunks were reused."""
    questions = kind.questions
    counts = [prompt_count(question, config) for question in questions]
    advance = stage_counter(progress, f"round {number}: sampling", sum(counts))
    folder = samples_file.parent / CHUNKS
    records: list[dict[str, Any]] = []
    reused = 0
    for index, start in enumerate(range(0, len(questions), config.sample_chunk)):
        chunk = questions[start:start + config.sample_chunk]
        path = folder / f"{index:04d}.jsonl"
        if path.is_file():
            done = read_records(path)
            if [record.get("id") for record in done] != [question.id for question in chunk]:
                raise CalmRagError(f"{path} does not match the selected questions; start over with --overwrite")
            reused += 1
            if advance:
                advance(sum(counts[start:start + len(chunk)]))
        else:
            sampled = kind.sample(generator(), number, chunk, sum(counts[:start]), advance)
            done = [item.to_record(number) for item in sampled]
            write_jsonl(path, done)
        records.extend(done)
    write_jsonl(samples_file, records)
    shutil.rmtree(folder, ignore_errors=True)
    return records, reused
