"""Cross-lingual semantic voting for open answers: normalize, cluster across languages, pick a consensus.

The multiple-choice vote counts letters; open answers have no letters, so "the same answer" is
decided pairwise, in this order:

1. Same normalized text (casefold, accents and punctuation stripped, a leading article dropped):
   "Denver Broncos." and "the denver broncos" agree without asking the embedder.
2. Both answers state numbers: they agree iff their quantities match, whatever the embedding
   says. Numbers are read with thousands separators and decimal commas ("1,000", "1.000" in a
   dot-grouping language, "3,5"), scale words ("3 million", "300万") and a small multilingual
   unit table, so "330 m", "330 Meter", "330米" and "0.33 km" agree and "300 feet" does not.
   Embeddings are poor at numbers (every "N metres" looks alike to them), hence the hard rule.
3. Otherwise the cosine of the two answers' embeddings against `threshold`.

Clustering is complete-linkage agglomeration over those pairwise verdicts: two groups merge only
when every cross pair agrees, so a cluster never chains "330 m" ~ "330" ~ "300" into one. The
consensus is the biggest cluster, then the one spanning more languages, then the one holding the
earliest sample in language order: deterministic, like `calm_rag.voting`. Support is a share of
*all* samples drawn (unparsed ones count against it), and the pipeline abstains when nothing
parsed or the consensus holds less than `min_support`.

Known limits: number words ("four", "أربعة") and CJK numerals are left to the embedder; dates
compare as number sets, so "February 7, 2016" and "2016年2月7日" disagree.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np

from calm_rag.errors import CalmRagError
from calm_rag.extraction import normalize
from calm_rag.voting import pairwise_consistency

Encode = Callable[[list[str]], np.ndarray]
"""Texts -> one L2-normalized embedding row per text (cosine = dot product)."""

DEFAULT_THRESHOLD = 0.80
"""Cosine at or above which two answers mean the same, for EmbeddingGemma (the default embedder) with its
sentence-similarity ("STS") prompt, as `calm_rag.pipelines.freeform.load_encoder` embeds answers.
Whole sentences separate cleanly there (same meaning across languages ~0.89-0.94, unrelated 0.11-0.18),
but answers are short, and short texts are compressed. Measured on 1-4 word answers (en/de/zh/ja/ru):
23 same-meaning pairs 0.69-1.00 (mean 0.89), 23 related-but-different pairs ("Paris"/"London",
"Pacific"/"Atlantic Ocean") 0.58-0.88 (mean 0.72), unrelated 0.49-0.61. 0.80 got 42 of the 46 right,
erring towards splitting (3 split, 1 merged: "Martin Luther"/"Martin Luther King"); a wrong merge would
corrupt the vote, a wrong split only lowers support. The value belongs to the embedder: multilingual-e5
compresses cosines further (unrelated sentences 0.71-0.84), so pass its own, higher threshold."""
DEFAULT_MIN_SUPPORT = 0.2
"""The consensus must hold at least this share of all samples, or the pipeline abstains: with 6
languages x 3 samples, at least 4 samples must agree. Independently, a consensus needs two agreeing
samples (unless only one sample parsed), so all-different answers never win."""
DEFAULT_MAX_CHARS = 200
"""Answers are cut to this many characters before comparing: a rambling span would otherwise be
embedded as a paragraph and match nothing, and number sets from whole sentences are noise."""


@dataclass(frozen=True)
class ClusterConfig:
    threshold: float = DEFAULT_THRESHOLD
    min_support: float = DEFAULT_MIN_SUPPORT
    max_chars: int = DEFAULT_MAX_CHARS

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise CalmRagError("the cosine threshold must be in [-1, 1]")
        if not 0.0 <= self.min_support <= 1.0:
            raise CalmRagError("min_support must be in [0, 1]")
        if self.max_chars < 1:
            raise CalmRagError("max_chars must be at least 1")


# ---- text normalization -----------------------------------------------------------------------

_ARTICLES = frozenset("the a an der die das ein eine le la les l un une il lo i gli uno una el los las o os as um uma"
                      .split())


def strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


def answer_key(text: str) -> str:
    """The exact-match form: NFKC, casefold, no accents, punctuation as spaces, no leading article.
    Symbols are kept, so "C++" and "C" stay different."""
    folded = strip_accents(normalize(text).casefold())
    spaced = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in folded)
    words = spaced.split()
    if len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def truncate(text: str, max_chars: int) -> str:
    """`text` cut to `max_chars`, at a word boundary when one is in the second half."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_chars // 2 else cut).rstrip()


