"""The short answer an open-question response states: the span after the last localized answer label.

"Antwort: 330 Meter", "答案：330米" (full-width colons and markdown already folded by `normalize`), a marker
phrase ("The answer is ...") when there is no label, else the last non-empty line.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from calm_rag.languages import Language, get_language
from calm_rag.voting.extraction import normalize

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


SpanSource = Literal["answer_line", "phrase", "last_line", "continuation"]
"""Where a span came from: the model's own answer line ("Antwort: ..."), a marker phrase ("The answer is
..."), the last line as a fallback, or calm-rag's continuation of the turn after the answer label."""

MAX_SPAN_CHARS = 60
MAX_SPAN_WORDS = 8


class SpanReading(NamedTuple):
    explanation: str
    span: str | None
    source: SpanSource | None
    """None when nothing parseable was stated."""


def is_short_span(span: str | None) -> bool:
    """A span that can be compared as an answer, not a sentence: at most 60 characters and 8 words."""
    return bool(span) and len(span or "") <= MAX_SPAN_CHARS and len((span or "").split()) <= MAX_SPAN_WORDS


def needs_continuation(reading: SpanReading) -> bool:
    """Whether the model's own answer line is missing or too long to vote on, so the span must be asked for
    by continuing the turn after the answer label."""
    return reading.source != "answer_line" or not is_short_span(reading.span)


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
