"""What every route shares (`ServerState`, at `app.state.calm`) and the one way a route gets an answer:
validate, queue, wait, and let go of the question when its client leaves."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from calm_rag.progress import StageProgress
from calm_rag.serving.answering import Answering
from calm_rag.serving.batching import Batcher, Job, QueueFull, ShuttingDown
from calm_rag.serving.config import ServeConfig
from calm_rag.serving.errors import ApiError
from calm_rag.serving.intake import Intake, QuestionFields
from calm_rag.serving.metrics import ServerMetrics


@dataclass
class ServerState:
    config: ServeConfig
    answering: Answering
    intake: Intake
    batcher: Batcher
    metrics: ServerMetrics
    started: float = 0.0
    """Unix time the server started (the `created` of /v1/models)."""
    notes: list[str] = field(default_factory=list)

    @property
    def model_name(self) -> str:
        return self.config.model_name or self.answering.model_name


def server(request: Request) -> ServerState:
    return request.app.state.calm  # type: ignore[no-any-return]


class ClientGone(Exception):
    """The client disconnected before its answer was ready; there is no one to answer."""


async def enqueue(state: ServerState, fields: QuestionFields, progress: StageProgress | None = None) -> Job:
    """Validate `fields` and queue the question (422/413 when invalid, 429 when full, 503 when draining)."""
    key, question = await state.intake.prepare(fields)
    try:
        return state.batcher.submit(key, question, progress)
    except QueueFull as full:
        state.metrics.refused.inc()
        raise ApiError(429, f"{full}; at most {state.config.max_concurrency} questions are taken at once",
                       code="queue_full", headers={"Retry-After": str(full.retry_after)}) from None
    except ShuttingDown as closing:
        raise ApiError(503, str(closing), code="shutting_down", headers={"Retry-After": "5"}) from None


async def until_disconnected(request: Request) -> None:
    """Returns when the client goes away (the body is already read, so the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def wait_answer(state: ServerState, request: Request, job: Job) -> dict[str, Any]:
    """The job's `ask --json` object; a client that leaves first frees its slot (`ClientGone`)."""
    watcher = asyncio.ensure_future(until_disconnected(request))
    try:
        done, _ = await asyncio.wait({job.future, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if job.future in done:
            return job.future.result()  # type: ignore[no-any-return]
        drop(state, job)
        raise ClientGone
    except asyncio.CancelledError:
        drop(state, job)
        raise
    finally:
        watcher.cancel()


def drop(state: ServerState, job: Job) -> None:
    """Let go of a question whose client is gone (counted when it never reached the model)."""
    if not job.future.done() and state.batcher.cancel(job):
        state.metrics.dropped.inc()
