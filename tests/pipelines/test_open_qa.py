"""The open-question path: prompts, span extraction, batched sampling, the answer in the user's
language, abstention, the open-question dataset loader, and one run on the tiny random LM."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from calm_rag.data.open import is_open_dataset, load_open_dataset
from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig, Generator
from calm_rag.generation.translation import Translator
from calm_rag.languages import LANGUAGES
from calm_rag.pipelines.open_qa import OpenConfig, OpenQA, OpenRequest
from calm_rag.prompts import Passage, format_passages, open_messages
from calm_rag.voting.spans import split_response
from tests.fakes import ScriptedGenerator, concept_encoder


def make_qa(script: dict[str, list[str]], encode: Callable[[list[str]], np.ndarray] | None = None,
            languages: tuple[str, ...] = ("en", "zh")) -> tuple[OpenQA, ScriptedGenerator]:
    generator = ScriptedGenerator(script)
    config = OpenConfig(languages=languages, samples=2)
    return OpenQA(generator, encode or concept_encoder({}), config), generator  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "lang", "span"), [
    ("The tower was built in 1889 and is tall.\n**Answer:** 330 m", "en", "330 m"),
    ("埃菲尔铁塔高约330米。\n**答案**：330米", "zh", "330米"),
    ("Erklärung: Der Turm ist hoch.\nAntwort: „330 Meter“.", "de", "330 Meter"),
    ("La tour mesure 330 m.\nRéponse : « 330 mètres »", "fr", "330 mètres"),
    ("東京タワーではなく…\n答え：「東京スカイツリー」。", "ja", "東京スカイツリー"),
    ("Antwort:\n\n- Berlin\n", "de", "Berlin"),
    ("The answer is Paris.", "en", "Paris"),
    ("The answer isn't obvious.\nParis", "en", "Paris"),
    ("答案是巴黎。", "zh", "巴黎"),
    ("Risposta: 'Roma'", "it", "Roma"),
    ("Ответ: Москва", "ru", "Москва"),
    ("Answer: -40 °C", "en", "-40 °C"),
    ("Paris", "en", "Paris"),
    ("Some thought.\nAnswer: ...", "en", None),
    ("Answer:   ", "en", None),
    ("   ", "en", None),
])
def test_span_extraction(text: str, lang: str, span: str | None) -> None:
    assert split_response(text, lang)[1] == span


def test_explanation_is_split_from_the_answer_line() -> None:
    assert split_response("Erklärung: Weil es so ist.\nAntwort: Berlin", "de") == ("Weil es so ist.", "Berlin",
                                                                                   "answer_line")
    assert split_response("Line one.\nBerlin", "de") == ("Line one.", "Berlin", "last_line")


def test_prompt_carries_instruction_passages_and_question() -> None:
    passages = [Passage("The tower is 330 m tall.", "eiffel.txt", "en")]
    content = open_messages("Wie hoch ist der Eiffelturm?", "de", passages)[0]["content"]
    assert content.startswith(LANGUAGES["de"].open_instruction)
    assert format_passages(passages, "de") in content and content.endswith("Frage: Wie hoch ist der Eiffelturm?")


def test_consensus_answered_by_a_member_in_the_users_language() -> None:
    qa, generator = make_qa({
        "en": ["The tower is tall.\nAnswer: 330 m", "Answer: **330 m**"],
        "zh": ["答案：330米", "答案：300英尺"],
        "de": ["Antwort: 330 Meter", "Erklärung: Hoch.\nAntwort: „330 Meter“."]})
    passages = [Passage("The Eiffel Tower is 330 m tall.", "wiki", "en")]
    answer = qa.ask("Wie hoch ist der Eiffelturm?", "de", passages)
    assert answer.answer == "330 Meter" and not answer.answer_translated and not answer.abstained
    assert answer.languages == ["en", "zh", "de"] and answer.consistency == 1.0
    assert answer.spans == {"en": ["330 m", "330 m"], "zh": ["330米", "300英尺"], "de": ["330 Meter", "330 Meter"]}
    assert answer.clusters[0]["support"] == {"samples": round(5 / 6, 4), "languages": 1.0}
    assert answer.clusters[1]["members"] == [{"lang": "zh", "text": "300英尺"}]
    assert answer.translations["zh"] == "[zh] Wie hoch ist der Eiffelturm?"
    # de -> en, then en -> zh (through English), one sampling call, then the 3 distinct zh/de spans into English
    assert [len(call) for call in generator.calls] == [1, 1, 6, 3]
    assert answer.span_glosses == {"en": [None, None], "zh": ["[en] 330米", "[en] 300英尺"],
                                   "de": ["[en] 330 Meter", "[en] 330 Meter"]}
    assert all(format_passages(passages, lang) in prompt for prompt, lang
               in zip(generator.calls[2], ["en", "en", "zh", "zh", "de", "de"]))
    json.dumps(answer.to_dict(), ensure_ascii=False)


def test_representative_is_translated_when_the_users_language_disagrees() -> None:
    encode = concept_encoder({"Paris": 0, "巴黎": 0})
    qa, _ = make_qa({"en": ["Answer: Paris"], "zh": ["答案：巴黎"], "de": ["Antwort: Berlin", "Antwort: ..."]}, encode)
    answer = qa.ask("Was ist die Hauptstadt Frankreichs?", "de")
    assert answer.answer == "[de] Paris" and answer.answer_translated
    assert "translated from en" in answer.message and answer.language_majorities == {"en": 0, "zh": 0, "de": 1}
    assert answer.consistency == pytest.approx(1 / 3)


def test_abstains_when_no_language_states_an_answer() -> None:
    qa, _ = make_qa({"en": ["Answer: ..."], "zh": ["答案：……"]})
    answer = qa.ask("What is it?", "en")
    assert answer.abstained and answer.answer is None and answer.clusters == []
    assert answer.consistency is None and "no sample" in answer.message


def test_batch_samples_every_question_in_one_call() -> None:
    qa, generator = make_qa({"en": ["Answer: 42"], "zh": ["答案：42"], "ja": ["答え：42"]})
    answers = qa.ask_batch([OpenRequest("What is six times seven?", "en"), OpenRequest("六かける七は？", "ja")])
    assert [a.answer for a in answers] == ["42", "42"] and answers[1].languages == ["en", "zh", "ja"]
    # en -> zh and ja -> en; then the Japanese question on from English into Chinese; then one sampling call
    assert [len(call) for call in generator.calls] == [2, 1, 10]
    with pytest.raises(CalmRagError):
        qa.ask("  ", "en")


def test_open_dataset_loader(tmp_path: Path) -> None:
    rows = {"en": [("x1", "How tall?", "330 m")], "zh": [("x1", "多高？", "330米")]}
    for lang, items in rows.items():
        (tmp_path / f"{lang}.jsonl").write_text("\n".join(json.dumps(
            {"id": i, "lang": lang, "question": q, "answer": a}, ensure_ascii=False) for i, q, a in items), "utf-8")
    [question] = load_open_dataset(tmp_path, ["en", "zh"])
    assert question.is_open and question.answer == "330 m" and question.versions["zh"].answer == "330米"
    with pytest.raises(CalmRagError):
        load_open_dataset(tmp_path, ["en", "de"])


def write_open_files(folder: Path, rows: dict[str, list[dict[str, str]]]) -> Path:
    """One `<lang>.jsonl` per language from `rows` (language -> records without `lang`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for lang, records in rows.items():
        (folder / f"{lang}.jsonl").write_text("".join(json.dumps({**record, "lang": lang}, ensure_ascii=False) + "\n"
                                                      for record in records), "utf-8")
    return folder


SPLIT_ROWS = {
    "en": [{"id": "a", "split": "train", "question": "Capital of France?", "answer": "Paris"},
           {"id": "b", "split": "test", "question": "How tall?", "answer": "330 m"},
           {"id": "c", "split": "test", "question": "Who wrote Faust?", "answer": "Goethe"}],
    "de": [{"id": "a", "split": "train", "question": "Hauptstadt Frankreichs?", "answer": "Paris"},
           {"id": "b", "split": "test", "question": "Wie hoch?", "answer": "330 Meter"},
           {"id": "c", "split": "test", "question": "Wer schrieb Faust?", "answer": "Goethe"}],
}


def test_open_dataset_splits_and_limit(tmp_path: Path) -> None:
    folder = write_open_files(tmp_path / "open", SPLIT_ROWS)
    assert [q.id for q in load_open_dataset(folder, ["en", "de"])] == ["a", "b", "c"]
    test = load_open_dataset(folder, ["de", "en"], split="test")
    assert [q.id for q in test] == ["b", "c"] and test[0].source_lang == "de" and test[0].answer == "330 Meter"
    assert {lang: v.answer for lang, v in test[0].versions.items()} == {"de": "330 Meter", "en": "330 m"}
    assert [q.id for q in load_open_dataset(folder, ["en"], split="test", limit=1)] == ["b"]


@pytest.mark.parametrize(("change", "kwargs", "message"), [
    (None, {"split": "dev"}, "unknown split 'dev' in .*; available: test, train"),
    (None, {"limit": 0}, "--limit must be a positive integer"),
    (None, {"languages": ["en", "zh"]}, "has no zh file; it has: de, en"),
    ({"de": SPLIT_ROWS["de"][:2]}, {}, "not parallel, line counts differ: en=3, de=2"),
    ({"de": [*SPLIT_ROWS["de"][:2], {**SPLIT_ROWS["de"][2], "id": "x"}]}, {}, r"not parallel at de.jsonl line 3"),
    ({"de": [*SPLIT_ROWS["de"][:2], {**SPLIT_ROWS["de"][2], "answer": "A", "choices": [{"label": "A", "text": "Goethe"},
                                                                       {"label": "B", "text": "Schiller"}]}]}, {},
     r"not parallel at de.jsonl line 3: 2 choices \(AB\) where en.jsonl line 3 has no choices"),
    ({"en": [], "de": []}, {}, r"no questions selected from .* \(split=None, languages=en,de\)"),
])
def test_open_dataset_errors(tmp_path: Path, change: dict[str, list[dict[str, str]]] | None,
                             kwargs: dict[str, object], message: str) -> None:
    folder = write_open_files(tmp_path / "open", {**SPLIT_ROWS, **(change or {})})
    arguments: dict[str, object] = {"languages": ["en", "de"], **kwargs}
    with pytest.raises(CalmRagError, match=message):
        load_open_dataset(folder, **arguments)  # type: ignore[arg-type]


def xquad_row(squad_id: str, lang: str, question: str, answer: str) -> str:
    return json.dumps({"qid": f"{lang}|{squad_id}", "lang": lang, "squad_id": squad_id, "para_id": "0|0",
                       "question": question, "answer": answer}, ensure_ascii=False)


XQUAD_ROWS = [
    xquad_row("s2", "de", "Wie viele Punkte?", "308"), xquad_row("s1", "de", "Wer gewann?", "Denver Broncos"),
    xquad_row("s3", "de", "Wo?", "Santa Clara"),
    xquad_row("s1", "en", "Who won?", "Denver Broncos"), xquad_row("s2", "en", "How many points?", "308"),
    xquad_row("s3", "en", "Where?", "Santa Clara"),
    xquad_row("s1", "zh", "谁赢了？", "丹佛野马队"), xquad_row("s2", "zh", "多少分？", "308"),  # s3: no zh version
]


def test_xquad_r_layout_groups_rows_by_squad_id(tmp_path: Path) -> None:
    (tmp_path / "queries.jsonl").write_text("\n".join(XQUAD_ROWS) + "\n", "utf-8")
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"doc_id": "d", "lang": "en", "text": "x"}) + "\n", "utf-8")
    questions = load_open_dataset(tmp_path, ["en", "de"])
    assert [q.id for q in questions] == ["s2", "s1", "s3"]  # order of first appearance
    assert questions[1].source_lang == "en" and questions[1].answer == "Denver Broncos" and questions[1].is_open
    assert questions[1].versions["de"].question == "Wer gewann?" and list(questions[1].versions) == ["en", "de"]
    with_zh = load_open_dataset(tmp_path, ["zh", "en"], limit=1)
    assert [q.id for q in with_zh] == ["s2"]  # the file's order, not that of the languages asked for
    assert [q.id for q in load_open_dataset(tmp_path, ["zh", "en"])] == ["s2", "s1"]  # s3 lacks zh
    assert load_open_dataset(tmp_path, ["zh"])[1].versions["zh"].answer == "丹佛野马队"
    assert is_open_dataset(tmp_path)


