"""Calendar dates in short answers, so "February 7, 2016", "7. Februar 2016", "7 février 2016", "2016年2月7日",
"7 февраля 2016" and "2016-02-07" all read as (2016, 2, 7).

Without this, a date is three loose numbers, and "February 7, 2016" ({7, 2016}) never agrees with
"2016年2月7日" ({2016, 2, 7}). Month names are read in en, de, fr, it, es, pt, ru (nominative, genitive,
prepositional) and ar (Egyptian/Gulf and Levantine names). The text must already be NFKC-normalized, casefolded
and have its numerals as ASCII digits (`calm_rag.voting.quantities` does all three, and spells number words
out first, so "二〇一六年二月七日" and "sept février 2016" are dates too).

Forms, tried in this order (a later form never reads inside an earlier one's match):
1. ISO: 2016-02-07, 2016/2/7, 2016.02.07.
2. Numeric day first: 7.2.2016; with slashes, 2/7/2016 is month first for English (and an unknown language)
   and day first otherwise, unless the first number is above 12.
3. CJK: 2016年2月7日 (or 号), 2016年2月, 2月7日 (a month alone, "2月", is no date).
4. Day, month name, optional year: "7 February 2016", "7. Februar", "1er février", "7 de febrero de 2016".
5. Month name, day, optional year: "February 7, 2016", "Feb. 7th".
6. Month name and year: "February 2016", "febrero de 2016", "в феврале 2016".
Years are four digits. A year alone ("1773", "1773年", "im Jahr 1773") is a number, not a date: it agrees
with any date in that year (see `Quantity.matches`).
"""

from __future__ import annotations

import re

DateParts = tuple[int | None, int, int | None]
"""(year or None, month, day or None)."""

_MONTH_NAMES = [
    "january|jan|januar|jänner|janvier|janv|gennaio|enero|janeiro|январь|января|январе|янв|يناير|كانون الثاني",
    "february|feb|februar|feber|février|fevrier|févr|febbraio|febrero|fevereiro|февраль|февраля|феврале|фев|"
    "فبراير|شباط",
    "march|mar|märz|maerz|mars|marzo|março|marco|март|марта|марте|مارس|آذار",
    "april|apr|avril|aprile|abril|апрель|апреля|апреле|апр|أبريل|ابريل|إبريل|نيسان",
    "may|mai|maggio|mayo|maio|май|мая|мае|مايو|أيار|ايار",
    "june|jun|juni|juin|giugno|junio|junho|июнь|июня|июне|يونيو|يونيه|حزيران",
    "july|jul|juli|juillet|luglio|julio|julho|июль|июля|июле|يوليو|يوليه|تموز",
    "august|aug|août|aout|agosto|август|августа|августе|авг|أغسطس|اغسطس|آب",
    "september|sep|sept|septembre|settembre|septiembre|setiembre|setembro|сентябрь|сентября|сентябре|сент|сен|"
    "سبتمبر|أيلول|ايلول",
    "october|oct|oktober|okt|octobre|ottobre|octubre|outubro|октябрь|октября|октябре|окт|أكتوبر|اكتوبر|تشرين الأول",
    "november|nov|novembre|noviembre|novembro|ноябрь|ноября|ноябре|ноя|نوفمبر|تشرين الثاني",
    "december|dec|dezember|dez|décembre|decembre|dicembre|diciembre|dezembro|декабрь|декабря|декабре|дек|"
    "ديسمبر|كانون الأول",
]
_MONTHS = {name: number for number, names in enumerate(_MONTH_NAMES, start=1) for name in names.split("|")}
_MONTH = (r"(?<![^\W\d_])(?P<mon>" + "|".join(re.escape(name) for name in sorted(_MONTHS, key=len, reverse=True))
          + r")(?![^\W\d_])\.?")
_DAY = r"(?P<d>[12]\d|3[01]|0?[1-9])(?!\d)"
_NUM_MONTH = r"(?P<m>1[0-2]|0?[1-9])(?!\d)"
_YEAR = r"(?P<y>\d{4})(?!\d)"
_ORDINAL = r"(?:\.|er|e|st|nd|rd|th|o|a|-?го|-?е)?"
_OF = r"(?:de\s+|del\s+|of\s+)?"
_FORMS = [re.compile(pattern) for pattern in (
    rf"(?<![\d.]){_YEAR}[-/.]{_NUM_MONTH}[-/.]{_DAY}",
    rf"(?<![\d.]){_DAY}\.{_NUM_MONTH}\.{_YEAR}",
    rf"(?<![\d/])(?P<a>\d{{1,2}})/(?P<b>\d{{1,2}})/{_YEAR}",
    rf"(?<!\d)(?:{_YEAR}\s*年\s*)?{_NUM_MONTH}\s*月(?:\s*{_DAY}\s*[日号號])?",
    rf"(?<!\d){_DAY}{_ORDINAL}\s*{_OF}{_MONTH}(?:\s*,?\s*{_OF}{_YEAR})?",
    rf"{_MONTH}\s*{_DAY}(?:st|nd|rd|th)?(?:\s*,?\s*{_YEAR})?",
    rf"{_MONTH}\s*,?\s*{_OF}{_YEAR}",
)]
_GATES = [re.compile(gate) if gate else None for gate in (r"\d[-/.]\d", r"\d\.\d", r"\d/\d", "月", None, None, None)]
"""What each form needs (None: a month name): a cheap test that skips the slow scan."""
_MONTH_WORDS = frozenset(name.split()[0] for name in _MONTHS)
_WORDS = re.compile(r"[^\W\d_]+")
_MONTH_FIRST = frozenset({"en"})
"""Languages whose slash dates put the month first (an unknown language does too)."""


def _parts(match: re.Match[str], lang: str | None) -> DateParts | None:
    groups = match.groupdict()
    year = int(groups["y"]) if groups.get("y") else None
    day = int(groups["d"]) if groups.get("d") else None
    if groups.get("a"):
        first, second = int(groups["a"]), int(groups["b"])
        month_first = (lang is None or lang.split("-")[0] in _MONTH_FIRST) and first <= 12 or second > 12
        month, day = (first, second) if month_first else (second, first)
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return None
    elif groups.get("mon"):
        month = _MONTHS[groups["mon"]]
    else:
        month = int(groups["m"])
    if year is None and day is None:
        return None
    return year, month, day


def find_dates(text: str, lang: str | None = None) -> list[tuple[int, int, DateParts]]:
    """(start, end, parts) of every date in `text` (see the module docstring for the forms), in text order."""
    found: list[tuple[int, int, DateParts]] = []
    work = text
    named = any(word in _MONTH_WORDS for word in _WORDS.findall(text))
    for form, gate in zip(_FORMS, _GATES, strict=True):
        if not (named if gate is None else gate.search(text)):
            continue
        for match in form.finditer(work):
            parts = _parts(match, lang)
            if parts is not None:
                found.append((match.start(), match.end(), parts))
                work = work[:match.start()] + " " * (match.end() - match.start()) + work[match.end():]
    return sorted(found)
