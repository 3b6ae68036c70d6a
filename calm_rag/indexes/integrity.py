"""Checksums of an index's files: recorded at build and update, verified on open, cheap when nothing changed.

Why: FAISS reads a damaged file without complaint as long as its header parses, and a few flipped bytes in
the vector data gave search scores of 217.98 where cosine similarity is at most 1. So the manifest records
the sha256 of `index.faiss`, `docstore.sqlite` and `tombstones.npy` (when present), and opening or updating
an index first checks them; a mismatch is a one-line error that says to rebuild.

Hashing a large index on every open would be slow, so a successful full check writes a *verified-stamp*
(`.<name>.verified.json` next to the index, never inside it: readers do not write into an index, and a
read-only index still opens, it is just hashed each time). The stamp holds, per file, the sha256 it was
checked against plus size, mtime_ns, ctime_ns, inode and device: a file whose stat still matches is not
hashed again. ctime cannot be set back by a user (unlike mtime), so an in-place edit that restores the
mtime is still caught. The stamp is a cache; deleting it costs one re-hash.

Indexes built before checksums existed have none: they open with a warning (nothing to verify against),
and the next `calm-rag index --name NAME` records them (an update that changes nothing else rewrites the
version with checksums; nothing is re-embedded). Adopting checksums silently on open would bless whatever
damage is already there.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from calm_rag.errors import CalmRagError
from calm_rag.indexes import layout
from calm_rag.indexes.manifest import Manifest

log = logging.getLogger(__name__)

_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(folder: Path) -> dict[str, str]:
    """sha256 of each of the index's checked files that exists in `folder` (what a manifest records)."""
    return {name: sha256_file(folder / name) for name in layout.CHECKED_FILES if (folder / name).is_file()}


def _stat_key(path: Path) -> dict[str, int]:
    info = path.stat()
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "ctime_ns": info.st_ctime_ns, "inode": info.st_ino,
            "device": info.st_dev}


def _read_stamp(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def write_stamp(stamp: Path, folder: Path, checksums: dict[str, str]) -> None:
    """Record that the files of `folder` were just hashed to `checksums` (best effort: a read-only index
    folder simply gets no stamp)."""
    from calm_rag.data.jsonl import write_json

    try:
        files = {name: {"sha256": digest, **_stat_key(folder / name)} for name, digest in checksums.items()}
        write_json(stamp, {"files": files})
    except (CalmRagError, OSError) as error:
        log.debug("could not write the verified-stamp %s: %s", stamp, error)


def _damaged(path: Path, name: str, why: str) -> CalmRagError:
    return CalmRagError(f"{path} is {why}; the index is damaged: rebuild it with "
                        f"`calm-rag index PATH ... --name {name} --rebuild`")


def verify_files(folder: Path, manifest: Manifest, *, name: str, stamp: Path) -> bool:
    """Check the files of the index in `folder` against `manifest.checksums` (hashing only files whose stat
    differs from the stamp). False for an index without checksums (the caller warns); a `CalmRagError` that
    says to rebuild for a missing or changed file."""
    if not manifest.checksums:
        return False
    stamped = _read_stamp(stamp)
    fresh = True
    for file_name, expected in manifest.checksums.items():
        path = folder / file_name
        if file_name not in layout.CHECKED_FILES:
            raise _damaged(folder / layout.MANIFEST_FILE, name, f"corrupt (it lists an unknown file {file_name!r})")
        if not path.is_file():
            raise _damaged(path, name, "missing")
        entry = stamped.get(file_name)
        if isinstance(entry, dict) and entry == {"sha256": expected, **_stat_key(path)}:
            continue
        fresh = False
        if sha256_file(path) != expected:
            raise _damaged(path, name, "corrupt (its sha256 differs from the one in manifest.json)")
    extra = [f for f in layout.CHECKED_FILES if f not in manifest.checksums and (folder / f).is_file()]
    if extra:
        raise _damaged(folder / extra[0], name, "not listed in manifest.json (a file of another version?)")
    if not fresh or set(stamped) != set(manifest.checksums):
        write_stamp(stamp, folder, manifest.checksums)
    return True
