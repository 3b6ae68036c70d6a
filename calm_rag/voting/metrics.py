"""Dataset-level metrics shared by `vote`, `train` and `eval`: vote accuracy, each language's own
accuracy, parse rates and the paper's cross-lingual consistency."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from calm_rag.voting.vote import VoteResult, mean_consistency


@dataclass(frozen=True)
class QuestionOutcome:
    id: str
    gold: str | None
    vote: VoteResult
    samples: dict[str, int]
    """Language -> number of samples drawn."""


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def summarize(outcomes: Sequence[QuestionOutcome], languages: Sequence[str]) -> dict[str, Any]:
    """Aggregate per-question outcomes. A language's accuracy is its own majority vs gold (an unparsed
    answer counts as wrong); accuracies are None where no question has gold."""
    graded = [outcome for outcome in outcomes if outcome.gold is not None]
    by_language = {lang: _share(sum(o.vote.language_majorities.get(lang) == o.gold for o in graded), len(graded))
                   for lang in languages}
    defined = [value for value in by_language.values() if value is not None]
    parse_rate = {lang: _share(sum(o.vote.parsed.get(lang, 0) for o in outcomes),
                               sum(o.samples.get(lang, 0) for o in outcomes)) for lang in languages}
    winners = Counter(outcome.vote.winner or "abstain" for outcome in outcomes)
    return {
        "questions": len(outcomes),
        "graded": len(graded),
        "vote_accuracy": _share(sum(o.vote.winner == o.gold for o in graded), len(graded)),
        "accuracy_by_language": by_language,
        "mean_accuracy": sum(defined) / len(defined) if defined else None,
        "consistency": mean_consistency([outcome.vote.consistency for outcome in outcomes]),
        "parse_rate_by_language": parse_rate,
        "abstained": winners.pop("abstain", 0),
        "consensus_letters": dict(sorted(winners.items())),
    }
