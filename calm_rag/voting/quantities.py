"""Numbers, units and dates in short answers, so "330 m", "330 Meter", "330米" and "0.33 km" count as one
answer, and so do "8", "acht", "eight", "八条" and "восемь", or "February 7, 2016" and "2016年2月7日".

Embeddings are poor at numbers (every "N metres" looks alike to them), so two answers that both state
quantities agree iff their quantities match, whatever the embedding says. Numbers are read with
thousands separators and decimal commas ("1,000", "1.000" in a dot-grouping language, "3,5"), scale
words ("3 million", "300万") and a small multilingual unit table. Before that, number words and CJK
numerals are spelled out as digits (`calm_rag.voting.number_words`: its docstring has the rules against
false positives, such as "eine Spinne" or "统一" not being numbers) and calendar dates are read as one
quantity each (`calm_rag.voting.dates`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from calm_rag.voting.dates import DateParts, find_dates
from calm_rag.voting.extraction import normalize
from calm_rag.voting.number_words import read_number_words

_SCALES: dict[str, Decimal] = {}
_UNITS: dict[str, tuple[str, Decimal]] = {}


def _register(table: dict[str, Any], value: Any, surfaces: str) -> None:
    for surface in surfaces.split("|"):
        table[normalize(surface).casefold()] = value


for _factor, _surfaces in [
    (Decimal(10) ** 3, "thousand|tausend|mille|mil|mila|тысяча|тысячи|тысяч|千|천|हज़ार|हजार|ألف|آلاف"),
    (Decimal(10) ** 4, "万|萬|만"),
    (Decimal(10) ** 5, "lakh|लाख"),
    (Decimal(10) ** 6, "million|millions|millionen|mio|milione|milioni|millón|millones|milhão|milhões|миллион|"
                       "миллиона|миллионов|млн|百万|백만|मिलियन|مليون|ملايين"),
    (Decimal(10) ** 7, "crore|करोड़"),
    (Decimal(10) ** 8, "亿|億|억"),
    (Decimal(10) ** 9, "billion|billions|milliarde|milliarden|mrd|milliard|milliards|miliardo|miliardi|"
                       "mil millones|bilhão|bilhões|миллиард|миллиарда|миллиардов|млрд|十亿|十億|बिलियन|مليار|مليارات"),
]:
    _register(_SCALES, _factor, _surfaces)

for _unit, _factor, _surfaces in [
    ("m", 1, "m|meter|meters|metre|metres|mètre|mètres|metro|metri|metros|米|メートル|метр|метра|метров|미터|मीटर|"
             "متر|أمتار"),
    ("m", 1000, "km|kilometer|kilometers|kilometre|kilometres|kilomètre|kilomètres|chilometro|chilometri|"
                "kilómetro|kilómetros|quilômetro|quilômetros|公里|千米|キロメートル|км|킬로미터|किलोमीटर|كيلومتر|كيلومترات"),
    ("m", "0.01", "cm|centimeter|centimeters|centimetre|centimetres|centimètre|centimètres|centimetro|centimetri|"
                  "centímetro|centímetros|厘米|公分|センチメートル|センチ|см|센티미터|सेंटीमीटर|سنتيمتر"),
    ("ft", 1, "ft|foot|feet|fuß|fuss|pied|pieds|piede|piedi|pie|pies|pé|pés|英尺|フィート|фут|фута|футов|피트|फुट|फीट|"
              "قدم|أقدام"),
    ("mi", 1, "mi|mile|miles|meile|meilen|miglio|miglia|milla|millas|milha|milhas|英里|マイル|миля|мили|миль|마일|मील|"
              "ميل|أميال"),
    ("kg", 1, "kg|kilogram|kilograms|kilogramm|kilogramme|kilogrammes|chilogrammo|chilogrammi|kilogramo|kilogramos|"
              "quilograma|quilogramas|公斤|千克|キログラム|кг|킬로그램|किलोग्राम|كيلوغرام"),
    ("kg", "0.001", "g|gram|grams|gramm|gramme|grammes|grammo|grammi|gramo|gramos|grama|gramas|克|グラム|грамм|"
                    "грамма|граммов|그램|ग्राम|غرام"),
    ("kg", 1000, "t|ton|tons|tonne|tonnes|tonnen|tonnellata|tonnellate|tonelada|toneladas|吨|トン|тонна|тонны|тонн|"
                 "톤|टन|طن|أطنان"),
    ("%", 1, "%|٪|percent|per cent|prozent|pour cent|pourcent|per cento|percento|por ciento|por cento|パーセント|"
             "процент|процента|процентов|퍼센트|प्रतिशत|بالمئة|في المئة"),
    ("°c", 1, "°c|celsius|摄氏度|摂氏"),
    ("°f", 1, "°f|fahrenheit|华氏度|華氏"),
    ("s", 1, "s|sec|second|seconds|sekunde|sekunden|seconde|secondes|secondo|secondi|segundo|segundos|秒|秒間|"
             "секунда|секунды|секунд|초|सेकंड|ثانية|ثوان"),
    ("s", 60, "min|minute|minutes|minuten|minuto|minuti|minutos|分钟|分鐘|分間|минута|минуты|минут|분|मिनट|دقيقة|دقائق"),
    ("s", 3600, "h|hr|hour|hours|stunde|stunden|heure|heures|ora|ore|hora|horas|小时|小時|時間|час|часа|часов|시간|"
                "घंटे|घंटा|ساعة|ساعات"),
    ("s", 86400, "day|days|tag|tage|tagen|jour|jours|giorno|giorni|día|días|dia|dias|天|日間|день|дня|дней|दिन|يوم|أيام"),
    ("s", 604800, "week|weeks|woche|wochen|semaine|semaines|settimana|settimane|semana|semanas|周|週|週間|неделя|"
                  "недели|недель|주|सप्ताह|हफ्ते|أسبوع|أسابيع"),
    ("month", 1, "month|months|monat|monate|monaten|mois|mese|mesi|mes|meses|个月|個月|ヶ月|か月|カ月|месяц|месяца|"
                 "месяцев|개월|महीने|महीना|شهر|أشهر|شهور"),
    ("year", 1, "year|years|yr|yrs|jahr|jahre|jahren|an|ans|année|années|anno|anni|año|años|ano|anos|年|год|года|лет|"
                "년|वर्ष|साल|سنة|سنوات|عام|أعوام"),
    ("usd", 1, "dollar|dollars|usd|dólar|dólares|dollaro|dollari|美元|ドル|доллар|доллара|долларов|달러|डॉलर|دولار|دولارات"),
    ("eur", 1, "euro|euros|eur|欧元|ユーロ|евро|유로|यूरो|يورو"),
    ("gbp", 1, "pound|pounds|gbp|pfund|livre|livres|sterline|libra|libras|英镑|ポンド|фунт|фунта|фунтов|파운드|पाउंड"),
    ("cny", 1, "yuan|元|人民币|rmb|cny|юань|юаня|юаней"),
    ("jpy", 1, "yen|円|иен|엔"),
]:
    _register(_UNITS, (_unit, Decimal(_factor)), _surfaces)

_PREFIX_CURRENCY = {"us$": "usd", "$": "usd", "€": "eur", "£": "gbp"}
_DOT_GROUPING = frozenset({"de", "it", "es", "pt", "fr", "ru"})
"""Languages that write 1.000 for a thousand; elsewhere a single '.' is a decimal point."""
_NUMBER = re.compile(r"(?P<neg>(?<!\w)[-−])?(?<![\d.,])"
                     r"(?P<num>\d{1,3}(?:[ \u00a0\u202f\u2009']\d{3}(?!\d))+(?:,\d+)?|\d+(?:[.,]\d+)*)")


def _word_list(table: Mapping[str, Any]) -> re.Pattern[str]:
    """One alternation over a table's surfaces, longest first. Latin and Cyrillic surfaces must end a word
