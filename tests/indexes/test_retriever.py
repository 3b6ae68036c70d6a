"""LangChain: the retriever returns Documents with metadata; Documents can be ingested."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from calm_rag.indexes import CalmRagRetriever, Index, add_documents, build_index
from calm_rag.indexes.embedder import Embedder


def test_retriever_invoke_and_batch(corpus: Path, embedder: Embedder) -> None:
    build_index([corpus / "docs", corpus / "more.jsonl"], "kb", embedder=embedder)
    retriever = CalmRagRetriever(index=Index.open("kb", embedder=embedder), top_k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("Paris is the capital of France.")
    assert len(docs) == 2 and all(isinstance(doc, Document) for doc in docs)
    top = docs[0]
    assert top.page_content == "Paris is the capital of France." and top.id == "r1"
    assert top.metadata["id"] == "r1" and top.metadata["lang"] == "en" and top.metadata["source"] == "more.jsonl"
    assert top.metadata["topic"] == "geo" and 0.99 < top.metadata["score"] <= 1.0001
    batched = retriever.batch(["Paris is the capital of France.", "Madrid es la capital de España."])
    assert [found[0].id for found in batched] == ["r1", "3"]
    assert CalmRagRetriever.from_name("kb", top_k=1).invoke("Madrid es la capital de España.")[0].id == "3"
    with pytest.raises(ValueError):
        CalmRagRetriever(index=retriever.index, top_k=0)


def test_add_langchain_documents(embedder: Embedder) -> None:
    documents = [
        Document(page_content="Paris is the capital of France.", metadata={"source": "wiki", "lang": "en"}, id="p"),
        Document(page_content="Berlin ist die Hauptstadt von Deutschland.", metadata={"source": "wiki", "page": 2}),
        Document(page_content="巴黎是法国的首都。", metadata={"id": "zh-1"}),
    ]
    report = add_documents(documents, "lc", embedder=embedder)
    assert report.created and report.chunks == 3 and sorted(report.added) == ["langchain", "wiki"]
    index = Index.open("lc", embedder=embedder)
    hit = index.search(["Berlin ist die Hauptstadt von Deutschland."], 1)[0][0]
    assert hit.id == "wiki#1" and hit.source == "wiki" and hit.metadata == {"page": 2} and hit.lang == "de"
    assert index.search(["巴黎是法国的首都。"], 1)[0][0].id == "zh-1"

    assert not add_documents(documents, "lc").changed  # same content: nothing to do (index's own embedder)
    report = add_documents([Document(page_content="Rome is the capital of Italy.", metadata={"source": "wiki"})],
                           "lc", embedder=embedder)
    assert report.updated == ["wiki"] and report.chunks == 2  # the 'wiki' group was replaced, 'langchain' kept
