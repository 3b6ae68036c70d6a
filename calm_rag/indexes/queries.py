"""Many queries at once: a queries file (JSONL, a `text` per line) searched in blocks, results in input order.

Blocks bound memory (one embedding batch and one score matrix per block) and let a caller stream results
out as they come instead of holding every hit of a large file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from calm_rag.data.jsonl import read_jsonl
from calm_rag.errors import CalmRagError
from calm_rag.indexes.records import Hit

SEARCH_BLOCK = 256
"""Queries embedded and searched together."""


def read_queries(path: Path) -> list[dict[str, Any]]:
    """The records of a queries file; each needs a non-empty string `text` (an `id` is kept if present)."""
    if not path.is_file():
        raise CalmRagError(f"cannot read queries file {path}: no such file")
    records = []
    for number, record in read_jsonl(path):
        if not isinstance(record.get("text"), str) or not record["text"].strip():
            raise CalmRagError(f"{path}:{number}: every line needs a JSON object with a non-empty string 'text'")
        records.append(record)
    if not records:
        raise CalmRagError(f"{path}: no queries in this file (one JSON object with a 'text' field per line)")
    return records


def search_in_blocks(index: Any, records: Sequence[dict[str, Any]], top_k: int, block: int = SEARCH_BLOCK
                     ) -> Iterator[tuple[dict[str, Any], list[Hit]]]:
    """(query record, its hits) for every record, in input order, searching `block` queries at a time."""
    for start in range(0, len(records), block):
        chunk = records[start:start + block]
        yield from zip(chunk, index.search([record["text"] for record in chunk], top_k), strict=True)
