"""Checksums of an index's files: recorded at build, verified on open and before an update, re-hashed only
when a file's stat changed; indexes from before checksums open with a warning and get them on the next update."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from calm_rag.cli import app
from calm_rag.errors import CalmRagError
from calm_rag.indexes import Index, build_index, integrity, layout
from calm_rag.indexes.embedder import Embedder
from calm_rag.indexes.manifest import Manifest
from calm_rag.indexes.store import StoreConfig, VectorStore


@pytest.fixture
def built(corpus: Path, embedder: Embedder, tmp_path: Path) -> Path:
    """The corpus indexed as 'kb'; returns the index folder."""
    build_index([corpus / "docs", corpus / "more.jsonl"], "kb", embedder=embedder)
    return tmp_path / "indexes" / "kb"


def _damage_a_vector(folder: Path) -> np.ndarray:
    """Change the 4 bytes of the largest component of the first stored vector, in place, keeping the file's
    size (a FAISS file damaged like this still loads); returns the undamaged vectors."""
    _, vectors = VectorStore.load(folder / layout.INDEX_FILE, StoreConfig(), "flat").all_vectors()
    data = bytearray((folder / layout.INDEX_FILE).read_bytes())
    offset = data.find(vectors[0].astype(np.float32).tobytes())
    assert offset >= 0
    component = int(np.argmax(np.abs(vectors[0])))
    data[offset + 4 * component:offset + 4 * component + 4] = np.float32(vectors[0][component] * 300).tobytes()
    (folder / layout.INDEX_FILE).write_bytes(bytes(data))
    return vectors


def test_manifest_records_the_sha256_of_the_index_files(built: Path) -> None:
    manifest = json.loads((built / layout.MANIFEST_FILE).read_text(encoding="utf-8"))
    assert set(manifest["checksums"]) == {layout.INDEX_FILE, layout.DOCSTORE_FILE}
    for name, digest in manifest["checksums"].items():
        assert hashlib.sha256((built / name).read_bytes()).hexdigest() == digest


def test_changed_bytes_in_the_faiss_file_are_a_clear_error(built: Path, corpus: Path, embedder: Embedder) -> None:
    vectors = _damage_a_vector(built)
    # what the checksum guards against: the damaged file still loads and returns impossible cosine scores
    damaged = VectorStore.load(built / layout.INDEX_FILE, StoreConfig(), "flat")
    assert damaged.search(vectors, 1)[0].max() > 5
    with pytest.raises(CalmRagError, match=r"index\.faiss is corrupt \(its sha256 differs .*--name kb --rebuild"):
        Index.open("kb", embedder=embedder)
    result = CliRunner().invoke(app, ["search", "Paris", "--index", "kb"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "index.faiss is corrupt" in result.stderr
    # an update does not carry the damage forward; --rebuild starts again from the sources
    with pytest.raises(CalmRagError, match="index.faiss is corrupt"):
        build_index([corpus / "docs", corpus / "more.jsonl"], "kb", embedder=embedder)
    build_index([corpus / "docs", corpus / "more.jsonl"], "kb", embedder=embedder, rebuild=True)
    hits = Index.open("kb", embedder=embedder).search(["Paris is the capital of France."], 1)[0]
    assert hits[0].id == "r1" and hits[0].score <= 1.0001


def test_unchanged_files_are_not_hashed_again(built: Path, embedder: Embedder,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[str] = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda path: hashed.append(path.name) or real(path))
    Index.open("kb", embedder=embedder).close()
    assert hashed == []  # the build stamped its files as verified
    stamp = layout.stamp_path(built.parent, "kb")
    stamp.unlink()
    Index.open("kb", embedder=embedder).close()
    assert sorted(hashed) == [layout.DOCSTORE_FILE, layout.INDEX_FILE] and stamp.is_file()
    hashed.clear()
    Index.open("kb", embedder=embedder).close()
    assert hashed == []
    os.utime(built / layout.DOCSTORE_FILE)  # a changed stat means one re-hash of that file only
    Index.open("kb", embedder=embedder).close()
    assert hashed == [layout.DOCSTORE_FILE]


def test_an_in_place_edit_that_restores_size_and_mtime_is_caught(built: Path, embedder: Embedder) -> None:
    path = built / layout.DOCSTORE_FILE
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    with pytest.raises(CalmRagError, match="docstore.sqlite is corrupt"):
        Index.open("kb", embedder=embedder)


def test_missing_or_unlisted_files_are_errors(built: Path, embedder: Embedder) -> None:
    np.save(built / layout.TOMBSTONES_FILE, np.array([1], dtype=np.int64))
    with pytest.raises(CalmRagError, match="tombstones.npy is not listed in manifest.json"):
        Index.open("kb", embedder=embedder)
    (built / layout.TOMBSTONES_FILE).unlink()
    (built / layout.DOCSTORE_FILE).unlink()
    with pytest.raises(CalmRagError, match="docstore.sqlite is missing; the index is damaged: rebuild"):
        Index.open("kb", embedder=embedder)


def test_a_stamp_that_cannot_be_written_only_costs_hashing(built: Path, embedder: Embedder) -> None:
    stamp = layout.stamp_path(built.parent, "kb")
    stamp.unlink()
    stamp.mkdir()  # as unwritable as it gets for root
    with Index.open("kb", embedder=embedder) as index:
        assert index.search(["Paris is the capital of France."], 1)[0][0].id == "r1"


def test_an_index_without_checksums_opens_with_a_warning_and_an_update_records_them(
        built: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture) -> None:
    manifest_path = built / layout.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    del manifest["checksums"]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="calm_rag.indexes.index"):
        Index.open("kb", embedder=embedder).close()
    assert "has no checksums" in caplog.text and "calm-rag index --name kb" in caplog.text
    report = build_index(None, "kb")  # re-scan the recorded paths: nothing changed, nothing embedded
    assert report.chunks_added == 0 and any("records them" in warning for warning in report.warnings)
    assert set(json.loads(manifest_path.read_text(encoding="utf-8"))["checksums"]) == {layout.INDEX_FILE,
                                                                                          layout.DOCSTORE_FILE}
    caplog.clear()
    Index.open("kb", embedder=embedder).close()
    assert "has no checksums" not in caplog.text


def test_a_version_swapped_in_while_opening_is_read_again_not_called_damaged(
        built: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    real = integrity.verify_files
    calls: list[str] = []

    def racing(folder: Path, manifest: Manifest, **kwargs: object) -> bool:
        calls.append(folder.name)
        if len(calls) == 1:  # a writer publishes a new version right after the manifest was read
            replacement = built / "manifest.json.new"
            replacement.write_bytes((built / layout.MANIFEST_FILE).read_bytes())
            os.replace(replacement, built / layout.MANIFEST_FILE)
            raise CalmRagError("index.faiss is corrupt")
        return real(folder, manifest, **kwargs)

    monkeypatch.setattr(integrity, "verify_files", racing)
    Index.open("kb", embedder=embedder).close()
    assert calls == ["kb", "kb"]
    calls.clear()
    monkeypatch.setattr(integrity, "verify_files", lambda *a, **k: calls.append("x") or real(*a, **k))
    (built / layout.DOCSTORE_FILE).write_bytes(b"damaged for real")
    with pytest.raises(CalmRagError, match="docstore.sqlite is corrupt"):
        Index.open("kb", embedder=embedder)
    assert calls == ["x"]  # the manifest did not change: damage, reported at once
