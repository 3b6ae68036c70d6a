"""LangChain adapter: `CalmQA` as a `Runnable`, so the cross-lingual pipeline composes in LCEL chains.

Input: a dict `{"question": str, "lang": str, "choices": [str, ...]}` (`lang` defaults to "en";
without `choices` the question is open and answered by semantic voting). Output: an `Answer`
(a `OpenAnswer` for open questions). `batch` goes through `CalmQA.ask_batch` /
`ask_open_batch`, so a batch is one set of generate calls, not a loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig

from calm_rag.errors import CalmRagError
from calm_rag.pipelines.answer import Answer
from calm_rag.pipelines.open_qa import OpenAnswer
from calm_rag.pipelines.qa import CalmQA, QuestionRequest


def _request(item: Mapping[str, Any]) -> QuestionRequest:
    if not isinstance(item, Mapping) or "question" not in item:
        raise CalmRagError("CalmQARunnable expects {'question': ..., 'lang': ..., 'choices': [...]}")
    return QuestionRequest(str(item["question"]), str(item.get("lang", "en")), list(item.get("choices") or []))


class CalmQARunnable(Runnable[Mapping[str, Any], Answer | OpenAnswer]):
    def __init__(self, qa: CalmQA) -> None:
        self.qa = qa

    def invoke(self, input: Mapping[str, Any], config: RunnableConfig | None = None,
               **kwargs: Any) -> Answer | OpenAnswer:
        return self.batch([input])[0]

    def batch(self, inputs: Sequence[Mapping[str, Any]], config: RunnableConfig | Sequence[RunnableConfig] | None = None,
              *, return_exceptions: bool = False, **kwargs: Any) -> list[Answer | OpenAnswer]:
        requests = [_request(item) for item in inputs]
        closed = [i for i, request in enumerate(requests) if request.choices]
        open_ = [i for i, request in enumerate(requests) if not request.choices]
        results: dict[int, Answer | OpenAnswer] = {}
        if closed:
            results.update(zip(closed, self.qa.ask_batch([requests[i] for i in closed])))
        if open_:
            results.update(zip(open_, self.qa.ask_open_batch([requests[i] for i in open_])))
        return [results[i] for i in range(len(requests))]
