"""The FAISS vector store: stable int64 ids, inner product on unit vectors, flat / HNSW / IVF.

Every index is an `IndexIDMap2` around the real index, so the ids FAISS returns are the docstore's
row ids, never positions, and they stay stable across updates. Vectors are unit length (see
embedder.py), so inner product is cosine similarity.

Index types (`--index-type`):
- `flat`: exact search (`IndexFlatIP`). Best below ~50k chunks, where it is fast enough anyway,
  and for big batches of queries, where it runs as one matrix product.
- `hnsw`: `IndexHNSWFlat` graph, approximate; for one query at a time it beats exact search by a
  factor that grows with the corpus (bench/store.py: 7x at recall@10 0.93, 13x at 0.80, on 100k
  synthetic 768-d vectors).
- `ivf`: `IndexIVFFlat`, trained k-means lists; much cheaper to build than HNSW, lower recall.
- `auto`: flat below `StoreConfig.hnsw_threshold` vectors, HNSW at and above it. An auto index that
  grows past the threshold is converted on the next update (vectors are read back, not re-embedded).

Deletion on HNSW (FAISS's HNSW cannot remove vectors) uses *tombstones*: removed ids go into a
tombstone set saved next to the index, and every search passes an `IDSelectorNot(tombstones)` so
FAISS skips them while walking the graph (results are still the top-k among live vectors, not
top-k-then-filter). When tombstones exceed `compact_ratio` (20%) of the stored vectors, the graph is
rebuilt transparently from the live vectors it already stores (`reconstruct`), without
re-embedding anything. IVF uses the same tombstones: `IndexIVF.remove_ids` does not renumber the
remaining internal ids, which `IndexIDMap2.remove_ids` assumes, so removing in place would map
later results to the wrong ids. Flat deletes in place with `remove_ids`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from calm_rag.errors import CalmRagError

IndexType = Literal["auto", "flat", "hnsw", "ivf"]
INDEX_TYPES: tuple[str, ...] = ("auto", "flat", "hnsw", "ivf")


def _faiss() -> Any:
    import faiss

    return faiss


@dataclass(frozen=True)
class StoreConfig:
    """Index type and its parameters; recorded in the manifest."""

    index_type: IndexType = "auto"
    hnsw_threshold: int = 50_000
    """`auto` uses exact search below this many vectors (exact is fast enough there and never misses)."""
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    """Graph quality at build time: 200 vs 80 gave +0.03 recall@10 at efSearch 128 (bench/store.py)."""
    hnsw_ef_search: int = 128
    ivf_nlist: int | None = None
    """IVF lists; None: about 4 * sqrt(n), capped so each list gets >= 39 training vectors."""
    ivf_nprobe: int = 16
    compact_ratio: float = 0.2

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise CalmRagError(f"unknown index type {self.index_type!r}; choose one of {', '.join(INDEX_TYPES)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoreConfig:
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**known)


def _as_ids(ids: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


def _as_vectors(vectors: Any, dimension: int) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.ndim != 2 or array.shape[1] != dimension:
        raise CalmRagError(f"vectors of shape {array.shape} do not fit an index of dimension {dimension}")
    return array


class VectorStore:
    """An `IndexIDMap2` plus the tombstones of its HNSW deletions."""

    def __init__(self, index: Any, kind: Literal["flat", "hnsw", "ivf"], config: StoreConfig,
                 tombstones: np.ndarray | None = None) -> None:
        self.index = index
        self.kind = kind
        self.config = config
        self.tombstones: set[int] = {int(i) for i in (tombstones if tombstones is not None else ())}

    # -- construction -------------------------------------------------------------------------

    @staticmethod
    def choose_kind(config: StoreConfig, count: int) -> Literal["flat", "hnsw", "ivf"]:
        if config.index_type == "auto":
            return "hnsw" if count >= config.hnsw_threshold else "flat"
        return config.index_type

    @classmethod
    def build(cls, dimension: int, ids: Any, vectors: Any, config: StoreConfig,
              kind: Literal["flat", "hnsw", "ivf"] | None = None) -> VectorStore:
        """A new store holding `vectors` under `ids` (IVF is trained on these vectors)."""
        faiss = _faiss()
        ids = _as_ids(ids)
        vectors = _as_vectors(vectors, dimension) if len(ids) else np.zeros((0, dimension), np.float32)
        kind = kind or cls.choose_kind(config, len(ids))
        if kind == "flat":
            inner = faiss.IndexFlatIP(dimension)
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dimension, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = config.hnsw_ef_construction
            inner.hnsw.efSearch = config.hnsw_ef_search
        else:
            nlist = config.ivf_nlist or max(1, int(4 * math.sqrt(max(len(ids), 1))))
            nlist = max(1, min(nlist, len(ids) // 39 or 1))
            quantizer = faiss.IndexFlatIP(dimension)
            inner = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
            if len(ids) == 0:
                raise CalmRagError("an IVF index needs vectors to train on; add documents or use --index-type flat")
            inner.train(vectors)
            inner.nprobe = min(config.ivf_nprobe, nlist)
        store = cls(faiss.IndexIDMap2(inner), kind, config)
        store._keep_quantizer = quantizer if kind == "ivf" else None  # type: ignore[attr-defined]
        if len(ids):
            store.index.add_with_ids(vectors, ids)
        return store

    @classmethod
    def load(cls, path: Path, config: StoreConfig, kind: Literal["flat", "hnsw", "ivf"],
             tombstones_path: Path | None = None) -> VectorStore:
        """Read a store written by `save`; a `CalmRagError` names the file if it is missing or corrupt."""
        faiss = _faiss()
        if not path.is_file():
            raise CalmRagError(f"index file {path} is missing; rebuild the index with `calm-rag index ... --rebuild`")
        try:
            index = faiss.read_index(str(path))
        except Exception as error:  # noqa: BLE001 - FAISS raises RuntimeError with a C++ trace
            raise CalmRagError(f"index file {path} is corrupt ({str(error).splitlines()[0][:120]}); "
                               "rebuild the index with `calm-rag index ... --rebuild`") from None
        if not isinstance(index, faiss.IndexIDMap2):
            raise CalmRagError(f"index file {path} is not a calm-rag index (got {type(index).__name__})")
        inner = faiss.downcast_index(index.index)
        if kind == "hnsw" and isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = config.hnsw_ef_search
        if kind == "ivf" and isinstance(inner, faiss.IndexIVF):
            inner.nprobe = min(config.ivf_nprobe, inner.nlist)
        tombstones = None
        if tombstones_path is not None and tombstones_path.is_file():
            try:
                tombstones = np.load(tombstones_path, allow_pickle=False)
            except (OSError, ValueError) as error:
                raise CalmRagError(f"tombstone file {tombstones_path} is corrupt ({error})") from None
        return cls(index, kind, config, tombstones)

    def save(self, path: Path, tombstones_path: Path) -> None:
        _faiss().write_index(self.index, str(path))
        if self.tombstones:
            np.save(tombstones_path, np.array(sorted(self.tombstones), dtype=np.int64), allow_pickle=False)

    # -- queries ------------------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    @property
    def stored(self) -> int:
        """Vectors held, tombstoned ones included."""
        return int(self.index.ntotal)

    def __len__(self) -> int:
        """Live vectors."""
        return self.stored - len(self.tombstones)

    def ids(self) -> np.ndarray:
        """Live ids, in storage order."""
        all_ids = _faiss().vector_to_array(self.index.id_map).astype(np.int64)
        if not self.tombstones:
            return all_ids
        return all_ids[~np.isin(all_ids, np.fromiter(self.tombstones, dtype=np.int64))]

    def search(self, queries: Any, top_k: int, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids, `min(top_k, live vectors)` columns (at least 1; -1 where a search found fewer), in
        query batches of `batch_size`. The width is capped by the index size before anything is allocated: a
        top_k of 10^8 on a 4-chunk index must not allocate gigabytes."""
        faiss = _faiss()
        queries = _as_vectors(queries, self.dimension)
        k = max(1, min(top_k, len(self)))
        params = None
        if self.tombstones:
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(np.fromiter(self.tombstones, dtype=np.int64)))
            if self.kind == "hnsw":
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.config.hnsw_ef_search, k))
            elif self.kind == "ivf":
                nprobe = faiss.downcast_index(self.index.index).nprobe
                params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
            else:
                params = faiss.SearchParameters(sel=selector)
            params._keep = selector  # keep the selector alive as long as the parameters
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.config.hnsw_ef_search, k))
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        if len(self) == 0:
            return scores, ids
        for start in range(0, len(queries), batch_size):
            block = queries[start:start + batch_size]
            got_scores, got_ids = self.index.search(block, k, params=params)
            scores[start:start + len(block), :k] = got_scores
            ids[start:start + len(block), :k] = got_ids
        return scores, ids

    # -- updates ------------------------------------------------------------------------------

    def add(self, ids: Any, vectors: Any) -> None:
        ids = _as_ids(ids)
        if len(ids):
            self.index.add_with_ids(_as_vectors(vectors, self.dimension), ids)

    def remove(self, ids: Any) -> None:
        """Delete `ids`: in place for flat, as tombstones for HNSW and IVF (see module docstring)."""
        ids = _as_ids(ids)
        if not len(ids):
            return
        if self.kind != "flat":
            self.tombstones.update(int(i) for i in ids)
        else:
            self.index.remove_ids(ids)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Live ids and their vectors, read back from the index."""
        faiss = _faiss()
        all_ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        if self.kind == "ivf":
            inner = faiss.downcast_index(self.index.index)
            inner.make_direct_map()
            stored = inner.reconstruct_n(0, inner.ntotal) if inner.ntotal else np.zeros((0, self.dimension), np.float32)
            inner.make_direct_map(False)
        else:
            inner = faiss.downcast_index(self.index.index)
            stored = inner.reconstruct_n(0, inner.ntotal) if inner.ntotal else np.zeros((0, self.dimension), np.float32)
        if self.tombstones:
            live = ~np.isin(all_ids, np.fromiter(self.tombstones, dtype=np.int64))
            return all_ids[live], stored[live]
        return all_ids, stored

    def needs_rebuild(self) -> Literal["flat", "hnsw", "ivf"] | None:
        """The kind to rebuild into: auto crossed the threshold, or tombstones passed `compact_ratio`."""
        if self.config.index_type == "auto" and self.kind == "flat" and len(self) >= self.config.hnsw_threshold:
            return "hnsw"
        if self.tombstones and len(self.tombstones) > self.config.compact_ratio * max(self.stored, 1):
            return self.kind
        return None

    def rebuilt(self, kind: Literal["flat", "hnsw", "ivf"] | None = None) -> VectorStore:
        """A fresh store of `kind` with the live vectors only (no re-embedding)."""
        ids, vectors = self.all_vectors()
        return VectorStore.build(self.dimension, ids, vectors, self.config, kind or self.kind)
