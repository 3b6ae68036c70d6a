"""Numbers written as words or CJK numerals: the value per language, units after them, and the rules that keep
ordinary words (articles, homographs, CJK words that contain numerals) from becoming numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from calm_rag.voting import extract_quantities, quantities_agree
from calm_rag.voting.number_words import SpelledNumber, read_number_words


def values(text: str, lang: str | None) -> list[Decimal]:
    return [quantity.value for quantity in extract_quantities(text, lang)]


@pytest.mark.parametrize(("text", "lang", "value"), [
    # the spider's eight, in every script
    ("8", "de", 8), ("acht", "de", 8), ("eight", "en", 8), ("huit", "fr", 8), ("otto", "it", 8), ("ocho", "es", 8),
    ("oito", "pt", 8), ("восемь", "ru", 8), ("ثمانية", "ar", 8), ("八", "zh", 8), ("八条", "zh", 8), ("八本", "ja", 8),
    ("八つ", "ja", 8), ("Huit pattes", "fr", 8), ("Acht Beine.", "de", 8), ("蜘蛛有八条腿", "zh", 8),
    # teens, tens and compounds per language
    ("twenty-one", "en", 21), ("ninety nine", "en", 99), ("two hundred", "en", 200), ("hundred", "en", 100),
    ("one hundred and one", "en", 101), ("three thousand five hundred", "en", 3500), ("twelve", "en", 12),
    ("einundzwanzig", "de", 21), ("zweihundertdreiundvierzig", "de", 243), ("dreißig", "de", 30),
    ("Zwölf", "de", 12), ("einhundert", "de", 100), ("zwei tausend", "de", 2000), ("eins", "de", 1),
    ("vingt et un", "fr", 21), ("vingt-et-un", "fr", 21), ("dix-sept", "fr", 17), ("soixante-dix", "fr", 70),
    ("soixante et onze", "fr", 71), ("quatre-vingts", "fr", 80), ("quatre-vingt-dix-huit", "fr", 98),
    ("cent", "fr", 100), ("deux cents", "fr", 200), ("mille deux cents", "fr", 1200), ("septante", "fr", 70),
    ("ventotto", "it", 28), ("ventuno", "it", 21), ("trentatré", "it", 33), ("duecento", "it", 200),
    ("centoventi", "it", 120), ("duemilasedici", "it", 2016), ("diciassette", "it", 17),
    ("veintiuno", "es", 21), ("veintidós", "es", 22), ("treinta y uno", "es", 31), ("dieciséis", "es", 16),
    ("doscientos", "es", 200), ("ciento veinte", "es", 120), ("dos mil", "es", 2000),
    ("vinte e um", "pt", 21), ("dezesseis", "pt", 16), ("dois mil", "pt", 2000), ("quinhentos", "pt", 500),
    ("двадцать один", "ru", 21), ("сто двадцать", "ru", 120), ("двести", "ru", 200), ("две тысячи", "ru", 2000),
    ("ثلاثة عشر", "ar", 13), ("واحد وعشرون", "ar", 21), ("مائة وخمسة", "ar", 105), ("عشرون", "ar", 20),
    ("اربعة", "ar", 4),  # without the hamza
    ("二十一", "zh", 21), ("一百二十", "zh", 120), ("三千", "zh", 3000), ("两", "zh", 2), ("两千", "zh", 2000),
    ("十八", "zh", 18), ("一百零五", "zh", 105), ("一万二千", "zh", 12000), ("三百万", "zh", 3000000),
    ("第一", "zh", 1), ("答案是八", "zh", 8), ("一九七三", "zh", 1973), ("二〇一六", "zh", 2016),
    ("十一", "ja", 11), ("八です", "ja", 8),
])
def test_number_words_read_as_values(text: str, lang: str, value: int) -> None:
    assert values(text, lang) == [Decimal(value)]


@pytest.mark.parametrize(("text", "lang", "expected"), [
    ("eight kilometres", "en", ("8", "m", "8000")), ("drei Meter", "de", ("3", "m", "3")),
    ("huit mètres", "fr", ("8", "m", "8")), ("восемь метров", "ru", ("8", "m", "8")),
    ("ثمانية أمتار", "ar", ("8", "m", "8")), ("八米", "zh", ("8", "m", "8")), ("三千米", "zh", ("3000", "m", "3000")),
    ("八メートル", "ja", ("8", "m", "8")), ("一ヶ月", "ja", ("1", "month", "1")), ("ein Meter", "de", ("1", "m", "1")),
    ("drei Millionen Euro", "de", ("3000000", "eur", "3000000")), ("eine Million", "de", ("1000000", None, None)),
    ("trois cents euros", "fr", ("300", "eur", "300")), ("二十公里", "zh", ("20", "m", "20000")),
])
def test_units_and_scales_after_number_words(text: str, lang: str, expected: tuple[str, str | None, str | None]
                                              ) -> None:
    [quantity] = extract_quantities(text, lang)
    value, unit, base = expected
    assert (quantity.value, quantity.unit, quantity.base) == (
        Decimal(value), unit, None if base is None else Decimal(base))


@pytest.mark.parametrize(("text", "lang"), [
    # CJK numerals inside ordinary words
    ("统一", "zh"), ("一样", "zh"), ("一起", "zh"), ("万一", "zh"), ("唯一", "zh"), ("一定", "zh"), ("十分", "zh"),
    ("千万别去", "zh"), ("星期一", "zh"), ("周一", "zh"), ("百度", "zh"), ("三四", "zh"), ("一緒に", "ja"),
    # articles and pronouns
    ("one of the founders", "en"), ("no one", "en"), ("the one", "en"), ("one leg", "en"), ("eine Spinne", "de"),
    ("der eine", "de"), ("une araignée", "fr"), ("l'un", "fr"), ("un ragno", "it"), ("una araña", "es"),
    ("uma aranha", "pt"),
    # homographs outside their language
    ("Otto von Bismarck", "de"), ("Otto Hahn", None), ("due to rain", "en"), ("an elf", "en"), ("once a year", "en"),
    ("Sept.", "en"), ("Mila Kunis", "en"), ("Rio dos Macacos", "pt"), ("um", "de"), ("null", "en"),
    # words that merely contain number words
    ("Achtung", "de"), ("Settembre", "it"), ("Treno", "it"), ("Elfenbein", "de"), ("très grand", "fr"),
    ("Denver Broncos", "en"), ("someone", "en"),
])
def test_ordinary_words_are_not_numbers(text: str, lang: str | None) -> None:
    assert extract_quantities(text, lang) == ()


def test_homographs_count_in_their_language_and_after_another_number_word() -> None:
    assert values("otto", "it") == [8] and values("otto", "de") == [] and values("otto", None) == []
    assert values("elf", "de") == [11] and values("once", "es") == [11] and values("sept", "fr") == [7]
    assert values("vingt-sept", "en") == [27] and values("vingt-sept", None) == [27]  # after a number word
    assert values("cent", "fr") == [100] and values("5 cents", "en") == [5] and values("cinq cents", "en") == [500]


def test_article_rule_weak_ones_count_only_alone_or_before_a_unit_and_yield_to_other_numbers() -> None:
    # alone, or before a unit or scale word: the number 1
    for text, lang in [("eine", "de"), ("Ein.", "de"), ("un", "fr"), ("uno", "it"), ("one", "en"), ("um", "pt"),
                       ("один", "ru"), ("一个", "zh")]:
        assert values(text, lang) == [1], text
    assert values("un million d'habitants", "fr") == [1000000] and values("one hour", "en") == [1]
    # before an ordinary noun: an article, no number
    assert values("eine Spinne", "de") == [] and values("un ragno", "it") == []
    # another number in the span wins: the article is dropped, the number stays
    assert values("eine Spinne hat acht Beine", "de") == [8]
    assert values("Une araignée a huit pattes", "fr") == [8]
    assert values("蜘蛛是一种动物，有八条腿", "zh") == [8]
    assert values("one of the 8", "en") == [8] and values("ein Tag, 8 Beine", "de") == [8]
    spelled = read_number_words("eine spinne hat acht beine", "de")
    assert spelled == [SpelledNumber(16, 20, 8)]  # "eine" before a noun is not even reported
    assert read_number_words("eine", "de") == [SpelledNumber(0, 4, 1, weak=True)]


def test_spans_and_order_of_spelled_numbers() -> None:
    text = "zwei bis drei meter oder vingt-et-un, 八条"
    assert [(text[n.start:n.end], n.value) for n in read_number_words(text, "de")] == [
        ("zwei", 2), ("drei", 3), ("vingt-et-un", 21), ("八", 8)]
    assert values("zwei oder drei", "de") == [2, 3] and values("acht acht", "de") == [8, 8]
    assert values("300万", "zh") == [3000000] and values("300 thousand", "en") == [300000]  # the scale rule's


@pytest.mark.parametrize("spelled", ["acht", "eight", "huit", "восемь", "ثمانية", "八条", "八つ", "otto"])
def test_spelled_numbers_agree_with_digits_and_not_with_other_numbers(spelled: str) -> None:
    lang = {"otto": "it", "八つ": "ja"}.get(spelled)
    assert quantities_agree(extract_quantities(spelled, lang), extract_quantities("8", "en"))
    assert not quantities_agree(extract_quantities(spelled, lang), extract_quantities("6", "en"))
