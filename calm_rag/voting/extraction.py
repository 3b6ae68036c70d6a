"""Answer extraction: which option did a model's free text choose?

Real models write "Antwort: C", "答案：C", "**Answer:** (C)", "C) Krankenhaus", the option
text alone, or change their mind mid-text. The rules, in order:

1. An answer marker (the language's answer label, its synonyms, or English "Answer")
   followed by a label or an option text. The *last* such statement counts.
2. Otherwise a label stated on its own: "(C)", "C." / "C)" / "C:" at the start of a line,
   a line holding only "C", or "option C" / "选项C".  Again the last one counts.
3. Otherwise an option text on the last non-empty line (the option text alone).
4. Otherwise `None`: an unparseable answer is never guessed.

Text is NFKC-normalized first, which folds full-width colons, brackets and letters
("：", "（Ｃ）") into ASCII, and markdown emphasis is dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from calm_rag.languages import Language, get_language
from calm_rag.questions import Choice

_COPULAS = r"(?:is|ist|lautet|wäre|est|serait|è|es|é|sería|será|是|为|為|选|選|は|です|은|는|:|-|=|→)"
_OPTION_WORDS = r"(?:option|opción|opzione|opção|choice|Option|Antwort|选项|選項|選択肢|선택지|вариант)"
_OPEN = r"[\(\[【<]"
_CLOSE = r"[\)\]】>]"


def normalize(text: str) -> str:
    """Fold full-width forms and drop markdown emphasis so that one set of patterns fits all."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n")
    text = re.sub(r"^[ \t]*#+[ \t]*", "", text, flags=re.MULTILINE)  # markdown headings, not "C#"
    return re.sub(r"[*`]|(?<!\w)_+|_+(?!\w)", "", text)


def _spaced(char: str) -> bool:
    """True where the script separates words with spaces, so a word boundary applies."""
    if not char.isalnum():
        return False
    code = ord(char)
    return not (0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF)


def _text_pattern(text: str) -> str:
    text = normalize(text).strip()
    core = re.escape(text)
    if text and _spaced(text[0]):
        core = r"(?<!\w)" + core
    if text and _spaced(text[-1]):
        core = core + r"(?!\w)"
    return core


@lru_cache(maxsize=256)
def _marker_regex(markers: tuple[str, ...], labels: str) -> re.Pattern[str]:
    marker_alt = "|".join(re.escape(normalize(marker)) for marker in markers)
    letter = rf"(?:{_OPTION_WORDS}\s*)?{_OPEN}?\s*(?P<letter>[{labels}{labels.lower()}])\s*{_CLOSE}?(?![A-Za-z])"
    return re.compile(
        rf"(?:{marker_alt})\s*(?:{_COPULAS}\s*)*\s*(?:{letter}|(?P<rest>[^\n]+))",
        re.IGNORECASE,
    )


@lru_cache(maxsize=64)
def _standalone_regex(labels: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?<![A-Za-z]){_OPEN}(?P<a>[{labels}]){_CLOSE}"
        rf"|^\s*(?P<b>[{labels}])\s*[\.\):](?!\w*\.\w)"
        rf"|^\s*(?P<c>[{labels}])\s*$"
        rf"|{_OPTION_WORDS}\s*(?P<d>[{labels}])(?![A-Za-z])",
        re.MULTILINE,
    )


def _option_in(text: str, choices: Sequence[Choice]) -> tuple[int, str] | None:
    """The option text that ends last in `text` (longer options shadow their substrings)."""
    spans: list[tuple[int, int, str]] = []
    for choice in sorted(choices, key=lambda c: len(c.text), reverse=True):
        if not choice.text.strip():
            continue
        for match in re.finditer(_text_pattern(choice.text), text, re.IGNORECASE):
            start, end = match.span()
            if not any(s <= start and end <= e for s, e, _ in spans):
                spans.append((start, end, choice.label))
    if not spans:
        return None
    start, end, label = max(spans, key=lambda span: span[1])
    return end, label


def extract_letter(text: str, language: Language | str, choices: Sequence[Choice]) -> str | None:
    """The label of the option `text` states as its final answer, or `None` when none is stated."""
    if not text or not choices:
        return None
    lang = get_language(language) if isinstance(language, str) else language
    labels = "".join(choice.label.upper() for choice in choices)
    body = normalize(text)

    stated: list[tuple[int, str]] = []
    for match in _marker_regex(lang.markers, labels).finditer(body):
        if match.group("letter"):
            stated.append((match.end(), match.group("letter").upper()))
        elif match.group("rest"):
            found = _option_in(match.group("rest"), choices)
            if found:
                stated.append((match.start("rest") + found[0], found[1]))
    if stated:
        return max(stated)[1]

    for match in _standalone_regex(labels).finditer(body):
        letter = next(group for group in match.groups() if group)
        stated.append((match.end(), letter))
    if stated:
        return max(stated)[1]

    lines = [line for line in body.splitlines() if line.strip()]
    if lines:
        found = _option_in(lines[-1], choices)
        if found:
            return found[1]
    return None


def split_explanation(text: str, language: Language | str) -> str:
    """The explanation part of a chain-of-thought response: everything before the final answer line,
    without a leading 'Explanation:' label."""
    lang = get_language(language) if isinstance(language, str) else language
    body = normalize(text).strip()
    marker_alt = "|".join(re.escape(normalize(marker)) for marker in lang.markers)
    matches = list(re.finditer(rf"(?:^|\n)[^\n]*?(?:{marker_alt})\s*:", body, re.IGNORECASE))
    if matches:
        body = body[: matches[-1].start()].strip()
    label = re.escape(normalize(lang.explanation_label))
    body = re.sub(rf"^(?:{label}|Explanation)\s*:\s*", "", body, flags=re.IGNORECASE)
    return body.strip()
