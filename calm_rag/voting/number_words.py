"""Numbers written as words or CJK numerals, read as values: "acht", "eight", "huit", "восемь", "ثمانية",
"八条", "二十一", "einundzwanzig", "vingt et un", "quatre-vingt-dix", "duecento", "veintiuno".

`calm_rag.voting.quantities` compares answers that state numbers by value, because embeddings are poor at
numbers; this module lets it see the numbers that are spelled out. Covered: en, de, fr, it, es, pt, ru and ar
words (0-19, tens, hundreds, "thousand"; compounds written apart, hyphenated or solid) and zh/ja numerals.
Ordinals, fractions and Japanese native readings (ひとつ) are not read.

Rules against false positives (each one tested in tests/voting/test_number_words.py):
- Words match whole words only, looked up in one table for all languages.
- Homographs, numbers in one language but words or names in another ("otto", "due", "sei", "elf", "once",
  "dos", "sept", "seize", "cent", "dez", "mil", "null", "um", "mila"), *start* a number only when the answer's
  language is theirs; after another number word ("vingt-sept", "dos mil" in any language) they always count.
- Article-like "one"s ("one", "ein/eine/einen/...", "un/une", "uno/una", "um/uma", "один/одна/одно", "أحد") are
  *weak*: alone in a run they count only when they end the text (trailing punctuation aside) or stand before a
  unit or scale word ("eine", "ein Meter", "un million"), never after a determiner ("no one", "the one",
  "der eine", "l'un"), and the caller drops them when anything else in the answer is a number. So "eine Spinne"
  is no number and "eine Spinne hat acht Beine" is 8. Chinese 一 before a generic classifier (一个, 一种) is
  weak as well: it is often just "a".
- A CJK numeral run counts only when it is not part of a word: followed by a classifier or unit (八条, 八つ,
  三千米, 七日) it counts whatever precedes it; followed by the end, a non-CJK character or a particle it counts
  unless an ideograph other than 第 or a copula (是, 有, 约, ...) precedes it. Runs that start with 万/亿 ("万一"),
  a bare 百/千 touching other ideographs ("百度"), runs after a digit ("300万" is the scale rule's) and two
  bare digits ("三四", "three or four") are no numbers; so "统一", "一样", "一起", "唯一" stay words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

# ---- the word table -----------------------------------------------------------------------------
_UNITS = {  # 0..19 (Arabic: 0..10, its teens are a unit followed by عشر); "/" separates variants
    "en": "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
          "seventeen eighteen nineteen",
    "de": "null eins/ein/eine/einen/einem/einer/eines zwei/zwo drei vier fünf sechs sieben acht neun zehn elf zwölf "
          "dreizehn vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn",
    "fr": "zéro un/une deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize",
    "it": "zero uno/una/un due tre quattro cinque sei sette otto nove dieci undici dodici tredici quattordici "
          "quindici sedici diciassette diciotto diciannove",
    "es": "cero uno/una/un dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince dieciséis "
          "diecisiete dieciocho diecinueve",
    "pt": "zero um/uma dois/duas três quatro cinco seis sete oito nove dez onze doze treze catorze/quatorze quinze "
          "dezesseis/dezasseis dezessete/dezassete dezoito dezenove/dezanove",
    "ru": "ноль один/одна/одно два/две три четыре пять шесть семь восемь девять десять одиннадцать двенадцать "
          "тринадцать четырнадцать пятнадцать шестнадцать семнадцать восемнадцать девятнадцать",
    "ar": "صفر واحد/واحدة/أحد/إحدى اثنان/اثنين/اثنتان/اثنتين/اثنا/اثني/اثنتا ثلاثة/ثلاث أربعة/أربع خمسة/خمس ستة/ست "
          "سبعة/سبع ثمانية/ثماني/ثمان تسعة/تسع",
}
_TENS = {  # 20..90
    "en": "twenty thirty forty fifty sixty seventy eighty ninety",
    "de": "zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig",
    "fr": "vingt/vingts trente quarante cinquante soixante septante huitante/octante nonante",
    "it": "venti trenta quaranta cinquanta sessanta settanta ottanta novanta",
    "es": "veinte treinta cuarenta cincuenta sesenta setenta ochenta noventa",
    "pt": "vinte trinta quarenta cinquenta sessenta setenta oitenta noventa",
    "ru": "двадцать тридцать сорок пятьдесят шестьдесят семьдесят восемьдесят девяносто",
    "ar": "عشرون/عشرين ثلاثون/ثلاثين أربعون/أربعين خمسون/خمسين ستون/ستين سبعون/سبعين ثمانون/ثمانين تسعون/تسعين",
}
_HUNDREDS = {  # 200..900 written as one word that is not "<unit> + hundred"
    "es": "doscientos/doscientas trescientos/trescientas cuatrocientos/cuatrocientas quinientos/quinientas "
          "seiscientos/seiscientas setecientos/setecientas ochocientos/ochocientas novecientos/novecientas",
    "pt": "duzentos/duzentas trezentos/trezentas quatrocentos/quatrocentas quinhentos/quinhentas "
          "seiscentos/seiscentas setecentos/setecentas oitocentos/oitocentas novecentos/novecentas",
    "ru": "двести триста четыреста пятьсот шестьсот семьсот восемьсот девятьсот",
    "ar": "مائتان/مئتان/مائتين/مئتين ثلاثمائة/ثلاثمئة أربعمائة/أربعمئة خمسمائة/خمسمئة ستمائة/ستمئة "
          "سبعمائة/سبعمئة ثمانمائة/ثمانمئة تسعمائة/تسعمئة",
}
_MULTIPLIERS = [  # (value, kind, surfaces): "<n> hundred", "<n> thousand", or alone
    (100, "hundred", "hundred hundert cent cents cento cien ciento cem сто مائة مئة"),
    (1000, "thousand", "thousand tausend mille mila mil тысяча тысячи тысяч ألف آلاف"),
]
_CONNECTORS = "and und et e y و"
_HOMOGRAPHS = {"otto": "it", "due": "it", "sei": "it", "mila": "it", "elf": "de", "null": "de", "once": "es",
               "dos": "es", "sept": "fr", "seize": "fr", "cent": "fr", "cents": "fr", "dez": "pt", "um": "pt",
               "mil": "es pt"}
_WEAK = frozenset("one ein eine einen einem einer eines un une uno una um uma один одна одно احد احدي".split())
_DETERMINERS = frozenset("no the this that any every each which der die das den dem des l le la el lo".split())
_COMPOUND_ONLY = {  # pieces of solid compounds: Italian elided tens (ventotto), accented and Spanish forms
    **{stem: 10 * tens
       for tens, stem in enumerate("vent trent quarant cinquant sessant settant ottant novant".split(), start=2)},
    "tré": 3, "veinti": 20, "ún": 1, "dós": 2, "trés": 3, "séis": 6,
}
_ALEF = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ى": "ي"})


@dataclass(frozen=True)
class _Entry:
    value: int
    kind: str
    """"num" (adds), "hundred"/"thousand" (multiply), "and" (joins), "ten" (Arabic عشر: 10, or unit + 10),
    "vingt" (20, or 80 after "quatre")."""
    langs: frozenset[str] | None = None
    """Set for homographs: the languages where the word starts a number."""


def _key(word: str) -> str:
    return word.casefold().translate(_ALEF)


_WORDS: dict[str, _Entry] = {}


def _add(value: int, kind: str, surfaces: str) -> None:
    for surface in surfaces.split("/"):
        langs = _HOMOGRAPHS.get(surface)
        _WORDS[_key(surface)] = _Entry(value, kind, frozenset(langs.split()) if langs else None)


for _table, _first, _step in ((_UNITS, 0, 1), (_TENS, 20, 10), (_HUNDREDS, 200, 100)):
    for _row in _table.values():
        for _offset, _surfaces in enumerate(_row.split()):
            _add(_first + _offset * _step, "num", _surfaces)
for _value, _kind, _surfaces in _MULTIPLIERS:
    for _surface in _surfaces.split():
        _add(_value, _kind, _surface)
for _surface in _CONNECTORS.split():
    _add(0, "and", _surface)
for _surface in ("عشرة", "عشر"):
    _add(10, "ten", _surface)
for _surface in ("vingt", "vingts"):
    _add(20, "vingt", _surface)

_PIECES = {**{key: entry for key, entry in _WORDS.items() if entry.kind != "and" and len(key) > 1},
           "und": _WORDS["und"], **{_key(stem): _Entry(value, "num") for stem, value in _COMPOUND_ONLY.items()}}
_SOLID = re.compile("(?:" + "|".join(re.escape(piece) for piece in sorted(_PIECES, key=len, reverse=True)
                                     if piece.isascii() or piece.isalpha() and piece[0] < "\u0400") + ")+")
"""Solid compounds are Latin: "einundzwanzig", "duecento", "veintiuno" (German, Italian, Spanish)."""
_WORD = re.compile(r"[^\W\d_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_GAP = re.compile(r"[ \t\u00a0\-\u2010\u2011]+")
_DETERMINER_GAP = re.compile(r"\s+|\s*['’]\s*")
_TAIL = re.compile(r"[\W_]*")


@dataclass(frozen=True)
class SpelledNumber:
    """A number written in words or numerals at text[start:end]."""

    start: int
    end: int
    value: int
    weak: bool = False
    """Article-like: counts only when nothing else in the answer is a number (see the module docstring)."""


# ---- Latin, Cyrillic and Arabic words -----------------------------------------------------------
@dataclass(frozen=True)
class _Reading:
    """A number being read piece by piece; `add` returns the longer reading, or None if a piece does not fit."""

    total: int = 0
    group: int = 0
    last: int | None = None
    """The last piece added (None: nothing yet, or a fresh group after "thousand"; -1: a closed unit)."""
    joined: bool = False

    @property
    def value(self) -> int:
        return self.total + self.group

    def add(self, entry: _Entry) -> _Reading | None:
        value, kind = entry.value, entry.kind
        if kind == "and":
            return None if self.joined or self.value == 0 else replace(self, joined=True)
        if kind == "thousand":
            if self.total or self.joined:
                return None
            return _Reading(total=(self.group or 1) * value)
        if kind == "hundred":
            return None if self.group >= 10 or self.joined else replace(self, group=(self.group or 1) * 100,
                                                                        last=100)
        last = self.last
        if last is not None and 1 <= last <= 9 and not self.joined:
            if kind == "ten":  # Arabic: ثلاثة عشر = 13
                return replace(self, group=self.group + 10, last=-1)
            if kind == "vingt" and last == 4:  # quatre-vingt(s) = 80
                return replace(self, group=self.group + 76, last=80)
        if last is None:
            fits = value < 1000 if self.total else True
        elif last >= 100:
            fits = 0 < value < 100
        elif last >= 20 and last % 10 == 0:
            fits = 0 < value < 10 or (10 <= value < 20 and last in (60, 80))
        elif last == 10:
            fits = 0 < value < 10
        elif 1 <= last <= 9 and self.joined and value >= 20 and value % 10 == 0 and value < 100:
            return replace(self, group=self.group + value, last=-1, joined=False)  # einundzwanzig, واحد وعشرون
        else:
            fits = False
        return replace(self, group=self.group + value, last=value, joined=False) if fits else None


def _read(pieces: list[_Entry], reading: _Reading = _Reading()) -> _Reading | None:
    current: _Reading | None = reading
    for piece in pieces:
        current = current.add(piece) if current is not None else None
    return None if current is None or current.joined else current


def _segment(word: str) -> list[_Entry] | None:
    """A solid compound's pieces, longest piece first at each position, if it reads as one number."""
    if len(word) < 6 or not _SOLID.fullmatch(word):
        return None

    def split(position: int) -> list[_Entry] | None:
        if position == len(word):
            return []
        for size in range(len(word) - position, 0, -1):
            piece = _PIECES.get(word[position:position + size])
            rest = split(position + size) if piece else None
            if piece and rest is not None:
                return [piece, *rest]
        return None

    pieces = split(0)
    return pieces if pieces and len(pieces) > 1 and _read(pieces) is not None else None


