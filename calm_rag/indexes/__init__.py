"""Multilingual retrieval for calm-rag: chunk files, embed them, store them in FAISS, search them.

The QA pipeline uses `Index.open(name).search([question], top_k)`; `build_index` makes and
updates indexes (incrementally, atomically); `CalmRagRetriever` plugs an index into LangChain.
Heavy libraries (torch, faiss, sentence-transformers) load on first use, not on import of this
package's light parts, so the CLI starts quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from calm_rag.indexes.records import Chunk, Hit

if TYPE_CHECKING:
    from calm_rag.indexes.build import BuildReport, build_index
    from calm_rag.indexes.chunking import ChunkingConfig
    from calm_rag.indexes.embedder import Embedder, EmbedderConfig
    from calm_rag.indexes.index import Index, IndexInfo, list_indexes
    from calm_rag.indexes.manifest import Manifest
    from calm_rag.indexes.retriever import CalmRagRetriever, add_documents
    from calm_rag.indexes.store import StoreConfig, VectorStore

_LAZY = {
    "BuildReport": "build", "build_index": "build",
    "ChunkingConfig": "chunking",
    "Embedder": "embedder", "EmbedderConfig": "embedder",
    "Index": "index", "IndexInfo": "index", "list_indexes": "index",
    "Manifest": "manifest",
    "CalmRagRetriever": "retriever", "add_documents": "retriever",
    "StoreConfig": "store", "VectorStore": "store",
}

__all__ = ["BuildReport", "CalmRagRetriever", "Chunk", "ChunkingConfig", "Embedder", "EmbedderConfig", "Hit", "Index",
           "IndexInfo", "Manifest", "StoreConfig", "VectorStore", "add_documents", "build_index", "list_indexes"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"calm_rag.indexes.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'calm_rag.indexes' has no attribute {name!r}")
