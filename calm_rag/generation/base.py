"""What calm-rag asks of a generator, whatever engine runs it: the `Generator` protocol and its settings.

Every engine (in-process transformers, llama.cpp's server inside the process, any OpenAI-compatible
server) offers the same three things, so sampling, self-translation and direct mode never know which
one they talk to:
- `render`: chat messages -> the prompt string, rendered client-side with the model's chat template
  (so direct mode can append the answer label to the assistant turn);
- `generate`: one completion per prompt (sampled, or greedy at temperature 0);
- `label_distributions`: direct mode, the probability of each option label right after the prompt.

This module imports nothing heavy: configs that name a `GenerationConfig` stay importable without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from calm_rag.errors import CalmRagError
from calm_rag.prompts import Message

Progress = Callable[[int], None]
"""Called with the number of prompts just finished."""

Engine = Literal["auto", "transformers", "llama.cpp", "openai"]
ENGINES: tuple[str, ...] = ("auto", "transformers", "llama.cpp", "openai")
"""auto: llama.cpp when the generator has a GGUF (an offline bundle, a .gguf file), else transformers."""


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 256
    temperature: float = 0.7
    """0 means greedy decoding."""
    top_p: float = 0.95
    seed: int = 0
    batch_size: int = 32
    """At most this many sequences per batched call (transformers: the memory budget; servers: the
    number of requests in flight)."""
    grammar: str | None = None
    """A GBNF grammar the output must follow, where the engine constrains decoding (llama.cpp, in-process or
    as a server); other engines decode freely, and callers check what comes back as they would anyway."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise CalmRagError("max_new_tokens must be at least 1")
        if self.temperature < 0:
            raise CalmRagError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise CalmRagError("top_p must be in (0, 1]")
        if self.batch_size < 1:
            raise CalmRagError("batch_size must be at least 1")


@runtime_checkable
class Generator(Protocol):
    """A chat model that calm-rag can sample, translate and score with, on any engine."""

    name: str
    """The model's name as reports and adapters record it (hub id or short name)."""
    special_tokens: frozenset[str]
    """The tokenizer's added and special tokens (`calm_rag.prompts.tokenizer_control_tokens`), stripped from
    retrieved passages so a document cannot open a chat turn; empty where the tokenizer is unknown (only the
    prompts module's fixed floor applies then)."""
    constrains_decoding: bool
    """Whether `GenerationConfig.grammar` is applied (llama.cpp, in-process or as a server). Callers that split a
    batch only to give each part its own grammar keep it whole where this is False."""

    def render(self, messages: Sequence[Message], prefill: str = "") -> str:
        """Messages -> the prompt string ending with the assistant turn's start; `prefill` continues that
        turn (direct mode's answer label)."""
        ...

    def generate(self, prompts: Sequence[str], config: GenerationConfig = GenerationConfig(),
                 progress: Progress | None = None) -> list[str]:
        """One completion per prompt, in input order; repeat a prompt to get several samples of it."""
        ...

    def label_distributions(self, prompts: Sequence[str], label_sets: Sequence[Sequence[str]],
                            batch_size: int = 32, progress: Progress | None = None) -> list[dict[str, float]]:
        """For each prompt (ending right after the answer label), the probability of each of its labels,
        renormalised over those labels."""
        ...

    def close(self) -> None:
        """Release what the engine holds (a llama.cpp server, HTTP connections); idempotent."""
        ...


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise CalmRagError(f"unknown engine {engine!r}; use {', '.join(ENGINES)}")
    return engine
