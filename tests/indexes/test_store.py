"""The FAISS store: id stability, flat / HNSW / IVF, tombstone deletion, compaction, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calm_rag.errors import CalmRagError
from calm_rag.indexes.store import StoreConfig, VectorStore


def _unit(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_search_remove_save_load_rebuild(kind: str, tmp_path: Path) -> None:
    vectors, ids = _unit(500), np.arange(1000, 1500)
    store = VectorStore.build(16, ids, vectors, StoreConfig(index_type=kind))  # type: ignore[arg-type]
    assert store.kind == kind and len(store) == 500
    scores, found = store.search(vectors[:5], 3)
    assert found[:, 0].tolist() == ids[:5].tolist() and np.allclose(scores[:, 0], 1.0, atol=1e-5)

    store.remove([1000, 1001])
    _, found = store.search(vectors[:2], 3)
    assert 1000 not in found and 1001 not in found and len(store) == 498
    assert kind == "flat" or store.tombstones == {1000, 1001}

    store.save(tmp_path / "i.faiss", tmp_path / "t.npy")
    loaded = VectorStore.load(tmp_path / "i.faiss", store.config, kind, tmp_path / "t.npy")  # type: ignore[arg-type]
    assert len(loaded) == 498 and loaded.search(vectors[2:3], 1)[1][0, 0] == 1002
    compact = loaded.rebuilt()
    assert compact.stored == 498 and not compact.tombstones
    assert compact.search(vectors[2:3], 1)[1][0, 0] == 1002
    assert sorted(compact.ids().tolist()) == list(range(1002, 1500))


def test_top_k_is_capped_by_the_index_size_before_allocating() -> None:
    store = VectorStore.build(16, [5, 6], _unit(2), StoreConfig())
    scores, ids = store.search(_unit(3, seed=1), 4)
    assert ids.shape == scores.shape == (3, 2) and sorted(ids[0].tolist()) == [5, 6]
    # 10^8 (and 2^63, which no int64 holds) on a 2-vector index: two columns, not gigabytes or an overflow
    for huge in (10**8, 2**63):
        scores, ids = store.search(_unit(1, seed=1), huge)
        assert ids.shape == (1, 2) and np.isfinite(scores).all()
    empty = VectorStore.build(16, [], np.zeros((0, 16), np.float32), StoreConfig())
    scores, ids = empty.search(_unit(1, seed=1), 10**8)
    assert ids.tolist() == [[-1]] and np.isneginf(scores).all()


def test_auto_switches_to_hnsw_at_the_threshold_and_compacts_tombstones() -> None:
    config = StoreConfig(hnsw_threshold=100)
    assert VectorStore.choose_kind(config, 99) == "flat" and VectorStore.choose_kind(config, 100) == "hnsw"
    store = VectorStore.build(16, np.arange(50), _unit(50), config)
    assert store.kind == "flat" and store.needs_rebuild() is None
    store.add(np.arange(50, 150), _unit(100, seed=2))
    assert store.needs_rebuild() == "hnsw"
    hnsw = store.rebuilt(store.needs_rebuild())
    assert hnsw.kind == "hnsw" and len(hnsw) == 150
    hnsw.remove(np.arange(10))
    assert hnsw.needs_rebuild() is None
    hnsw.remove(np.arange(10, 40))
    assert hnsw.needs_rebuild() == "hnsw"
    assert len(hnsw.rebuilt()) == 110


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CalmRagError, match="is missing"):
        VectorStore.load(tmp_path / "none.faiss", StoreConfig(), "flat")
    (tmp_path / "bad.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(CalmRagError, match="is corrupt"):
        VectorStore.load(tmp_path / "bad.faiss", StoreConfig(), "flat")
    with pytest.raises(CalmRagError, match="unknown index type"):
        StoreConfig(index_type="annoy")  # type: ignore[arg-type]
