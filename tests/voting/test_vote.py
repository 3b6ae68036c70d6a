import pytest

from calm_rag.voting.vote import cross_lingual_vote, language_majority, mean_consistency, pairwise_consistency

LABELS = ("A", "B", "C", "D", "E")


def hard(*letters: str | None) -> list[dict[str, float]]:
    return [{letter: 1.0} if letter else {} for letter in letters]


def test_majority_over_all_samples_of_all_languages() -> None:
    result = cross_lingual_vote({"en": hard("C", "C", "A"), "de": hard("A", "A", "A"), "zh": hard("C", "C", None)},
                                LABELS)
    assert result.winner == "C"  # C: 4 votes, A: 4 votes -> tie on votes; C leads 2 languages to 1
    assert result.tied
    assert result.distribution == {"C": 0.5, "A": 0.5}
    assert result.language_majorities == {"en": "C", "de": "A", "zh": "C"}
    assert result.parsed == {"en": 3, "de": 3, "zh": 2}


def test_plain_majority_without_tie() -> None:
    result = cross_lingual_vote({"en": hard("B", "B"), "de": hard("B", "D"), "fr": hard("D", None)}, LABELS)
    assert result.winner == "B"
    assert not result.tied
    assert result.distribution["B"] == pytest.approx(0.6)
    assert result.support == pytest.approx(0.6)


def test_tie_break_falls_back_to_label_order() -> None:
    result = cross_lingual_vote({"en": hard("D"), "de": hard("B")}, LABELS)
    assert result.winner == "B"
    assert result.tied


def test_balanced_vote_gives_each_language_one_vote() -> None:
    ballots = {"en": hard("A", "A", "A", "A"), "de": hard("B"), "zh": hard("B")}
    assert cross_lingual_vote(ballots, LABELS).winner == "A"
    assert cross_lingual_vote(ballots, LABELS, balanced=True).winner == "B"


def test_soft_ballots_add_up() -> None:
    ballots = {"en": [{"A": 0.6, "B": 0.4}], "de": [{"A": 0.2, "B": 0.8}]}
    result = cross_lingual_vote(ballots, ("A", "B"))
    assert result.winner == "B"
    assert result.distribution == pytest.approx({"B": 0.6, "A": 0.4})


def test_abstains_when_nothing_parsed() -> None:
    result = cross_lingual_vote({"en": hard(None, None), "de": hard(None)}, LABELS)
    assert result.winner is None
    assert result.distribution == {}
    assert result.consistency is None
    assert result.support == 0.0


def test_language_majority() -> None:
    assert language_majority(hard("C", "A", "C"), LABELS) == "C"
    assert language_majority(hard(None), LABELS) is None
    assert language_majority(hard("E", "B"), LABELS) == "B"


def test_pairwise_consistency_skips_unparsed_languages() -> None:
    # en=C, de=C, zh=A, fr unparsed: pairs (en,de) agree, (en,zh), (de,zh) do not -> 1/3
    assert pairwise_consistency({"en": "C", "de": "C", "zh": "A", "fr": None}) == pytest.approx(1 / 3)
    assert pairwise_consistency({"en": "C", "de": None}) is None
    assert pairwise_consistency({"en": "B", "de": "B", "ja": "B"}) == 1.0


def test_mean_consistency_over_defined_questions() -> None:
    assert mean_consistency([1.0, None, 0.5]) == pytest.approx(0.75)
    assert mean_consistency([None]) is None
