"""When two short answers mean the same: exact key, then numbers, then embedding cosine.

The pairwise rule behind open-question voting and scoring, in this order:
1. Same normalized text (casefold, accents and punctuation stripped, a leading article dropped):
   "Denver Broncos." and "the denver broncos" agree without asking the embedder.
2. Both answers state numbers or dates, in digits, words or CJK numerals: they agree iff their quantities
   match (`calm_rag.voting.quantities`), so "acht" and "八条" agree and "8" and "6" never do.
3. Otherwise the cosine of the two answers' embeddings against `threshold`; for two answers in different
   scripts that read aloud to one consonant skeleton of three or more consonants (a transliterated name,
   `calm_rag.voting.names`: "Gagarin" / "加加林" / "Гагарин"), against `threshold - sound_margin`.

Only the short answer span is compared, cut to `max_chars` (`truncate`): the explanation or paragraph
around it never reaches the embedder, the number reader or the name check, so a name mentioned in passing
cannot win a match.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from calm_rag.errors import CalmRagError
from calm_rag.voting.extraction import normalize
from calm_rag.voting.names import ARTICLES, SoundKey, sound_key, sounds_alike
from calm_rag.voting.quantities import Quantity, extract_quantities, quantities_agree

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

SOUND_MARGIN = 0.08
"""How far below the threshold a transliterated name still agrees (`calm_rag.voting.names`). Measured with
EmbeddingGemma on 86 names (places, people, rivers) in en/de/fr/zh/ja/ru/ar forms, many easily confused
(Ghana/Guinea, Austria/Australia, Dhaka/Dakar, Bern/Berlin): the check lifts 19 same-name pairs over the
threshold (617 -> 636 of 765) and 2 different-name pairs (ベルン / 柏林, Nepal / Неаполь; 125 -> 127 of
72,006). A wider margin lets more of the second kind in (0.10: 23 and 8), a narrower one fewer of the first
(0.06: 17 and 1). The same names were used to choose it, so take it as a first calibration."""

DEFAULT_MAX_CHARS = 200
"""Answers are cut to this many characters before comparing: a rambling span would otherwise be
embedded as a paragraph and match nothing, and number sets from whole sentences are noise."""


# ---- text normalization ---------------------------------------------------------------------
def strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


def answer_key(text: str) -> str:
    """The exact-match form: NFKC, casefold, no accents, punctuation as spaces, no leading article.
    Symbols are kept, so "C++" and "C" stay different."""
    folded = strip_accents(normalize(text).casefold())
    spaced = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in folded)
    words = spaced.split()
    if len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    return " ".join(words)


def truncate(text: str, max_chars: int) -> str:
    """`text` cut to `max_chars`, at a word boundary when one is in the second half."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_chars // 2 else cut).rstrip()


# ---- scripts ------------------------------------------------------------------------------------
_EXPECTED_SCRIPTS = {"zh": ("CJK",), "ja": ("CJK", "HIRAGANA", "KATAKANA"), "ko": ("HANGUL", "CJK"),
                     "ar": ("ARABIC",), "hi": ("DEVANAGARI",), "ru": ("CYRILLIC",)}


def foreign_script(text: str, lang: str) -> bool:
    """True when `text` has letters and none of them is in `lang`'s script: a sign the model answered in
    another language (a note only; cross-lingual embeddings still cluster it)."""
    expected = _EXPECTED_SCRIPTS.get(lang, ("LATIN",))
    letters = [unicodedata.name(ch, "") for ch in text if ch.isalpha()]
    return bool(letters) and not any(name.startswith(expected) for name in letters)


# ---- pairwise agreement -------------------------------------------------------------------------
@dataclass(frozen=True)
class AnswerNode:
    """Answers that share one normalized key (they always agree), with what comparing them needs."""

    key: str
    text: str
    quantities: tuple[Quantity, ...]
    indices: tuple[int, ...]
    sound: SoundKey | None = None
    gloss: str | None = None
    """The answer translated into one shared language (English) by the pipeline, where it was: compared too."""


