"""The float32 safetensors copy of a GGUF generator, made on first use by whatever needs transformers.

llama.cpp runs a generator's GGUF as it is. transformers (training, `--engine transformers`) can neither
train a GGUF-loaded model nor load one quickly (every tensor is dequantized on each load, 40-60 s), so
it gets an ordinary float32 checkpoint made once from the GGUF (convert.py). That copy is 4-6x the
GGUF's size and takes about a minute and several GB of RAM, so `models pull` does not make it: the
first caller that needs it does, with a progress callback, and it is kept:

- for a bundle, in `<bundle>/transformers/`, its files added to the bundle's manifest (verified like
  the rest on every load; delete the folder to get the disk space back, it is rebuilt when needed);
- for a GGUF file (or a folder with one) given by path, in `<model cache>/converted/<key>/`, with the
  GGUF's sha256 and stat recorded so a changed GGUF is converted again.

Both are written beside their final place and renamed into it only when complete, under the model's
lock, so an interrupted conversion leaves nothing loadable half-written and two processes never
convert the same model at once (the second waits and then finds the copy made).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from calm_rag.config import Settings, load_settings
from calm_rag.errors import CalmRagError
from calm_rag.models import convert, gguf_files, hub, store, verify
from calm_rag.models.resolve import ResolvedModel
from calm_rag.progress import StageProgress

_DISK_MARGIN = 1.1


def ensure_transformers_weights(resolved: ResolvedModel, progress: StageProgress | None = None,
                                settings: Settings | None = None) -> Path:
    """A folder transformers can load for `resolved`: the model's own folder when it is one, else the
    float32 copy of its GGUF, made now if it does not exist yet (see the module doc)."""
    if resolved.gguf is None or (resolved.path.is_dir() and hub.is_loadable(resolved.path, "generator")):
        return resolved.path
    report = progress or (lambda stage, done, total: None)
    manifest = store.read_manifest(resolved.path) if resolved.path.is_dir() else None
    if manifest is not None and manifest.get("gguf"):
        return _in_bundle(resolved.path, resolved.gguf, resolved.name, report)
    return _in_cache(resolved.gguf, resolved.name, (settings or load_settings()).model_cache.expanduser(), report)


def _in_bundle(folder: Path, gguf: Path, label: str, report: StageProgress) -> Path:
    target = folder / store.TRANSFORMERS_DIR
    with store.model_lock(folder.parent, folder.name, wait=True):
        manifest = store.read_manifest(folder) or {}  # again, under the lock: another process may have converted
        if store.converted_files(manifest) and target.is_dir():
            check = store.check_bundle(folder)
            if not check.ok:
                raise CalmRagError(f"the float32 copy in {target} is damaged or was changed ({check.reason}); "
                                   f"delete {target} and it is made again on next use")
            return target
        for leftover in (target, *folder.glob(store.BUILD_PREFIX + "*")):  # killed conversions; we hold the lock
            store.remove_tree(leftover)
        build = folder / f"{store.BUILD_PREFIX}{os.getpid()}"
        try:
            section = _convert(gguf, build, label, report)
            os.replace(build, target)
        except BaseException:
            store.remove_tree(build)
            raise
        files = {f"{store.TRANSFORMERS_DIR}/{name}": entry for name, entry in section.pop("files").items()}
        manifest["transformers"] = {"folder": store.TRANSFORMERS_DIR, "files": files, **section}
        store.write_manifest(folder, manifest)
        verify.record_verified(folder, files)
    return target


def _in_cache(gguf: Path, label: str, cache: Path, report: StageProgress) -> Path:
    source = gguf.resolve()
    key = hashlib.sha256(str(source).encode()).hexdigest()[:16]
    root = cache / "converted"
    target = root / key
    with store.model_lock(root, key, wait=True):
        manifest = store.read_manifest(target)
        if manifest is not None and _same_source(source, manifest.get("source")) and store.check_bundle(target).ok:
            return target
        digest = verify.sha256_file(source)
        if manifest is not None and isinstance(manifest.get("source"), dict) \
                and manifest["source"].get("sha256") == digest and store.check_bundle(target).ok:
            manifest["source"] = _describe_source(source, digest)  # touched, not changed: just re-stamp
            store.write_manifest(target, manifest)
            return target
        build = root / f".build-{key}-{os.getpid()}"
        store.remove_tree(build)
        try:
            section = _convert(source, build, label, report)
            files = section.pop("files")
            store.write_manifest(build, {"format": store.MANIFEST_FORMAT, "name": f"float32 copy of {source.name}",
                                         "revision": digest, "source": _describe_source(source, digest),
                                         "files": files, "complete": True, **section})
            verify.record_verified(build, files)
            store.install_atomically(build, target)
        except BaseException:
            store.remove_tree(build)
            raise
    return target


def _describe_source(gguf: Path, digest: str) -> dict[str, Any]:
    stat = gguf.stat()
    return {"path": str(gguf), "sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "ctime_ns": stat.st_ctime_ns, "ino": stat.st_ino}


def _same_source(gguf: Path, recorded: Any) -> bool:
    """The GGUF is the very file converted before (same path and stat), so its copy still stands."""
    if not isinstance(recorded, dict):
        return False
    stat = gguf.stat()
    now = {"path": str(gguf), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
           "ino": stat.st_ino}
    return all(recorded.get(field) == value for field, value in now.items())


def _convert(gguf: Path, build: Path, label: str, report: StageProgress) -> dict[str, Any]:
    """GGUF -> float32 folder `build`, hashed; returns the manifest section (with `files`)."""
    summary = gguf_files.read_summary(gguf)
    _check_disk(build.parent, summary.float32_bytes, label)
    started, stage = time.monotonic(), f"{label}: converting the GGUF to float32 safetensors (first use only)"
    report(stage, 0, convert.CONVERSION_STEPS)
    conversion = convert.convert_gguf(gguf, build, step=lambda done: report(stage, done, convert.CONVERSION_STEPS))
    store.make_readable(build)
    total = sum(path.stat().st_size for path in build.rglob("*") if path.is_file())
    hashed, stage = 0, f"{label}: hashing the float32 copy"

    def advance(amount: int) -> None:
        nonlocal hashed
        hashed += amount
        report(stage, hashed, total)

    report(stage, 0, total)
    files = store.file_inventory(build, advance)
    return {"files": files, "size_bytes": total, "steps": conversion.steps, "parameters": conversion.parameters,
            "dtype": conversion.dtype, "converted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - started, 1)}


def _check_disk(where: Path, needed: int, label: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(where).free
    if free < needed * _DISK_MARGIN:
        raise CalmRagError(f"not enough free disk space in {where} for the float32 copy of {label} that transformers "
                           f"needs: {free / 1e9:.1f} GB free, about {needed * _DISK_MARGIN / 1e9:.1f} GB needed; "
                           "free some space, or use the llama.cpp engine, which runs the GGUF as it is")