@pytest.mark.parametrize(("rows", "kwargs", "message"), [
    (XQUAD_ROWS, {"languages": ["en", "fr"]}, "queries.jsonl has no fr questions; it has: de, en, zh"),
    (XQUAD_ROWS, {"split": "test"}, "unknown split 'test' in .*; available: none"),
    ([*XQUAD_ROWS, xquad_row("s1", "en", "Again?", "x")], {}, r"queries.jsonl:9: a second en question for squad_id s1"),
    ([*XQUAD_ROWS, json.dumps({"lang": "en", "question": "q"})], {}, r"queries.jsonl:9: .*'squad_id'"),
    ([*XQUAD_ROWS, json.dumps({"lang": "en", "squad_id": "s9", "question": " "})], {},
     r"queries.jsonl:9: missing or empty field 'question'"),
])
def test_xquad_r_layout_errors(tmp_path: Path, rows: list[str], kwargs: dict[str, object], message: str) -> None:
    (tmp_path / "queries.jsonl").write_text("\n".join(rows) + "\n", "utf-8")
    arguments: dict[str, object] = {"languages": ["en", "de"], **kwargs}
    with pytest.raises(CalmRagError, match=message):
        load_open_dataset(tmp_path, **arguments)  # type: ignore[arg-type]


def test_is_open_dataset_routes_by_the_first_record(tmp_path: Path) -> None:
    open_folder = write_open_files(tmp_path / "open", SPLIT_ROWS)
    choices = [{"label": "A", "text": "Paris"}, {"label": "B", "text": "Rom"}]
    choice_folder = write_open_files(tmp_path / "mc", {
        lang: [{**row, "choices": choices, "answer": "A"} for row in rows] for lang, rows in SPLIT_ROWS.items()})
    assert is_open_dataset(open_folder) and not is_open_dataset(choice_folder)
    assert not is_open_dataset(tmp_path)  # no language files: the multiple-choice loader explains what is missing
    with pytest.raises(CalmRagError, match="does not exist"):
        is_open_dataset(tmp_path / "missing")


