"""Where indexes live on disk and how a new version replaces the old one atomically.

`<index_dir>/<name>/` holds `index.faiss`, `docstore.sqlite`, `manifest.json` and, for HNSW/IVF
indexes with deletions, `tombstones.npy`. `index_dir` defaults to `load_settings().index_dir`
(`./indexes`, or `CALM_RAG_INDEX_DIR`).

Writers never touch a published folder. They build the next version in `.<name>.tmp-*` next to
it, fsync it, then swap: rename `<name>` -> `.<name>.old-*`, rename the new folder -> `<name>`,
delete the old one. A crash or Ctrl-C before the swap leaves the previous version untouched (the
temp folder is cleaned up by the next writer); a crash between the two renames leaves a complete
`.old-*` folder, which readers fall back to and the next writer renames back. One writer per index
at a time is enforced with an exclusive lock file (`.<name>.lock`). `.<name>.verified.json` is the
verified-stamp of integrity.py (a cache: deleting it only costs one re-hash).

The index folder itself is checked before any work: a file, a folder that cannot be created or
written (read-only, /proc) is a one-line error, not a traceback after the embedding.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from calm_rag.errors import CalmRagError

INDEX_FILE = "index.faiss"
DOCSTORE_FILE = "docstore.sqlite"
MANIFEST_FILE = "manifest.json"
TOMBSTONES_FILE = "tombstones.npy"
CHECKED_FILES = (INDEX_FILE, DOCSTORE_FILE, TOMBSTONES_FILE)
"""The files whose sha256 the manifest records (those of them an index has)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def validate_name(name: str) -> str:
    """An index name is one folder name: letters, digits, '.', '_', '-'; no separators, no '..'."""
    if not isinstance(name, str) or not name.strip():
        raise CalmRagError("an index name is required (e.g. --name medkb)")
    if "/" in name or "\\" in name or ".." in name or not _NAME.fullmatch(name):
        raise CalmRagError(f"invalid index name {name!r}: use letters, digits, '.', '_' and '-' "
                           "(no path separators or '..'), at most 128 characters")
    return name


def index_root(index_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds all indexes: `index_dir`, else the settings' `index_dir`."""
    if index_dir is not None:
        return Path(index_dir).expanduser()
    from calm_rag.config import load_settings

    return Path(load_settings().index_dir).expanduser()


def _not_a_folder(root: Path) -> CalmRagError:
    return CalmRagError(f"the index folder {root} is a file, not a folder; pass --index-dir a folder")


def readable_root(root: Path) -> Path:
    """`root` for readers: it may be missing (then no index is there), but it must not be a file."""
    if root.exists() and not root.is_dir():
        raise _not_a_folder(root)
    return root


def writable_root(root: Path) -> Path:
    """`root` for writers, created if needed and proved writable with a probe file, before any work is done."""
    readable_root(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CalmRagError(f"cannot create the index folder {root}: {error.strerror or error}; "
                           "pass --index-dir a folder you can write to") from None
    try:
        handle, probe = tempfile.mkstemp(dir=root, prefix=".calm-rag-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise CalmRagError(f"cannot write in the index folder {root}: {error.strerror or error}; "
                           "pass --index-dir a folder you can write to") from None
    return root


def stamp_path(root: Path, name: str) -> Path:
    """Where the verified-stamp of index `name` lives (next to it, so readers never write into an index)."""
    return root / f".{name}.verified.json"


def _old_versions(root: Path, name: str) -> list[Path]:
    if not root.is_dir():
        return []
    olds = [path for path in root.glob(f".{name}.old-*") if path.is_dir()]
    return sorted(olds, key=lambda path: path.stat().st_mtime, reverse=True)


def published(root: Path, name: str) -> Path | None:
    """The folder to read `name` from: `<root>/<name>`, or a complete `.old-*` left by a crashed swap."""
    target = root / name
    if target.is_dir():
        return target
    olds = [path for path in _old_versions(root, name) if (path / MANIFEST_FILE).is_file()]
    return olds[0] if olds else None


@contextlib.contextmanager
def writer_lock(root: Path, name: str) -> Iterator[None]:
    """Exclusive per-index lock; a second concurrent writer gets a clear error instead of a race."""
    writable_root(root)
    lock_path = root / f".{name}.lock"
    handle = open(lock_path, "a+")  # noqa: SIM115 - held for the block
    try:
        try:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - Windows: no advisory locks, single writer assumed
            pass
        except OSError:
            raise CalmRagError(f"index {name!r} is being updated by another calm-rag process; "
                               "try again later") from None
        _recover(root, name)
        yield
    finally:
        handle.close()


def _recover(root: Path, name: str) -> None:
    """Undo what a crashed writer left: restore a lone `.old-*`, delete stale temp folders."""
    target = root / name
    olds = _old_versions(root, name)
    if not target.exists() and olds:
        os.rename(olds[0], target)
        olds = olds[1:]
    for stale in [*olds, *root.glob(f".{name}.tmp-*")]:
        shutil.rmtree(stale, ignore_errors=True)


def new_staging(root: Path, name: str) -> Path:
    """An empty temp folder next to the index, on the same filesystem so the swap is a rename."""
    staging = root / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    return staging


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - some platforms cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def publish(staging: Path, root: Path, name: str) -> Path:
    """Atomically make `staging` the index `name` (see the module docstring for the crash cases)."""
    for child in staging.iterdir():
        _fsync(child)
    _fsync(staging)
    target = root / name
    old: Path | None = None
    if target.exists():
        old = root / f".{name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
    os.rename(staging, target)
    _fsync(root)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def discard(staging: Path | None) -> None:
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)


def folder_size(path: Path) -> int:
    return sum(child.stat().st_size for child in path.iterdir() if child.is_file())


def existing_names(root: Path) -> list[str]:
    """Names of the folders under `root` that look like indexes (have a manifest)."""
    if not root.is_dir():
        return []
    return sorted(path.name for path in root.iterdir()
                  if path.is_dir() and not path.name.startswith(".") and (path / MANIFEST_FILE).is_file())
