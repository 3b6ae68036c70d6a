"""The two value types that cross module boundaries: a `Chunk` to store and a `Hit` to return.

They live apart from the modules that make or consume them so that chunking, storage,
search and the LangChain adapter agree on one shape without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """One piece of text as it will be embedded and stored.

    `id` is the user-visible id: a .jsonl record's own `id` when the record fits in one
    chunk, `<id>#<n>` (n = 0, 1, ...) when it is split; `<source>#<n>` for .txt/.md files.
    `doc_id` is the id of the whole record or file the chunk came from.
    """

    id: str
    doc_id: str
    text: str
    source: str
    lang: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One search result: a stored chunk and its cosine similarity to the query."""

    id: str
    text: str
    score: float
    lang: str | None
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)
    doc_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape printed by `calm-rag search --json`."""
        return {"id": self.id, "text": self.text, "score": round(float(self.score), 6), "lang": self.lang,
                "source": self.source, "metadata": self.metadata, "doc_id": self.doc_id}
