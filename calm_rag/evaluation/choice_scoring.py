"""Per-question records of an eval and the numbers computed from them.

An `ItemRecord` keeps every sample's ballot (in the original label space) rather than a
verdict, so the vote, the per-language answers and every metric are recomputed from the
same stored evidence: a resumed run scores its cached items exactly like fresh ones, and
`--balanced` can be changed without generating again.

The letter distribution is reported next to accuracy because a gain that comes from one
letter taking over (a model that learned to say "C") is not a gain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from calm_rag.questions import ParallelQuestion
from calm_rag.responses import ChoiceResponse
from calm_rag.voting.metrics import QuestionOutcome, summarize
from calm_rag.voting.vote import Ballot, cross_lingual_vote

UNPARSED = "none"
"""Bucket of the letter distribution for languages that gave no parseable answer."""


@dataclass(frozen=True)
class ItemRecord:
    """One question's evidence: language -> each sample's ballot, extracted letter, text and where the letter
    came from."""

    id: str
    gold: str | None
    labels: tuple[str, ...]
    ballots: dict[str, list[dict[str, float]]]
    letters: dict[str, list[str | None]]
    texts: dict[str, list[str]]
    letter_sources: dict[str, list[str | None]] = field(default_factory=dict)
    """`ChoiceResponse.letter_source` per sample; empty in records cached before sources were kept."""

    @classmethod
    def from_responses(cls, question: ParallelQuestion, responses: Mapping[str, Sequence[ChoiceResponse]]) -> ItemRecord:
        return cls(question.id, question.answer, tuple(question.labels),
                   {lang: [r.ballot for r in items] for lang, items in responses.items()},
                   {lang: [r.letter for r in items] for lang, items in responses.items()},
                   {lang: [r.text for r in items] for lang, items in responses.items()},
                   {lang: [r.letter_source for r in items] for lang, items in responses.items()})

    def outcome(self, balanced: bool = False) -> QuestionOutcome:
        ballots: dict[str, Sequence[Ballot]] = {lang: items for lang, items in self.ballots.items()}
        vote = cross_lingual_vote(ballots, self.labels, balanced=balanced)
        return QuestionOutcome(self.id, self.gold, vote, {lang: len(items) for lang, items in self.ballots.items()})

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "gold": self.gold, "labels": list(self.labels), "ballots": self.ballots,
                "letters": self.letters, "texts": self.texts, "letter_sources": self.letter_sources}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemRecord:
        return cls(str(data["id"]), data.get("gold"), tuple(data["labels"]),
                   {lang: [dict(b) for b in items] for lang, items in data["ballots"].items()},
                   {lang: list(items) for lang, items in data["letters"].items()},
                   {lang: list(items) for lang, items in data.get("texts", {}).items()},
                   {lang: list(items) for lang, items in data.get("letter_sources", {}).items()})


def _ordered(counts: Counter[str], labels: Sequence[str]) -> dict[str, int]:
    """Counts in label order, every label present (zeros included), the unparsed bucket last."""
    extra = sorted(key for key in counts if key not in labels and key != UNPARSED)
    ordered = {label: counts.get(label, 0) for label in [*labels, *extra]}
    if counts.get(UNPARSED):
        ordered[UNPARSED] = counts[UNPARSED]
    return ordered


def letter_distribution(outcomes: Sequence[QuestionOutcome], labels: Sequence[str],
                        languages: Sequence[str]) -> dict[str, Any]:
    """How often each letter was the answer: per language (its own majority), over all languages,
    for the cross-lingual vote, and for the gold answers as the reference to compare against."""
    by_language = {lang: Counter(o.vote.language_majorities.get(lang) or UNPARSED for o in outcomes)
                   for lang in languages}
    overall: Counter[str] = Counter()
    for counts in by_language.values():
        overall.update(counts)
    return {
        "by_language": {lang: _ordered(counts, labels) for lang, counts in by_language.items()},
        "overall": _ordered(overall, labels),
        "vote": _ordered(Counter(o.vote.winner or UNPARSED for o in outcomes), labels),
        "gold": _ordered(Counter(o.gold for o in outcomes if o.gold is not None), labels),
    }


def top_letter_share(counts: Mapping[str, int]) -> tuple[str, float] | None:
    """The most frequent parsed letter and its share of all answers (None when nothing parsed)."""
    total = sum(counts.values())
    parsed = {key: value for key, value in counts.items() if key != UNPARSED and value}
    if not total or not parsed:
        return None
    letter = max(parsed, key=parsed.__getitem__)
    return letter, parsed[letter] / total


def continued_shares(records: Sequence[ItemRecord], languages: Sequence[str]) -> dict[str, float | None]:
    """Per language, the share of samples whose letter was read after the answer label (the text stated
    none): how much of the parse rate the continuation supplies. None for a language without samples."""
    shares: dict[str, float | None] = {}
    for lang in languages:
        samples = sum(len(record.letters.get(lang, [])) for record in records)
        continued = sum(record.letter_sources.get(lang, []).count("continuation") for record in records)
        shares[lang] = continued / samples if samples else None
    return shares


def score(records: Sequence[ItemRecord], languages: Sequence[str], balanced: bool = False) -> dict[str, Any]:
    """The metrics of `calm_rag.metrics.summarize` plus the letter distribution and its most frequent letter
    (over every language's answers): a rising `top_letter_share` flags a gain that is one letter taking over.
    `per_question` (graded questions: the share of languages right, and the vote) lets a comparison pair
    the two runs question by question (`calm_rag.evaluation.report.paired_interval`)."""
    outcomes = [record.outcome(balanced) for record in records]
    labels = list(dict.fromkeys(label for record in records for label in record.labels))
    summary = summarize(outcomes, languages)
    summary["letters"] = letter_distribution(outcomes, labels, languages)
    summary["continued_by_language"] = continued_shares(records, languages)
    top = top_letter_share(summary["letters"]["overall"])
    summary["top_letter"], summary["top_letter_share"] = top if top else (None, None)
    summary["per_question"] = [
        {"id": outcome.id,
         "accuracy": sum(outcome.vote.language_majorities.get(lang) == outcome.gold for lang in languages)
         / len(languages),
         "vote": float(outcome.vote.winner == outcome.gold)}
        for outcome in outcomes if outcome.gold is not None]
    return summary
