"""Cross-lingual semantic voting for open answers: normalize, cluster across languages, pick a consensus.

The multiple-choice vote counts letters; open answers have no letters, so "the same answer" is
decided pairwise by `calm_rag.voting.matching` (exact key, then numbers, then cosine).

Clustering is complete-linkage agglomeration over those pairwise verdicts: two groups merge only
when every cross pair agrees, so a cluster never chains "330 m" ~ "330" ~ "300" into one. The
consensus is the biggest cluster, then the one spanning more languages, then the one holding the
earliest sample in language order: deterministic, like `calm_rag.voting.vote`. Support is a share of
*all* samples drawn (unparsed ones count against it), and the pipeline abstains when nothing
parsed or the consensus holds less than `min_support`.

Numbers agree across scripts whether written as digits, words or CJK numerals ("8", "acht", "восемь",
"八条"), and calendar dates as dates ("February 7, 2016" = "2016年2月7日" = "7 февраля 2016"); see
`calm_rag.voting.quantities`. Names transliterated between scripts agree on the embedder's cosine plus a
check on the span: read aloud to one consonant skeleton of three or more consonants, they need only come
within `sound_margin` of the threshold ("Gagarin" = "加加林" = "Гагарин"; `calm_rag.voting.names`). The
embedder and the check only ever see an answer's span cut to `max_chars`, never the response around it.
Names that are no transliteration ("珠穆朗玛峰" = "Mount Everest", "尼罗河" = "the Nile": a two-consonant
skeleton is not trusted) agree through their glosses: where the pipeline translated each span into English
(`glosses`, made by the generator; voting makes no text), two answers also agree when their English versions
do, by the same threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from calm_rag.errors import CalmRagError
from calm_rag.responses import OpenResponse
from calm_rag.voting.matching import (
    DEFAULT_MAX_CHARS,
    DEFAULT_THRESHOLD,
    SOUND_MARGIN,
    AnswerNode,
    CachedEncoder,
    Encode,
    agreement_scores,
    answer_key,
    answer_node,
    foreign_script,
    truncate,
)
from calm_rag.voting.vote import pairwise_consistency

DEFAULT_MIN_SUPPORT = 0.2
"""The consensus must hold at least this share of all samples, or the pipeline abstains: with 6
languages x 3 samples, at least 4 samples must agree. Independently, a consensus needs two agreeing
samples (unless only one sample parsed), so all-different answers never win."""


@dataclass(frozen=True)
class ClusterConfig:
    threshold: float = DEFAULT_THRESHOLD
    min_support: float = DEFAULT_MIN_SUPPORT
    max_chars: int = DEFAULT_MAX_CHARS
    sound_margin: float = SOUND_MARGIN
    """0 turns the transliteration check off (cosine alone, as before it)."""

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise CalmRagError("the cosine threshold must be in [-1, 1]")
        if not 0.0 <= self.min_support <= 1.0:
            raise CalmRagError("min_support must be in [0, 1]")
        if self.max_chars < 1:
            raise CalmRagError("max_chars must be at least 1")
        if not 0.0 <= self.sound_margin <= 1.0:
            raise CalmRagError("sound_margin must be in [0, 1]")


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
        notes = ["tie broken deterministically (see calm_rag.voting.clustering)"] if self.tied else []
        if self.foreign:
            notes.append(f"{self.foreign} answer(s) written in another script than their prompt's language "
                         "(still clustered)")
        return "; ".join(notes)


def _agglomerate(nodes: Sequence[AnswerNode], scores: np.ndarray, threshold: float) -> list[list[int]]:
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
                    config: ClusterConfig = ClusterConfig(), glosses: Mapping[str, str] | None = None) -> Clustering:
    """Cluster every language's sampled answers (None = unparsed) across languages and rank the clusters.
    The mapping's order is the language order used for tie-breaking. `glosses`: an answer (as cut to
    `max_chars`) -> its English translation, compared as well."""
    flat = [(lang, sample, text) for lang, texts in answers.items() for sample, text in enumerate(texts)]
    by_key: dict[str, list[int]] = {}
    clipped: dict[int, str] = {}
    for index, (lang, _, text) in enumerate(flat):
        if text is not None and answer_key(text):
            clipped[index] = truncate(text.strip(), config.max_chars)
            by_key.setdefault(answer_key(clipped[index]), []).append(index)
    glosses = glosses or {}
    nodes = [answer_node(clipped[indices[0]], flat[indices[0]][0], tuple(indices), glosses.get(clipped[indices[0]]))
             for indices in by_key.values()]
    scores = agreement_scores(nodes, encode, config.threshold, config.sound_margin)
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


def span_glosses(spans: Mapping[str, Sequence[str | None]], glosses: Mapping[str, Sequence[str | None]],
                 max_chars: int = DEFAULT_MAX_CHARS) -> dict[str, str]:
    """`cluster_answers`' `glosses` from each sample's span and gloss (language -> one per sample)."""
    return {truncate(span.strip(), max_chars): gloss for lang, items in spans.items()
            for span, gloss in zip(items, glosses.get(lang, ())) if span and gloss}


def cluster_open_responses(samples: dict[str, list[OpenResponse]], encode: Encode, config: ClusterConfig) -> Clustering:
    spans = {lang: [s.span for s in items] for lang, items in samples.items()}
    glosses = {lang: [s.gloss for s in items] for lang, items in samples.items()}
    return cluster_answers(spans, encode, config, span_glosses(spans, glosses, config.max_chars))


def cluster_open_batch(drawn: Sequence[dict[str, list[OpenResponse]]], encode: Encode, config: ClusterConfig
                       ) -> list[Clustering]:
    """`cluster_open_responses` for each question of a batch, with every distinct span (as cut to `max_chars`)
    and gloss of the batch embedded in one call first."""
    cached = CachedEncoder(encode)
    cached(list(dict.fromkeys(text for by_lang in drawn for items in by_lang.values() for s in items if s.span
                              for text in (truncate(s.span.strip(), config.max_chars), s.gloss) if text)))
    return [cluster_open_responses(by_lang, cached, config) for by_lang in drawn]
