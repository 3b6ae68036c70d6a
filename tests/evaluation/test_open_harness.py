"""The open-question harness end to end on the deterministic fake generator and the fake concept encoder:
batching across questions and languages, per-language passages, the resume cache, the run's report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from calm_rag.data.open import load_open_dataset
from calm_rag.evaluation import (
    OpenEvalConfig,
    OpenEvalRun,
    OpenItemRecord,
    build_payload,
    evaluate_open,
    score_open,
)
from calm_rag.evaluation.cache import ItemCache
from calm_rag.evaluation.report import markdown, metric_rows, rich_tables, write_reports
from tests.evaluation.conftest import QueryRecordingIndex, write_open_dataset
from tests.fakes import FakeGenerator, concept_encoder

LANGS = ("en", "de", "zh")
CONCEPTS = {"Paris": 0, "巴黎": 0, "Paris, Frankreich": 0}
QUESTIONS = {
    "en": [("p1", "What is the capital of France?", "Paris"), ("p2", "Where is the Louvre?", "Paris")],
    "de": [("p1", "Was ist die Hauptstadt Frankreichs?", "Paris"), ("p2", "Wo ist der Louvre?", "Paris, Frankreich")],
    "zh": [("p1", "法国的首都是哪里？", "巴黎"), ("p2", "卢浮宫在哪里？", "巴黎")],
}


class RecordingGenerator(FakeGenerator):
    """The fake generator, keeping every prompt it answers."""

    def __init__(self, knowledge: dict[str, str]) -> None:
        super().__init__(knowledge)
        self.prompts: list[str] = []

    def generate(self, prompts: Sequence[str], *args: Any, **kwargs: Any) -> list[str]:
        self.prompts.extend(prompts)
        return super().generate(prompts, *args, **kwargs)


@pytest.fixture
def open_data(tmp_path: Path) -> Path:
    return write_open_dataset(tmp_path / "open", QUESTIONS)


def test_samples_in_one_batch_scores_and_resumes(open_data: Path, tmp_path: Path) -> None:
    config = OpenEvalConfig(languages=LANGS, samples=2, batch_size=4)
    questions = load_open_dataset(open_data, LANGS)
    generator = FakeGenerator({"en": "Paris", "de": "Paris", "zh": "巴黎"})
    cache = ItemCache(tmp_path / "cache", {"test": 1}, OpenItemRecord)
    done: list[int] = []
    records, timings = evaluate_open(generator, questions, config, cache=cache,  # type: ignore[arg-type]
                                     progress=done.append)
    # 2 questions x 3 languages x 2 samples, one chunk, one call; then one call glossing the 2 distinct de/zh spans
    assert generator.generate_calls == [12, 2]
    assert sum(done) == 12 and timings["questions_answered"] == 2 and timings["prompts"] == 12
    assert records[1].gold == {"en": "Paris", "de": "Paris, Frankreich", "zh": "巴黎"}
    assert records[1].spans == {"en": ["Paris", "Paris"], "de": ["Paris", "Paris"], "zh": ["巴黎", "巴黎"]}
    assert records[1].glosses == {"en": [None, None], "de": ["[en] Paris"] * 2, "zh": ["[en] 巴黎"] * 2}
    summary = score_open(records, LANGS, concept_encoder(CONCEPTS))
    assert summary["accuracy_by_language"] == {lang: 1.0 for lang in LANGS}
    assert summary["exact_match_by_language"] == {"en": 1.0, "de": 0.5, "zh": 1.0}  # "Paris" vs "Paris, Frankreich"
    assert summary["vote_accuracy"] == 1.0 and summary["consistency"] == 1.0

    again, timings = evaluate_open(generator, questions, config, cache=cache)  # type: ignore[arg-type]
    assert generator.generate_calls == [12, 2] and timings["questions_cached"] == 2 and again == records


def test_each_language_gets_passages_retrieved_with_its_own_question(open_data: Path) -> None:
    index = QueryRecordingIndex()
    generator = RecordingGenerator({"en": "Paris", "de": "Paris"})
    config = OpenEvalConfig(languages=("en", "de"), index="wiki", top_k=1, gloss_spans=False)
    evaluate_open(generator, load_open_dataset(open_data, ["en", "de"], limit=1), config,  # type: ignore[arg-type]
                  index=index)
    assert index.queries == ["What is the capital of France?", "Was ist die Hauptstadt Frankreichs?"]
    assert len(generator.prompts) == 2
    assert "PASSAGE FOR What is" in generator.prompts[0] and "PASSAGE FOR Was ist" not in generator.prompts[0]
    assert "PASSAGE FOR Was ist" in generator.prompts[1] and "Was ist die Hauptstadt" in generator.prompts[1]


def test_run_report_has_the_headline_keys_and_renders_without_letters(open_data: Path, tmp_path: Path) -> None:
    config = OpenEvalConfig(languages=LANGS)
    questions = load_open_dataset(open_data, LANGS)
    runs = []
    for label, knowledge in (("adapter", {"en": "Paris", "de": "Paris", "zh": "巴黎"}), ("base", {"en": "Paris"})):
        records, timings = evaluate_open(FakeGenerator(knowledge), questions, config)  # type: ignore[arg-type]
        summary = score_open(records, LANGS, concept_encoder(CONCEPTS))
        runs.append(OpenEvalRun(label, "fake", None, config, "concepts", str(open_data), "hash", records, summary,
                                timings).to_dict())
    payload = build_payload(runs[0], runs[1])
    assert payload["mode"] == "open" and "letters" not in payload and payload["embedder"] == "concepts"
    assert payload["delta"]["exact_match_by_language"]["de"] == pytest.approx(0.5 - 0.0)
    assert payload["delta"]["vote_accuracy"] == pytest.approx(1.0 - 0.0) and "top_letter_share" not in payload["delta"]
    header, rows = metric_rows(payload)
    assert header[:4] == ["language", "accuracy", "base", "Δ"] and "Δ exact" in header
    assert [row[0] for row in rows[3:]] == ["mean accuracy", "mean exact match", "cross-lingual vote",
                                            "cross-lingual vote (exact)", "consistency"]
    assert len(rich_tables(payload)) == 2  # description and metrics: no letter tables
    assert "semantic match" in markdown(payload) and "## Answer letters" not in markdown(payload)
    paths = write_reports(tmp_path / "report", payload)
    assert paths[2].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
