"""Writing one version of an index: the files, their checksums, the manifest; then the atomic swap.

build.py decides *what* goes into the next version (which files are new, changed, removed); this
module writes it into a staging folder and publishes it (layout.py's rename swap), and guards both
ends: the version an update starts from is verified against its checksums first (integrity.py),
and a folder under the index's name that calm-rag did not build is never replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calm_rag.errors import CalmRagError
from calm_rag.indexes import integrity, layout
from calm_rag.indexes.chunking import ChunkingConfig, Discovery, FileChunks, SourceFile
from calm_rag.indexes.docstore import DocStore
from calm_rag.indexes.embedder import Embedder
from calm_rag.indexes.manifest import FileEntry, Manifest, utc_now, write_manifest
from calm_rag.indexes.records import Chunk
from calm_rag.indexes.store import StoreConfig, VectorStore


@dataclass
class Plan:
    """What an update does to the files of the previous version."""

    new: list[SourceFile]
    changed: list[SourceFile]
    removed: list[str]
    unchanged: int


def check_target(target: Path) -> None:
    """Refuse to treat a file, or a non-empty folder without any index file, as index `target`."""
    if not target.exists():
        return
    index_files = (layout.MANIFEST_FILE, layout.INDEX_FILE, layout.DOCSTORE_FILE)
    if not target.is_dir() or (any(target.iterdir()) and not any((target / f).exists() for f in index_files)):
        raise CalmRagError(f"{target} exists and is not a calm-rag index; choose another --name or move it away "
                           "(calm-rag never replaces what it did not build)")


def verify_previous(target: Path, root: Path, previous: Manifest, name: str) -> list[str]:
    """Check the version an update starts from; the warnings for the report (an index without checksums)."""
    if integrity.verify_files(target, previous, name=name, stamp=layout.stamp_path(root, name)):
        return []
    return [(f"index {name!r} had no checksums of its files (built before calm-rag recorded them); "
             "this update records them")]


def publish_version(staging: Path, root: Path, name: str, manifest: Manifest) -> None:
    """Swap the new version in, then stamp its files as verified (they were hashed just now)."""
    target = layout.publish(staging, root, name)
    integrity.write_stamp(layout.stamp_path(root, name), target, manifest.checksums)


def write_version(staging: Path, target: Path, previous: Manifest | None, name: str, discovery: Discovery,
                  plan: Plan, per_file: dict[str, FileChunks], chunks: list[Chunk], vectors: np.ndarray,
                  embedder: Embedder | None, store_config: StoreConfig, chunk_config: ChunkingConfig,
                  wants_kind: str | None) -> Manifest:
    """Write the next version of the index into `staging` and return its manifest."""
    next_id = previous.next_id if previous else 0
    ids = np.arange(next_id, next_id + len(chunks), dtype=np.int64)
    if previous is None:
        assert embedder is not None
        docstore = DocStore(staging / layout.DOCSTORE_FILE)
        vector_store = None
    else:
        source_store = DocStore(target / layout.DOCSTORE_FILE, readonly=True)
        try:
            docstore = source_store.copy_to(staging / layout.DOCSTORE_FILE)
        finally:
            source_store.close()
        vector_store = VectorStore.load(target / layout.INDEX_FILE, store_config, previous.index_type,  # type: ignore[arg-type]
                                        target / layout.TOMBSTONES_FILE)
    try:
        stale = docstore.ids_for_sources([*(s.key for s in plan.changed), *plan.removed])
        docstore.delete(stale)
        docstore.add(ids.tolist(), chunks)
        dimension = embedder.dimension if embedder is not None else previous.dimension  # type: ignore[union-attr]
        if vector_store is None:
            vector_store = VectorStore.build(dimension, ids, vectors, store_config)
        else:
            vector_store.config = store_config
            vector_store.remove(stale)
            vector_store.add(ids, vectors)
            kind = wants_kind or vector_store.needs_rebuild()
            if kind is not None:
                vector_store = vector_store.rebuilt(kind)  # type: ignore[arg-type]
        vector_store.save(staging / layout.INDEX_FILE, staging / layout.TOMBSTONES_FILE)
        files = dict(previous.files) if previous else {}
        for key in plan.removed:
            files.pop(key, None)
        for source in [*plan.new, *plan.changed]:
            result = per_file[source.key]
            files[source.key] = FileEntry(sha256=source.sha256, size=source.size, documents=result.documents,
                                          chunks=len(result.chunks), skipped_lines=result.skipped_lines)
        roots = list(previous.roots) if previous else []
        for root_ in discovery.roots:
            if str(root_) not in roots:
                roots.append(str(root_))
        manifest = Manifest(
            # an update keeps the recorded identity (hub id, revision) even if the model was found by its folder
            name=name, embedder=dict(previous.embedder) if previous is not None else embedder.describe(),  # type: ignore[union-attr]
            dimension=dimension,
            index={"type": vector_store.kind, "metric": "inner_product", "params": store_config.to_dict(),
                   "stored": vector_store.stored, "tombstones": len(vector_store.tombstones)},
            chunking=chunk_config.to_dict(), documents=docstore.count_documents(), chunks=len(docstore), files=files,
            roots=roots, next_id=next_id + len(chunks),
            created_at=previous.created_at if previous else utc_now(), updated_at=utc_now())
    finally:
        docstore.close()
    manifest.checksums = integrity.file_checksums(staging)
    write_manifest(manifest, staging / layout.MANIFEST_FILE)
    return manifest
