"""Metrics against hand-computed values, including the paper's consistency with unparsed answers."""

from __future__ import annotations

import pytest

from calm_rag.errors import CalmRagError
from calm_rag.evaluation import EvalConfig, ItemRecord, load_eval_config, score
from calm_rag.evaluation.choice_scoring import top_letter_share
from calm_rag.evaluation.report import build_payload, deltas, paired_interval

LANGS = ("en", "de", "zh")


def record(qid: str, gold: str, answers: dict[str, str | None]) -> ItemRecord:
    """One sample per language; None is an unparsed answer (an empty ballot)."""
    return ItemRecord(qid, gold, ("A", "B", "C"),
                      {lang: [{letter: 1.0} if letter else {}] for lang, letter in answers.items()},
                      {lang: [letter] for lang, letter in answers.items()},
                      {lang: [f"Answer: {letter}"] for lang, letter in answers.items()})


RECORDS = [
    record("q1", "A", {"en": "A", "de": "A", "zh": None}),  # one parsed pair (en, de), agreeing -> 1
    record("q2", "B", {"en": "A", "de": "B", "zh": "C"}),   # three pairs, none agree -> 0
    record("q3", "B", {"en": "B", "de": "B", "zh": "B"}),   # three pairs, all agree -> 1
]


def test_score_matches_hand_computed_values() -> None:
    summary = score(RECORDS, LANGS)
    assert summary["questions"] == 3
    assert summary["accuracy_by_language"] == pytest.approx({"en": 2 / 3, "de": 1.0, "zh": 1 / 3})
    assert summary["mean_accuracy"] == pytest.approx(2 / 3)
    # votes: q1 A (2 of 2) right; q2 a three-way tie broken to A (earlier label) wrong; q3 B right
    assert summary["vote_accuracy"] == pytest.approx(2 / 3)
    assert summary["consistency"] == pytest.approx((1 + 0 + 1) / 3)
    assert summary["parse_rate_by_language"] == pytest.approx({"en": 1.0, "de": 1.0, "zh": 2 / 3})
    assert summary["top_letter"] == "B" and summary["top_letter_share"] == pytest.approx(4 / 9)
    assert summary["per_question"] == [{"id": "q1", "accuracy": pytest.approx(2 / 3), "vote": 1.0},
                                       {"id": "q2", "accuracy": pytest.approx(1 / 3), "vote": 0.0},
                                       {"id": "q3", "accuracy": 1.0, "vote": 1.0}]


def test_paired_interval_by_hand() -> None:
    run = [{"id": f"q{n}", "vote": value} for n, value in enumerate([1, 1, 0, 1])]
    base = [{"id": f"q{n}", "vote": value} for n, value in enumerate([0, 1, 0, 0])]
    # differences 1, 0, 0, 1: mean 0.5, sample sd sqrt(1/3), half-width 1.96 * sqrt(1/3) / 2
    half = 1.96 * (1 / 3) ** 0.5 / 2
    assert paired_interval(run, base, "vote") == pytest.approx([0.5 - half, 0.5 + half], abs=1e-4)
    assert paired_interval(run, list(reversed(base)), "vote") == pytest.approx([0.5 - half, 0.5 + half], abs=1e-4)
    assert paired_interval(run, base[:3], "vote") is None  # not the same questions
    assert paired_interval(run[:1], base[:1], "vote") is None  # one question has no spread
    identical = paired_interval(run, run, "vote")
    assert identical == [0.0, 0.0]


def test_consistency_is_undefined_with_fewer_than_two_answers() -> None:
    lonely = record("q4", "A", {"en": "A", "de": None, "zh": None})
    assert score([lonely], LANGS)["consistency"] is None
    assert score([*RECORDS, lonely], LANGS)["consistency"] == pytest.approx(2 / 3)  # q4 is left out, not a 0


def test_letter_distribution_counts_each_language_and_the_unparsed() -> None:
    letters = score(RECORDS, LANGS)["letters"]
    assert letters["by_language"]["en"] == {"A": 2, "B": 1, "C": 0}
    assert letters["by_language"]["zh"] == {"A": 0, "B": 1, "C": 1, "none": 1}
    assert letters["overall"] == {"A": 3, "B": 4, "C": 1, "none": 1}
    assert letters["vote"] == {"A": 2, "B": 1, "C": 0}
    assert letters["gold"] == {"A": 1, "B": 2, "C": 0}
    assert top_letter_share(letters["overall"]) == ("B", pytest.approx(4 / 9))
    assert top_letter_share({"none": 3}) is None


