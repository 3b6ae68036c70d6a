"""Build or update an index: hash files, re-embed only what changed, drop what was deleted, swap atomically.

An update compares each file's SHA-256 with the manifest: unchanged files are not read again,
new and changed files are chunked and embedded, and the chunks of changed files and of files that
vanished from the given paths are deleted. Files indexed from paths you do not pass this time are
kept (pass `rebuild=True` / `--rebuild` to start from scratch). Ids are never reused: they count
up from the manifest's `next_id`, so ids held by a running search stay meaningful.

Everything that can fail (reading, chunking, embedding) happens before anything is written, and the
write goes to a temp folder published with a rename (layout.py), so a failed or interrupted build
leaves the previous index exactly as it was. An update first verifies the previous version's files
against their checksums (integrity.py): copying a damaged index forward would hide the damage. Every
version records the checksums of its files; an update of an index that has none records them even
when nothing else changed. A folder under the index's name that is not a calm-rag index is never
replaced, not even with --rebuild.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from calm_rag.errors import CalmRagError
from calm_rag.indexes import layout
from calm_rag.indexes.chunking import (
    ChunkingConfig,
    Discovery,
    FileChunks,
    SourceFile,
    chunk_source,
    discover,
    make_splitter,
)
from calm_rag.indexes.embedder import Embedder, EmbedderConfig
from calm_rag.indexes.manifest import Manifest, read_manifest
from calm_rag.indexes.records import Chunk
from calm_rag.indexes.store import IndexType, StoreConfig
from calm_rag.indexes.versions import (
    Plan,
    check_target,
    publish_version,
    verify_previous,
    write_version,
)


@dataclass
class BuildReport:
    """What a build or update did; `calm-rag index --json` prints `to_dict()`."""

    name: str
    path: Path
    created: bool
    index_type: str
    embedder: str
    documents: int
    chunks: int
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    ignored: int = 0
    skipped_lines: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.added or self.updated or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "created": self.created, "index_type": self.index_type,
                "embedder": self.embedder, "documents": self.documents, "chunks": self.chunks, "added": self.added,
                "updated": self.updated, "removed": self.removed, "unchanged": self.unchanged,
                "chunks_added": self.chunks_added, "chunks_removed": self.chunks_removed,
                "skipped": {reason: len(keys) for reason, keys in self.skipped.items()},
                "skipped_files": self.skipped, "ignored": self.ignored, "skipped_lines": self.skipped_lines,
                "warnings": self.warnings, "seconds": round(self.seconds, 3)}


def _plan(discovery: Discovery, previous: Manifest | None) -> Plan:
    known = previous.files if previous else {}
    found = {source.key for source in discovery.files}
    new = [s for s in discovery.files if s.key not in known]
    changed = [s for s in discovery.files if s.key in known and known[s.key].sha256 != s.sha256]
    removed = sorted(key for key in known if key not in found and discovery.in_scope(key))
    unchanged = sum(1 for s in discovery.files if s.key in known and known[s.key].sha256 == s.sha256)
    return Plan(new, changed, removed, unchanged)


def _same_model(embedder: Embedder, recorded: dict[str, Any]) -> bool:
    return embedder.model_id == recorded.get("model_id") or str(embedder.resolved.path) == recorded.get("path")


def check_embedder(embedder: Embedder, manifest: Manifest, *, name: str) -> None:
    """The embedder must produce the vectors the index holds: same dimension, same model."""
    recorded = manifest.embedder.get("model_id") or manifest.embedder.get("name")
    if embedder.dimension != manifest.dimension:
        raise CalmRagError(f"embedder {embedder.model_id!r} gives {embedder.dimension}-dimensional vectors but index "
                           f"{name!r} holds {manifest.dimension}-dimensional vectors from {recorded!r}; use the "
                           f"index's embedder or rebuild the index with --rebuild")
    if not _same_model(embedder, manifest.embedder):
        raise CalmRagError(f"index {name!r} was built with embedder {recorded!r}, not {embedder.model_id!r}; "
                           "vectors of different models cannot be mixed: rebuild with --rebuild to switch")


def load_index_embedder(manifest: Manifest, config: EmbedderConfig | None = None) -> Embedder:
    """The embedder an index was built with: by its recorded name, else its recorded folder."""
    config = config or EmbedderConfig()
    recorded = manifest.embedder
    try:
        return Embedder.load(str(recorded.get("name") or recorded.get("path")), config)
    except CalmRagError:
        path = recorded.get("path")
        if path and Path(path).is_dir():
            return Embedder.load(path, config)
        raise


def _as_embedder(embedder: Embedder | str | None, config: EmbedderConfig | None) -> Embedder:
    if isinstance(embedder, Embedder):
        return embedder
    return Embedder.load(embedder, config)


def _chunk_all(sources: Sequence[SourceFile], config: ChunkingConfig) -> dict[str, FileChunks]:
    splitter = make_splitter(config)
    return {source.key: chunk_source(source, config, splitter) for source in sources}


def _nothing_to_index(discovery: Discovery) -> CalmRagError:
    parts = [f"{reason}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
             for reason, keys in discovery.skipped.items()]
    detail = f"; {discovery.skipped_count} files skipped ({'; '.join(parts)})" if parts else ""
    return CalmRagError(f"nothing to index in {', '.join(discovery.scopes)}: no readable text{detail}")


def build_index(paths: Iterable[str | os.PathLike[str]] | None, name: str, embedder: Embedder | str | None = None,
                index_type: IndexType | None = None, index_dir: str | os.PathLike[str] | None = None, *,
                chunking: ChunkingConfig | None = None, store: StoreConfig | None = None, rebuild: bool = False,
                embedder_config: EmbedderConfig | None = None, progress: bool | None = None,
                strict: bool = True) -> BuildReport:
    """Create index `name` from `paths`, or update it incrementally (see the module docstring).

    `embedder`: a loaded `Embedder`, a name/path, or None (the index's own embedder on updates, the
    settings' default for new indexes). `index_type`: None keeps an existing index's type (new
    indexes: 'auto'); a different type converts the index without re-embedding. `rebuild` re-chunks
    and re-embeds everything (with the index's own embedder unless one is given). `paths` None or
    empty re-scans the paths the index was built from. `strict` False skips .jsonl lines without
    `text` with a warning instead of failing. `chunking` None keeps an existing index's chunking.
    """
    started = time.perf_counter()
    layout.validate_name(name)
    root = layout.index_root(index_dir)
    with layout.writer_lock(root, name):
        target = root / name
        check_target(target)
        recorded_manifest: Manifest | None = None
        if target.exists() and any(target.iterdir()):
            try:
                recorded_manifest = read_manifest(target / layout.MANIFEST_FILE)
            except CalmRagError:
                if not rebuild:
                    raise
        previous = None if rebuild else recorded_manifest
        path_list = [Path(p) for p in (paths or [])]
        if not path_list:
            if recorded_manifest is None:
                raise CalmRagError("no files or folders given to index; "
                                   "pass paths to .txt, .md or .jsonl files or folders")
            path_list = [Path(root_) for root_ in recorded_manifest.roots]
        discovery = discover(path_list)

        # settings not given now are the recorded ones (updates and --rebuild alike)
        chunk_config = chunking or ChunkingConfig()
        if recorded_manifest is not None:
            recorded = ChunkingConfig.from_dict(recorded_manifest.chunking)
            if previous is not None and chunking is not None and chunking.to_dict() != recorded.to_dict():
                raise CalmRagError(f"index {name!r} was built with chunk size {recorded.chunk_size} and overlap "
                                   f"{recorded.chunk_overlap}; pass --rebuild to re-chunk with different settings")
            chunk_config = chunking or recorded
        chunk_config = replace(chunk_config, strict=strict)
        store_config = store or StoreConfig()
        if recorded_manifest is not None and store is None:
            store_config = StoreConfig.from_dict(recorded_manifest.index.get("params", {}))
        if index_type is not None:
            store_config = StoreConfig(**{**store_config.to_dict(), "index_type": index_type})

        plan = _plan(discovery, previous)
        wants_kind = None
        if previous is not None and index_type not in (None, "auto") and index_type != previous.index_type:
            wants_kind = index_type

        warnings = verify_previous(target, root, previous, name) if previous is not None else []
        if previous is None and not discovery.files:
            raise _nothing_to_index(discovery)
        # every record is read and checked before any model loads: bad input fails in milliseconds
        per_file = _chunk_all([*plan.new, *plan.changed], chunk_config)
        chunks: list[Chunk] = [chunk for result in per_file.values() for chunk in result.chunks]
        if previous is None and not chunks:
            raise _nothing_to_index(discovery)

        loaded: Embedder | None = None
        if embedder is not None or previous is None or plan.new or plan.changed:
            if embedder is None and recorded_manifest is not None:  # updates and --rebuild keep the embedder
                loaded = load_index_embedder(recorded_manifest, embedder_config)
            else:
                loaded = _as_embedder(embedder, embedder_config)
            if previous is not None:
                check_embedder(loaded, previous, name=name)

        report = BuildReport(name=name, path=target, created=previous is None,
                             index_type=previous.index_type if previous else "?",
                             embedder=loaded.model_id if loaded else str(previous.embedder.get("model_id")),
                             documents=previous.documents if previous else 0,
                             chunks=previous.chunks if previous else 0,
                             added=[s.key for s in plan.new], updated=[s.key for s in plan.changed],
                             removed=plan.removed, unchanged=plan.unchanged, skipped=discovery.skipped,
                             ignored=discovery.ignored, warnings=warnings)
        for result in per_file.values():
            report.warnings.extend(result.warnings)
            report.skipped_lines += result.skipped_lines
        if previous is not None and not (plan.new or plan.changed or plan.removed or wants_kind or not previous.checksums
                                         or previous.index.get("params") != store_config.to_dict()):
            report.seconds = time.perf_counter() - started
            return report
        assert loaded is not None or not chunks
        vectors = (loaded.embed_documents([chunk.text for chunk in chunks], progress=progress) if chunks
                   else np.zeros((0, previous.dimension if previous else 0), np.float32))

        staging = layout.new_staging(root, name)
        try:
            new_manifest = write_version(staging, target, previous, name, discovery, plan, per_file, chunks, vectors,
                                          loaded, store_config, chunk_config, wants_kind)
            if new_manifest.chunks == 0:
                raise CalmRagError(f"index {name!r} would be empty after this update; "
                                   "to delete it, remove its folder " + str(target))
            publish_version(staging, root, name, new_manifest)
        except BaseException:
            layout.discard(staging)
            raise
        report.index_type = new_manifest.index_type
        report.documents = new_manifest.documents
        report.chunks = new_manifest.chunks
        report.chunks_added = len(chunks)
        report.chunks_removed = (previous.chunks if previous else 0) + len(chunks) - new_manifest.chunks
        report.seconds = time.perf_counter() - started
        return report


def build_from_chunks(chunks: Sequence[Chunk], name: str, *, sources: dict[str, str], embedder: Embedder | str | None,
                      index_type: IndexType | None = None, index_dir: str | os.PathLike[str] | None = None,
                      store: StoreConfig | None = None, progress: bool | None = None) -> BuildReport:
    """Add or replace already-chunked text (LangChain documents) under the pseudo-files `sources` (key -> hash).

    Chunks of a source key that is already in the index replace it; other sources are kept.
    """
    started = time.perf_counter()
    layout.validate_name(name)
    root = layout.index_root(index_dir)
    with layout.writer_lock(root, name):
        target = root / name
        check_target(target)
        previous = read_manifest(target / layout.MANIFEST_FILE) if target.exists() and any(target.iterdir()) else None
        known = previous.files if previous else {}
        new = [key for key in sources if key not in known]
        changed = [key for key in sources if key in known and known[key].sha256 != sources[key]]
        todo = set(new) | set(changed)
        chosen = [chunk for chunk in chunks if chunk.source in todo]
        if previous is None and not chosen:
            raise CalmRagError("no documents with text to add")
        loaded = load_index_embedder(previous) if embedder is None and previous is not None else \
            _as_embedder(embedder, None)
        if previous is not None:
            check_embedder(loaded, previous, name=name)
        store_config = store or (StoreConfig.from_dict(previous.index.get("params", {})) if previous else StoreConfig())
        if index_type is not None:
            store_config = StoreConfig(**{**store_config.to_dict(), "index_type": index_type})
        report = BuildReport(name=name, path=target, created=previous is None, index_type="?",
                             embedder=loaded.model_id, documents=0, chunks=0, added=new, updated=changed,
                             unchanged=len(sources) - len(todo))
        if previous is not None:
            report.warnings.extend(verify_previous(target, root, previous, name))
        if previous is not None and not todo:
            report.index_type, report.documents = previous.index_type, previous.documents
            report.chunks = previous.chunks
            return report
        per_file: dict[str, FileChunks] = {key: FileChunks(chunks=[], documents=0) for key in todo}
        for chunk in chosen:
            per_file[chunk.source].chunks.append(chunk)
        for result in per_file.values():
            result.documents = len({chunk.doc_id for chunk in result.chunks})
        vectors = loaded.embed_documents([chunk.text for chunk in chosen], progress=progress)
        plan = Plan(new=[SourceFile(key, Path(key), sources[key], 0, "text") for key in new],
                     changed=[SourceFile(key, Path(key), sources[key], 0, "text") for key in changed],
                     removed=[], unchanged=report.unchanged)
        discovery = Discovery(files=[], scopes=[], roots=[])
        chunk_config = ChunkingConfig.from_dict(previous.chunking) if previous else ChunkingConfig()
        staging = layout.new_staging(root, name)
        try:
            manifest = write_version(staging, target, previous, name, discovery, plan, per_file, chosen, vectors,
                                      loaded, store_config, chunk_config, None)
            publish_version(staging, root, name, manifest)
        except BaseException:
            layout.discard(staging)
            raise
        report.index_type, report.documents, report.chunks = manifest.index_type, manifest.documents, manifest.chunks
        report.chunks_added = len(chosen)
        report.seconds = time.perf_counter() - started
        return report