def test_end_to_end_with_the_tiny_random_lm(tiny_generator: Generator) -> None:
    config = OpenConfig(languages=("en", "de"), samples=2, generation=GenerationConfig(max_new_tokens=8))
    translator = Translator(tiny_generator, GenerationConfig(temperature=0.0, max_new_tokens=8))
    qa = OpenQA(tiny_generator, concept_encoder({}), config, translator)
    answer = qa.ask("How tall is the Eiffel Tower?", "en").to_dict()
    json.dumps(answer, ensure_ascii=False)
    assert answer["languages"] == ["en", "de"] and answer["abstained"] == (answer["answer"] is None)
    assert set(answer["spans"]) == {"en", "de"} and all(len(spans) == 2 for spans in answer["spans"].values())
    assert sum(len(c["members"]) for c in answer["clusters"]) == sum(s is not None for v in answer["spans"].values()
                                                                     for s in v)
    assert answer["model"] and answer["elapsed_s"] >= 0


def test_the_answer_reports_each_spans_source_and_cluster() -> None:
    qa, _ = make_qa({"en": ["Answer: 330 m", "The tower is very tall, taller than anything around it."],
                     "zh": ["答案：330米", "答案：330米"]})
    qa.generator.continuations = {"en": " 330 m"}
    answer = qa.ask("How tall is the Eiffel Tower?", "en")
    assert answer.span_sources == {"en": ["answer_line", "continuation"], "zh": ["answer_line", "answer_line"]}
    assert answer.spans["en"] == ["330 m", "330 m"] and answer.span_clusters == {"en": [0, 0], "zh": [0, 0]}
    assert answer.to_dict()["span_sources"]["en"][1] == "continuation"


