"""CALM pairs for open questions: consensus-cluster answers are chosen, other clusters rejected;
a language without a consensus answer gets the representative translated."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from calm_rag.generation.open_sampling import sample_open_responses
from calm_rag.pipelines.open_qa import OpenConfig, OpenQA
from calm_rag.prompts import open_messages
from calm_rag.questions import ParallelQuestion, Question
from calm_rag.responses import OpenResponse
from calm_rag.voting import ClusterConfig
from calm_rag.voting.clustering import cluster_open_responses
from calm_rag.voting.open_pairs import answer_text, plan_open_pairs, realize_open_pairs
from calm_rag.voting.spans import split_response
from tests.fakes import ScriptedGenerator


def encode(texts: list[str]) -> np.ndarray:
    concepts = {"Paris": 0, "巴黎": 0, "Paris, France": 0, "London": 1, "伦敦": 1}
    rows = np.zeros((len(texts), 256), dtype=np.float32)
    for row, text in enumerate(texts):
        rows[row, concepts.get(text, 8 + zlib.crc32(text.encode()) % 240)] = 1.0
    return rows


def samples(outputs: dict[str, list[str]]) -> dict[str, list[OpenResponse]]:
    drawn = {}
    for lang, texts in outputs.items():
        prompt = tuple(open_messages("Capital of France?", lang))
        readings = [split_response(text, lang) for text in texts]
        drawn[lang] = [OpenResponse(lang, text, reading.span, reading.explanation, prompt, reading.source)
                       for text, reading in zip(texts, readings)]
    return drawn


class EchoTranslator:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []

    def translate_many(self, requests: Sequence[tuple[str, str, str]]) -> list[str]:
        self.requests.extend(requests)
        return [f"[{target}] {text}" for text, _, target in requests]


def test_same_language_chosen_and_translated_chosen() -> None:
    drawn = samples({
        "en": ["Explanation: It is the capital.\nAnswer: Paris", "Answer: London", "Answer: ...", "Paris, France"],
        "zh": ["答案：巴黎", "答案：伦敦", "答案：巴黎"],
        "de": ["Antwort: London", "Antwort: ..."],
    })
    clustering = cluster_open_responses(drawn, encode, ClusterConfig())
    assert clustering.winner is not None and clustering.winner.representative.text == "Paris"
    plans = plan_open_pairs("q1", drawn, clustering)
    assert [(p.lang, p.rejected.span, p.chosen.span, p.needs_translation) for p in plans] == [
        ("en", "London", "Paris", False), ("zh", "伦敦", "巴黎", False), ("de", "London", "Paris", True)]

    pairs, pending = realize_open_pairs(plans)
    assert len(pairs) == 2 and len(pending) == 1  # no translator: cross-language pairs wait

    translator = EchoTranslator()
    pairs, pending = realize_open_pairs(plans, translator.translate_many)
    assert not pending and len(pairs) == 3
    assert translator.requests == [("It is the capital.", "en", "de"), ("Paris", "en", "de")]
    english, german = pairs[0].to_record(), pairs[2].to_record()
    assert english["chosen"] == [{"role": "assistant", "content": "It is the capital.\nAnswer: Paris"}]
    assert english["rejected"] == [{"role": "assistant", "content": "Answer: London"}]
    assert english["majority"] == "Paris" and not english["translated"] and english["id"] == "q1"
    assert english["prompt"] == open_messages("Capital of France?", "en")
    assert german["translated"] and german["lang"] == "de"
    assert german["chosen"][0]["content"] == "[de] It is the capital.\nAntwort: [de] Paris"
    assert german["rejected"][0]["content"] == "Antwort: London"


def test_no_pairs_without_a_clear_consensus() -> None:
    tied = samples({"en": ["Answer: Paris", "Answer: London"], "zh": ["答案：伦敦", "答案：巴黎"]})
    assert plan_open_pairs("t", tied, cluster_open_responses(tied, encode, ClusterConfig())) == []
    unparsed = samples({"en": ["Answer: ...", "Answer:"], "zh": ["答案：……"]})
    assert plan_open_pairs("u", unparsed, cluster_open_responses(unparsed, encode, ClusterConfig())) == []


def test_unanimous_question_yields_nothing() -> None:
    drawn = samples({"en": ["Answer: Paris", "Answer: Paris, France"], "zh": ["答案：巴黎", "答案：……"]})
    assert plan_open_pairs("p", drawn, cluster_open_responses(drawn, encode, ClusterConfig())) == []


def test_answer_line_is_localized() -> None:
    assert answer_text("", "330米", "zh") == "答案：330米"
    assert answer_text("Weil.", "Berlin", "de") == "Weil.\nAntwort: Berlin"


def test_pairs_for_a_parallel_dataset_in_one_sampling_call() -> None:
    generator = ScriptedGenerator({"en": ["Answer: Paris", "Answer: London"], "zh": ["答案：巴黎"], "de": ["Antwort: ..."]})
    qa = OpenQA(generator, encode, OpenConfig(samples=2))  # type: ignore[arg-type]
    question = ParallelQuestion("p1", {lang: Question("p1", lang, text) for lang, text in
                                       [("en", "Capital of France?"), ("zh", "法国的首都？"), ("de", "Hauptstadt?")]}, "en")
    drawn = sample_open_responses(generator, [question], ["en", "zh", "de"], 2, qa.config.generation)
    plans = [plan for by_lang, clustering in zip(drawn, qa.cluster(drawn))
             for plan in plan_open_pairs(question.id, by_lang, clustering)]
    pairs = realize_open_pairs(plans, qa.translator.translate_many)[0]
    assert [(p.lang, p.majority, p.rejected[0]["content"]) for p in pairs] == [("en", "Paris", "Answer: London")]
    assert len(generator.calls) == 2 and len(generator.calls[0]) == 6  # one sampling call for all samples,
    assert len(generator.calls[1]) == 2  # one short call for the spans of the two German samples without one
