"""Self-translation: cleaning what models wrap around a translation, caching, one batched call per step, the
English pivot, and the fall back when a question comes back answered instead of translated."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.translation import Translator, clean_translation, is_question
from calm_rag.languages import LANGUAGES
from calm_rag.questions import Question, make_choices
from tests.fakes import FakeGenerator


def test_wrappers_are_removed_and_single_lines_stay_single() -> None:
    assert clean_translation('Übersetzung: "Wo ist das?"\nHinweis: wörtlich', "Where is it?") == "Wo ist das?"
    assert clean_translation("翻译：「你好」", "Hello") == "你好"
    assert clean_translation("   ", "Hello") == "Hello"  # nothing usable: keep the original
    assert clean_translation("Zeile eins\nZeile zwei", "line one\nline two") == "Zeile eins\nZeile zwei"


def test_requests_are_cached_and_same_language_is_free() -> None:
    generator = FakeGenerator({})
    translator = Translator(generator)  # type: ignore[arg-type]
    assert translator.translate_many([("Hello", "en", "de"), ("Hello", "en", "en")]) == ["[de] Hello", "Hello"]
    assert translator.translate_many([("Hello", "en", "de")]) == ["[de] Hello"]
    assert generator.generate_calls == [1]  # the repeat and the same-language request cost no generation


def test_questions_and_options_go_out_in_one_call_and_keep_their_labels() -> None:
    generator = FakeGenerator({})
    question = Question("q1", "en", "Where?", make_choices(["bed", "reef"]), "B")
    versions = Translator(generator).translate_questions(question, ["de", "fr"])  # type: ignore[arg-type]
    assert versions["fr"].question == "[fr] Where?" and versions["fr"].answer == "B"
    assert [(c.label, c.text) for c in versions["de"].choices] == [("A", "[de] bed"), ("B", "[de] reef")]
    assert generator.generate_calls == [6]


def test_numbers_dates_and_symbols_are_not_sent_for_translation() -> None:
    generator = FakeGenerator({})
    question = Question("q1", "de", "Wann entdeckte Scheele Sauerstoff?",
                        make_choices(["1773", "1774–1777", "ca. 1780"]))
    versions = Translator(generator).translate_questions(question, ["en", "zh"])  # type: ignore[arg-type]
    assert [c.text for c in versions["zh"].choices] == ["1773", "1774–1777", "[zh] ca. 1780"]
    assert versions["en"].question == "[en] Wann entdeckte Scheele Sauerstoff?"
    # the question and the one option with words into English, then on from English into Chinese
    assert generator.generate_calls == [2, 2]


class Translating(FakeGenerator):
    """Writes `written(text, source, target)` for each translation prompt and keeps every (source, target, text)
    it was asked, one list per call."""

    def __init__(self, written: Callable[[str, str, str], str]) -> None:
        super().__init__({})
        self.written = written
        self.asked: list[list[tuple[str, str, str]]] = []

    def generate(self, prompts: Sequence[str], config: GenerationConfig = GenerationConfig(),
                 progress: Callable[[int], None] | None = None) -> list[str]:
        names = {language.name: code for code, language in LANGUAGES.items()}
        requests = []
        for prompt in prompts:
            head, text = prompt[prompt.rfind("Translate the following "):].removesuffix("\n<assistant>").split("\n\n", 1)
            source, target = head.split()[3], head.split()[6].rstrip(".")
            requests.append((names[source], names[target], text))
        self.asked.append(requests)
        return [self.written(text, source, target) for source, target, text in requests]


def tagged(text: str, source: str, target: str) -> str:
    return f"{target}:{text}"


def test_text_goes_through_english_when_neither_side_is_english() -> None:
    generator = Translating(tagged)
    assert Translator(generator).translate_many([("Wie viele?", "de", "fr")]) == ["fr:en:Wie viele?"]
    assert generator.asked == [[("de", "en", "Wie viele?")], [("en", "fr", "en:Wie viele?")]]
    # English among the targets: its translation is the first step, so the pivot costs no extra request
    generator = Translating(tagged)
    assert Translator(generator).translate_many([("Wie?", "de", "en"), ("Wie?", "de", "zh")]) == [
        "en:Wie?", "zh:en:Wie?"]
    assert generator.asked == [[("de", "en", "Wie?")], [("en", "zh", "en:Wie?")]]
    direct = Translating(tagged)
    assert Translator(direct, pivot=None).translate_many([("Wie viele?", "de", "fr")]) == ["fr:Wie viele?"]
    assert direct.asked == [[("de", "fr", "Wie viele?")]]


def test_a_question_answered_instead_of_translated_falls_back() -> None:
    def answers_into(bad: set[str]) -> Callable[[str, str, str], str]:
        return lambda text, source, target: "In 1914." if target in bad else f"{target}:{text}"

    # the English step answered: the direct translation is asked for, and the English request keeps the original
    generator = Translating(answers_into({"en"}))
    assert Translator(generator).translate_many([("Wann?", "de", "fr"), ("Wann?", "de", "en")]) == [
        "fr:Wann?", "Wann?"]
    assert generator.asked == [[("de", "en", "Wann?")], [("de", "fr", "Wann?")]]
    # the step from English answered: the direct translation; it answered too: the original question
    generator = Translating(answers_into({"fr"}))
    assert Translator(generator).translate_many([("Wann?", "de", "fr")]) == ["Wann?"]
    assert generator.asked == [[("de", "en", "Wann?")], [("en", "fr", "en:Wann?")], [("de", "fr", "Wann?")]]
    # text that was no question is kept as translated, question mark or not
    statement = Translating(answers_into({"fr"}))
    assert Translator(statement).translate_many([("Ein Bett.", "de", "fr")]) == ["In 1914."]
    assert is_question("Wie viele？") and is_question("كم؟ ") and not is_question("Acht.")