@pytest.mark.parametrize("gloss", [True, False])
def test_spans_are_compared_in_english_too(gloss: bool) -> None:
    """The glosses come from the generator (one batched call) and reach the clustering; off, the same spans
    stay apart."""
    encode = concept_encoder({"The Nile": 0, "[en] 尼罗河": 0, "[en] Le Nil": 0})
    generator = ScriptedGenerator({"en": ["Answer: The Nile"], "zh": ["答案：尼罗河"], "fr": ["Réponse : Le Nil"]})
    config = OpenConfig(languages=("en", "zh", "fr"), samples=1, gloss_spans=gloss)
    answer = OpenQA(generator, encode, config).ask("Quel est le plus long fleuve d'Afrique ?", "fr")  # type: ignore[arg-type]
    if gloss:
        assert answer.span_glosses == {"en": [None], "zh": ["[en] 尼罗河"], "fr": ["[en] Le Nil"]}
        assert answer.consistency == 1.0 and answer.answer == "Le Nil" and len(answer.clusters) == 1
    else:
        assert answer.span_glosses == {"en": [None], "zh": [None], "fr": [None]}
        assert answer.consistency == 0.0 and len(answer.clusters) == 3
    assert len(generator.calls) == (4 if gloss else 3)  # translation (2 steps), sampling, glosses
