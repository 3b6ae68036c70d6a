"""`ServeConfig`: how `calm-rag serve` batches, queues, authenticates and limits requests.

The limits exist because every request costs L languages x K samples of generation: one client
asking with 40 choices, 500 samples or a novel as its question would stall everyone else. Each
is checked before a request is queued, and a violation is a 413/422 in the OpenAI error shape.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from calm_rag.errors import CalmRagError

API_KEY_ENV = "CALM_RAG_API_KEY"
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    """When set, every route but /healthz (and the static page, which holds no data) needs
    `Authorization: Bearer <api_key>`."""
    max_concurrency: int = 64
    """Most questions in the server at once (queued + being answered); past it, 429 with Retry-After."""
    max_batch: int = 8
    """Most questions answered by one `ask_batch` call."""
    batch_wait_ms: float = 10.0
    """How long the first waiting question waits for others to join its batch."""
    max_question_tokens: int = 512
    """Question length in the generator's tokens (characters x 4 when it has no tokenizer)."""
    max_choices: int = 10
    max_choice_tokens: int = 128
    max_samples: int = 16
    max_top_k: int = 20
    """Also capped by the number of chunks in the index."""
    max_body_bytes: int = 65536
    model_name: str | None = None
    """The id /v1/models reports (default: the generator's name)."""

    def __post_init__(self) -> None:
        for name in ("max_concurrency", "max_batch", "max_question_tokens", "max_choices", "max_choice_tokens",
                     "max_samples", "max_top_k", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise CalmRagError(f"{name.replace('_', '-')} must be at least 1")
        if self.batch_wait_ms < 0:
            raise CalmRagError("batch-wait-ms must be >= 0")
        if not 0 < self.port < 65536:
            raise CalmRagError(f"port must be in 1..65535, got {self.port}")

    @property
    def resolved_api_key(self) -> str | None:
        """The key from the config, else from CALM_RAG_API_KEY; None (no auth) when neither is set."""
        return self.api_key or os.environ.get(API_KEY_ENV) or None

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")
