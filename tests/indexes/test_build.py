"""Build -> update -> delete -> search round trips, the manifest, atomic writes, and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from calm_rag.errors import CalmRagError
from calm_rag.indexes import Index, build_index, layout, list_indexes
from calm_rag.indexes import build as build_module
from calm_rag.indexes import versions as versions_module
from calm_rag.indexes.chunking import ChunkingConfig
from calm_rag.indexes.embedder import Embedder
from tests.indexes.conftest import write_jsonl


class CountingEmbedder(Embedder):
    """The tiny embedder, counting the document texts it embeds."""

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner.model, inner.resolved, inner.config)
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str], *, progress: bool | None = None) -> np.ndarray:
        self.embedded.extend(texts)
        return super().embed_documents(texts, progress=progress)


def _paths(corpus: Path) -> list[Path]:
    return [corpus / "docs", corpus / "more.jsonl"]


def test_build_update_delete_search_round_trip(corpus: Path, embedder: Embedder, tmp_path: Path) -> None:
    counting = CountingEmbedder(embedder)
    report = build_index(_paths(corpus), "kb", embedder=counting)
    assert report.created and report.index_type == "flat"
    assert sorted(report.added) == ["docs/en.txt", "docs/sub/de.txt", "docs/zh.md", "more.jsonl"]
    assert report.skipped == {"binary": ["docs/blob.txt"]} and report.ignored == 1
    assert report.documents == 6 and report.chunks == 6
    assert (tmp_path / "indexes" / "kb" / "manifest.json").is_file()  # CALM_RAG_INDEX_DIR

    hits = Index.open("kb", embedder=embedder).search(["Paris is the capital of France."], 3)[0]
    assert hits[0].id == "r1" and hits[0].lang == "en" and hits[0].source == "more.jsonl"
    assert hits[0].metadata == {"topic": "geo"} and hits[0].doc_id == "r1" and hits[0].score > 0.99
    assert hits[0].score >= hits[1].score >= hits[2].score
    ids = {hit.id for hit in Index.open("kb", embedder=embedder).search(["x"], 10)[0]}
    assert ids == {"r1", "r2", "3", "docs/en.txt#0", "docs/zh.md#0", "docs/sub/de.txt#0"}

    # change one file, add one, delete one: only the changed and new files are embedded again
    counting.embedded.clear()
    (corpus / "docs" / "en.txt").write_text("Ibuprofen also reduces fever.", encoding="utf-8")
    (corpus / "docs" / "new.md").write_text("Rome is the capital of Italy.", encoding="utf-8")
    (corpus / "docs" / "sub" / "de.txt").unlink()
    report = build_index(_paths(corpus), "kb", embedder=counting)
    assert sorted(counting.embedded) == ["Ibuprofen also reduces fever.", "Rome is the capital of Italy."]
    assert report.updated == ["docs/en.txt"] and report.added == ["docs/new.md"]
    assert report.removed == ["docs/sub/de.txt"] and report.unchanged == 2
    assert report.chunks_added == 2 and report.chunks_removed == 2 and report.chunks == 6

    index = Index.open("kb", embedder=embedder)
    texts = {hit.id: hit.text for hit in index.search(["anything"], 20)[0]}
    assert "docs/sub/de.txt#0" not in texts and texts["docs/en.txt#0"] == "Ibuprofen also reduces fever."
    assert index.search(["Rome is the capital of Italy."], 1)[0][0].id == "docs/new.md#0"
    assert set(index.manifest.files) == {"docs/en.txt", "docs/new.md", "docs/zh.md", "more.jsonl"}

    # nothing changed: nothing embedded, nothing written
    counting.embedded.clear()
    before = (tmp_path / "indexes" / "kb" / "manifest.json").read_text()
    report = build_index(_paths(corpus), "kb", embedder=counting)
    assert not report.changed and counting.embedded == []
    assert (tmp_path / "indexes" / "kb" / "manifest.json").read_text() == before

    # paths not passed this time are kept; no paths at all re-scans the recorded ones
    report = build_index([corpus / "more.jsonl"], "kb", embedder=counting)
    assert not report.changed and Index.open("kb").manifest.chunks == 6
    (corpus / "docs" / "zh.md").unlink()
    report = build_index(None, "kb", embedder=counting)
    assert report.removed == ["docs/zh.md"]


def test_ids_are_stable_and_never_reused(corpus: Path, embedder: Embedder) -> None:
    build_index(_paths(corpus), "kb", embedder=embedder)
    first = Index.open("kb")
    r1_before = [i for i, row in first.docstore.get(range(100)).items() if row["id"] == "r1"]
    next_id = first.manifest.next_id
    (corpus / "docs" / "en.txt").write_text("changed", encoding="utf-8")
    build_index(_paths(corpus), "kb", embedder=embedder)
    second = Index.open("kb")
    assert [i for i, row in second.docstore.get(range(100)).items() if row["id"] == "r1"] == r1_before
    changed = [i for i, row in second.docstore.get(range(100)).items() if row["id"] == "docs/en.txt#0"]
    assert changed == [next_id] and second.manifest.next_id == next_id + 1


def test_manifest_contents(corpus: Path, embedder: Embedder, tmp_path: Path) -> None:
    build_index(_paths(corpus), "kb", embedder=embedder, chunking=ChunkingConfig(chunk_size=300, chunk_overlap=30))
    data = json.loads((tmp_path / "indexes" / "kb" / "manifest.json").read_text())
    assert data["name"] == "kb" and data["format_version"] == 1 and data["calm_rag_version"]
    assert data["dimension"] == 32 and data["normalized"] is True and data["metric"] == "inner_product"
    assert data["embedder"]["path"] == str(Path(embedder.resolved.path))
    assert data["embedder"]["prompts"] == {"query": "query: ", "document": "passage: "}
    assert {"model_id", "revision", "hub_id", "dimension"} <= set(data["embedder"])
    assert data["index"]["type"] == "flat" and data["index"]["params"]["hnsw_threshold"] == 50_000
    assert data["chunking"]["chunk_size"] == 300 and data["chunking"]["chunk_overlap"] == 30
    assert data["documents"] == 6 and data["chunks"] == 6 and data["next_id"] == 6
    entry = data["files"]["more.jsonl"]
    assert entry["documents"] == 3 and entry["chunks"] == 3 and len(entry["sha256"]) == 64
    assert data["updated_at"].endswith("+00:00")
    assert sorted(os.listdir(tmp_path / "indexes" / "kb")) == ["docstore.sqlite", "index.faiss", "manifest.json"]
    with pytest.raises(CalmRagError, match="chunk size 300 and overlap 30; pass --rebuild"):
        build_index(_paths(corpus), "kb", embedder=embedder, chunking=ChunkingConfig(chunk_size=500))
    build_index(_paths(corpus), "kb", rebuild=True)  # keeps the recorded embedder and chunking
    assert Index.open("kb").manifest.chunking["chunk_size"] == 300
    build_index(_paths(corpus), "kb", embedder=embedder, chunking=ChunkingConfig(chunk_size=500), rebuild=True)
    assert Index.open("kb").manifest.chunking["chunk_size"] == 500


def test_failed_update_leaves_previous_index_intact(corpus: Path, embedder: Embedder, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    build_index(_paths(corpus), "kb", embedder=embedder)
    before = Index.open("kb", embedder=embedder).search(["Aspirin"], 6)[0]
    (corpus / "docs" / "en.txt").write_text("Completely different text now.", encoding="utf-8")

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(versions_module, "write_manifest", crash)  # after index.faiss and docstore are written
        with pytest.raises(OSError, match="disk full"):
            build_index(_paths(corpus), "kb", embedder=embedder)
    with monkeypatch.context() as patched:
        patched.setattr(build_module.Embedder, "embed_documents",
                        lambda self, texts, progress=None: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            build_index(_paths(corpus), "kb", embedder=embedder)

    # no temp folders left (the lock and the verified-stamp of integrity.py are all there is besides the index)
    assert sorted(p.name for p in (tmp_path / "indexes").iterdir()) == [".kb.lock", ".kb.verified.json", "kb"]
    after = Index.open("kb", embedder=embedder).search(["Aspirin"], 6)[0]
    assert [(h.id, h.text) for h in after] == [(h.id, h.text) for h in before]


def test_crash_between_the_two_renames_is_recovered(corpus: Path, embedder: Embedder, tmp_path: Path) -> None:
    build_index(_paths(corpus), "kb", embedder=embedder)
    root = tmp_path / "indexes"
    os.rename(root / "kb", root / ".kb.old-123-abc")  # as if killed right after the first rename
    assert Index.open("kb", embedder=embedder).search(["Paris is the capital of France."], 1)[0][0].id == "r1"
    assert [info.name for info in list_indexes()] == []
    (corpus / "docs" / "en.txt").write_text("changed", encoding="utf-8")
    report = build_index(_paths(corpus), "kb", embedder=embedder)
    assert report.updated == ["docs/en.txt"] and not report.created
    assert sorted(p.name for p in root.iterdir()) == [".kb.lock", ".kb.verified.json", "kb"]


def test_hnsw_index_deletes_with_tombstones(corpus: Path, embedder: Embedder, tmp_path: Path) -> None:
    build_index(_paths(corpus), "kb", embedder=embedder, index_type="hnsw")
    (corpus / "docs" / "sub" / "de.txt").unlink()
    report = build_index(_paths(corpus), "kb", embedder=embedder)
    assert report.index_type == "hnsw" and report.removed == ["docs/sub/de.txt"]
    index = Index.open("kb", embedder=embedder)
    assert index.manifest.index["tombstones"] == 1 and index.manifest.index["stored"] == 6
    assert (tmp_path / "indexes" / "kb" / "tombstones.npy").is_file()
    ids = [hit.id for hit in index.search(["Berlin ist die Hauptstadt von Deutschland."], 10)[0]]
    assert len(ids) == 5 and "docs/sub/de.txt#0" not in ids
    # switching the type converts the stored vectors, nothing is re-embedded
    report = build_index(_paths(corpus), "kb", embedder=embedder, index_type="flat")
    assert report.index_type == "flat" and Index.open("kb").manifest.index["tombstones"] == 0


def test_ivf_index(corpus: Path, embedder: Embedder) -> None:
    build_index(_paths(corpus), "kb", embedder=embedder, index_type="ivf")
    assert Index.open("kb", embedder=embedder).search(["Paris is the capital of France."], 1)[0][0].id == "r1"


def test_duplicate_jsonl_ids_are_rejected(tmp_path: Path, embedder: Embedder) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"id": "same", "text": "one"}])
    write_jsonl(tmp_path / "b.jsonl", [{"id": "same", "text": "two"}])
    with pytest.raises(CalmRagError, match="duplicate id 'same' in b.jsonl \\(also in a.jsonl\\)"):
        build_index([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], "kb", embedder=embedder)
    assert not (tmp_path / "indexes" / "kb").exists()


def test_bad_input_errors(corpus: Path, embedder: Embedder, small_embedder_path: Path, tmp_path: Path) -> None:
    for bad in ("../escape", "a/b", "a\\b", "..", ".hidden", ""):
        with pytest.raises(CalmRagError, match="invalid index name|name is required"):
            build_index(_paths(corpus), bad, embedder=embedder)
    only_binary = tmp_path / "binary"
    only_binary.mkdir()
    (only_binary / "x.txt").write_bytes(b"\x00\x00")
    with pytest.raises(CalmRagError, match="nothing to index .* 1 files skipped \\(binary: binary/x.txt\\)"):
        build_index([only_binary], "kb", embedder=embedder)
    with pytest.raises(CalmRagError, match="no index named 'kb' .* no indexes there yet"):
        Index.open("kb")

    build_index(_paths(corpus), "kb", embedder=embedder)
    with pytest.raises(CalmRagError, match=r"gives 16-dimensional vectors but index 'kb' holds 32-dimensional"):
        build_index(_paths(corpus), "kb", embedder=str(small_embedder_path))
    with pytest.raises(CalmRagError, match=r"gives 16-dimensional .* from '.*tiny-embedder"):
        Index.open("kb", embedder=Embedder.load(str(small_embedder_path)))
    with pytest.raises(CalmRagError, match="no index named 'other' .* existing indexes: kb"):
        Index.open("other")
    with pytest.raises(CalmRagError, match="top-k must be a positive integer, got 0"):
        Index.open("kb", embedder=embedder).search(["q"], 0)
    with pytest.raises(CalmRagError, match="got -3"):
        Index.open("kb", embedder=embedder).search(["q"], -3)

    folder = tmp_path / "indexes" / "kb"
    manifest = (folder / "manifest.json").read_text()
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(CalmRagError, match="manifest.json is corrupt"):
        Index.open("kb")
    (folder / "manifest.json").write_text(json.dumps({"name": "kb"}))
    with pytest.raises(CalmRagError, match="corrupt \\(missing '"):
        Index.open("kb")
    (folder / "manifest.json").unlink()
    with pytest.raises(CalmRagError, match="manifest.json is missing"):
        Index.open("kb")
    (folder / "manifest.json").write_text(manifest)
    (folder / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(CalmRagError, match="index.faiss is corrupt"):
        Index.open("kb")
    (folder / "index.faiss").unlink()
    with pytest.raises(CalmRagError, match="index.faiss is missing"):
        Index.open("kb")
    with pytest.raises(CalmRagError, match="index.faiss is missing"):  # a broken index is not updated either
        (corpus / "docs" / "en.txt").write_text("changed", encoding="utf-8")
        build_index(_paths(corpus), "kb", embedder=embedder)
    report = build_index(_paths(corpus), "kb", embedder=embedder, rebuild=True)  # --rebuild recovers
    assert report.created and Index.open("kb").manifest.chunks == 6


def test_list_indexes(corpus: Path, embedder: Embedder, tmp_path: Path) -> None:
    assert list_indexes() == []
    build_index(_paths(corpus), "kb", embedder=embedder)
    build_index([corpus / "more.jsonl"], "small", embedder=embedder, index_type="hnsw")
    infos = {info.name: info for info in list_indexes()}
    assert set(infos) == {"kb", "small"}
    assert infos["small"].documents == 3 and infos["small"].index_type == "hnsw" and infos["small"].dimension == 32
    assert infos["kb"].size_bytes > 0 and infos["kb"].error is None
    (tmp_path / "indexes" / "kb" / "manifest.json").write_text("[]")
    assert "corrupt" in {info.name: info for info in list_indexes()}["kb"].error  # type: ignore[operator]
    assert layout.existing_names(tmp_path / "indexes") == ["kb", "small"]
