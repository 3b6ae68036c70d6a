import pytest

from calm_rag.errors import CalmRagError
from calm_rag.pipelines.qa import CalmQA, QAConfig, QuestionRequest
from calm_rag.pipelines.runnable import CalmQARunnable
from tests.fakes import FakeGenerator, ScriptedChoiceGenerator, concept_encoder

CHOICES = ["Blumenbeet", "Florida Keys", "Gezeitenbecken", "Korallenmeer", "Aquarium"]
QUESTION = "Wo im Osten der USA findet man eine Anemone?"


def make_qa(knowledge: dict[str, str], **config: object) -> tuple[CalmQA, FakeGenerator]:
    generator = FakeGenerator(knowledge)
    defaults = {"languages": ("en", "zh", "de"), "samples": 2}
    return CalmQA(generator, QAConfig(**(defaults | config))), generator  # type: ignore[arg-type]


def test_consensus_from_other_languages_with_translated_explanation() -> None:
    # German samples answer nothing parseable; English and Chinese (self-translated) pick "Gezeitenbecken"
    qa, _ = make_qa({"en": "[en] Gezeitenbecken", "zh": "[zh] Gezeitenbecken"})
    answer = qa.ask(QUESTION, "de", CHOICES)
    assert answer.answer == "C" and answer.answer_text == "Gezeitenbecken"
    assert answer.votes == {"en": ["C", "C"], "zh": ["C", "C"], "de": [None, None]}
    assert answer.language_majorities == {"en": "C", "zh": "C", "de": None}
    assert answer.consistency == 1.0
    assert answer.distribution == {"C": 1.0}
    assert answer.translations["en"] == f"[en] {QUESTION}"
    assert answer.explanation.startswith("[de] ")  # translated into the user's language
    assert answer.languages == ["en", "zh", "de"]


def test_explanation_from_own_language_when_it_agrees() -> None:
    qa, _ = make_qa({"de": "Gezeitenbecken", "en": "[en] Korallenmeer"}, languages=("en", "de"), samples=3)
    answer = qa.ask(QUESTION, "de", CHOICES)
    # 3 German votes for C against 3 English votes for D: tie on votes and languages -> earlier label C
    assert answer.answer == "C" and "tie" in answer.message
    assert answer.explanation == "Weil Gezeitenbecken."


def test_user_language_is_always_sampled() -> None:
    qa, _ = make_qa({"ko": "Gezeitenbecken"}, languages=("en", "zh"))
    answer = qa.ask(QUESTION, "de", CHOICES)
    assert answer.languages == ["en", "zh", "de"]


def test_abstains_when_nothing_parses() -> None:
    qa, _ = make_qa({})
    answer = qa.ask(QUESTION, "de", CHOICES)
    assert answer.abstained and answer.answer is None and "abstain" in answer.message


def test_ask_batch_batches_across_questions() -> None:
    qa, generator = make_qa({"en": "[en] Gezeitenbecken", "de": "Blumenbeet"})
    requests = [QuestionRequest(QUESTION, "de", CHOICES), QuestionRequest("Zweite Frage?", "de", CHOICES)]
    generator.generate_calls.clear()
    answers = qa.ask_batch(requests)
    assert len(answers) == 2
    # 2 questions + 5 shared options (translated once, cached): into English, then on from English into Chinese
    assert generator.generate_calls[:2] == [2 + 5, 2 + 5]
    assert 2 * 3 * 2 in generator.generate_calls  # one sampling call: 2 questions x 3 languages x 2 samples


@pytest.mark.parametrize("continue_letters", [True, False])
def test_a_language_without_an_answer_line_still_votes_and_says_where_its_letter_came_from(
        continue_letters: bool) -> None:
    own_words = "Anemonen leben im Wasser, das bei Ebbe in Becken"
    generator = ScriptedChoiceGenerator({"en": ["Answer: C"], "de": [own_words]},
                                        continuations={"de": "Gezeitenbecken"})
    qa = CalmQA(generator, QAConfig(languages=("en", "de"), samples=1, permute=False,  # type: ignore[arg-type]
                                    continue_letters=continue_letters))
    answer = qa.ask(QUESTION, "de", CHOICES).to_dict()
    if continue_letters:
        assert answer["votes"] == {"en": ["C"], "de": ["C"]} and answer["consistency"] == 1.0
        assert answer["letter_sources"] == {"en": ["text"], "de": ["continuation"]}
        assert answer["explanation"] == own_words  # the German sample's own words, not translated
    else:
        assert answer["votes"] == {"en": ["C"], "de": [None]} and generator.scored == []
        assert answer["letter_sources"] == {"en": ["text"], "de": [None]}


@pytest.mark.parametrize(("question", "lang", "choices", "message"), [
    ("", "de", CHOICES, "empty"),
    ("Frage?", "xx", CHOICES, "unknown language code 'xx'"),
    ("Frage?", "de", ["nur eine"], "at least 2 choices"),
])
def test_bad_requests(question: str, lang: str, choices: list[str], message: str) -> None:
    qa, _ = make_qa({})
    with pytest.raises(CalmRagError, match=message):
        qa.ask(question, lang, choices)


def test_langchain_runnable_invoke_and_batch() -> None:
    qa, _ = make_qa({"en": "[en] Gezeitenbecken"})
    runnable = CalmQARunnable(qa)
    answer = runnable.invoke({"question": QUESTION, "lang": "de", "choices": CHOICES})
    assert answer.answer == "C"
    answers = runnable.batch([{"question": QUESTION, "lang": "de", "choices": CHOICES}] * 2)
    assert [a.answer for a in answers] == ["C", "C"]
    chained = runnable | (lambda a: a.answer_text)
    assert chained.invoke({"question": QUESTION, "lang": "de", "choices": CHOICES}) == "Gezeitenbecken"


def test_open_question_is_answered_by_semantic_voting() -> None:
    generator = FakeGenerator({"en": "330 m", "zh": "330米", "de": "300 Fuß"})
    qa = CalmQA(generator, QAConfig(languages=("en", "zh", "de"), samples=2),  # type: ignore[arg-type]
                encode=concept_encoder({}))
    answer = qa.ask_open("Wie hoch ist der Eiffelturm?", "de")
    # "330 m" and "330米" agree by their numbers; the German "300 Fuß" is another cluster
    assert answer.answer == "[de] 330 m" or answer.answer == "[de] 330米"
    assert answer.clusters[0]["support"]["languages"] == pytest.approx(2 / 3, abs=1e-3)
    assert {m["lang"] for m in answer.clusters[0]["members"]} == {"en", "zh"}
    assert answer.consistency == pytest.approx(1 / 3, abs=1e-3)
    assert answer.sources == []


def test_runnable_routes_open_and_multiple_choice_questions() -> None:
    generator = FakeGenerator({"en": "[en] Gezeitenbecken"})
    qa = CalmQA(generator, QAConfig(languages=("en", "de"), samples=1), encode=concept_encoder({}))  # type: ignore[arg-type]
    closed, opened = CalmQARunnable(qa).batch([{"question": QUESTION, "lang": "de", "choices": CHOICES},
                                               {"question": "Wie hoch?", "lang": "de"}])
    assert closed.answer == "C"
    assert hasattr(opened, "clusters")
