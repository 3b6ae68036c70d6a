"""`calm-rag serve`: load the models once and answer over HTTP (native API, OpenAI-compatible API, a web page).

Everything a user can get wrong (an unknown language or mode, a missing model or index, an engine
option without its engine) fails here, before the port is bound, as one line and exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from calm_rag.cli.app import BASE_URL, ENGINE, TOKENIZER, cli_command, err_console
from calm_rag.errors import CalmRagError
from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.engines import EngineConfig
from calm_rag.languages import parse_languages
from calm_rag.pipelines.qa import CalmQA, QAConfig
from calm_rag.voting.matching import DEFAULT_THRESHOLD


@cli_command(name="serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind; anything but loopback should have an API key."),
    port: int = typer.Option(8000, help="Port to bind."),
    index: str | None = typer.Option(None, help="Retrieve passages from this index (requests may name another "
                                                "index of --index-dir)."),
    index_dir: str | None = typer.Option(None, help="Where indexes live (default ./indexes)."),
    top_k: int = typer.Option(5, help="Passages to retrieve (requests may ask for fewer or more, up to the cap)."),
    languages: str | None = typer.Option(None, help="Languages to vote across, e.g. en,zh,de (default: settings)."),
    samples: int | None = typer.Option(None, min=1, help="Samples per language (default: settings, 3)."),
    mode: str = typer.Option("cot", help="cot: explain then answer (sampled); direct: exact letter distribution."),
    model: str | None = typer.Option(None, help="Generator: short name, hub id or local path."),
    adapter: str | None = typer.Option(None, help="A CALM LoRA adapter folder (from `calm-rag train`)."),
    engine: str | None = ENGINE,
    base_url: str | None = BASE_URL,
    engine_api_key: str | None = typer.Option(None, "--engine-api-key", envvar="CALM_RAG_OPENAI_API_KEY",
                                              help="openai engine: the upstream server's key (--api-key is this "
                                                   "server's own)."),
    tokenizer: str | None = TOKENIZER,
    device: str | None = typer.Option(None, help="transformers engine: auto, cpu or cuda (default: settings)."),
    plain_prompts: bool = typer.Option(False, help="Allow a model without a chat template (plain-text prompts)."),
    temperature: float = typer.Option(0.7, help="Sampling temperature (0 = greedy)."),
    max_new_tokens: int = typer.Option(256, help="Longest answer to generate."),
    seed: int = typer.Option(0, help="Random seed."),
    batch_size: int = typer.Option(32, help="Most sequences per generate call (memory budget)."),
    embedder: str | None = typer.Option(None, help="Open questions: embedder that clusters answers by meaning."),
    threshold: float | None = typer.Option(None, help="Open questions: cosine similarity at which answers agree."),
    api_key: str | None = typer.Option(None, envvar="CALM_RAG_API_KEY",
                                       help="Require 'Authorization: Bearer KEY' on every route but /healthz."),
    max_concurrency: int = typer.Option(64, min=1, help="Most questions queued or being answered; past it, 429."),
    max_batch: int = typer.Option(8, min=1, help="Most questions per batched pipeline call."),
    batch_wait_ms: float = typer.Option(10.0, min=0, help="How long a question waits for others to join its batch."),
    log_level: str = typer.Option("info", help="uvicorn log level: critical, error, warning, info, debug."),
) -> None:
    """Serve calm-rag over HTTP: POST /v1/ask and /v1/search (the JSON of `ask --json` and `search --json`),
    an OpenAI-compatible /v1/chat/completions (streamed stage by stage) and /v1/models, /healthz, /readyz,
    /metrics, and a web page at /. Questions that arrive together are answered in one batched call."""
    import uvicorn

    from calm_rag.serving import ServeConfig, create_app

    settings = ServeConfig(host=host, port=port, api_key=api_key, max_concurrency=max_concurrency,
                           max_batch=max_batch, batch_wait_ms=batch_wait_ms)
    qa_config = QAConfig(
        model=model, adapter=adapter, languages=tuple(parse_languages(languages)) if languages else None,
        samples=samples, mode=mode, index=index,  # type: ignore[arg-type]
        index_dir=Path(index_dir) if index_dir else None,
        top_k=top_k, embedder=embedder,
        engine=EngineConfig.from_settings(engine, device=device, plain_prompts=plain_prompts, base_url=base_url,
                             api_key=engine_api_key, tokenizer=tokenizer),
        cluster_threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
        generation=GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                                    batch_size=batch_size))
    if log_level not in ("critical", "error", "warning", "info", "debug"):
        raise CalmRagError(f"unknown --log-level {log_level!r}")
    if not settings.loopback and not settings.resolved_api_key:
        err_console.print(f"[bold yellow]Warning:[/] serving on {host} without an API key: anyone who can reach "
                          "this port can use the models. Pass --api-key or set CALM_RAG_API_KEY.", highlight=False)
    with err_console.status("Loading models..."):
        qa = CalmQA.from_config(qa_config)
        qa.index  # a missing index fails now, not on every request
        qa.encode  # the answer embedder for open questions, so /readyz means everything is loaded
    err_console.print(f"calm-rag serving {qa.generator.name} on http://{host}:{port}/ "
                      f"({'API key required' if settings.resolved_api_key else 'no API key'})", highlight=False)
    try:
        uvicorn.run(create_app(qa, settings), host=host, port=port, log_level=log_level)
    finally:
        qa.close()  # stops what the engine runs (llama.cpp's server) once uvicorn has drained
