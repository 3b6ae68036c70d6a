from collections import Counter

from calm_rag.generation.translation import Translator
from calm_rag.prompts import mcq_messages
from calm_rag.questions import Question, make_choices
from calm_rag.responses import ChoiceResponse
from calm_rag.voting.choice_pairs import plan_choice_pairs, realize_choice_pairs
from tests.fakes import FakeGenerator

DE = Question("q1", "de", "Woher kamen die Patienten?", make_choices(["Stadt", "Krankenhaus", "Schulen"]))
EN = Question("q1", "en", "Where did the patients come from?", make_choices(["town", "hospital", "schools"]))


def response(question: Question, text: str, letter: str | None, shift: int = 0) -> ChoiceResponse:
    shown, label_map = question.permuted(shift)
    return ChoiceResponse(question.lang, text, letter, shown, label_map, None, tuple(mcq_messages(shown)))


def test_rejected_paired_with_agreeing_response_in_same_language() -> None:
    responses = {
        "de": [response(DE, "Weil Unfälle.\nAntwort: B", "B"), response(DE, "Antwort: A", "A"),
               response(DE, "Antwort: C", "C"), response(DE, "???", None)],
        "en": [response(EN, "Answer: B", "B")],
    }
    plans = plan_choice_pairs("q1", responses, "B")
    assert [(plan.lang, plan.rejected.letter) for plan in plans] == [("de", "A"), ("de", "C")]
    pairs, pending = realize_choice_pairs(plans)
    assert not pending
    assert all(not pair.translated for pair in pairs)
    assert pairs[0].chosen[0]["content"] == "Weil Unfälle.\nAntwort: B) Krankenhaus"
    assert pairs[0].rejected[0]["content"] == "Antwort: A) Stadt"
    record = pairs[0].to_record()
    assert set(record) == {"id", "lang", "majority", "translated", "prompt", "chosen", "rejected"}
    assert record["prompt"][0]["role"] == "user" and record["chosen"][0]["role"] == "assistant"


def test_chosen_uses_the_rejected_prompts_option_order() -> None:
    rotated = response(DE, "Antwort: A", "B", shift=1)  # shown order: Krankenhaus, Schulen, Stadt
    responses = {"de": [rotated, response(DE, "Antwort: C", "C"), response(DE, "Erklärung: X\nAntwort: B", "B")]}
    pairs, _ = realize_choice_pairs(plan_choice_pairs("q1", responses, "C"))
    rotated_pair = pairs[0]
    # majority C (Schulen) sits at shown label B in the rotated prompt; the rejected B (Krankenhaus) at A
    assert rotated_pair.chosen[0]["content"].endswith("Antwort: B) Schulen")
    assert rotated_pair.rejected[0]["content"].endswith("Antwort: A) Krankenhaus")
    assert "A. Krankenhaus" in rotated_pair.prompt[0]["content"]


def test_cross_language_chosen_needs_translation() -> None:
    responses = {"de": [response(DE, "Antwort: A", "A")], "en": [response(EN, "Explanation: Injuries.\nAnswer: B", "B")]}
    plans = plan_choice_pairs("q1", responses, "B")
    assert len(plans) == 1 and plans[0].needs_translation
    pairs, pending = realize_choice_pairs(plans, translate=None)
    assert pairs == [] and pending == plans
    pairs, pending = realize_choice_pairs(plans, translate=Translator(FakeGenerator({})).translate_many)  # type: ignore[arg-type]
    assert not pending and pairs[0].translated
    assert pairs[0].chosen[0]["content"] == "[de] Injuries.\nAntwort: B) Krankenhaus"


def test_direct_mode_never_translates() -> None:
    responses = {"de": [response(DE, "Antwort: A) Stadt", "A")], "en": [response(EN, "Answer: B) hospital", "B")]}
    pairs, pending = realize_choice_pairs(plan_choice_pairs("q1", responses, "B", mode="direct"), mode="direct")
    assert not pending
    assert pairs[0].chosen[0]["content"] == "Antwort: A) Krankenhaus"  # the first pair shows the consensus at A
    assert pairs[0].rejected[0]["content"] == "Antwort: C) Stadt"
    assert "A. Krankenhaus\nB. Schulen\nC. Stadt" in pairs[0].prompt[0]["content"]
    assert not pairs[0].translated


def test_direct_pairs_spread_the_chosen_letter_over_every_position() -> None:
    """However the model's own rotations fell, chosen answers write each letter equally often, so DPO cannot
    learn a letter in place of the option's content."""
    rotations = [response(DE, "", "A", shift) for shift in (0, 0, 1, 2, 0, 1)]  # all rejected "Stadt" (A)
    plans = plan_choice_pairs("q1", {"de": rotations}, "B", mode="direct")
    pairs, _ = realize_choice_pairs(plans, mode="direct")
    chosen = [pair.chosen[0]["content"] for pair in pairs]
    assert chosen == ["Antwort: A) Krankenhaus", "Antwort: B) Krankenhaus", "Antwort: C) Krankenhaus"] * 2
    assert all(pair.rejected[0]["content"].endswith(") Stadt") for pair in pairs)
    for pair in pairs:  # the letter written is the one the pair's own prompt shows for that option
        for line in (pair.chosen[0]["content"], pair.rejected[0]["content"]):
            letter, text = line.removeprefix("Antwort: ").split(") ")
            assert f"{letter}. {text}" in pair.prompt[0]["content"]


def test_unanimous_question_yields_no_pairs() -> None:
    responses = {"de": [response(DE, "Antwort: B", "B")], "en": [response(EN, "Answer: B", "B")]}
    assert plan_choice_pairs("q1", responses, "B") == []


def test_direct_pairs_balance_the_rejected_letters_too() -> None:
    """The rejected letter is the chosen one moved by the pair's offset, which no rotation changes; taking turns
    per offset makes both sides uniform, where one turn for all pairs left the rejected side skewed."""
    wrong = {"A": response(DE, "", "A"), "C": response(DE, "", "C")}  # consensus B: A is 2 places on, C 1
    plans = plan_choice_pairs("q1", {"de": [wrong[letter] for letter in "AACAACAAC"]}, "B", mode="direct")
    pairs, _ = realize_choice_pairs(plans, mode="direct")

    def letters(side: str) -> Counter[str]:
        return Counter(getattr(pair, side)[0]["content"].removeprefix("Antwort: ")[0] for pair in pairs)

    assert letters("chosen") == letters("rejected") == {"A": 3, "B": 3, "C": 3}
    assert all(pair.chosen[0]["content"].endswith(") Krankenhaus") for pair in pairs)