def _pieces(word: str) -> tuple[list[_Entry], bool] | None:
    """A (casefolded) word's pieces and whether it is a homograph's bare form (None: no number word)."""
    key = word if word.isascii() else _key(word)
    entry = _WORDS.get(key)
    if entry is not None:
        return [entry], entry.langs is not None
    if key.startswith("و") and key[1:] in _WORDS and _WORDS[key[1:]].kind != "and":
        return [_WORDS["و"], _WORDS[key[1:]]], False
    pieces = _segment(key)
    return (pieces, False) if pieces else None


def _words(text: str, lang: str | None, unit_at: Callable[[str, int], bool] | None) -> Iterator[SpelledNumber]:
    tokens = list(_WORD.finditer(text))
    index = 0
    while index < len(tokens):
        token = tokens[index]
        found = _pieces(token.group())
        index += 1
        if found is None:
            continue
        pieces, homograph = found
        if pieces[0].kind == "and" and len(pieces) > 1:
            pieces = pieces[1:]
        entry = pieces[0]
        if (entry.kind == "and" or homograph and (lang is None or lang not in (entry.langs or ()))
                or entry.kind in ("hundred", "thousand") and text[:token.start()].rstrip()[-1:].isdigit()):
            continue
        reading = _read(pieces)
        if reading is None:
            continue
        end, taken = token.end(), 1
        while index < len(tokens) and _GAP.fullmatch(text, end, tokens[index].start()):
            following = _pieces(tokens[index].group())
            extended = _read(following[0], reading) if following else None
            step = 1
            if following and following[0][0].kind == "and" and len(following[0]) == 1 and index + 1 < len(tokens) \
                    and _GAP.fullmatch(text, tokens[index].end(), tokens[index + 1].start()):
                after = _pieces(tokens[index + 1].group())
                extended = _read(following[0] + after[0], reading) if after else None
                step = 2
            if extended is None:
                break
            reading, end, taken = extended, tokens[index + step - 1].end(), taken + step
            index += step
        weak = taken == 1 and len(pieces) == 1 and _key(token.group()) in _WEAK
        if weak and not _weak_counts(text, tokens, index - 1, unit_at):
            continue
        yield SpelledNumber(token.start(), end, reading.value, weak)