# ---- numbers and units ------------------------------------------------------------------------

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


_SCALE_WORDS = _word_list(_SCALES)
_UNIT_WORDS = _word_list(_UNITS)


@dataclass(frozen=True)
class Quantity:
    """A number an answer states: its value (scale words applied) and, with a known unit, the unit and
    the value in that unit's base ("0.33 km" -> value 0.33, unit "m", base 330)."""

    value: Decimal
    unit: str | None = None
    base: Decimal | None = None

    @property
    def in_base(self) -> Decimal:
        return self.value if self.base is None else self.base

    def matches(self, other: Quantity) -> bool:
        """Same unit and amount; with a unit missing on one side, the bare number must equal the other's
        stated value or its value in base units ("1000" matches "1 km")."""
        if self.unit and other.unit:
            return self.unit == other.unit and self.base == other.base
        return self.value == other.value or self.in_base == other.in_base


def _ascii_digits(text: str) -> str:
    """Arabic-Indic, Devanagari, full-width ... digits as ASCII, so one pattern reads them all."""
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text)


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


@lru_cache(maxsize=4096)
def extract_quantities(text: str, lang: str | None = None) -> tuple[Quantity, ...]:
    """Every number `text` states, with scale words and units applied. `lang` decides what "1.000" means."""
    body = _ascii_digits(normalize(text)).casefold()
    found = []
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
        found.append(Quantity(value, unit[0], (value * unit[1]).normalize()) if unit else Quantity(value))
    return tuple(found)


def quantities_agree(first: Sequence[Quantity], second: Sequence[Quantity]) -> bool:
    """True iff every quantity of each side matches one of the other side (both sides non-empty)."""
    return (bool(first) and bool(second) and all(any(a.matches(b) for b in second) for a in first)
            and all(any(b.matches(a) for a in first) for b in second))


# ---- scripts --------------------------------------------------------------------------------------

_EXPECTED_SCRIPTS = {"zh": ("CJK",), "ja": ("CJK", "HIRAGANA", "KATAKANA"), "ko": ("HANGUL", "CJK"),
                     "ar": ("ARABIC",), "hi": ("DEVANAGARI",), "ru": ("CYRILLIC",)}


def foreign_script(text: str, lang: str) -> bool:
    """True when `text` has letters and none of them is in `lang`'s script: a sign the model answered in
    another language (a note only; cross-lingual embeddings still cluster it)."""
    expected = _EXPECTED_SCRIPTS.get(lang, ("LATIN",))
    letters = [unicodedata.name(ch, "") for ch in text if ch.isalpha()]
    return bool(letters) and not any(name.startswith(expected) for name in letters)


# ---- pairwise agreement ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """Answers that share one normalized key (they always agree), with what comparing them needs."""

    key: str
    text: str
    quantities: tuple[Quantity, ...]
    indices: tuple[int, ...]


