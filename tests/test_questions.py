"""Questions: user choices, option rotation (the letter-bias cancellation) and the record format."""

from __future__ import annotations

import pytest

from calm_rag.errors import CalmRagError
from calm_rag.questions import Choice, ParallelQuestion, Question, make_choices

QUESTION = Question("q1", "en", "Where?", make_choices(["bed", "reef", "pool", "sea"]), "B")


def test_user_choices_are_labelled_in_order_and_checked() -> None:
    assert make_choices([" a ", "b"]) == (Choice("A", "a"), Choice("B", "b"))
    for texts, message in ((["only"], "at least 2 choices"), (["a", " "], "a choice is empty"),
                           (["a", "b", "a"], "the same choice is given twice: a"),
                           ([str(n) for n in range(11)], "at most 10 choices")):
        with pytest.raises(CalmRagError, match=message):
            make_choices(texts)


def test_rotation_puts_every_option_in_every_position_and_maps_back() -> None:
    positions: dict[str, set[str]] = {text: set() for text in ("bed", "reef", "pool", "sea")}
    for shift in range(4):
        shown, label_map = QUESTION.permuted(shift)
        assert shown.labels == ("A", "B", "C", "D")
        assert shown.answer == ("B" if shift == 0 else None)  # a rotated view hides the gold letter
        for choice in shown.choices:
            positions[choice.text].add(choice.label)
            assert QUESTION.choice_text(label_map[choice.label]) == choice.text
    assert all(labels == {"A", "B", "C", "D"} for labels in positions.values())
    assert QUESTION.permuted(4) == (QUESTION, {label: label for label in "ABCD"})


def test_records_round_trip_and_bad_records_name_their_line() -> None:
    assert Question.from_record(QUESTION.to_record()) == QUESTION
    with pytest.raises(CalmRagError, match="data.jsonl:3: missing or empty field 'question'"):
        Question.from_record({"id": "x", "lang": "en", "question": " "}, where="data.jsonl:3")
    with pytest.raises(CalmRagError, match="choice 2 is not a"):
        Question.from_record({"id": "x", "lang": "en", "question": "?", "choices": [{"text": "a"}, "b"]})


def test_a_parallel_question_knows_its_kind_from_the_asked_version() -> None:
    open_version = Question("q2", "de", "Wie hoch?")
    assert ParallelQuestion("q2", {"de": open_version}, "de").is_open
    assert not ParallelQuestion("q1", {"en": QUESTION}, "en").is_open
    assert ParallelQuestion("q1", {"en": QUESTION}, "en").labels == ("A", "B", "C", "D")