def _weak_counts(text: str, tokens: list[re.Match[str]], position: int,
                 unit_at: Callable[[str, int], bool] | None) -> bool:
    """An article-like word counts only at the end of the text or before a unit, never after a determiner."""
    token = tokens[position]
    if position > 0:
        previous = tokens[position - 1]
        if (_key(previous.group()) in _DETERMINERS
                and _DETERMINER_GAP.fullmatch(text, previous.end(), token.start())):
            return False
    return bool(_TAIL.fullmatch(text, token.end()) or unit_at and unit_at(text, token.end()))


# ---- CJK numerals -------------------------------------------------------------------------------
_CJK_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
               "八": 8, "九": 9}
_CJK_SMALL = {"十": 10, "百": 100, "千": 1000}
_CJK_BIG = {"万": 10 ** 4, "萬": 10 ** 4, "亿": 10 ** 8, "億": 10 ** 8}
_CJK_RUN = re.compile("[" + "".join([*_CJK_DIGITS, *_CJK_SMALL, *_CJK_BIG]) + "]+")
_GENERIC_CLASSIFIERS = frozenset("个個种種只隻条條件张張本位名部座篇首つ家颗顆")
_CLASSIFIERS = _GENERIC_CLASSIFIERS | frozenset("人次岁歲歳才年月日号號天倍架辆輛头頭匹根块塊台层層楼樓届屆元度米克吨噸"
                                                "秒周週回階枚冊杯羽粒场場集章节節票斤")
