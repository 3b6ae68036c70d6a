"""Answer-time pipelines: CALM sampling and voting, zero-shot or with retrieval."""

from calm_rag.pipelines.answer import Answer
from calm_rag.pipelines.qa import CalmQA, QAConfig, QuestionRequest
from calm_rag.pipelines.runnable import CalmQARunnable
from calm_rag.generation.sampling import SamplingConfig, sample_responses, vote_responses

__all__ = ["Answer", "CalmQA", "CalmQARunnable", "QAConfig", "QuestionRequest", "SamplingConfig",
           "sample_responses", "vote_responses"]
