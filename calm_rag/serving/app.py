"""The ASGI app of `calm-rag serve`: `create_app(qa, settings)` over a loaded `CalmQA`.

Importable on its own for people who run it under their own server (the app needs its lifespan,
which uvicorn, gunicorn's uvicorn worker and Starlette's TestClient all run):

    from calm_rag.pipelines import CalmQA, QAConfig
    from calm_rag.serving import ServeConfig, create_app
    app = create_app(CalmQA.from_config(QAConfig(index="kb")), ServeConfig(api_key="..."))

Routes: POST /v1/ask, /v1/search, /v1/chat/completions; GET /v1/models, /v1/info, /healthz, /readyz,
/metrics, and the page at /. Shutdown (SIGTERM under uvicorn) first lets uvicorn finish the requests
in flight, then the lifespan drains the batcher (`Batcher.close`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from calm_rag.pipelines import CalmQA
from calm_rag.serving.answering import Answering
from calm_rag.serving.auth import ApiKeyAuth
from calm_rag.serving.batching import Batcher
from calm_rag.serving.body_limit import BodySizeLimit
from calm_rag.serving.config import ServeConfig
from calm_rag.serving.errors import ApiError, error_body, install_error_handlers
from calm_rag.serving.intake import Intake, options_payload
from calm_rag.serving.metrics import MetricsMiddleware, ServerMetrics
from calm_rag.serving.openai_compat import router as openai_router
from calm_rag.serving.schemas import AskBody, SearchBody
from calm_rag.serving.state import ClientGone, ServerState, enqueue, server, wait_answer

STATIC = Path(__file__).parent / "static"


def create_app(qa: CalmQA, settings: ServeConfig | None = None) -> FastAPI:
    config = settings or ServeConfig()
    answering = Answering(qa)
    metrics = ServerMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher = Batcher(answering.run, max_batch=config.max_batch, wait_s=config.batch_wait_ms / 1000,
                          max_pending=config.max_concurrency, on_batch=metrics.observe_batch)
        metrics.watch_queue(lambda: batcher.queued, lambda: batcher.running)
        app.state.calm = ServerState(config, answering, Intake(config, answering), batcher, metrics, time.time())
        batcher.start()
        try:
            yield
        finally:
            await batcher.close()

    app = FastAPI(title="calm-rag", summary="Cross-lingual consistent question answering", lifespan=lifespan)
    install_error_handlers(app)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse(error_body(500, f"internal error: {type(error).__name__}: {error}"), status_code=500)

    app.include_router(openai_router)
    _native_routes(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    api_key = config.resolved_api_key
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    if api_key:
        app.add_middleware(ApiKeyAuth, api_key=api_key)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _native_routes(app: FastAPI) -> None:
    @app.post("/v1/ask", response_model=None)
    async def ask(body: AskBody, request: Request) -> dict[str, Any] | Response:
        """Exactly `calm-rag ask --json`: with `choices` a multiple-choice vote, without an open question."""
        state = server(request)
        job = await enqueue(state, body.fields(body.question))
        try:
            return await wait_answer(state, request, job)
        except ClientGone:
            return Response(status_code=499)

    @app.post("/v1/search")
    async def search(body: SearchBody, request: Request) -> dict[str, Any]:
        """Exactly `calm-rag search --json`: the index's best chunks for the query."""
        state = server(request)
        query = body.query.strip()
        if not query:
            raise ApiError(422, "the query is empty", "query", "invalid_value")
        size = await state.intake.index_size(body.index)
        if size is None:
            raise ApiError(422, "this server has no index: start it with --index NAME, or name one with index",
                           "index", "invalid_value")
        top_k = state.intake.check_top_k(body.top_k, size)
        index = state.answering.index(body.index)
        hits = await anyio.to_thread.run_sync(lambda: index.search([query], top_k)[0])  # type: ignore[union-attr]
        return {"results": [hit.to_dict() for hit in hits]}

    @app.get("/v1/info")
    async def info(request: Request) -> dict[str, Any]:
        """What the server answers with and what a client may ask for (the page builds its form from it)."""
        state = server(request)
        from calm_rag.indexes import list_indexes

        indexes = await anyio.to_thread.run_sync(list_indexes, state.answering.index_dir)
        return {**options_payload(state.config, state.answering),
                "indexes": [entry.name for entry in indexes if not entry.error]}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers HTTP."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: models loaded and questions taken (503 while draining for shutdown)."""
        state: ServerState | None = getattr(request.app.state, "calm", None)
        if state is None or not state.batcher.accepting:
            return JSONResponse(error_body(503, "not ready", code="not_ready"), status_code=503)
        return JSONResponse({"status": "ready", "model": state.model_name, "index": state.answering.index_name,
                             "queued": state.batcher.queued, "running": state.batcher.running})

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        state = server(request)
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