("5 частей" is not hours); other scripts match as prefixes, which covers inflections and CJK."""
    parts = []
    for surface in sorted(table, key=len, reverse=True):
        end = r"(?![^\W\d_])" if unicodedata.name(surface[-1], "").startswith(("LATIN", "CYRILLIC")) else ""
        parts.append(re.escape(surface) + end)
    return re.compile(r"[\s\-.]*(?P<word>" + "|".join(parts) + ")")


_OTHER_DIGIT = re.compile(r"(?![0-9])\d")
_DIGIT = re.compile(r"\d")
_SCALE_WORDS = _word_list(_SCALES)
_UNIT_WORDS = _word_list(_UNITS)


@dataclass(frozen=True)
class Quantity:
    """A number an answer states: its value (scale words applied) and, with a known unit, the unit and
    the value in that unit's base ("0.33 km" -> value 0.33, unit "m", base 330). A date has unit "date",
    its (year, month, day) in `date` (None where not stated) and value YYYYMMDD (20160207; MMDD without a year)."""

    value: Decimal
    unit: str | None = None
    base: Decimal | None = None
    date: DateParts | None = None

    @property
    def in_base(self) -> Decimal:
        return self.value if self.base is None else self.base

    def matches(self, other: Quantity) -> bool:
        """Same unit and amount; with a unit missing on one side, the bare number must equal the other's
        stated value or its value in base units ("1000" matches "1 km"). Dates match where both state a part
        (year, month, day) and agree on it ("February 2016" matches "7 February 2016", "7 February" does not
        match "8 February"); a bare number or a number of years matches a date with that year ("2016",
        "2016年" match "February 7, 2016"): a year is the date stated less precisely, not another answer."""
        if self.date or other.date:
            if self.date and other.date:
                return all(a is None or b is None or a == b for a, b in zip(self.date, other.date, strict=True))
            date, plain = (self, other) if self.date else (other, self)
            year = date.date[0] if date.date else None
            return year is not None and plain.unit in (None, "year") and plain.value == year
        if self.unit and other.unit:
            return self.unit == other.unit and self.base == other.base
        return self.value == other.value or self.in_base == other.in_base


def _ascii_digits(text: str) -> str:
    """Arabic-Indic, Devanagari, full-width ... digits as ASCII, so one pattern reads them all."""
    return _OTHER_DIGIT.sub(lambda match: str(unicodedata.decimal(match.group())), text)


def _parse_number(raw: str, lang: str | None) -> Decimal:
    text = re.sub(r"[ \u00a0\u202f\u2009']", "", raw)
    if "," in text and "." in text:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
        text = text.replace("." if decimal_mark == "," else ",", "").replace(decimal_mark, ".")
    elif "," in text or "." in text:
        mark = "," if "," in text else "."
        parts = text.split(mark)
        grouped = len(parts) > 2 or (len(parts[-1]) == 3 and parts[0] != "0"
                                    and (mark == "," or lang in _DOT_GROUPING))
        text = "".join(parts) if grouped else ".".join(parts)
    return Decimal(text).normalize()


def _unit_at(text: str, position: int) -> bool:
    return bool(_UNIT_WORDS.match(text, position) or _SCALE_WORDS.match(text, position))


def _spell_digits(body: str, lang: str | None) -> str:
    """`body` with its number words and CJK numerals written as digits. Weak (article-like) ones are
    dropped when anything else in the text is a number: "eine Spinne hat acht Beine" states 8 only."""
    spelled = read_number_words(body, lang, _unit_at)
    if any(not number.weak for number in spelled) or _DIGIT.search(body):
        spelled = [number for number in spelled if not number.weak]
    pieces, position = [], 0
    for number in spelled:
        pieces += [body[position:number.start], str(number.value)]
        position = number.end
    return "".join(pieces) + body[position:]


def _date_quantity(parts: DateParts) -> Quantity:
    year, month, day = parts
    return Quantity(Decimal((year or 0) * 10000 + month * 100 + (day or 0)), "date", date=parts)


@lru_cache(maxsize=4096)
def extract_quantities(text: str, lang: str | None = None) -> tuple[Quantity, ...]:
    """Every number and date `text` states, in text order, with scale words and units applied. `lang` (the
    answer's language, if known) decides what "1.000" means and whether homographs such as "otto" are numbers."""
    body = _spell_digits(_ascii_digits(normalize(text)).casefold(), lang)
    found: list[tuple[int, Quantity]] = []
    for start, end, parts in find_dates(body, lang) if _DIGIT.search(body) else ():
        found.append((start, _date_quantity(parts)))
        body = body[:start] + " " * (end - start) + body[end:]
    for match in _NUMBER.finditer(body):
        value = _parse_number(match.group("num"), lang)
        if match.group("neg"):
            value = -value
        position = match.end()
        scale = _SCALE_WORDS.match(body, position)
        if scale:
            value *= _SCALES[scale.group("word")]
            position = scale.end()
        unit: tuple[str, Decimal] | None = None
        word = _UNIT_WORDS.match(body, position)
        if word:
            unit = _UNITS[word.group("word")]
        else:
            before = body[:match.start()].rstrip()
            prefix = next((sym for sym in _PREFIX_CURRENCY if before.endswith(sym)), None)
            unit = (_PREFIX_CURRENCY[prefix], Decimal(1)) if prefix else None
        value = value.normalize()
        found.append((match.start(), Quantity(value, unit[0], (value * unit[1]).normalize()) if unit
                       else Quantity(value)))
    return tuple(quantity for _, quantity in sorted(found, key=lambda item: item[0]))


def quantities_agree(first: Sequence[Quantity], second: Sequence[Quantity]) -> bool:
    """True iff every quantity of each side matches one of the other side (both sides non-empty)."""
    return (bool(first) and bool(second) and all(any(a.matches(b) for b in second) for a in first)
            and all(any(b.matches(a) for a in first) for b in second))
