"""Per-question records of an open-question eval and the numbers computed from them.

An `OpenItemRecord` keeps every sample's extracted answer span (and its text) rather than a
verdict, like `ItemRecord` keeps ballots: the clustering, each language's answer, the
consensus and every metric are recomputed from the stored spans, so a resumed run scores its
cached items exactly like fresh ones, and a new `--threshold` or `--embedder` re-scores
without generating again.

Matching is `calm_rag.voting.clustering`'s own rule, so "correct" means what "the same answer"
means to the vote: the same normalized text (exact match), else equal numbers, else an
embedding cosine at or above the threshold (semantic match).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from calm_rag.questions import ParallelQuestion
from calm_rag.responses import OpenResponse
from calm_rag.voting import (
    DEFAULT_THRESHOLD,
    CachedEncoder,
    ClusterConfig,
    Clustering,
    Encode,
    Member,
    cluster_answers,
    consensus_answer,
    exact_match,
    own_answer,
    semantic_match,
    truncate,
)
from calm_rag.voting.clustering import span_glosses
from calm_rag.voting.spans import is_short_span
from calm_rag.voting.vote import mean_consistency


@dataclass(frozen=True)
class OpenItemRecord:
    """One open question's evidence: each language's gold answer, and its samples' spans and texts."""

    id: str
    gold: dict[str, str | None]
    """Language -> the gold answer written in that language (None where the data has none)."""
    spans: dict[str, list[str | None]]
    """Language -> each sample's extracted answer (None where unparsed)."""
    texts: dict[str, list[str]]
    glosses: dict[str, list[str | None]] = field(default_factory=dict)
    """Language -> each sample's span in English (`OpenResponse.gloss`); empty when glossing was off (and in
    records cached before glosses existed)."""

    @classmethod
    def from_samples(cls, question: ParallelQuestion, samples: Mapping[str, Sequence[OpenResponse]]
                     ) -> OpenItemRecord:
        glosses = {lang: [sample.gloss for sample in items] for lang, items in samples.items()}
        return cls(question.id, {lang: question.versions[lang].answer for lang in samples},
                   {lang: [sample.span for sample in items] for lang, items in samples.items()},
                   {lang: [sample.text for sample in items] for lang, items in samples.items()},
                   glosses if any(gloss for items in glosses.values() for gloss in items) else {})

    def clustering(self, encode: Encode, config: ClusterConfig) -> Clustering:
        return cluster_answers(self.spans, encode, config, span_glosses(self.spans, self.glosses, config.max_chars))

    def to_json(self) -> dict[str, Any]:
        data = {"id": self.id, "gold": self.gold, "spans": self.spans, "texts": self.texts}
        return {**data, "glosses": self.glosses} if self.glosses else data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OpenItemRecord:
        return cls(str(data["id"]), dict(data["gold"]), {lang: list(items) for lang, items in data["spans"].items()},
                   {lang: list(items) for lang, items in data.get("texts", {}).items()},
                   {lang: list(items) for lang, items in data.get("glosses", {}).items()})


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _mean(values: Sequence[float | None]) -> float | None:
    defined = [value for value in values if value is not None]
    return sum(defined) / len(defined) if defined else None


def score_open(records: Sequence[OpenItemRecord], languages: Sequence[str], encode: Encode,
               threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Per-language semantic and exact match of each language's own answer against its gold, the same for
    the cross-lingual consensus (averaged over every graded language of every question; an abstention
    is wrong and counted in `abstained`), the paper's consistency, the parse rates and the short-span rates (a
    span of at most 60 characters and 8 words, `calm_rag.voting.spans.is_short_span`); `per_question`, each
    graded question's share of languages whose own answer and whose consensus answer match, pairs two runs
    question by question. Every span and gold answer is embedded once, in one call."""
    config = ClusterConfig(threshold=threshold)
    cached = encode if isinstance(encode, CachedEncoder) else CachedEncoder(encode)
    cached(list(dict.fromkeys(
        [truncate(span.strip(), config.max_chars) for record in records for spans in record.spans.values()
         for span in spans if span and span.strip()]
        + [gloss for record in records for glosses in record.glosses.values() for gloss in glosses if gloss]
        + [truncate(gold, config.max_chars) for record in records for gold in record.gold.values() if gold])))

    def grade(member: Member | None, gold: str, lang: str) -> tuple[bool, bool]:
        if member is None:
            return False, False
        same_language = lang if member.lang == lang else None
        return (semantic_match(member.text, gold, cached, threshold, same_language, config.max_chars),
                exact_match(member.text, gold))

    semantic = {lang: 0 for lang in languages}
    exact = {lang: 0 for lang in languages}
    graded = {lang: 0 for lang in languages}
    parsed = {lang: 0 for lang in languages}
    drawn = {lang: 0 for lang in languages}
    short = {lang: 0 for lang in languages}
    vote_semantic = vote_exact = vote_graded = abstained = 0
    consistencies = []
    per_question = []
    for record in records:
        own_right, vote_right = [], []
        clustering = record.clustering(cached, config)
        consistencies.append(clustering.consistency)
        abstained += clustering.abstained
        for lang in languages:
            parsed[lang] += clustering.parsed.get(lang, 0)
            drawn[lang] += len(record.spans.get(lang, []))
            short[lang] += sum(is_short_span(span) for span in record.spans.get(lang, []))
            gold = record.gold.get(lang)
            if not gold:
                continue
            graded[lang] += 1
            own_semantic, own_exact = grade(own_answer(clustering, lang), gold, lang)
            semantic[lang] += own_semantic
            exact[lang] += own_exact
            vote_graded += 1
            consensus_semantic, consensus_exact = grade(consensus_answer(clustering, lang), gold, lang)
            vote_semantic += consensus_semantic
            vote_exact += consensus_exact
            own_right.append(own_semantic)
            vote_right.append(consensus_semantic)
        if own_right:
            per_question.append({"id": record.id, "accuracy": sum(own_right) / len(own_right),
                                 "vote": sum(vote_right) / len(vote_right)})

    accuracy = {lang: _share(semantic[lang], graded[lang]) for lang in languages}
    exact_by_language = {lang: _share(exact[lang], graded[lang]) for lang in languages}
    return {
        "n_questions": len(records),
        "graded": sum(any(record.gold.get(lang) for lang in languages) for record in records),
        "accuracy_by_language": accuracy,
        "exact_match_by_language": exact_by_language,
        "mean_accuracy": _mean(list(accuracy.values())),
        "mean_exact_match": _mean(list(exact_by_language.values())),
        "vote_accuracy": _share(vote_semantic, vote_graded),
        "vote_exact_match": _share(vote_exact, vote_graded),
        "consistency": mean_consistency(consistencies),
        "parse_rate_by_language": {lang: _share(parsed[lang], drawn[lang]) for lang in languages},
        "short_span_rate_by_language": {lang: _share(short[lang], drawn[lang]) for lang in languages},
        "abstained": abstained,
        "per_question": per_question,
    }
