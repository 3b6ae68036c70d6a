"""OpenAI-compatible routes: POST /v1/chat/completions (plain and streamed) and GET /v1/models.

Any OpenAI client or chat front-end can ask calm-rag: the last user message is the question (its
language detected unless `lang` is given), `choices`, `languages`, `samples`, ... may ride along as
extra body fields. The assistant message is the answer in the user's language and a one-line vote
summary; the whole `ask --json` object comes back as the extra field `calm`, the sources' names as
`citations` (Perplexity's convention).

Streaming sends one chunk per pipeline stage (retrieving, translating, sampling, voting) as
`delta.reasoning_content` (chat front-ends show it as the model "thinking", so a slow CPU shows
progress instead of a spinner; the stage itself is in the extra field `calm_stage`), then the answer
chunk, then `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from calm_rag.errors import CalmRagError
from calm_rag.serving.answering import STAGES
from calm_rag.serving.batching import Job
from calm_rag.serving.errors import ApiError, error_body
from calm_rag.serving.schemas import ChatBody
from calm_rag.serving.state import ClientGone, ServerState, drop, enqueue, server, wait_answer

router = APIRouter()

STAGE_TEXT = {"retrieving": "Retrieving passages", "translating": "Translating the question",
              "sampling": "Sampling answers in every language", "voting": "Voting across languages"}


def vote_summary(answer: dict[str, Any]) -> str:
    """'5 of 6 languages agree (consistency 0.67)': how many languages' own majority is the consensus."""
    majorities = answer.get("language_majorities", {})
    languages = answer.get("languages", [])
    winner = answer.get("answer") if "answer_text" in answer else 0  # open answers: the top cluster, rank 0
    agree = sum(1 for lang in languages if majorities.get(lang) is not None and majorities.get(lang) == winner)
    consistency = answer.get("consistency")
    tail = "" if consistency is None else f" (consistency {consistency:.2f})"
    return f"{agree} of {len(languages)} languages agree{tail}"


def assistant_text(answer: dict[str, Any]) -> str:
    """The answer in the user's language, its explanation (multiple choice, cot), the vote summary."""
    if answer.get("abstained"):
        return f"No answer: {answer.get('message') or 'no sample stated a usable answer'}"
    if "answer_text" in answer:
        parts = [f"{answer['answer']}) {answer['answer_text']}"]
        if answer.get("explanation"):
            parts.append(answer["explanation"])
    else:
        parts = [str(answer["answer"])]
    parts.append(vote_summary(answer))
    return "\n\n".join(parts)


def citations(answer: dict[str, Any]) -> list[str]:
    return [str(source["source"]) for source in answer.get("sources", [])]


def _chunk(state: ServerState, completion_id: str, created: int, delta: dict[str, Any],
           finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": state.model_name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}], **extra}


def _sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


@router.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    state = server(request)
    return {"object": "list", "data": [{"id": state.model_name, "object": "model", "created": int(state.started),
                                        "owned_by": "calm-rag"}]}


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: ChatBody, request: Request) -> Response | dict[str, Any]:
    state = server(request)
    question = body.question()
    if not question.strip():
        raise ApiError(422, "no user message with text: the last user message is the question", "messages",
                       "invalid_value")
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if body.stream:
        events: asyncio.Queue[tuple[str, int, int] | None] = asyncio.Queue()
        job = await enqueue(state, body.fields(question), lambda stage, done, total: events.put_nowait(
            (stage, done, total)))
        job.future.add_done_callback(lambda _: events.put_nowait(None))
        return StreamingResponse(_stream(state, job, events, completion_id, created), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    job = await enqueue(state, body.fields(question))
    try:
        answer = await wait_answer(state, request, job)
    except ClientGone:
        return Response(status_code=499)
    return {"id": completion_id, "object": "chat.completion", "created": created, "model": state.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": assistant_text(answer)},
                         "finish_reason": "stop"}],
            "calm": answer, "citations": citations(answer)}


async def _stream(state: ServerState, job: Job, events: asyncio.Queue[tuple[str, int, int] | None],
                  completion_id: str, created: int) -> AsyncIterator[bytes]:
    """One chunk per stage as it starts, then the answer (or an error object), then [DONE]. When the client
    goes away Starlette cancels this generator, and the question is let go."""
    shown: set[str] = set()
    try:
        while (event := await events.get()) is not None:
            stage, done, total = event
            if stage in shown or stage not in STAGES:
                continue
            delta: dict[str, Any] = {"reasoning_content": f"{STAGE_TEXT[stage]}...\n"}
            if not shown:
                delta = {"role": "assistant", **delta}
            shown.add(stage)
            yield _sse(_chunk(state, completion_id, created, delta,
                              calm_stage={"stage": stage, "done": done, "total": total}))
        try:
            answer = job.future.result()
        except Exception as error:  # noqa: BLE001 - the status line is sent; the error goes in the stream
            yield _sse(error_body(422 if isinstance(error, CalmRagError) else 500, str(error)))
        else:
            yield _sse(_chunk(state, completion_id, created, {"content": assistant_text(answer)}, "stop",
                              calm=answer, citations=citations(answer)))
        yield _sse("[DONE]")
    finally:
        drop(state, job)