_CJK_UNITS = re.compile("分钟|分鐘|分間|小时|小時|时间|時間|平方|摄氏|攝氏|华氏|華氏|公里|公斤|公分|厘米|千米|千克|"
                        "美元|欧元|歐元|英里|英尺|英镑|英鎊|日元|人民币|か月|ヶ月|[\u30a0-\u30ff]")
_PARTICLES = frozenset("はがをのにでともかやよねへ")
_BEFORE_OK = frozenset("第是为為有共约約和或至到及与與")


def _ideograph(char: str) -> bool:
    return bool(char) and ("\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff")


def _cjk(char: str) -> bool:
    """An ideograph or kana: a character that continues a CJK word."""
    return _ideograph(char) or "\u3040" <= char <= "\u30ff"


def _cjk_value(run: str) -> int | None:
    if not any(char in _CJK_SMALL or char in _CJK_BIG for char in run):
        if len(run) == 1:
            return _CJK_DIGITS[run]
        positional = (len(run) >= 3 or run[-1] in "〇零") and not set(run) & {"两", "兩"}
        return int("".join(str(_CJK_DIGITS[char]) for char in run)) if positional else None  # 二〇一六 = 2016
    total = section = 0
    digit: int | None = None
    smallest = 10 ** 4
    for char in run:
        if char in "〇零":
            digit = None if digit is None else -1  # a placeholder zero: 一百零五
        elif char in _CJK_DIGITS:
            if digit is not None and digit != -1:
                return None
            digit = _CJK_DIGITS[char]
        elif char in _CJK_SMALL:
            if _CJK_SMALL[char] >= smallest or digit == -1:
                return None
            section += (1 if digit is None else digit) * _CJK_SMALL[char]
            digit, smallest = None, _CJK_SMALL[char]
        else:
            section += max(digit or 0, 0)
            if section == 0:
                return None
            total = (total + section) * _CJK_BIG[char] if _CJK_BIG[char] > 10 ** 4 else total + section * 10 ** 4
            section, digit, smallest = 0, None, 10 ** 4
    return total + section + max(digit or 0, 0)