def test_soft_ballots_vote_by_probability_mass() -> None:
    soft = ItemRecord("q", "B", ("A", "B"), {"en": [{"A": 0.6, "B": 0.4}], "de": [{"A": 0.1, "B": 0.9}]},
                      {"en": ["A"], "de": ["B"]}, {})
    summary = score([soft], ("en", "de"))
    assert summary["vote_accuracy"] == 1.0  # B: 1.3 vs A: 0.7
    assert summary["accuracy_by_language"] == {"en": 0.0, "de": 1.0}
    assert summary["consistency"] == 0.0


def test_records_round_trip_through_json() -> None:
    assert [ItemRecord.from_json(r.to_json()) for r in RECORDS] == RECORDS
    sourced = ItemRecord("q", "A", ("A", "B"), {"en": [{"A": 1.0}, {}]}, {"en": ["A", None]}, {"en": ["", "?"]},
                         {"en": ["continuation", None]})
    assert ItemRecord.from_json(sourced.to_json()) == sourced
    assert score([sourced], ("en",))["continued_by_language"] == {"en": 0.5}
    cached_before = {key: value for key, value in sourced.to_json().items() if key != "letter_sources"}
    assert ItemRecord.from_json(cached_before).letter_sources == {}  # records cached before sources were kept


def test_the_letter_continuation_is_part_of_the_cot_cache_key_only() -> None:
    cot = EvalConfig(mode="cot").fingerprint()
    assert cot != EvalConfig(mode="cot", continue_letters=False).fingerprint()
    assert cot["letters"] == "text, continued"
    # direct mode never continues: its key is the same either way, and has no new part
    assert EvalConfig().fingerprint() == EvalConfig(continue_letters=False).fingerprint()
    assert "letters" not in EvalConfig().fingerprint()


def test_deltas_and_payload() -> None:
    run = {"label": "adapter", "mean_accuracy": 0.5, "vote_accuracy": None, "consistency": 0.75,
           "top_letter_share": 0.5, "accuracy_by_language": {"en": 0.5}, "parse_rate_by_language": {"en": 1.0}}
    base = {"label": "base", "mean_accuracy": 0.25, "vote_accuracy": 0.5, "consistency": 1.0,
            "top_letter_share": 0.25, "accuracy_by_language": {"en": 0.25}, "parse_rate_by_language": {"en": 0.5}}
    assert deltas(run, base) == {"mean_accuracy": 0.25, "vote_accuracy": None, "consistency": -0.25,
                                 "top_letter_share": 0.25, "accuracy_by_language": {"en": 0.25},
                                 "parse_rate_by_language": {"en": 0.5}}
    assert build_payload(run) is run
    paired = deltas({**run, "per_question": [{"id": "q1", "accuracy": 1.0, "vote": 1.0},
                                             {"id": "q2", "accuracy": 0.0, "vote": 0.0}]},
                    {**base, "per_question": [{"id": "q1", "accuracy": 0.5, "vote": 1.0},
                                              {"id": "q2", "accuracy": 0.0, "vote": 0.0}]})
    assert paired["ci95"]["vote_accuracy"] == [0.0, 0.0]
    assert paired["ci95"]["mean_accuracy"] == pytest.approx([0.25 - 0.49, 0.25 + 0.49], abs=1e-4)
    with pytest.raises(CalmRagError, match="differs in n_questions"):
        build_payload({**run, "n_questions": 3}, {**base, "n_questions": 4})


def test_config_rules(tmp_path) -> None:
    assert EvalConfig().mode == "direct" and EvalConfig().permute is False and EvalConfig().split == "test"
    with pytest.raises(CalmRagError, match="--permute"):
        EvalConfig(samples=3)
    toml = tmp_path / "eval.toml"
    toml.write_text('[eval]\nlanguages = ["en", "de"]\nsplit = "all"\npermute = true\n', encoding="utf-8")
    config = load_eval_config(toml, {"samples": 2})
    assert (config.languages, config.split, config.permute, config.samples) == (("en", "de"), None, True, 2)
    toml.write_text('[eval]\nsplitt = "test"\n', encoding="utf-8")
    with pytest.raises(CalmRagError, match="unknown eval settings"):
        load_eval_config(toml)
