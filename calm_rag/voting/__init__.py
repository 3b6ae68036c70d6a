"""Judging texts, never making them: answer extraction, the cross-lingual vote, clustering of open answers,
metrics and the planning of preference pairs. Pure (numpy at most): nothing here loads or calls a model;
where a plan needs text written (a chosen answer translated), the caller passes a translate function."""

from calm_rag.voting.choice_pairs import ChoicePairPlan, PreferencePair, plan_choice_pairs, realize_choice_pairs
from calm_rag.voting.clustering import (
    DEFAULT_MIN_SUPPORT,
    Cluster,
    ClusterConfig,
    Clustering,
    Member,
    cluster_answers,
    consensus_answer,
    own_answer,
)
from calm_rag.voting.extraction import extract_letter, normalize, split_explanation
from calm_rag.voting.matching import (
    DEFAULT_MAX_CHARS,
    DEFAULT_THRESHOLD,
    CachedEncoder,
    Encode,
    answer_key,
    exact_match,
    semantic_match,
    truncate,
)
from calm_rag.voting.metrics import QuestionOutcome, summarize
from calm_rag.voting.open_pairs import OpenPairPlan, plan_open_pairs, realize_open_pairs
from calm_rag.voting.quantities import Quantity, extract_quantities, quantities_agree
from calm_rag.voting.vote import Ballot, VoteResult, cross_lingual_vote, mean_consistency, pairwise_consistency

__all__ = [
    "DEFAULT_MAX_CHARS", "DEFAULT_MIN_SUPPORT", "DEFAULT_THRESHOLD", "Ballot", "CachedEncoder", "ChoicePairPlan",
    "Cluster", "ClusterConfig", "Clustering", "Encode", "Member", "OpenPairPlan", "PreferencePair", "Quantity",
    "QuestionOutcome", "VoteResult", "answer_key", "cluster_answers", "consensus_answer", "cross_lingual_vote",
    "exact_match", "extract_letter", "extract_quantities", "mean_consistency", "normalize", "own_answer",
    "pairwise_consistency", "plan_choice_pairs", "plan_open_pairs", "quantities_agree", "realize_choice_pairs",
    "realize_open_pairs", "semantic_match", "split_explanation", "summarize", "truncate",
]
