"""`Index`: open a built index and search it; `list_indexes`: what is there.

This is the retrieval API the QA pipeline uses: `Index.open(name).search([question], top_k)`.
Opening reads the manifest, verifies the index's files against the checksums it records
(integrity.py; unchanged files are not re-hashed), reads the FAISS file and the docstore, and
fails with a `CalmRagError` that says what is wrong (unknown name: the existing ones are listed;
a damaged file: rebuild). The embedder is loaded on
the first search, once, so listing or inspecting indexes never loads a model.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from calm_rag.errors import CalmRagError
from calm_rag.indexes import integrity, layout
from calm_rag.indexes.build import check_embedder, load_index_embedder
from calm_rag.indexes.docstore import DocStore
from calm_rag.indexes.embedder import Embedder, EmbedderConfig
from calm_rag.indexes.manifest import Manifest, read_manifest
from calm_rag.indexes.records import Hit
from calm_rag.indexes.store import StoreConfig, VectorStore

log = logging.getLogger(__name__)

MAX_TOP_K = 10_000
"""More passages than any prompt or results page can use; a bound keeps absurd values one clear error."""


def check_top_k(top_k: Any) -> int:
    """`top_k` as an int in 1..MAX_TOP_K, or a one-line `CalmRagError` (the CLI's `--top-k` goes through here)."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k <= 0:
        raise CalmRagError(f"top-k must be a positive integer, got {top_k!r}")
    if top_k > MAX_TOP_K:
        raise CalmRagError(f"top-k must be at most {MAX_TOP_K:,}, got {top_k}")
    return int(top_k)


def _unknown(name: str, root: Path) -> CalmRagError:
    names = layout.existing_names(root)
    known = f"existing indexes: {', '.join(names)}" if names else \
        f"there are no indexes there yet; build one with `calm-rag index PATH --name {name}`"
    return CalmRagError(f"no index named {name!r} in {root}; {known}")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns


def _verified_version(root: Path, name: str, attempts: int = 3) -> tuple[Path, Manifest]:
    """The folder and manifest of the published version of `name`, its files checked against the manifest's
    checksums. A writer may swap in a new version between reading the manifest and hashing the files, so a
    mismatch is reported as damage only if the manifest did not change meanwhile; otherwise it is read again."""
    while True:
        attempts -= 1
        path = layout.published(root, name)
        if path is None:
            raise _unknown(name, root)
        manifest_path = path / layout.MANIFEST_FILE
        before = _identity(manifest_path)
        manifest = read_manifest(manifest_path)
        try:
            if not integrity.verify_files(path, manifest, name=name, stamp=layout.stamp_path(root, name)):
                log.warning("index %r has no checksums of its files (built before calm-rag recorded them), so "
                            "they cannot be verified; `calm-rag index --name %s` records them", name, name)
            return path, manifest
        except CalmRagError:
            if attempts <= 0 or _identity(manifest_path) == before:
                raise


class Index:
    """A read-only, thread-safe handle on one built index."""

    def __init__(self, name: str, path: Path, manifest: Manifest, store: VectorStore, docstore: DocStore,
                 embedder: Embedder | None = None, embedder_config: EmbedderConfig | None = None) -> None:
        self.name = name
        self.path = path
        self.manifest = manifest
        self.store = store
        self.docstore = docstore
        self._embedder = embedder
        self._embedder_config = embedder_config
        self._lock = threading.Lock()
        if embedder is not None:
            check_embedder(embedder, manifest, name=name)

    @classmethod
    def open(cls, name: str, index_dir: str | os.PathLike[str] | None = None, *,
             embedder: Embedder | None = None, embedder_config: EmbedderConfig | None = None) -> Index:
        """Open index `name` under `index_dir` (default: the settings' index_dir).

        `embedder`: an already loaded embedder to reuse (checked against the manifest); by default
        the index's own embedder is loaded on the first search.
        """
        layout.validate_name(name)
        root = layout.readable_root(layout.index_root(index_dir))
        path, manifest = _verified_version(root, name)
        store = VectorStore.load(path / layout.INDEX_FILE, StoreConfig.from_dict(manifest.index.get("params", {})),
                                 manifest.index_type, path / layout.TOMBSTONES_FILE)  # type: ignore[arg-type]
        if store.dimension != manifest.dimension:
            raise CalmRagError(f"{path / layout.INDEX_FILE} holds {store.dimension}-dimensional vectors but its "
                               f"manifest says {manifest.dimension}; the index is corrupt: rebuild it with --rebuild")
        docstore = DocStore(path / layout.DOCSTORE_FILE, readonly=True)
        return cls(name, path, manifest, store, docstore, embedder, embedder_config)

    @property
    def embedder(self) -> Embedder:
        """The index's embedder, loaded on first use and checked against the manifest."""
        with self._lock:
            if self._embedder is None:
                embedder = load_index_embedder(self.manifest, self._embedder_config)
                check_embedder(embedder, self.manifest, name=self.name)
                self._embedder = embedder
            return self._embedder

    def __len__(self) -> int:
        return len(self.store)

    def close(self) -> None:
        self.docstore.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search(self, queries: Sequence[str], top_k: int) -> list[list[Hit]]:
        """The `top_k` best chunks for each query, best first (cosine similarity as `score`)."""
        top_k = check_top_k(top_k)
        if isinstance(queries, str):
            raise CalmRagError("search takes a list of queries; wrap a single question as [question]")
        queries = list(queries)
        if not queries:
            return []
        for position, query in enumerate(queries):
            if not isinstance(query, str) or not query.strip():
                raise CalmRagError(f"query {position + 1} is empty; every query needs some text")
        vectors = self.embedder.embed_queries(queries)
        return self.search_vectors(vectors, top_k)

    def search_vectors(self, vectors: np.ndarray, top_k: int) -> list[list[Hit]]:
        """Search with query vectors you embedded yourself (unit length, the index's dimension)."""
        top_k = check_top_k(top_k)
        scores, ids = self.store.search(vectors, top_k)
        rows = self.docstore.get(ids[ids >= 0].tolist())
        results: list[list[Hit]] = []
        for row_scores, row_ids in zip(scores, ids, strict=True):
            hits = []
            for score, vector_id in zip(row_scores, row_ids, strict=True):
                row = rows.get(int(vector_id))
                if vector_id < 0 or row is None:
                    continue
                hits.append(Hit(id=row["id"], text=row["text"], score=float(score), lang=row["lang"],
                                source=row["source"], metadata=row["metadata"], doc_id=row["doc_id"]))
            results.append(hits)
        return results


@dataclass(frozen=True)
class IndexInfo:
    """One row of `calm-rag index --list`."""

    name: str
    path: Path
    documents: int | None
    chunks: int | None
    embedder: str | None
    dimension: int | None
    index_type: str | None
    size_bytes: int
    updated_at: str | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "documents": self.documents, "chunks": self.chunks,
                "embedder": self.embedder, "dimension": self.dimension, "index_type": self.index_type,
                "size_bytes": self.size_bytes, "updated_at": self.updated_at, "error": self.error}


def list_indexes(index_dir: str | os.PathLike[str] | None = None) -> list[IndexInfo]:
    """Every index under `index_dir`, by name; a broken one is listed with its `error`, not raised."""
    root = layout.readable_root(layout.index_root(index_dir))
    if not root.is_dir():
        return []
    infos = []
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        size = layout.folder_size(path)
        try:
            manifest = read_manifest(path / layout.MANIFEST_FILE)
        except CalmRagError as error:
            if not (path / layout.INDEX_FILE).exists() and not (path / layout.DOCSTORE_FILE).exists():
                continue
            infos.append(IndexInfo(path.name, path, None, None, None, None, None, size, None, str(error)))
            continue
        infos.append(IndexInfo(path.name, path, manifest.documents, manifest.chunks,
                               str(manifest.embedder.get("name") or manifest.embedder.get("model_id")),
                               manifest.dimension, manifest.index_type, size, manifest.updated_at))
    return infos
