"""Checking a model folder's files against the sha256 its manifest records, cheaply, on every load.

Why: checking only sizes let a same-size edit of a bundle file (a chat template, an embedder's prompt
config) load silently; hashing gigabytes on every `resolve_model` would cost seconds. So a file is
hashed in full once and then remembered in a verified-stamp file beside the manifest: its size,
mtime_ns, ctime_ns and inode at the time it hashed right. A file whose stat still matches its stamp
is trusted; any other is hashed again, and the stamp is refreshed when it still matches. ctime is
part of the stamp because nobody can set it back (`touch -d` restores mtime, not ctime), so an edit
cannot hide behind a restored mtime. What the stamp cannot stop is someone who rewrites the manifest
too: it guards against edits and accidents, not against an owner of the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

STAMP_NAME = "calm-rag-verified.json"
_HASH_BLOCK = 8 * 1024 * 1024

Files = Mapping[str, Mapping[str, Any]]
"""Relative path -> {"size": int, "sha256": str}, as a manifest lists them."""


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(_HASH_BLOCK):
            digest.update(block)
            if progress is not None:
                progress(len(block))
    return digest.hexdigest()


def _stat_key(stat: os.stat_result) -> dict[str, int]:
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns, "ino": stat.st_ino}


def read_stamp(folder: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((folder / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def _write_stamp(folder: Path, stamp: Mapping[str, Any]) -> None:
    """Best effort: a read-only model folder just means every load hashes again."""
    scratch = folder / f".{STAMP_NAME}.{os.getpid()}.tmp"
    try:
        scratch.write_text(json.dumps({"format": 1, "files": dict(stamp)}, indent=1) + "\n", encoding="utf-8")
        os.replace(scratch, folder / STAMP_NAME)
    except OSError:
        scratch.unlink(missing_ok=True)


def record_verified(folder: Path, files: Files) -> None:
    """Stamp `files` as verified as they are now (call right after hashing them); keeps other entries."""
    stamp = read_stamp(folder)
    for relative, entry in files.items():
        stamp[relative] = {**_stat_key((folder / relative).stat()), "sha256": entry["sha256"]}
    _write_stamp(folder, stamp)


def verify_files(folder: Path, files: Files, *, deep: bool = False) -> str | None:
    """None when every listed file exists and hashes to its recorded sha256, else why not (one phrase).

    Only files whose stat changed since their last good hash are hashed (all of them with `deep`).
    """
    stamp = read_stamp(folder)
    changed = False
    for relative, entry in files.items():
        path = folder / relative
        if not path.is_file():
            return f"{relative} is missing"
        stat = path.stat()
        if stat.st_size != entry.get("size"):
            return f"{relative} has the wrong size"
        key = _stat_key(stat)
        known = stamp.get(relative)
        if not deep and isinstance(known, dict) and known.get("sha256") == entry.get("sha256") \
                and all(known.get(field) == value for field, value in key.items()):
            continue
        if sha256_file(path) != entry.get("sha256"):
            return f"{relative} does not match its sha256 (changed since it was written)"
        stamp[relative] = {**key, "sha256": entry["sha256"]}
        changed = True
    if changed:
        _write_stamp(folder, stamp)
    return None


def unlisted_file(folder: Path, listed: set[str], ignored_dirs: set[str]) -> str | None:
    """The first file in `folder` that is not in `listed` (the manifest's files and its own) nor a stamp, else None.

    An added file can change what loads (a `special_tokens_map.json`, a legacy `chat_template.json`),
    so a verified folder holds nothing else. `ignored_dirs`: top-level folders that do not load (a
    conversion in progress, or one whose result the manifest does not list yet).
    """
    for root, dirs, names in os.walk(folder):
        here = Path(root)
        if here == folder:
            dirs[:] = [name for name in dirs if name not in ignored_dirs]
        for name in names:
            relative = (here / name).relative_to(folder).as_posix()
            if relative in listed or (here == folder and (name == STAMP_NAME or name.startswith(f".{STAMP_NAME}."))):
                continue
            return relative
    return None
