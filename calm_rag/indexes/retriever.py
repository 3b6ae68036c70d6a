"""LangChain adapter: a `BaseRetriever` over a calm-rag index, and ingesting LangChain `Document`s.

`CalmRagRetriever(index=Index.open("medkb"), top_k=5)` works wherever LangChain takes a retriever
(`invoke`, `batch`, chains). Each `Document` carries the hit's `id`, `score`, `lang`, `source`
and `doc_id` in its metadata next to the record's own metadata, and `Document.id` is the hit id.

`add_documents(docs, name)` stores LangChain documents in an index (created if needed). Documents
are grouped by `metadata["source"]` (default "langchain"); a group is one pseudo-file: adding a
group again with other content replaces its chunks, other groups are kept. A document's id is
`Document.id`, else `metadata["id"]`, else `<source>#<n>`; long documents are chunked like files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from calm_rag.errors import CalmRagError
from calm_rag.indexes.build import BuildReport, build_from_chunks
from calm_rag.indexes.chunking import ChunkingConfig, make_splitter, split_record
from calm_rag.indexes.embedder import Embedder
from calm_rag.indexes.index import Index, check_top_k
from calm_rag.indexes.records import Chunk, Hit
from calm_rag.indexes.store import IndexType
from calm_rag.indexes.validation import check_lang


def hit_to_document(hit: Hit) -> Document:
    metadata = {**hit.metadata, "id": hit.id, "score": hit.score, "lang": hit.lang, "source": hit.source,
                "doc_id": hit.doc_id}
    return Document(page_content=hit.text, metadata=metadata, id=hit.id)


class CalmRagRetriever(BaseRetriever):
    """Retrieve the `top_k` chunks of a calm-rag `Index` for a query, as LangChain `Document`s."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    top_k: int = Field(default=5, gt=0)

    @classmethod
    def from_name(cls, name: str, index_dir: str | os.PathLike[str] | None = None, top_k: int = 5) -> CalmRagRetriever:
        return cls(index=Index.open(name, index_dir), top_k=check_top_k(top_k))

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [hit_to_document(hit) for hit in self.index.search([query], self.top_k)[0]]


def documents_to_chunks(documents: Iterable[Document], chunking: ChunkingConfig | None = None
                        ) -> tuple[list[Chunk], dict[str, str]]:
    """Chunks of `documents` and a content hash per source group (what updates compare)."""
    splitter = make_splitter(chunking or ChunkingConfig())
    groups: dict[str, list[Document]] = {}
    for document in documents:
        if not isinstance(document, Document):
            raise TypeError(f"expected langchain Document, got {type(document).__name__}")
        groups.setdefault(str(document.metadata.get("source") or "langchain"), []).append(document)
    chunks: list[Chunk] = []
    hashes: dict[str, str] = {}
    for source, group in groups.items():
        digest = hashlib.sha256()
        for position, document in enumerate(group):
            if not document.page_content.strip():
                continue
            record_id = str(document.id or document.metadata.get("id") or f"{source}#{position}")
            lang = document.metadata.get("lang") or None
            problem = check_lang(lang)
            if problem is not None:
                raise CalmRagError(f"document {record_id!r} (source {source!r}): {problem}")
            metadata = {k: v for k, v in document.metadata.items() if k not in ("source", "id", "lang")}
            digest.update(json.dumps([record_id, document.page_content, metadata], ensure_ascii=False,
                                     sort_keys=True, default=str).encode())
            chunks.extend(split_record(document.page_content, record_id=record_id, source=source, lang=lang,
                                       metadata=metadata, splitter=splitter))
        hashes[source] = digest.hexdigest()
    return chunks, hashes


def add_documents(documents: Iterable[Document], name: str, *, embedder: Embedder | str | None = None,
                  index_dir: str | os.PathLike[str] | None = None, index_type: IndexType | None = None,
                  chunking: ChunkingConfig | None = None, progress: bool | None = None) -> BuildReport:
    """Add LangChain documents to index `name` (created with `embedder` if it does not exist)."""
    chunks, hashes = documents_to_chunks(documents, chunking)
    return build_from_chunks(chunks, name, sources=hashes, embedder=embedder, index_type=index_type,
                             index_dir=index_dir, progress=progress)


__all__ = ["CalmRagRetriever", "add_documents", "documents_to_chunks", "hit_to_document"]
