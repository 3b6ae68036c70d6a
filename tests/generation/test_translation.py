"""Self-translation: cleaning what models wrap around a translation, caching, and one batched call."""

from __future__ import annotations

from calm_rag.generation.translation import Translator, clean_translation
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
    assert generator.generate_calls == [4]  # each language: the question and the one option with words
