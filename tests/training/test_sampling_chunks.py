"""Sampling in chunks: a stopped round keeps its finished chunks, a resumed one samples only the rest, and the
result is the one a run in one go gives (exactly with the same chunking; up to float rounding without)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from calm_rag.data.parallel import load_parallel_dataset
from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig
from calm_rag.questions import ParallelQuestion
from calm_rag.training.config import CalmTrainConfig
from calm_rag.training.rounds import ChoiceRound, OpenRound
from calm_rag.training.sampling_chunks import CHUNKS, sample_in_chunks
from tests.fakes import FakeGenerator, concept_encoder
from tests.training.conftest import write_dataset, write_open_dataset

LANGUAGES = ("en", "de", "zh")


@dataclass
class Recording:
    """A round kind that records which questions each `sample` call got, and with which seed offset."""

    kind: Any
    calls: list[tuple[list[str], int]] = field(default_factory=list)

    @property
    def questions(self) -> Sequence[ParallelQuestion]:
        return self.kind.questions

    def sample(self, generator: Any, number: int, questions: Sequence[ParallelQuestion], seed_offset: int,
               progress: Any) -> list[Any]:
        self.calls.append(([question.id for question in questions], seed_offset))
        return self.kind.sample(generator, number, questions, seed_offset, progress)


def choice_round(tmp_path: Path, questions: int, **settings: Any) -> tuple[ChoiceRound, CalmTrainConfig]:
    data = write_dataset(tmp_path / "data", questions=questions)
    config = CalmTrainConfig(languages=LANGUAGES, samples=2, mode="direct", device="cpu", **settings)
    return ChoiceRound(load_parallel_dataset(data, LANGUAGES, "train", None), config), config


def test_a_resumed_chunked_round_equals_one_run_in_one_go(tmp_path: Path, tiny_generator: Any) -> None:
    kind, config = choice_round(tmp_path, 5, sample_chunk=2)
    stopped = tmp_path / "stopped" / "samples.jsonl"
    asked: list[int] = []

    def stopping_generator() -> Any:
        asked.append(1)
        if len(asked) == 2:  # the second chunk: a kill, or the end of the day
            raise KeyboardInterrupt
        return tiny_generator

    with pytest.raises(KeyboardInterrupt):
        sample_in_chunks(kind, stopping_generator, 1, config, stopped, None)
    assert sorted(path.name for path in (stopped.parent / CHUNKS).iterdir()) == ["0000.jsonl"]
    assert not stopped.exists()

    recording, reported = Recording(kind), []
    resumed, reused = sample_in_chunks(recording, lambda: tiny_generator, 1, config, stopped,
                                       lambda stage, done, total: reported.append((stage, done, total)))
    assert reused == 1
    assert recording.calls == [(["q2", "q3"], 12), (["q4"], 24)]  # 2 questions x 3 languages x 2 samples before
    assert reported[0] == ("round 1: sampling", 12, 30) and reported[-1] == ("round 1: sampling", 30, 30)
    assert [done for _, done, _ in reported] == sorted(done for _, done, _ in reported)
    assert [json.loads(line) for line in stopped.read_text(encoding="utf-8").splitlines()] == resumed
    assert not (stopped.parent / CHUNKS).exists()  # joined into samples.jsonl

    one_go, reused = sample_in_chunks(kind, lambda: tiny_generator, 1, config, tmp_path / "one-go" / "samples.jsonl",
                                      None)
    assert reused == 0 and one_go == resumed

    unchunked = replace(config, sample_chunk=64)
    whole, _ = sample_in_chunks(ChoiceRound(kind.questions, unchunked), lambda: tiny_generator, 1, unchunked,
                                tmp_path / "whole" / "samples.jsonl", None)
    assert [record["id"] for record in whole] == ["q0", "q1", "q2", "q3", "q4"]
    for chunked, unchunked in zip(resumed, whole, strict=True):
        for lang in LANGUAGES:
            for a, b in zip(chunked["languages"][lang], unchunked["languages"][lang], strict=True):
                assert a["prompt"] == b["prompt"] and a["letter"] == b["letter"]
                # direct mode: exact distributions, up to the rounding a different padding in the batch gives
                assert a["distribution"] == pytest.approx(b["distribution"], abs=1e-5)
    samples = kind.reload(resumed, "resumed")
    assert [item.question.id for item in samples] == ["q0", "q1", "q2", "q3", "q4"]


def test_chunk_seeds_continue_where_the_previous_chunks_prompts_ended() -> None:
    config = CalmTrainConfig(languages=LANGUAGES, samples=3, seed=5)
    assert config.sampling_config(2, seed_offset=18).generation == GenerationConfig(
        max_new_tokens=256, temperature=0.7, top_p=0.95, seed=5 + 1 + 18, batch_size=32)


def test_open_questions_sample_in_chunks_too(tmp_path: Path) -> None:
    from calm_rag.data.open import load_open_dataset

    questions = load_open_dataset(write_open_dataset(tmp_path / "open", questions=3), LANGUAGES, split="train")
    config = CalmTrainConfig(languages=LANGUAGES, samples=2, sample_chunk=1, device="cpu")
    encode = concept_encoder({"Paris": 0, "巴黎": 0, "Berlin": 1})
    generator = FakeGenerator({"en": "Paris", "de": "Berlin", "zh": "巴黎"})
    recording = Recording(OpenRound(questions, config, encode))
    chunked, _ = sample_in_chunks(recording, lambda: generator, 1, config, tmp_path / "a" / "samples.jsonl", None)
    assert recording.calls == [(["o0"], 0), (["o1"], 6), (["o2"], 12)]
    whole = replace(config, sample_chunk=64)
    one_call, _ = sample_in_chunks(OpenRound(questions, whole, encode), lambda: generator, 1, whole,
                                   tmp_path / "b" / "samples.jsonl", None)
    assert chunked == one_call  # the fake answers the same whatever the seed: the records match field for field
    assert [item.status for item in recording.kind.reload(chunked, "chunks")] == ["target"] * 3


def test_a_chunk_of_other_questions_is_refused(tmp_path: Path, tiny_generator: Any) -> None:
    kind, config = choice_round(tmp_path, 3, sample_chunk=2)
    samples_file = tmp_path / "round" / "samples.jsonl"
    (samples_file.parent / CHUNKS).mkdir(parents=True)
    (samples_file.parent / CHUNKS / "0000.jsonl").write_text(json.dumps({"id": "q9"}) + "\n", encoding="utf-8")
    with pytest.raises(CalmRagError, match="0000.jsonl does not match the selected questions"):
        sample_in_chunks(kind, lambda: tiny_generator, 1, config, samples_file, None)
