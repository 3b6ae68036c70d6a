"""LangChain adapter: `CalmQA` as a `Runnable`, so the cross-lingual pipeline composes in LCEL chains.

Input: a dict `{"question": str, "lang": str, "choices": [str, ...]}` (`lang` defaults to "en").
Output: an `Answer`. `batch` goes through `CalmQA.ask_batch`, so a batch is one set of
generate calls, not a loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig

from calm_rag.errors import CalmRagError
from calm_rag.pipelines.answer import Answer
from calm_rag.pipelines.qa import CalmQA, QuestionRequest


def _request(item: Mapping[str, Any]) -> QuestionRequest:
    if not isinstance(item, Mapping) or "question" not in item:
        raise CalmRagError("CalmQARunnable expects {'question': ..., 'lang': ..., 'choices': [...]}")
    return QuestionRequest(str(item["question"]), str(item.get("lang", "en")), list(item.get("choices") or []))


class CalmQARunnable(Runnable[Mapping[str, Any], Answer]):
    def __init__(self, qa: CalmQA) -> None:
        self.qa = qa

    def invoke(self, input: Mapping[str, Any], config: RunnableConfig | None = None, **kwargs: Any) -> Answer:
        return self.qa.ask_batch([_request(input)])[0]

    def batch(self, inputs: Sequence[Mapping[str, Any]], config: RunnableConfig | Sequence[RunnableConfig] | None = None,
              *, return_exceptions: bool = False, **kwargs: Any) -> list[Answer]:
        return self.qa.ask_batch([_request(item) for item in inputs])
