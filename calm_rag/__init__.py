"""calm-rag: multilingual QA with cross-lingual self-consistency voting and CALM self-alignment."""

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig, Generator
from calm_rag.languages import LANGUAGES, Language, get_language
from calm_rag.pipelines import (
    Answer,
    CalmQA,
    CalmQARunnable,
    QAConfig,
    QuestionRequest,
    SamplingConfig,
)
from calm_rag.questions import Choice, MCQuestion, ParallelQuestion
from calm_rag.voting import VoteResult, cross_lingual_vote, pairwise_consistency

__version__ = "0.1.0"

__all__ = [
    "LANGUAGES", "Answer", "CalmQA", "CalmQARunnable", "CalmRagError", "Choice", "GenerationConfig", "Generator",
    "Language", "MCQuestion", "ParallelQuestion", "QAConfig", "QuestionRequest", "SamplingConfig", "VoteResult",
    "__version__", "cross_lingual_vote", "get_language", "pairwise_consistency",
]
