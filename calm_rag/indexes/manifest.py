"""`manifest.json`: what an index holds and how it was made, so it can be searched and updated safely.

It records the embedder (id, revision, dimension, prompts, normalisation) because queries must be
embedded exactly like the documents were; the index type and parameters; the chunking, because an
update must cut text the same way; a content hash per source file, which is what incremental updates
compare against; and the sha256 of the index's own files (`checksums`, verified on open: integrity.py).
It is plain JSON so people and other tools can read it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from calm_rag.errors import CalmRagError

FORMAT_VERSION = 1


def calm_rag_version() -> str:
    try:
        return metadata.version("calm-rag")
    except metadata.PackageNotFoundError:
        return "unknown"


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass
class FileEntry:
    """One indexed file: its content hash (what updates compare) and what it yielded."""

    sha256: str
    size: int
    documents: int
    chunks: int
    skipped_lines: int = 0


@dataclass
class Manifest:
    """The parsed `manifest.json` of one index."""

    name: str
    embedder: dict[str, Any]
    """name, model_id, hub_id, revision, path, dimension, normalized, prompts, dtype, backend."""
    dimension: int
    index: dict[str, Any]
    """type (flat|hnsw|ivf), metric, params (StoreConfig), stored, tombstones."""
    chunking: dict[str, Any]
    documents: int
    chunks: int
    files: dict[str, FileEntry]
    roots: list[str]
    next_id: int
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)
    calm_rag_version: str = field(default_factory=calm_rag_version)
    normalized: bool = True
    metric: str = "inner_product"
    format_version: int = FORMAT_VERSION
    checksums: dict[str, str] = field(default_factory=dict)
    """File name in the index folder -> sha256; empty for indexes built before calm-rag recorded them."""

    @property
    def index_type(self) -> str:
        return str(self.index.get("type", "?"))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = {key: asdict(entry) for key, entry in sorted(self.files.items())}
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Manifest:
        if not isinstance(data, dict):
            raise CalmRagError(f"{where} is corrupt (not a JSON object); rebuild with `calm-rag index ... --rebuild`")
        version = data.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise CalmRagError(f"{where} has format {version}, newer than this calm-rag understands "
                               f"({FORMAT_VERSION}); upgrade calm-rag")
        try:
            files = {str(key): FileEntry(**value) for key, value in data["files"].items()}
            manifest = cls(
                name=str(data["name"]), embedder=dict(data["embedder"]), dimension=int(data["dimension"]),
                index=dict(data["index"]), chunking=dict(data["chunking"]), documents=int(data["documents"]),
                chunks=int(data["chunks"]), files=files, roots=[str(root) for root in data["roots"]],
                next_id=int(data["next_id"]), created_at=str(data["created_at"]), updated_at=str(data["updated_at"]),
                calm_rag_version=str(data.get("calm_rag_version", "unknown")),
                normalized=bool(data.get("normalized", True)), metric=str(data.get("metric", "inner_product")),
                format_version=int(data.get("format_version", FORMAT_VERSION)),
                checksums={str(key): str(value) for key, value in dict(data.get("checksums") or {}).items()})
        except KeyError as error:
            raise CalmRagError(f"{where} is corrupt (missing {error.args[0]!r}); "
                               "rebuild with `calm-rag index ... --rebuild`") from None
        except (TypeError, ValueError, AttributeError) as error:
            raise CalmRagError(f"{where} is corrupt ({error}); rebuild with `calm-rag index ... --rebuild`") from None
        if manifest.dimension <= 0 or manifest.index.get("type") not in ("flat", "hnsw", "ivf"):
            raise CalmRagError(f"{where} is corrupt (bad dimension or index type); "
                               "rebuild with `calm-rag index ... --rebuild`")
        return manifest


def read_manifest(path: Path) -> Manifest:
    """Parse `path`; a missing or corrupt file is a `CalmRagError` that says how to recover."""
    if not path.is_file():
        raise CalmRagError(f"{path} is missing, so this is not a usable index; "
                           "rebuild it with `calm-rag index ... --rebuild`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CalmRagError(f"{path} is corrupt ({detail}); rebuild with `calm-rag index ... --rebuild`") from None
    return Manifest.from_dict(data, str(path))


def write_manifest(manifest: Manifest, path: Path) -> None:
    """Write and fsync (the folder swap that publishes it is in layout.py)."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(manifest.to_dict(), handle, ensure_ascii=False, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