def _unit_rows(vectors: np.ndarray, count: int) -> np.ndarray:
    rows = np.asarray(vectors, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[0] != count:
        raise CalmRagError(f"the encoder returned an array of shape {rows.shape} for {count} texts")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


def _scores(nodes: Sequence[_Node], encode: Encode) -> np.ndarray:
    """Pairwise agreement scores: 1 for number matches, -1 for number mismatches, else the cosine. The
    encoder is only called when some pair is not decided by numbers."""
    count = len(nodes)
    if count < 2 or all(node.quantities for node in nodes):
        scores = np.ones((count, count), dtype=np.float32)
    else:
        vectors = _unit_rows(encode([node.text for node in nodes]), count)
        scores = vectors @ vectors.T
    for i in range(count):
        scores[i, i] = 1.0
        for j in range(i + 1, count):
            first, second = nodes[i].quantities, nodes[j].quantities
            if first and second:
                scores[i, j] = scores[j, i] = 1.0 if quantities_agree(first, second) else -1.0
    return scores


def semantic_match(prediction: str | None, gold: str | None, encode: Encode, threshold: float = DEFAULT_THRESHOLD,
                   lang: str | None = None, max_chars: int = DEFAULT_MAX_CHARS) -> bool:
    """Whether a free-form prediction means the gold answer, by the clustering's own rule (exact key,
    then numbers, then cosine >= threshold). `lang` is the language both are written in, if known.
    Scoring a dataset, pass a `CachedEncoder` primed with every prediction and gold text: one embedding
    call in all instead of one per pair."""
    if not prediction or not gold or not answer_key(prediction) or not answer_key(gold):
        return False
    nodes = [_node(truncate(text, max_chars), lang, (index,)) for index, text in enumerate((prediction, gold))]
    if nodes[0].key == nodes[1].key:
        return True
    return bool(_scores(nodes, encode)[0, 1] >= threshold)


def exact_match(prediction: str | None, gold: str | None) -> bool:
    """Same answer after `answer_key` normalization (SQuAD-style, multilingual articles)."""
    return bool(prediction and gold) and answer_key(prediction or "") == answer_key(gold or "") != ""


def _node(text: str, lang: str | None, indices: tuple[int, ...]) -> _Node:
    return _Node(answer_key(text), text, extract_quantities(text, lang), indices)


class CachedEncoder:
    """An `Encode` that embeds each distinct text once: a batch primes it with every answer in one call,
    and the per-question clusterings then only look rows up."""

    def __init__(self, encode: Encode) -> None:
        self.encode = encode
        self.rows: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(text for text in texts if text not in self.rows))
        if missing:
            for text, row in zip(missing, _unit_rows(self.encode(missing), len(missing))):
                self.rows[text] = row
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self.rows[text] for text in texts])


# ---- clustering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    index: int
    """Position over all samples, in language order then sample order."""
    lang: str
    sample: int
    """Position among its language's samples."""
    text: str
    centrality: float
    """Mean agreement score with the other members of its cluster (1 for a singleton)."""
    foreign_script: bool = False

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"lang": self.lang, "text": self.text}
        if self.foreign_script:
            record["foreign_script"] = True
        return record


@dataclass(frozen=True)
class Cluster:
    members: tuple[Member, ...]
    samples_share: float
    """Members / all samples drawn, unparsed included."""
    languages_share: float
    """Languages with a member / all languages sampled."""

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(member.lang for member in self.members))

    @property
    def representative(self) -> Member:
        """The most central member; the earliest on ties."""
        return max(self.members, key=lambda member: (member.centrality, -member.index))

    def central_in(self, lang: str) -> Member | None:
        """The most central member written for `lang`, if the cluster has one."""
        own = [member for member in self.members if member.lang == lang]
        return max(own, key=lambda member: (member.centrality, -member.index)) if own else None

    def to_dict(self) -> dict[str, Any]:
        return {"representative": self.representative.text,
                "members": [member.to_dict() for member in self.members],
                "support": {"samples": round(self.samples_share, 4), "languages": round(self.languages_share, 4)}}


@dataclass(frozen=True)
class Clustering:
    clusters: tuple[Cluster, ...]
    """Ranked: the consensus candidate first."""
    language_majorities: dict[str, int | None]
    """Language -> the rank of its own majority cluster (None where nothing parsed)."""
    consistency: float | None
    """The paper's pairwise consistency with "same cluster" as agreement."""
    parsed: dict[str, int]
    total: int
    min_support: float
    tied: bool = False
    foreign: int = 0
    """Parsed answers written in another script than their language's."""

    @property
    def agreement(self) -> bool:
        """Whether any two parsed samples agree (trivially true with a single parsed sample)."""
        return bool(self.clusters) and (len(self.clusters[0].members) > 1 or sum(self.parsed.values()) == 1)

    @property
    def winner(self) -> Cluster | None:
        """The consensus cluster, or None when abstaining: nothing parsed, no two samples agree, or the
        top cluster holds less than `min_support` of all samples."""
        if not self.agreement or self.clusters[0].samples_share < self.min_support:
            return None
        return self.clusters[0]

    @property
    def abstained(self) -> bool:
        return self.winner is None

    @property
    def message(self) -> str:
        """Why the pipeline abstained, or what is worth knowing about the consensus."""
        if not self.clusters:
            return "no sample in any language stated a parseable answer; abstaining"
        if not self.agreement:
            return "no two samples agree on an answer; abstaining"
        if self.winner is None:
            best = self.clusters[0]
            return (f"no answer reached the minimum support (best: {len(best.members)} of {self.total} samples, "
                    f"{best.samples_share:.0%} < {self.min_support:.0%}); abstaining")
        notes = ["tie broken deterministically (see calm_rag.clustering)"] if self.tied else []
        if self.foreign:
            notes.append(f"{self.foreign} answer(s) written in another script than their prompt's language "
                         "(still clustered)")
        return "; ".join(notes)


