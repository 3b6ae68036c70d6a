"""The CALM round on open questions: clustering decides targets, dissenting answers become rejected ones."""

from __future__ import annotations

from calm_rag.generation.translation import Translator
from calm_rag.questions import ParallelQuestion, Question
from calm_rag.training import CalmTrainConfig
from calm_rag.training.open_round import (
    build_open_pairs,
    open_no_pairs_reason,
    open_samples_from_records,
    sample_open_round,
)
from calm_rag.training.report import open_round_metrics
from tests.fakes import FakeGenerator, concept_encoder

GOLD = {"en": "Paris", "de": "Paris", "zh": "巴黎"}
CONCEPTS = {"Paris": 0, "巴黎": 0, "[de] Paris": 0, "Berlin": 1}


def questions(count: int = 1) -> list[ParallelQuestion]:
    return [ParallelQuestion(f"q{i}", {lang: Question(f"q{i}", lang, f"Capital of France? ({lang} {i})",
                                                        answer=GOLD[lang]) for lang in GOLD}, "en", "Paris")
            for i in range(count)]


def config(**overrides: object) -> CalmTrainConfig:
    return CalmTrainConfig(languages=("en", "de", "zh"), samples=2, mode="cot", **overrides)  # type: ignore[arg-type]


def test_dissenting_language_gets_translated_consensus_as_chosen() -> None:
    generator = FakeGenerator({"en": "Paris", "de": "Berlin", "zh": "巴黎"})
    encode = concept_encoder(CONCEPTS)
    [item] = sample_open_round(generator, encode, questions(), config(), 1)  # type: ignore[arg-type]
    assert item.status == "target" and item.target == "Paris"
    assert [len(c.members) for c in item.clustering.clusters] == [4, 2]
    assert item.clustering.consistency == 1 / 3  # en-zh agree, en-de and de-zh do not

    pairs = build_open_pairs([item], Translator(generator).translate_many, 1)  # type: ignore[arg-type]
    assert len(pairs) == 2 and {p["lang"] for p in pairs} == {"de"} and all(p["translated"] for p in pairs)
    assert pairs[0]["chosen"] == [{"role": "assistant", "content": "Antwort: [de] Paris"}]
    assert pairs[0]["rejected"] == [{"role": "assistant", "content": "Antwort: Berlin"}]
    assert pairs[0]["majority"] == "Paris" and pairs[0]["round"] == 1

    metrics = open_round_metrics(1, [item], pairs, ["en", "de", "zh"], [], encode, 0.8)
    assert metrics["targets"] == 1 and metrics["target_accuracy"] == 1.0
    assert metrics["vote"]["accuracy_by_language"] == {"en": 1.0, "de": 0.0, "zh": 1.0}
    assert metrics["vote"]["vote_accuracy"] == 1.0  # de's consensus answer is the representative, "Paris"
    assert metrics["pairs"]["by_language"] == {"de": 2} and metrics["pairs"]["translated_share"] == 1.0


def test_weak_or_missing_consensus_is_not_a_target() -> None:
    encode = concept_encoder(CONCEPTS)
    split = FakeGenerator({"en": "Paris", "de": "Berlin", "zh": "Rom"})  # three clusters of 2: a tie
    [tied] = sample_open_round(split, encode, questions(), config(), 1)  # type: ignore[arg-type]
    assert tied.status == "tied" and tied.target is None
    agreeing = FakeGenerator({"en": "Paris", "de": "Berlin", "zh": "巴黎"})
    [weak] = sample_open_round(agreeing, encode, questions(), config(min_support=0.9), 1)  # type: ignore[arg-type]
    assert weak.status == "below_threshold"
    silent = FakeGenerator({})  # only the fallback sentence, the same in every language: no two languages differ
    [none] = sample_open_round(silent, concept_encoder({}), questions(), config(), 1)  # type: ignore[arg-type]
    assert build_open_pairs([tied, weak, none], None, 1) == []
    reason = open_no_pairs_reason([tied, weak], config())
    assert "1 were tied" in reason and "1 had a consensus below --min-support" in reason


def test_samples_round_trip_rebuilds_the_same_clustering() -> None:
    generator = FakeGenerator({"en": "Paris", "de": "Berlin", "zh": "巴黎"})
    encode = concept_encoder(CONCEPTS)
    items = sample_open_round(generator, encode, questions(2), config(), 1)  # type: ignore[arg-type]
    records = [item.to_record(1) for item in items]
    assert records[0]["languages"]["de"][0]["span"] == "Berlin" and records[0]["gold"]["zh"] == "巴黎"
    rebuilt = open_samples_from_records(questions(2), records, encode, config(), "samples.jsonl")
    assert [r.to_record(1) for r in rebuilt] == records


def test_targets_are_voted_with_english_glosses_as_answers_are() -> None:
    """"巴黎" shares no direction with "Paris" here; its gloss does, so zh joins en as in `ask`; off, the three
    languages tie. The gloss is kept in the round's records."""
    encode = concept_encoder({"Paris": 0, "[en] 巴黎": 0, "Berlin": 1})
    generator = FakeGenerator({"en": "Paris", "de": "Berlin", "zh": "巴黎"})
    [glossed] = sample_open_round(generator, encode, questions(), config(), 1)  # type: ignore[arg-type]
    assert glossed.status == "target" and glossed.target == "Paris"
    assert [len(c.members) for c in glossed.clustering.clusters] == [4, 2]
    assert glossed.to_record(1)["languages"]["zh"][0]["gloss"] == "[en] 巴黎"
    [plain] = sample_open_round(generator, encode, questions(), config(gloss_spans=False), 1)  # type: ignore[arg-type]
    assert plain.status == "tied" and plain.to_record(1)["languages"]["zh"][0]["gloss"] is None
