"""The docstore: chunk texts and metadata by FAISS id, in SQLite (never a pickle).

SQLite because it is a single file that is safe to read while nothing writes it, answers
"which ids came from file X" (for updates and deletions) with an index instead of a scan, and
cannot execute code on load, unlike the pickled docstores of other RAG tools. Metadata is
stored as JSON text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from calm_rag.errors import CalmRagError
from calm_rag.indexes.records import Chunk

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    source TEXT NOT NULL,
    text TEXT NOT NULL,
    lang TEXT,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX IF NOT EXISTS chunks_chunk_id ON chunks(chunk_id);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
"""


class DocStore:
    """Chunks keyed by their int64 FAISS id. Thread-safe (LangChain's `batch` searches from threads)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            if readonly:
                if not path.is_file():
                    raise CalmRagError(f"docstore {path} is missing; "
                                       "rebuild the index with `calm-rag index ... --rebuild`")
                self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
                self._db.execute("SELECT count(*) FROM chunks").fetchone()
            else:
                self._db = sqlite3.connect(str(path), check_same_thread=False)
                self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise CalmRagError(f"docstore {path} is corrupt ({error}); rebuild the index with "
                               "`calm-rag index ... --rebuild`") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def count_documents(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(DISTINCT doc_id) FROM chunks").fetchone()[0])

    def add(self, ids: Sequence[int], chunks: Sequence[Chunk]) -> None:
        """Store `chunks` under `ids`; a repeated chunk id is a `CalmRagError` naming both sources."""
        rows = [(int(i), c.id, c.doc_id, c.source, c.text, c.lang, json.dumps(c.metadata, ensure_ascii=False,
                                                                                default=str))
                for i, c in zip(ids, chunks, strict=True)]
        with self._lock:
            try:
                with self._db:
                    self._db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            except sqlite3.IntegrityError:
                raise CalmRagError(self._duplicate_message(chunks)) from None

    def _duplicate_message(self, chunks: Sequence[Chunk]) -> str:
        seen: dict[str, str] = {}
        for chunk in chunks:
            if chunk.id in seen:
                return (f"duplicate id {chunk.id!r} in {chunk.source} (also in {seen[chunk.id]}); "
                        "ids of .jsonl records must be unique within an index")
            seen[chunk.id] = chunk.source
        for chunk in chunks:
            row = self._db.execute("SELECT source FROM chunks WHERE chunk_id = ?", (chunk.id,)).fetchone()
            if row:
                return (f"duplicate id {chunk.id!r} in {chunk.source} (already stored from {row[0]}); "
                        "ids of .jsonl records must be unique within an index")
        return "duplicate chunk id"

    def ids_for_sources(self, sources: Iterable[str]) -> list[int]:
        with self._lock:
            out: list[int] = []
            for source in sources:
                out.extend(row[0] for row in self._db.execute("SELECT id FROM chunks WHERE source = ?", (source,)))
            return out

    def delete(self, ids: Sequence[int]) -> None:
        with self._lock, self._db:
            self._db.executemany("DELETE FROM chunks WHERE id = ?", [(int(i),) for i in ids])

    def get(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Rows by id (missing ids are left out)."""
        wanted = sorted({int(i) for i in ids if int(i) >= 0})
        found: dict[int, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                block = wanted[start:start + 500]
                marks = ",".join("?" * len(block))
                for row in self._db.execute(
                        f"SELECT id, chunk_id, doc_id, source, text, lang, metadata FROM chunks WHERE id IN ({marks})",
                        block):
                    found[row[0]] = {"id": row[1], "doc_id": row[2], "source": row[3], "text": row[4],
                                     "lang": row[5], "metadata": json.loads(row[6])}
        return found

    def max_id(self) -> int:
        with self._lock:
            value = self._db.execute("SELECT max(id) FROM chunks").fetchone()[0]
            return -1 if value is None else int(value)

    def copy_to(self, path: Path) -> DocStore:
        """A writable copy at `path` (SQLite's online backup: consistent even while read)."""
        target = sqlite3.connect(str(path))
        with self._lock:
            self._db.backup(target)
        target.close()
        return DocStore(path)