def _numerals(text: str) -> Iterator[SpelledNumber]:
    for match in _CJK_RUN.finditer(text):
        run, start, end = match.group(), match.start(), match.end()
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if run[0] in _CJK_BIG or before.isdigit():
            continue
        value = _cjk_value(run)
        if value is None:
            continue
        if run in ("百", "千") and (_ideograph(before) or _cjk(after)):
            continue
        glued = _cjk(after) and after not in _PARTICLES or _ideograph(before) and before not in _BEFORE_OK
        if glued and not (after in _CLASSIFIERS or _CJK_UNITS.match(text, end)):  # 八条 counts, 一样 does not
            continue
        yield SpelledNumber(start, end, value, weak=run == "一" and after in _GENERIC_CLASSIFIERS)


def read_number_words(text: str, lang: str | None = None,
                      unit_at: Callable[[str, int], bool] | None = None) -> list[SpelledNumber]:
    """Every number spelled out in `text` (NFKC-normalized and casefolded), in text order. `lang` (the answer's
    language, if known) lets homographs start a number; `unit_at(text, position)` says whether a unit or scale
    word starts at a position, so a weak "one" before one counts ("ein Meter", "une million")."""
    code = lang.split("-")[0].casefold() if lang else None
    return sorted([*_words(text, code, unit_at), *_numerals(text)], key=lambda number: number.start)
