import pytest

from calm_rag.questions import make_choices
from calm_rag.voting.extraction import extract_letter, split_explanation

CHOICES = {
    "en": ["town", "michigan", "hospital", "schools", "office building"],
    "de": ["Stadt", "michigan", "Krankenhaus", "Schulen", "Bürogebäude"],
    "zh": ["镇", "密歇根州", "医院", "学生", "办公大楼"],
    "fr": ["ville", "michigan", "hôpital", "écoles", "immeuble de bureaux"],
    "it": ["città", "michigan", "ospedale", "scuole", "edificio per uffici"],
    "ja": ["町", "ミシガン", "病院", "学校", "オフィスビル"],
}

CASES = [
    ("en", "Patients with mouth injuries come from hospitals.\nAnswer: C", "C"),
    ("en", "**Answer:** (C)", "C"),
    ("en", "The answer is C.", "C"),
    ("en", "C) hospital", "C"),
    ("en", "hospital", "C"),
    ("en", "Answer: B\nWait, that is wrong. Answer: C", "C"),
    ("en", "A dentist would see such patients.", None),
    ("en", "I cannot tell.", None),
    ("en", "Answer: Both options could work", None),
    ("de", "Erklärung: Solche Verletzungen behandelt man im Krankenhaus.\nAntwort: C", "C"),
    ("de", "Antwort: C) Krankenhaus", "C"),
    ("de", "**Antwort: C**", "C"),
    ("de", "Die richtige Antwort ist (C).", "C"),
    ("de", "Antwort: Krankenhaus", "C"),
    ("de", "Antwort: A\nKorrektur – Antwort: E", "E"),
    ("zh", "解释：口腔外伤患者通常来自医院。\n答案：C", "C"),
    ("zh", "答案：（Ｃ）", "C"),
    ("zh", "答案是C。", "C"),
    ("zh", "正确答案：医院", "C"),
    ("zh", "我不知道。", None),
    ("fr", "Explication : ...\nRéponse : C", "C"),
    ("fr", "La réponse est C) hôpital", "C"),
    ("fr", "Réponse : hôpital", "C"),
    ("it", "Spiegazione: ...\nRisposta: C", "C"),
    ("it", "Risposta: (c)", "C"),
    ("it", "C. ospedale", "C"),
    ("ja", "説明：口のけがは病院で治療されます。\n答え：C", "C"),
    ("ja", "正解は C です", "C"),
    ("ja", "答え：病院", "C"),
    ("ja", "病院", "C"),
]


@pytest.mark.parametrize(("lang", "text", "expected"), CASES)
def test_extracts_the_stated_answer(lang: str, text: str, expected: str | None) -> None:
    assert extract_letter(text, lang, make_choices(CHOICES[lang])) == expected


def test_letter_outside_the_options_is_not_an_answer() -> None:
    assert extract_letter("Answer: F", "en", make_choices(["a", "b", "c"])) is None


def test_longer_option_shadows_its_substring() -> None:
    choices = make_choices(["Stadt", "Großstadt"])
    assert extract_letter("Großstadt", "de", choices) == "B"


def test_split_explanation_drops_label_and_answer_line() -> None:
    assert split_explanation("Erklärung: Weil es so ist.\nAntwort: C", "de") == "Weil es so ist."
    assert split_explanation("解释：因为医院。\n答案：C", "zh") == "因为医院。"


def test_markdown_heading_is_dropped_but_hash_in_an_option_is_kept() -> None:
    choices = make_choices(["C#", "Java"])
    assert extract_letter("### Answer: B", "en", choices) == "B"
    assert extract_letter("C#", "en", choices) == "A"
