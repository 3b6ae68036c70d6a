"""Answer-time paths: `CalmQA` (multiple-choice and open questions, zero-shot or with retrieval), its answer
types, the LangChain runnable, and voting over samples made elsewhere.

Imports are lazy, so `import calm_rag.pipelines` pulls in neither torch nor LangChain until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Answer": "answer",
    "CalmQA": "qa",
    "QAConfig": "qa",
    "QuestionRequest": "qa",
    "OpenAnswer": "open_qa",
    "OpenQA": "open_qa",
    "CalmQARunnable": "runnable",
    "vote_samples": "external",
}

if TYPE_CHECKING:
    from calm_rag.pipelines.answer import Answer
    from calm_rag.pipelines.external import vote_samples
    from calm_rag.pipelines.open_qa import OpenAnswer, OpenQA
    from calm_rag.pipelines.qa import CalmQA, QAConfig, QuestionRequest
    from calm_rag.pipelines.runnable import CalmQARunnable

__all__ = ["Answer", "CalmQA", "CalmQARunnable", "OpenAnswer", "OpenQA", "QAConfig", "QuestionRequest", "vote_samples"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"calm_rag.pipelines.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'calm_rag.pipelines' has no attribute {name!r}")
