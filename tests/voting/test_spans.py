"""What counts as a short span, and how a long one is cut to its statement: the sentences below are what the
1.5B wrote after the answer label on the German factual set (examples/factual_de) when asked for the span."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calm_rag.voting.quantities import extract_quantities
from calm_rag.voting.spans import is_short_span, shorten_span, span_words


def test_chinese_and_japanese_characters_count_two_to_a_word() -> None:
    assert span_words("Es gibt 7 Kontinente") == 4
    assert span_words("柏林墙倒塌于1989年") == 4 and is_short_span("柏林墙倒塌于1989年")
    assert not is_short_span("太阳系有8颗行星包括水星金星地球火星木星土星天王星和海王星")  # 32 characters, one "token"
    assert span_words("東京タワー") == 3 and span_words("서울 특별시") == 2  # Korean is written with spaces


@pytest.mark.parametrize(("span", "lang", "short"), [
    # a statement "X is Y": what it states
    ("The number of legs a spider has is 8. Spiders have eight legs, which allows them to hunt", "en", "8"),
    ("Die Hauptstadt von Australien ist nach langer Debatte im Parlament Canberra", "de", "nach langer Debatte im "
     "Parlament Canberra"),
    ("La taille d'un carré est la longueur de son côté", "fr", "la longueur de son côté"),
    ("La capitale dell'Australia, fondata nel 1913, è Canberra e non Sydney come si crede", "it",
     "Canberra e non Sydney come si crede"),
    ("Столица Австралии это Канберра а не Сидней как многие думают", "ru", "Канберра а не Сидней как многие думают"),
    ("El río más largo de Sudamérica y del mundo entero es el Amazonas", "es", "el Amazonas"),
    # a list after a colon or commas: its first clause, the one stating a number when one does
    ("Il y a sept continents sur la Terre : Asie, Europe, Amérique, Océanie, Afrique", "fr",
     "Il y a sept continents sur la Terre"),
    ("Guitar Center, Guitar World, Guitar Pro, Guitar Shop, Guitar Factory", "fr", "Guitar Center"),
    ("A hexagon, like a honeycomb cell, has 6 sides and 6 corners too", "en", "has 6 sides and 6 corners too"),
    ("太阳系有8颗行星，包括水星、金星、地球、火星、木星、土星、天王星和海王星", "zh", "太阳系有8颗行星"),
    ("答案是东京，日本的首都，也是世界上人口最多的城市之一，位于本州岛的东部", "zh", "东京"),
    ("ベルリンの壁が崩壊したのは1989年で、冷戦の終わりを象徴する出来事でした", "ja", "ベルリンの壁が崩壊したのは1989年で"),
    ("سقط جدار برلين في عام 1989، وكان ذلك حدثا تاريخيا مهما في أوروبا كلها", "ar", "سقط جدار برلين في عام 1989"),
    # asides in brackets go first; a statement without a verb to cut at keeps its end
    ("Water boils at sea level at exactly 100 degrees Celsius (212 degrees Fahrenheit)", "en",
     "at sea level at exactly 100 degrees Celsius"),
    ("Christopher Columbus embarked on his historic voyage across the Atlantic Ocean in 1492", "en",
     "historic voyage across the Atlantic Ocean in 1492"),
    # abbreviation dots do not end the sentence
    ("Dr. Martin Luther King Jr. gave the speech in Washington in front of many people", "en",
     "speech in Washington in front of many people"),
])
def test_a_long_span_is_cut_to_its_statement(span: str, lang: str, short: str) -> None:
    assert not is_short_span(span)
    assert shorten_span(span, lang) == short
    assert is_short_span(short)


def test_short_spans_and_empty_ones_are_left_alone() -> None:
    for span in ("8", "Canberra", "Es gibt 7 Kontinente auf der Erde", "1945年9月2日", "2016年2月7日"):
        assert shorten_span(span, "de") == span
    assert shorten_span(None) is None and shorten_span("...") is None and shorten_span("  ") is None


def test_numbers_survive_the_cut() -> None:
    """The number a long numeric statement ends with is in its short span, so it still clusters as a number."""
    span = shorten_span("Un adulte a normalement trente-deux dents permanentes dans la bouche, sagesse comprise", "fr")
    assert span is not None and [q.value for q in extract_quantities(span, "fr")] == [32]


@given(st.text(min_size=1, max_size=300), st.sampled_from(["en", "de", "fr", "zh", "ja", "ru", "ar", None]))
def test_every_span_with_something_alphanumeric_ends_short(text: str, lang: str | None) -> None:
    short = shorten_span(text, lang)
    assert short is None or is_short_span(short)
    if short is None:
        assert shorten_span(text.strip(), lang) is None
