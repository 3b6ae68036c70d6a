"""Open-question metrics against hand-computed values: semantic and exact match per language, the consensus
answer per language (its own member, else the representative), abstention, unparsed answers, consistency."""

from __future__ import annotations

import pytest

from calm_rag.errors import CalmRagError
from calm_rag.evaluation import OpenItemRecord, score_open
from calm_rag.evaluation.config import OpenEvalConfig
from calm_rag.voting import ClusterConfig
from tests.fakes import concept_encoder

LANGS = ("en", "de", "zh")
CONCEPTS = {"Paris": 0, "巴黎": 0, "Paris, Frankreich": 0, "Berlin": 1, "柏林": 1}


def record(qid: str, gold: dict[str, str | None], spans: dict[str, list[str | None]]) -> OpenItemRecord:
    return OpenItemRecord(qid, gold, spans, {lang: [f"Answer: {span}" for span in items]
                                             for lang, items in spans.items()})


RECORDS = [
    # one cluster: en/de by normalized text ("paris." ~ "Paris"), zh by meaning; every answer right
    record("q1", {"en": "Paris", "de": "Paris", "zh": "巴黎"}, {"en": ["Paris"], "de": ["paris."], "zh": ["巴黎"]}),
    # Munich and Berlin disagree and zh is unparsed: no two samples agree, the vote abstains
    record("q2", {"en": "Berlin", "de": "Berlin", "zh": "柏林"}, {"en": ["Munich"], "de": ["Berlin"], "zh": [None]}),
    # numbers decide: "330 m" means "330 Meter" (semantic) but is not the same text (exact); zh has no gold
    record("q3", {"en": "330 m", "de": "330 Meter", "zh": None}, {"en": ["330 m"], "de": ["330 m"], "zh": ["330米"]}),
    # de's majority is Berlin (2 samples); the consensus (Paris: as many samples, more languages) has no de
    # member, so de is scored with the representative, en's "Paris": a semantic but not an exact match
    record("q4", {"en": "Paris", "de": "Paris, Frankreich", "zh": "巴黎"},
           {"en": ["Paris"], "de": ["Berlin", "Berlin"], "zh": ["巴黎"]}),
]


def test_score_open_matches_hand_computed_values() -> None:
    calls: list[list[str]] = []
    summary = score_open(RECORDS, LANGS, concept_encoder(CONCEPTS, calls))
    assert summary["n_questions"] == 4 and summary["graded"] == 4 and summary["abstained"] == 1
    assert summary["accuracy_by_language"] == pytest.approx({"en": 3 / 4, "de": 3 / 4, "zh": 2 / 3})
    assert summary["exact_match_by_language"] == pytest.approx({"en": 3 / 4, "de": 2 / 4, "zh": 2 / 3})
    assert summary["mean_accuracy"] == pytest.approx((3 / 4 + 3 / 4 + 2 / 3) / 3)
    assert summary["mean_exact_match"] == pytest.approx((3 / 4 + 2 / 4 + 2 / 3) / 3)
    # 11 graded (question, language) pairs: q1 3 of 3, q2 0 of 3 (abstained), q3 2 of 2, q4 3 of 3
    assert summary["vote_accuracy"] == pytest.approx(8 / 11)
    # exact: q1 3, q3 en only, q4 en and zh
    assert summary["vote_exact_match"] == pytest.approx(6 / 11)
    # q1 1, q2 0 (en and de parsed, different), q3 1, q4 1/3 (en = zh != de)
    assert summary["consistency"] == pytest.approx((1 + 0 + 1 + 1 / 3) / 4)
    assert summary["parse_rate_by_language"] == pytest.approx({"en": 1.0, "de": 1.0, "zh": 3 / 4})
    assert summary["short_span_rate_by_language"] == summary["parse_rate_by_language"]  # every parsed span is short
    assert len(calls) == 1  # every span and gold answer embedded in one call
    # per question, over its graded languages: own answers right, consensus right
    assert summary["per_question"] == [{"id": "q1", "accuracy": 1.0, "vote": 1.0},
                                       {"id": "q2", "accuracy": pytest.approx(1 / 3), "vote": 0.0},
                                       {"id": "q3", "accuracy": 1.0, "vote": 1.0},
                                       {"id": "q4", "accuracy": pytest.approx(2 / 3), "vote": 1.0}]


def test_undefined_metrics_are_none_not_zero() -> None:
    no_gold = record("q", {"en": None, "de": None}, {"en": ["Paris"], "de": [None]})
    summary = score_open([no_gold], ("en", "de"), concept_encoder(CONCEPTS))
    assert summary["graded"] == 0 and summary["accuracy_by_language"] == {"en": None, "de": None}
    assert summary["mean_accuracy"] is None and summary["vote_accuracy"] is None
    assert summary["consistency"] is None  # one parsed language: no pair to compare
    assert summary["parse_rate_by_language"] == {"en": 1.0, "de": 0.0}


def test_a_sentence_parses_but_is_not_a_short_span() -> None:
    sentence = "The capital of France is Paris, which is also its largest city and its seat of government"
    summary = score_open([record("q", {"en": "Paris"}, {"en": [sentence, "Paris"], "de": ["Paris", None]})],
                         ("en", "de"), concept_encoder(CONCEPTS))
    assert summary["parse_rate_by_language"] == {"en": 1.0, "de": 0.5}
    assert summary["short_span_rate_by_language"] == {"en": 0.5, "de": 0.5}


def test_threshold_is_checked() -> None:
    with pytest.raises(CalmRagError, match="threshold"):
        score_open(RECORDS, LANGS, concept_encoder(CONCEPTS), threshold=3.0)


def test_records_round_trip_through_json() -> None:
    assert [OpenItemRecord.from_json(r.to_json()) for r in RECORDS] == RECORDS


def test_glosses_join_translated_names_and_old_records_still_load() -> None:
    """zh's "爱国者队" (a translated name: no shared sound, no shared direction here) joins en's "Patriots"
    through its gloss, so zh's consensus answer is its own, right, member; records cached before glosses
    (no "glosses" key) load and score as before."""
    encode = concept_encoder({"Patriots": 2, "New England Patriots": 2, "[en] 爱国者队": 2})
    spans = {"en": ["Patriots"], "de": ["New England Patriots"], "zh": ["爱国者队"]}
    gold = {"en": "New England Patriots", "de": "New England Patriots", "zh": "爱国者队"}
    plain = record("q", gold, spans)
    glossed = OpenItemRecord("q", gold, spans, plain.texts, {"en": [None], "de": [None], "zh": ["[en] 爱国者队"]})
    assert score_open([plain], LANGS, encode)["vote_accuracy"] == pytest.approx(2 / 3)  # zh graded on en's answer
    assert score_open([glossed], LANGS, encode)["vote_accuracy"] == 1.0
    assert glossed.clustering(encode, ClusterConfig()).consistency == 1.0
    assert OpenItemRecord.from_json(glossed.to_json()) == glossed
    assert "glosses" not in plain.to_json() and OpenItemRecord.from_json(plain.to_json()) == plain


def test_glossing_is_part_of_the_cache_key_only_when_on() -> None:
    """Spans are the same either way, but cached records without glosses must not stand in for glossed ones;
    off, the key is the one runs had before glosses, so their caches are still found."""
    assert OpenEvalConfig(gloss_spans=True).fingerprint()["glosses"] == "en"
    assert "glosses" not in OpenEvalConfig(gloss_spans=False).fingerprint()
    assert OpenEvalConfig(constrain_spans=True).fingerprint()["grammar"] == "answer line"  # other samples
    assert "grammar" not in OpenEvalConfig().fingerprint()
