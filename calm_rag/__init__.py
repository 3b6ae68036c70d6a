"""calm-rag: multilingual QA with cross-lingual self-consistency voting and CALM self-alignment.

The root holds the shared vocabulary (errors, config, languages, questions, responses, prompts, progress);
the public API below is imported lazily, so `import calm_rag` (and `calm-rag --help`) loads neither torch,
transformers nor LangChain until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "CalmRagError": "calm_rag.errors",
    "LANGUAGES": "calm_rag.languages",
    "Language": "calm_rag.languages",
    "get_language": "calm_rag.languages",
    "Choice": "calm_rag.questions",
    "Question": "calm_rag.questions",
    "ParallelQuestion": "calm_rag.questions",
    "EngineConfig": "calm_rag.generation.engines",
    "GenerationConfig": "calm_rag.generation.base",
    "Generator": "calm_rag.generation.base",
    "load_generator": "calm_rag.generation.engines",
    "SamplingConfig": "calm_rag.generation.sampling",
    "Answer": "calm_rag.pipelines.answer",
    "CalmQA": "calm_rag.pipelines.qa",
    "QAConfig": "calm_rag.pipelines.qa",
    "QuestionRequest": "calm_rag.pipelines.qa",
    "OpenAnswer": "calm_rag.pipelines.open_qa",
    "CalmQARunnable": "calm_rag.pipelines.runnable",
    "VoteResult": "calm_rag.voting.vote",
    "cross_lingual_vote": "calm_rag.voting.vote",
    "pairwise_consistency": "calm_rag.voting.vote",
}

if TYPE_CHECKING:
    from calm_rag.errors import CalmRagError
    from calm_rag.generation.base import GenerationConfig, Generator
    from calm_rag.generation.engines import EngineConfig, load_generator
    from calm_rag.generation.sampling import SamplingConfig
    from calm_rag.languages import LANGUAGES, Language, get_language
    from calm_rag.pipelines.answer import Answer
    from calm_rag.pipelines.open_qa import OpenAnswer
    from calm_rag.pipelines.qa import CalmQA, QAConfig, QuestionRequest
    from calm_rag.pipelines.runnable import CalmQARunnable
    from calm_rag.questions import Choice, ParallelQuestion, Question
    from calm_rag.voting.vote import VoteResult, cross_lingual_vote, pairwise_consistency

__all__ = [
    "LANGUAGES", "Answer", "CalmQA", "CalmQARunnable", "CalmRagError", "Choice", "EngineConfig", "GenerationConfig",
    "Generator", "Language", "OpenAnswer", "ParallelQuestion", "QAConfig", "Question", "QuestionRequest",
    "SamplingConfig", "VoteResult", "__version__", "cross_lingual_vote", "get_language", "load_generator",
    "pairwise_consistency",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'calm_rag' has no attribute {name!r}")
