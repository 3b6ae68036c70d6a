"""Cross-lingual semantic clustering: numbers and units, exact-match shortcuts, cosine threshold,
deterministic ranking, abstention, truncation and the consistency metric. The encoder is a fake:
texts named in `concepts` share a direction per concept; any other text gets its own direction."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from calm_rag.responses import OpenResponse
from calm_rag.voting import (
    DEFAULT_MAX_CHARS,
    CachedEncoder,
    ClusterConfig,
    answer_key,
    cluster_answers,
    exact_match,
    extract_quantities,
    semantic_match,
    truncate,
)
from calm_rag.voting.clustering import cluster_open_responses
from calm_rag.voting.matching import foreign_script
from tests.fakes import concept_encoder


def same_everything(texts: list[str]) -> np.ndarray:
    """An embedder that thinks every answer means the same."""
    return np.ones((len(texts), 4), dtype=np.float32) / 2


def never_called(texts: list[str]) -> np.ndarray:
    raise AssertionError(f"the encoder should not be needed here: {texts}")


@pytest.mark.parametrize(("text", "lang", "expected"), [
    ("330 m", "en", [("330", "m", "330")]),
    ("330 Meter", "de", [("330", "m", "330")]),
    ("330米", "zh", [("330", "m", "330")]),
    ("٣٣٠ مترا", "ar", [("330", "m", "330")]),
    ("0.33 km", "en", [("0.33", "m", "330")]),
    ("300 feet", "en", [("300", "ft", "300")]),
    ("1,000", "en", [("1000", None, None)]),
    ("1.000", "de", [("1000", None, None)]),
    ("1.000", "en", [("1", None, None)]),
    ("3,5 Mio. Euro", "de", [("3500000", "eur", "3500000")]),
    ("$3 million", "en", [("3000000", "usd", "3000000")]),
    ("300万美元", "zh", [("3000000", "usd", "3000000")]),
    ("1 000 000 habitants", "fr", [("1000000", None, None)]),
    ("50％", "ja", [("50", "%", "50")]),
    ("-40 °C", "en", [("-40", "°c", "-40")]),
    ("1990-2000", "en", [("1990", None, None), ("2000", None, None)]),
    ("5 частей", "ru", [("5", None, None)]),
    ("Denver Broncos", "en", []),
])
def test_quantities(text: str, lang: str, expected: list) -> None:
    found = [(q.value, q.unit, q.base) for q in extract_quantities(text, lang)]
    assert found == [(Decimal(v), unit, None if base is None else Decimal(base)) for v, unit, base in expected]


def test_answer_key_folds_case_accents_punctuation_and_articles() -> None:
    assert answer_key("The Denver Broncos.") == answer_key("denver broncos") == "denver broncos"
    assert answer_key("l'Hôpital") == "hopital"
    assert answer_key("«Zürich»") == answer_key("Zurich")
    assert answer_key("C++") != answer_key("C")
    assert exact_match("Die Broncos!", "broncos") and not exact_match("", "")


def test_numbers_and_units_agree_across_languages_whatever_the_embedding() -> None:
    answers = {"en": ["330 m", "300 feet"], "de": ["330 Meter", None], "zh": ["330米", "约330 米"]}
    for encode in (same_everything, concept_encoder({})):
        result = cluster_answers(answers, encode)
        assert [[m.text for m in c.members] for c in result.clusters] == [
            ["330 m", "330 Meter", "330米", "约330 米"], ["300 feet"]]
        winner = result.winner
        assert winner is not None and winner.representative.text == "330 m"
        assert winner.to_dict()["support"] == {"samples": round(4 / 6, 4), "languages": 1.0}
        assert result.parsed == {"en": 2, "de": 1, "zh": 2} and result.total == 6
        assert result.consistency == 1.0 and not result.tied


def test_semantic_clusters_and_consistency_over_language_majorities() -> None:
    encode = concept_encoder({"Paris": 0, "巴黎": 0, "パリ": 0, "London": 1, "伦敦": 1})
    answers = {"en": ["London", "London", "Paris"], "zh": ["巴黎", "巴黎", "伦敦"], "ja": ["パリ", None, None]}
    result = cluster_answers(answers, encode)
    assert [c.to_dict()["representative"] for c in result.clusters] == ["Paris", "London"]
    assert result.language_majorities == {"en": 1, "zh": 0, "ja": 0}
    assert result.consistency == pytest.approx(1 / 3)
    assert result.winner is not None and result.winner.central_in("zh").text == "巴黎"
    assert result.winner.central_in("de") is None


def test_threshold_is_the_embedders() -> None:
    def encode(texts: list[str]) -> np.ndarray:
        angle = {"Mount Everest": 0.0, "珠穆朗玛峰": 0.6}  # cosine ~0.825
        return np.array([[np.cos(angle[t]), np.sin(angle[t])] for t in texts], dtype=np.float32)
    answers = {"en": ["Mount Everest"], "zh": ["珠穆朗玛峰"]}
    assert len(cluster_answers(answers, encode, ClusterConfig(threshold=0.80)).clusters) == 1
    assert len(cluster_answers(answers, encode, ClusterConfig(threshold=0.90)).clusters) == 2


def test_complete_linkage_does_not_chain() -> None:
    def encode(texts: list[str]) -> np.ndarray:  # a ~ b and b ~ c, but a is far from c
        angle = {"alpha": 0.0, "beta": 0.6, "gamma": 1.2}
        return np.array([[np.cos(angle[t]), np.sin(angle[t])] for t in texts], dtype=np.float32)
    result = cluster_answers({"en": ["alpha", "beta", "gamma"]}, encode)
    assert sorted(len(c.members) for c in result.clusters) == [1, 2]


def test_tie_break_bigger_then_more_languages_then_earliest() -> None:
    encode = concept_encoder({})
    forward = cluster_answers({"en": ["Paris", "London"], "de": ["London", "Paris"]}, encode)
    assert forward.winner is not None and forward.winner.representative.text == "Paris" and forward.tied
    assert "tie broken" in forward.message
    again = cluster_answers({"en": ["Paris", "London"], "de": ["London", "Paris"]}, encode)
    assert [c.to_dict() for c in again.clusters] == [c.to_dict() for c in forward.clusters]
    backward = cluster_answers({"de": ["London", "Paris"], "en": ["Paris", "London"]}, encode)
    assert backward.winner is not None and backward.winner.representative.text == "London"
    spread = cluster_answers({"en": ["A1", "A1"], "de": ["B2"], "fr": ["B2"]}, encode)
    assert spread.winner is not None and spread.winner.representative.text == "B2"


def test_abstains_when_nothing_parsed_or_support_is_low() -> None:
    empty = cluster_answers({"en": [None, "  ", "..."], "de": [None]}, never_called)
    assert empty.abstained and empty.clusters == () and empty.consistency is None
    assert "no sample" in empty.message and empty.parsed == {"en": 0, "de": 0}
    scattered = cluster_answers({"en": ["a1", "b2"], "de": ["c3", None]}, concept_encoder({}))
    assert scattered.abstained and "no two samples agree" in scattered.message
    thin = cluster_answers({"en": ["a1", "a1", "b2"], "de": [None] * 8}, concept_encoder({}))
    assert thin.abstained and "minimum support" in thin.message and thin.clusters[0].samples_share == 2 / 11
    strict = ClusterConfig(min_support=0.5)
    assert not cluster_answers({"en": ["a1", "a1", "b2"]}, concept_encoder({}), strict).abstained
    assert cluster_answers({"en": ["a1", None]}, concept_encoder({})).winner is not None  # one parsed sample


def test_long_answers_are_truncated_for_clustering() -> None:
    calls: list[list[str]] = []
    head = "word " * 60
    answers = {"en": [head + "first ending " * 50, head + "another ending " * 50], "de": ["kurz"]}
    result = cluster_answers(answers, concept_encoder({}, calls), ClusterConfig(max_chars=120))
    assert all(len(text) <= 120 for text in calls[0])
    assert len(result.clusters[0].members) == 2 and len(result.clusters[0].members[0].text) > 120
    assert truncate("one two three", 9) == "one two" and truncate("abcdefghij", 4) == "abcd"


def test_wrong_script_answers_are_clustered_and_noted() -> None:
    result = cluster_answers({"en": ["Paris"], "zh": ["Paris"]}, never_called)
    assert len(result.clusters) == 1 and result.foreign == 1
    assert result.clusters[0].to_dict()["members"][1] == {"lang": "zh", "text": "Paris", "foreign_script": True}
    assert "another script" in result.message
    assert foreign_script("巴黎", "de") and not foreign_script("330", "zh") and not foreign_script("パリ", "ja")


def test_semantic_match_for_scoring() -> None:
    encode = concept_encoder({"Paris": 0, "巴黎": 0})
    assert semantic_match("巴黎", "Paris", encode) and semantic_match("308 points", "308", never_called)
    assert not semantic_match("309", "308", never_called) and not semantic_match(None, "308", never_called)
    assert not semantic_match("London", "Paris", encode) and semantic_match("the Paris", "paris", never_called)


def test_cached_encoder_embeds_each_text_once() -> None:
    calls: list[list[str]] = []
    cached = CachedEncoder(concept_encoder({"x": 0}, calls))
    cached(["x", "y", "x"])
    rows = cached(["y", "x"])
    assert calls == [["x", "y"]] and rows.shape == (2, 512)


def test_spider_legs_cluster_across_scripts_by_the_numbers_rule() -> None:
    """'Wie viele Beine hat eine Spinne?': the fake embedder gives every answer its own direction, so only the
    numbers rule can merge them."""
    answers = {"de": ["8", "acht"], "en": ["eight", "6"], "zh": ["八条", None], "fr": ["huit pattes"],
               "ru": ["восемь"], "ja": ["八本"], "ar": ["ثمانية"], "it": ["otto"]}
    result = cluster_answers(answers, concept_encoder({}))
    assert [[m.text for m in c.members] for c in result.clusters] == [
        ["8", "acht", "eight", "八条", "huit pattes", "восемь", "八本", "ثمانية", "otto"], ["6"]]
    assert result.winner is not None and result.winner.languages == ("de", "en", "zh", "fr", "ru", "ja", "ar", "it")
    assert result.consistency == 1.0


def test_eight_and_six_stay_apart_whatever_the_embedding() -> None:
    for encode in (same_everything, concept_encoder({})):
        result = cluster_answers({"de": ["8", "sechs"], "zh": ["八条", "六条"], "fr": ["huit", "six"]}, encode)
        assert sorted([m.text for m in c.members] for c in result.clusters) == [
            ["8", "八条", "huit"], ["sechs", "六条", "six"]]


def test_article_sentence_states_its_number_not_one() -> None:
    result = cluster_answers({"de": ["Eine Spinne hat acht Beine."], "en": ["8"], "fr": ["une araignée"]},
                             concept_encoder({}))
    assert [[m.text for m in c.members] for c in result.clusters] == [
        ["Eine Spinne hat acht Beine.", "8"], ["une araignée"]]


def test_dates_and_years_cluster_across_scripts() -> None:
    answers = {"en": ["February 7, 2016", "February 8, 2016"], "de": ["7. Februar 2016"], "fr": ["7 février 2016"],
               "zh": ["2016年2月7日"], "ja": ["二〇一六年二月七日"], "ru": ["7 февраля 2016"], "ar": ["7 فبراير 2016"]}
    result = cluster_answers(answers, concept_encoder({}))
    assert [len(c.members) for c in result.clusters] == [7, 1]
    assert result.clusters[1].members[0].text == "February 8, 2016"
    years = cluster_answers({"en": ["1773"], "zh": ["1773年"], "de": ["im Jahr 1773"], "ru": ["1774 год"]},
                            never_called)
    assert [[m.text for m in c.members] for c in years.clusters] == [["1773", "1773年", "im Jahr 1773"], ["1774 год"]]
    assert semantic_match("2016年2月7日", "February 7, 2016", never_called)
    assert semantic_match("eight", "8", never_called, lang="en") and not semantic_match("acht", "6", never_called)


def mentions_canberra(texts: list[str]) -> np.ndarray:
    """An embedder that files every text mentioning Canberra under one concept, however long the text: it would
    merge a paragraph that names Canberra in passing with the answer "Canberra"."""
    return concept_encoder({text: 0 for text in texts if "canberra" in text.casefold()})(texts)


def test_only_the_span_is_compared_never_the_paragraph() -> None:
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return mentions_canberra(texts)

    paragraph = "Many think of Canberra, but the largest city is meant here.\nAnswer: Sydney"
    samples = {"en": [OpenResponse("en", paragraph, "Sydney", "Many think of Canberra, ...", ())],
               "de": [OpenResponse("de", "Antwort: Canberra", "Canberra", "", ())]}
    result = cluster_open_responses(samples, encode, ClusterConfig())
    assert len(result.clusters) == 2 and calls == [["Sydney", "Canberra"]]

    # a long span is cut to max_chars before comparing: a name past the cut cannot win the match
    rambling = "Sydney, " + "which is the largest and oldest city of the country, " * 5 + "not Canberra"
    assert len(rambling) > DEFAULT_MAX_CHARS and "canberra" not in truncate(rambling, DEFAULT_MAX_CHARS).casefold()
    assert len(cluster_answers({"en": [rambling], "de": ["Canberra"]}, mentions_canberra).clusters) == 2
    assert not semantic_match(rambling, "Canberra", mentions_canberra)
    uncut = ClusterConfig(max_chars=1000)  # the same texts uncut would merge: the cut is what keeps them apart
    assert len(cluster_answers({"en": [rambling], "de": ["Canberra"]}, mentions_canberra, uncut).clusters) == 1
    assert semantic_match("Canberra, of course", "Canberra", mentions_canberra)


def test_names_that_are_no_transliteration_agree_through_their_glosses() -> None:
    """"珠穆朗玛峰" and "Mount Everest" share no sounds and (here) no direction; their English glosses decide,
    by the same key and threshold; a gloss that names something else keeps its answer apart."""
    encode = concept_encoder({"Everest": 0, "Mount Everest": 0})
    answers = {"en": ["Mount Everest"], "zh": ["珠穆朗玛峰"], "fr": ["Mont Everest"], "de": ["Mont Blanc"]}
    alone = cluster_answers(answers, encode)
    assert [len(cluster.members) for cluster in alone.clusters] == [1, 1, 1, 1]
    glossed = cluster_answers(answers, encode, glosses={"珠穆朗玛峰": "Everest", "Mont Everest": "Mount Everest",
                                                        "Mont Blanc": "Mont Blanc"})
    assert [sorted(member.lang for member in cluster.members) for cluster in glossed.clusters] == [
        ["en", "fr", "zh"], ["de"]]  # zh by the glosses' cosine, fr by the same key
    assert glossed.clusters[0].members[0].text == "Mount Everest"  # members keep their own text


def test_sentence_glosses_are_not_compared() -> None:
    """Two sentences' English versions share their frame ("Egypt is ..."), not their answer: only glosses of at
    most GLOSS_MAX_WORDS words (names, terms) can make answers agree."""
    sentences = {"Egypt is on the Atlantic continent.": 3, "Egypt is located in Africa": 3}
    answers = {"en": ["Egypt is located in Africa"], "de": ["Ägypten liegt auf dem Atlantik Kontinent"]}
    glosses = {"Ägypten liegt auf dem Atlantik Kontinent": "Egypt is on the Atlantic continent."}
    clustering = cluster_answers(answers, concept_encoder(sentences), glosses=glosses)
    assert len(clustering.clusters) == 2
    short = cluster_answers({"en": ["Africa"], "de": ["Afrika-Kontinent"]}, concept_encoder({"Africa": 4,
                            "African continent": 4}), glosses={"Afrika-Kontinent": "African continent"})
    assert len(short.clusters) == 1
