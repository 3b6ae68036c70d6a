"""The short answer an open-question response states: the span after the last localized answer label.

"Antwort: 330 Meter", "答案：330米" (full-width colons and markdown already folded by `normalize`), a marker
phrase ("The answer is ...") when there is no label, else the last non-empty line. A span still too long to
vote on after the continuation (`calm_rag.generation.open_sampling`) is cut to its statement by
`shorten_span`, so every sample that said anything ends with a short span.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from calm_rag.languages import Language, get_language
from calm_rag.voting.extraction import normalize
from calm_rag.voting.quantities import extract_quantities

_COPULAS = r"(?:(?:is|ist|lautet|wäre|est|serait|è|es|é|sería|será)(?!\w)|是|为|為|は|です|은|는|-|=|→)"
_QUOTES = "\"'“”‘’„«»「」『』‹›`"
_TRAILING = ".。!！?？,，;；:：、 \t"
"""Stripped from both ends of a span (NFKC already folded most full-width forms)."""


# ---- prompting and span extraction --------------------------------------------------------------


def clean_span(text: str) -> str | None:
    """One answer line without list bullets, wrapping quotes and trailing punctuation; None if nothing
    alphanumeric is left (an empty line, or the template's own "..." echoed back)."""
    span = re.sub(r"^[\s>]*(?:[-•·]\s+)?", "", text).strip(_QUOTES + _TRAILING)
    return span if any(ch.isalnum() for ch in span) else None


def _marker_patterns(language: Language) -> tuple[re.Pattern[str], re.Pattern[str]]:
    alternatives = "|".join(re.escape(normalize(marker)) for marker in language.markers)
    phrases = "|".join(re.escape(normalize(marker)) for marker in language.markers if " " in marker.strip())
    stated = rf"(?:{alternatives})\s*{_COPULAS}" + (rf"|(?:{phrases})(?=\s)" if phrases else "")
    return (re.compile(rf"(?:{alternatives})\s*:", re.IGNORECASE),
            re.compile(rf"(?:{stated})\s*", re.IGNORECASE))


SpanSource = Literal["answer_line", "phrase", "last_line", "continuation", "shortened"]
"""Where a span came from: the model's own answer line ("Antwort: ..."), a marker phrase ("The answer is
..."), the last line as a fallback, calm-rag's continuation of the turn after the answer label, or
(`shortened`) a span still too long after the continuation, cut by `shorten_span`."""

MAX_SPAN_CHARS = 60
MAX_SPAN_WORDS = 8
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
"""Chinese and Japanese characters: written without spaces, about two to a word."""


class SpanReading(NamedTuple):
    explanation: str
    span: str | None
    source: SpanSource | None
    """None when nothing parseable was stated."""


def span_words(span: str) -> int:
    """Words in a span: whitespace-separated, except that Chinese and Japanese characters count two to a
    word, so "柏林墙倒塌于1989年" is a short statement and a 30-character Chinese sentence is not."""
    return sum(max(1, -(-len(_CJK.findall(token)) // 2)) for token in span.split())


def is_short_span(span: str | None) -> bool:
    """A span that can be compared as an answer, not a sentence: at most 60 characters and 8 words."""
    return bool(span) and len(span or "") <= MAX_SPAN_CHARS and span_words(span or "") <= MAX_SPAN_WORDS


def needs_continuation(reading: SpanReading) -> bool:
    """Whether the model's own answer line is missing or too long to vote on, so the span must be asked for
    by continuing the turn after the answer label."""
    return reading.source != "answer_line" or not is_short_span(reading.span)


# ---- cutting a long span to its statement -------------------------------------------------------
_STATEMENT_COPULAS = {
    "en": "is|are|was|were", "de": "ist|sind|war|waren|lautet|lauten", "fr": "est|sont|était|étaient|fut",
    "it": "è|sono|era|erano|fu", "es": "es|son|era|eran|fue", "pt": "é|são|era|eram|foi", "ru": "это|—",
    "zh": "是|为|為",
}
"""The verb of "X is Y" per language (Japanese and Korean mark it with particles on words; not cut there)."""
_ASIDE = re.compile(r"\s*[(（\[][^()（）\[\]]*[)）\]]")
_SENTENCE_END = re.compile(r"[.!?؟](?:\s+|$)|[。！？।]")
_ABBREVIATION = re.compile(r"(?:[A-Z][a-z]{0,2}|[A-Za-z](?:\.[A-Za-z])+)\.")
_CLAUSE = re.compile(r"[,;:](?=\s)|[，；：、،؛]|\s[-–—]\s")


def _first_sentence(text: str) -> str:
    """Up to the first sentence end that is not an abbreviation's dot ("Dr.", "U.S.")."""
    for end in _SENTENCE_END.finditer(text):
        word = text[:end.start() + 1].split()[-1] if text[:end.start() + 1].split() else ""
        if not _ABBREVIATION.fullmatch(word):
            return text[:end.start()]
    return text


def _after_copula(text: str, lang: str | None) -> str:
    """"The capital of Australia is Canberra" -> "Canberra": what the first "X is Y" states."""
    copulas = _STATEMENT_COPULAS.get(lang or "")
    if not copulas:
        return ""
    pattern = rf"(?:{copulas})" if lang == "zh" else rf"(?<!\w)(?:{copulas})(?!\w)"
    match = re.search(pattern, text, re.IGNORECASE)
    return text[match.end():] if match and match.start() > 0 else ""


def _clause(text: str, lang: str | None) -> str:
    """The first clause of a list or an aside ("Il y a sept continents : Asie, Europe, ..."), the first one
    stating a number when the text states one (so "A hexagon, like a honeycomb cell, has 6 sides" keeps it)."""
    clauses = [part for part in (clean_span(piece) for piece in _CLAUSE.split(text)) if part]
    counted = [part for part in clauses if extract_quantities(part, lang)]
    return (counted or clauses or [""])[0]


def _tail(text: str) -> str | None:
    """The longest end of `text` that is short, in whole words: statements end with what they state ("... in
    1492"). Where no end is (one long word, a run of CJK characters), the longest short start of it."""
    words = text.split()
    for start in range(1, len(words)):
        candidate = clean_span(" ".join(words[start:]))
        if is_short_span(candidate):
            return candidate
    first = next((at for at, ch in enumerate(text) if ch.isalnum()), None)
    if first is None:
        return None
    starts = (clean_span(text[first:end]) for end in range(min(len(text), first + MAX_SPAN_CHARS), first, -1))
    return next(candidate for candidate in starts if is_short_span(candidate))


def shorten_span(span: str | None, lang: str | None = None) -> str | None:
    """A span of at most 60 characters and 8 words, whatever `span` is (None only when it has nothing
    alphanumeric). A long one is cut, each step only while it is still long: asides in brackets dropped,
    the first sentence, what follows the first copula ("... is 8" -> "8"), the first clause (the first
    stating a number, if any does), and last the longest short end of it. Rules, not a model: they run
    after the model was asked for the span after the answer label and still wrote a sentence."""
    text = clean_span(span or "")
    for step in (lambda t: _ASIDE.sub("", t), _first_sentence, lambda t: _after_copula(t, lang),
                 lambda t: _clause(t, lang)):
        if text is None or is_short_span(text):
            return text
        text = clean_span(step(text)) or text
    return text if text is None or is_short_span(text) else _tail(text)


def first_span_line(text: str) -> str | None:
    """The span a continuation wrote: its first non-empty line, cleaned."""
    line = next((line for line in normalize(text).split("\n") if line.strip()), "")
    return clean_span(line)


def split_response(text: str, language: Language | str) -> SpanReading:
    """(explanation, answer span, where the span came from) of a free-form response.

    The span is what follows the last answer marker with a colon ("Antwort: ...", "答案：...", full-width
    colons and markdown already folded away); on that line, or on the next non-empty line when the
    marker ends its line. Without one, a marker phrase ("The answer is ...", "答案是..."); without that,
    the last non-empty line. The explanation is everything before, without an 'Explanation:' label."""
    lang = get_language(language) if isinstance(language, str) else language
    body = normalize(text).strip()
    with_colon, phrase = _marker_patterns(lang)
    match, source = None, None
    for pattern, kind in ((with_colon, "answer_line"), (phrase, "phrase")):
        found = list(pattern.finditer(body))
        if found:
            match, source = found[-1], kind
            break
    if match is not None:
        line_start = body.rfind("\n", 0, match.start()) + 1
        explanation = body[:line_start]
        rest = [line for line in body[match.end():].split("\n") if line.strip()]
        span = clean_span(rest[0]) if rest else None
    else:
        lines = [line for line in body.split("\n") if line.strip()]
        explanation = "\n".join(lines[:-1])
        span = clean_span(lines[-1]) if lines else None
        source = "last_line"
    label = re.escape(normalize(lang.explanation_label))
    explanation = re.sub(rf"^(?:{label}|Explanation)\s*:\s*", "", explanation.strip(), flags=re.IGNORECASE)
    return SpanReading(explanation.strip(), span, source if span else None)  # type: ignore[arg-type]
