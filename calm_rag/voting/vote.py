"""Cross-lingual voting and the paper's consistency metric.

The paper's rule: the consensus is the majority over *all* parsed samples of *all* languages.
`balanced=True` gives each language one vote, split over its samples, so a language sampled
more often (or parsed more reliably) does not outweigh the others.

Every sample contributes a ballot, a mapping label -> weight: {"C": 1.0} for a parsed
chain-of-thought answer, {} for an unparseable one, and the exact label distribution in
`direct` mode (soft voting). Hard and soft voting are therefore one mechanism.

Deterministic tie-break, in order: (1) the larger total weight; (2) the letter that more
languages chose as their own majority; (3) the earlier label (A before B). Ties are also
reported (`tied`), so callers that need a clear consensus (training targets) can skip them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from calm_rag.questions import ParallelQuestion
    from calm_rag.responses import ChoiceResponse

Ballot = Mapping[str, float]
_PRECISION = 9


def _rank(totals: Mapping[str, float], label_order: Sequence[str], support: Mapping[str, int] | None = None
          ) -> list[str]:
    position = {label: index for index, label in enumerate(label_order)}
    return sorted(
        (label for label, weight in totals.items() if weight > 0),
        key=lambda label: (-round(totals[label], _PRECISION), -(support or {}).get(label, 0),
                           position.get(label, len(position)), label),
    )


def _add(ballots: Sequence[Ballot], scale: float = 1.0) -> dict[str, float]:
    totals: dict[str, float] = {}
    for ballot in ballots:
        for label, weight in ballot.items():
            totals[label] = totals.get(label, 0.0) + weight * scale
    return totals


def language_majority(ballots: Sequence[Ballot], label_order: Sequence[str] = ()) -> str | None:
    """One language's own answer: its most voted label (earlier label on ties), None if nothing parsed."""
    ranked = _rank(_add(ballots), label_order)
    return ranked[0] if ranked else None


@dataclass(frozen=True)
class VoteResult:
    winner: str | None
    """The consensus label; None means abstain (nothing parsed in any language)."""
    distribution: dict[str, float]
    """Label -> share of the vote (sums to 1 over parsed votes)."""
    language_majorities: dict[str, str | None]
    consistency: float | None
    tied: bool = False
    parsed: dict[str, int] = field(default_factory=dict)
    """Language -> number of samples with a parsed answer."""

    @property
    def support(self) -> float:
        """Share of the vote the winner got (0 when abstaining)."""
        return self.distribution.get(self.winner, 0.0) if self.winner else 0.0

    @property
    def language_agreement(self) -> float:
        """Share of languages (with a parsed answer) whose own majority is the consensus."""
        answered = [m for m in self.language_majorities.values() if m is not None]
        return sum(m == self.winner for m in answered) / len(answered) if answered else 0.0


def pairwise_consistency(answers: Mapping[str, str | None]) -> float | None:
    """The paper's consistency for one question: over the languages with a parsed answer, the share of
    language pairs that give the same answer. None with fewer than two such languages."""
    given = [answer for answer in answers.values() if answer is not None]
    pairs = list(combinations(given, 2))
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else None


def mean_consistency(values: Sequence[float | None]) -> float | None:
    """Average over the questions where consistency is defined."""
    defined = [value for value in values if value is not None]
    return sum(defined) / len(defined) if defined else None


def cross_lingual_vote(ballots_by_lang: Mapping[str, Sequence[Ballot]], label_order: Sequence[str] = (),
                       balanced: bool = False) -> VoteResult:
    """Vote across languages; see the module docstring for the rule and the tie-break."""
    majorities = {lang: language_majority(ballots, label_order) for lang, ballots in ballots_by_lang.items()}
    totals: dict[str, float] = {}
    for ballots in ballots_by_lang.values():
        cast = [ballot for ballot in ballots if ballot]
        scale = 1.0 / len(cast) if balanced and cast else 1.0
        for label, weight in _add(cast, scale).items():
            totals[label] = totals.get(label, 0.0) + weight
    support: dict[str, int] = {}
    for majority in majorities.values():
        if majority is not None:
            support[majority] = support.get(majority, 0) + 1
    ranked = _rank(totals, label_order, support)
    grand = sum(totals.values())
    distribution = {label: totals[label] / grand for label in ranked} if grand else {}
    tied = len(ranked) > 1 and round(totals[ranked[0]], _PRECISION) == round(totals[ranked[1]], _PRECISION)
    return VoteResult(
        winner=ranked[0] if ranked else None,
        distribution=distribution,
        language_majorities=majorities,
        consistency=pairwise_consistency(majorities),
        tied=tied,
        parsed={lang: sum(1 for ballot in ballots if ballot) for lang, ballots in ballots_by_lang.items()},
    )


def vote_choice_responses(question: ParallelQuestion, responses: Mapping[str, Sequence[ChoiceResponse]], balanced: bool = False
                   ) -> VoteResult:
    """The cross-lingual vote over one question's responses, in its original label order."""
    ballots = {lang: [response.ballot for response in items] for lang, items in responses.items()}
    return cross_lingual_vote(ballots, question.labels, balanced=balanced)