def _agglomerate(nodes: Sequence[_Node], scores: np.ndarray, threshold: float) -> list[list[int]]:
    """Complete linkage: repeatedly merge the two groups whose weakest cross pair is strongest, while it
    reaches `threshold`; ties go to the earliest pair, so the result is deterministic."""
    groups = [[index] for index in range(len(nodes))]
    while len(groups) > 1:
        best: tuple[float, int, int] | None = None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                link = float(scores[np.ix_(groups[a], groups[b])].min())
                if link >= threshold and (best is None or link > best[0]):
                    best = (link, a, b)
        if best is None:
            break
        _, a, b = best
        groups[a] = sorted(groups[a] + groups.pop(b))
    return groups


def cluster_answers(answers: Mapping[str, Sequence[str | None]], encode: Encode,
                    config: ClusterConfig = ClusterConfig()) -> Clustering:
    """Cluster every language's sampled answers (None = unparsed) across languages and rank the clusters.
    The mapping's order is the language order used for tie-breaking."""
    flat = [(lang, sample, text) for lang, texts in answers.items() for sample, text in enumerate(texts)]
    by_key: dict[str, list[int]] = {}
    clipped: dict[int, str] = {}
    for index, (lang, _, text) in enumerate(flat):
        if text is not None and answer_key(text):
            clipped[index] = truncate(text.strip(), config.max_chars)
            by_key.setdefault(answer_key(clipped[index]), []).append(index)
    nodes = [_node(clipped[indices[0]], flat[indices[0]][0], tuple(indices)) for indices in by_key.values()]
    scores = _scores(nodes, encode)
    groups = _agglomerate(nodes, scores, config.threshold)

    node_of = {index: number for number, node in enumerate(nodes) for index in node.indices}
    languages = list(answers)
    clusters = []
    for group in groups:
        indices = sorted(index for number in group for index in nodes[number].indices)
        members = []
        for index in indices:
            others = [node_of[other] for other in indices if other != index]
            centrality = float(np.mean([scores[node_of[index], other] for other in others])) if others else 1.0
            lang, sample, text = flat[index]
            members.append(Member(index, lang, sample, text.strip(), centrality, foreign_script(text, lang)))
        langs = {member.lang for member in members}
        clusters.append(Cluster(tuple(members), len(members) / len(flat), len(langs) / len(languages)))
    clusters.sort(key=lambda c: (-len(c.members), -len(c.languages), c.members[0].index))

    majorities: dict[str, int | None] = {}
    for lang in languages:
        counts = [sum(member.lang == lang for member in cluster.members) for cluster in clusters]
        majorities[lang] = max(range(len(clusters)), key=lambda rank: (counts[rank], -rank)) if any(counts) else None
    tied = len(clusters) > 1 and len(clusters[0].members) == len(clusters[1].members)
    return Clustering(
        clusters=tuple(clusters),
        language_majorities=majorities,
        consistency=pairwise_consistency({lang: None if rank is None else str(rank)
                                          for lang, rank in majorities.items()}),
        parsed={lang: sum(index in clipped for index, (code, _, _) in enumerate(flat) if code == lang)
                for lang in languages},
        total=len(flat),
        min_support=config.min_support,
        tied=tied,
        foreign=sum(member.foreign_script for cluster in clusters for member in cluster.members),
    )


def own_answer(clustering: Clustering, lang: str) -> Member | None:
    """A language's own answer: the most central of its samples in its majority cluster (with one
    sample, that sample's span); None when none of its samples parsed."""
    rank = clustering.language_majorities.get(lang)
    return None if rank is None else clustering.clusters[rank].central_in(lang)


def consensus_answer(clustering: Clustering, lang: str) -> Member | None:
    """The cross-lingual consensus as scored against `lang`'s gold: the consensus cluster's member
    written for `lang` if it has one, else its representative; None when the vote abstains."""
    winner = clustering.winner
    if winner is None:
        return None
    return winner.central_in(lang) or winner.representative