GLOSS_MAX_WORDS = 4
"""Glosses are compared only when both are this short: names and terms ("Nile River", "Mount Everest", "New
England Patriots"). Between sentences the English cosine is carried by their shared frame: "Egypt is on the
Atlantic continent." and "Egypt is located in Africa" came out as one answer on the German factual set."""


def _unit_rows(vectors: np.ndarray, count: int) -> np.ndarray:
    rows = np.asarray(vectors, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[0] != count:
        raise CalmRagError(f"the encoder returned an array of shape {rows.shape} for {count} texts")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


def agreement_scores(nodes: Sequence[AnswerNode], encode: Encode, threshold: float = DEFAULT_THRESHOLD,
                     sound_margin: float = SOUND_MARGIN) -> np.ndarray:
    """Pairwise agreement scores: 1 for number matches, -1 for number mismatches, else the cosine - of the
    answers, or of their glosses (each answer in English, the English ones as they are; only where both are at
    most `GLOSS_MAX_WORDS` words) where that is higher, 1 where those glosses are the same - lifted to
    `threshold` for a transliterated name within `sound_margin` below it. The encoder is only called when some
    pair is not decided by numbers."""
    count = len(nodes)
    if count < 2 or all(node.quantities for node in nodes):
        scores = np.ones((count, count))
    else:
        vectors = _unit_rows(encode([node.text for node in nodes]), count)
        scores = (vectors @ vectors.T).astype(np.float64)  # a score lifted to `threshold` compares equal to it
        if any(node.gloss for node in nodes):
            glosses = [node.gloss or node.text for node in nodes]
            in_english = _unit_rows(encode(glosses), count)
            gloss_scores = in_english @ in_english.T
            keys = [answer_key(gloss) for gloss in glosses]
            named = [len(gloss.split()) <= GLOSS_MAX_WORDS for gloss in glosses]
            for i, j in itertools.combinations(range(count), 2):
                if named[i] and named[j] and (nodes[i].gloss or nodes[j].gloss):
                    agree = 1.0 if keys[i] and keys[i] == keys[j] else float(gloss_scores[i, j])
                    scores[i, j] = scores[j, i] = max(scores[i, j], agree)
    for i in range(count):
        scores[i, i] = 1.0
        for j in range(i + 1, count):
            first, second = nodes[i].quantities, nodes[j].quantities
            if first and second:
                scores[i, j] = scores[j, i] = 1.0 if quantities_agree(first, second) else -1.0
            elif (threshold - sound_margin <= scores[i, j] < threshold
                  and sounds_alike(nodes[i].sound, nodes[j].sound)):
                scores[i, j] = scores[j, i] = threshold
    return scores


def semantic_match(prediction: str | None, gold: str | None, encode: Encode, threshold: float = DEFAULT_THRESHOLD,
                   lang: str | None = None, max_chars: int = DEFAULT_MAX_CHARS,
                   sound_margin: float = SOUND_MARGIN) -> bool:
    """Whether a free-form prediction means the gold answer, by the clustering's own rule (exact key,
    then numbers, then cosine >= threshold, or a transliterated name within `sound_margin` of it). `lang` is
    the language both are written in, if known. Scoring a dataset, pass a `CachedEncoder` primed with every
    prediction and gold text: one embedding call in all instead of one per pair."""
    if not prediction or not gold or not answer_key(prediction) or not answer_key(gold):
        return False
    nodes = [answer_node(truncate(text, max_chars), lang, (index,)) for index, text in enumerate((prediction, gold))]
    if nodes[0].key == nodes[1].key:
        return True
    return bool(agreement_scores(nodes, encode, threshold, sound_margin)[0, 1] >= threshold)


def exact_match(prediction: str | None, gold: str | None) -> bool:
    """Same answer after `answer_key` normalization (SQuAD-style, multilingual articles)."""
    return bool(prediction and gold) and answer_key(prediction or "") == answer_key(gold or "") != ""


def answer_node(text: str, lang: str | None, indices: tuple[int, ...], gloss: str | None = None) -> AnswerNode:
    return AnswerNode(answer_key(text), text, extract_quantities(text, lang), indices, sound_key(text), gloss)


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
