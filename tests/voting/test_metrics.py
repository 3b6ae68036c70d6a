"""Dataset metrics: vote accuracy, each language's own accuracy, parse rates, consistency, abstentions."""

from __future__ import annotations

import pytest

from calm_rag.voting import QuestionOutcome, cross_lingual_vote, summarize


def outcome(question_id: str, gold: str | None, ballots: dict[str, list[str | None]]) -> QuestionOutcome:
    vote = cross_lingual_vote({lang: [{letter: 1.0} if letter else {} for letter in letters]
                               for lang, letters in ballots.items()}, "ABC")
    return QuestionOutcome(question_id, gold, vote, {lang: len(letters) for lang, letters in ballots.items()})


def test_summary_of_three_questions() -> None:
    outcomes = [outcome("q1", "A", {"en": ["A", "A"], "de": ["B", None]}),   # vote A (2 of 3), de says B
                outcome("q2", "C", {"en": ["C", "C"], "de": ["C", "C"]}),    # unanimous, right
                outcome("q3", None, {"en": [None, None], "de": [None, None]})]  # nothing parsed, no gold
    report = summarize(outcomes, ["en", "de"])
    assert report["questions"] == 3 and report["graded"] == 2
    assert report["vote_accuracy"] == 1.0
    assert report["accuracy_by_language"] == {"en": 1.0, "de": 0.5}
    assert report["mean_accuracy"] == 0.75
    assert report["parse_rate_by_language"] == {"en": 4 / 6, "de": 3 / 6}
    assert report["consistency"] == pytest.approx(0.5)  # q1 disagrees (0), q2 agrees (1), q3 has no pair
    assert report["abstained"] == 1 and report["consensus_letters"] == {"A": 1, "C": 1}


def test_no_gold_means_no_accuracy_rather_than_zero() -> None:
    report = summarize([outcome("q", None, {"en": ["A"]})], ["en"])
    assert report["vote_accuracy"] is None and report["accuracy_by_language"] == {"en": None}
    assert report["mean_accuracy"] is None
