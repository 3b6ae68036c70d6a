"""Choosing and loading an engine: one `EngineConfig`, one `load_generator` for every command and the library.

The engine is picked by `--engine`, `engine = "..."` in calm-rag.toml or `CALM_RAG_ENGINE`; the
options that only make sense for one engine (a base URL for a server, a device for transformers) are
checked here, before any model loads, so a wrong combination is one clear line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from calm_rag.errors import CalmRagError
from calm_rag.generation.base import Generator, check_engine


@dataclass(frozen=True)
class EngineConfig:
    engine: str = "transformers"
    """transformers (in-process, training and CUDA), llama.cpp (in-process server on the GGUF) or openai
    (any OpenAI-compatible server at `base_url`)."""
    device: str = "auto"
    """transformers only."""
    dtype: str = "auto"
    """transformers only."""
    plain_prompts: bool = False
    """Allow a generator without a chat template (prompted with plain text)."""
    base_url: str | None = None
    """openai only: the server's /v1 URL."""
    api_key: str | None = None
    """openai only."""
    tokenizer: str | None = None
    """openai only: where the tokenizer and chat template come from when `--model` names none calm-rag knows."""

    def __post_init__(self) -> None:
        check_engine(self.engine)
        if self.base_url is not None and self.engine != "openai":
            raise CalmRagError("--base-url needs --engine openai")
        if self.engine == "openai" and not self.base_url:
            raise CalmRagError("--engine openai needs --base-url (the server's /v1 URL)")


def load_generator(model: str, config: EngineConfig = EngineConfig(), *, adapter: str | Path | None = None,
                   merge_adapter: bool = True) -> Generator:
    """The generator `model` names (short name, hub id or path; the served model name for openai) on the
    configured engine, with `adapter` applied."""
    if config.engine == "transformers":
        from calm_rag.generation.transformers_engine import TransformersGenerator

        return TransformersGenerator.load(model, adapter=adapter, device=config.device, dtype=config.dtype,
                                          plain_prompts=config.plain_prompts, merge_adapter=merge_adapter)
    raise CalmRagError(f"engine {config.engine!r} is not available yet")
