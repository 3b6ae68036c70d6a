"""Calendar dates and years: one date however it is written, in en, de, fr, it, es, pt, ru, ar, zh and ja;
a year agrees with a date in that year; different days never agree."""

from __future__ import annotations

import pytest

from calm_rag.voting import extract_quantities, quantities_agree
from calm_rag.voting.dates import find_dates


def dates(text: str, lang: str | None) -> list[tuple[int | None, int, int | None]]:
    return [quantity.date for quantity in extract_quantities(text, lang) if quantity.date]


@pytest.mark.parametrize(("text", "lang"), [
    ("February 7, 2016", "en"), ("Feb. 7th, 2016", "en"), ("the 7th of February 2016", "en"), ("2/7/2016", "en"),
    ("7. Februar 2016", "de"), ("am 7. Februar 2016", "de"), ("07.02.2016", "de"), ("7/2/2016", "de"),
    ("7 février 2016", "fr"), ("le sept février 2016", "fr"),
    ("7 febbraio 2016", "it"), ("7 de febrero de 2016", "es"), ("7 de fevereiro de 2016", "pt"),
    ("7 февраля 2016", "ru"), ("7 февраля 2016 года", "ru"), ("7 فبراير 2016", "ar"), ("٧ فبراير ٢٠١٦", "ar"),
    ("7 شباط 2016", "ar"), ("2016年2月7日", "zh"), ("2016年2月7号", "zh"), ("二〇一六年二月七日", "zh"),
    ("2016年2月7日", "ja"), ("2016-02-07", None), ("2016/2/7", "ja"),
])
def test_one_date_however_written(text: str, lang: str | None) -> None:
    assert dates(text, lang) == [(2016, 2, 7)]
    assert quantities_agree(extract_quantities(text, lang), extract_quantities("February 7, 2016", "en"))
    assert not quantities_agree(extract_quantities(text, lang), extract_quantities("February 8, 2016", "en"))


@pytest.mark.parametrize(("text", "lang", "expected"), [
    ("February 2016", "en", (2016, 2, None)), ("Februar 2016", "de", (2016, 2, None)),
    ("febrero de 2016", "es", (2016, 2, None)), ("в феврале 2016", "ru", (2016, 2, None)),
    ("2016年2月", "zh", (2016, 2, None)), ("7. Februar", "de", (None, 2, 7)), ("1er février", "fr", (None, 2, 1)),
    ("2月7日", "ja", (None, 2, 7)), ("二月七日", "zh", (None, 2, 7)), ("July 4", "en", (None, 7, 4)),
    ("13/2/2016", "en", (2016, 2, 13)), ("4 июля 1776 года", "ru", (1776, 7, 4)),
    ("25 كانون الأول 2020", "ar", (2020, 12, 25)),
])
def test_partial_dates(text: str, lang: str, expected: tuple[int | None, int, int | None]) -> None:
    assert dates(text, lang) == [expected]


def test_partial_dates_agree_with_compatible_dates_only() -> None:
    full = extract_quantities("7 février 2016", "fr")
    assert quantities_agree(extract_quantities("Februar 2016", "de"), full)
    assert quantities_agree(extract_quantities("2月7日", "ja"), full)
    assert not quantities_agree(extract_quantities("März 2016", "de"), full)
    assert not quantities_agree(extract_quantities("7 февраля 2015", "ru"), full)


@pytest.mark.parametrize(("text", "lang"), [
    ("1773", "en"), ("1773年", "zh"), ("1773年", "ja"), ("im Jahr 1773", "de"), ("en 1773", "fr"),
    ("в 1773 году", "ru"), ("1773 год", "ru"), ("عام 1773", "ar"), ("١٧٧٣", "ar"), ("一七七三年", "zh"),
    ("in the year 1773", "en"),
])
def test_years_agree_however_written_and_with_a_date_in_that_year(text: str, lang: str) -> None:
    year = extract_quantities(text, lang)
    assert quantities_agree(year, extract_quantities("1773", "en"))
    assert quantities_agree(year, extract_quantities("16 December 1773", "en"))  # the same answer, less precise
    assert not quantities_agree(year, extract_quantities("1774", "en"))
    assert not quantities_agree(year, extract_quantities("16 December 1774", "en"))


def test_a_date_does_not_match_its_day_or_a_duration() -> None:
    date = extract_quantities("February 7, 2016", "en")
    assert not quantities_agree(date, extract_quantities("7", "en"))
    assert not quantities_agree(date, extract_quantities("2016 km", "en"))
    assert quantities_agree(date, extract_quantities("2016年", "zh"))


def test_numbers_around_dates_and_what_is_not_a_date() -> None:
    found = [(q.value, q.unit) for q in extract_quantities("330 m am 7. Februar 2016", "de")]
    assert found == [(330, "m"), (20160207, "date")]
    assert dates("1990-2000", "en") == [] and dates("2月", "zh") == [] and dates("1.000.000", "de") == []
    assert find_dates("the march of 2 armies", "en") == [] and find_dates("2016-13-07", None) == []
    assert [parts for _, _, parts in find_dates("32 février 2016", "fr")] == [(2016, 2, None)]  # no 32nd
