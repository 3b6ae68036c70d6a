"""Content fingerprints of a model and of a LoRA adapter, for caches keyed by what produced the answers.

Why not the folder path: a different model saved to the same path (a retrained run, a re-pulled bundle
of other weights) would reuse answers cached for the old one. Why not a full sha256 of the weights:
that reads gigabytes on every eval start. So:

- a folder with a calm-rag manifest (a bundle, or a float32 copy calm-rag made) was verified file by
  file against its manifest when it resolved: its recorded sha256 of the source weights names it;
- anything else is fingerprinted from what differs between models at little cost: every config,
  tokenizer and template file in full, and of each weight file its size, its header (safetensors:
  the tensor table; other formats: the first MiB) and evenly spaced 64 KiB samples of the rest.
  Training moves every weight, so two different checkpoints differ in every sample. This is a cache
  key, not a tamper check (bundles get the full check at load; see verify.py).
- adapters are small: their config and weights are hashed in full.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from calm_rag.errors import CalmRagError
from calm_rag.models import store, verify
from calm_rag.models.resolve import ResolvedModel

_WEIGHTS = (".safetensors", ".gguf", ".bin", ".pt", ".pth")
_SMALL = (".json", ".jinja", ".txt", ".model", ".tiktoken")
_SKIP = (store.MANIFEST_NAME, verify.STAMP_NAME)
_HEAD = 1024 * 1024
_SAMPLE = 64 * 1024
_SAMPLES = 16
_MAX_SMALL = 64 * 1024 * 1024
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def model_fingerprint(resolved: ResolvedModel) -> str:
    """A hex digest that changes whenever the model's weights, tokenizer or templates change (module doc)."""
    manifest = store.read_manifest(resolved.path) if resolved.path.is_dir() else None
    if manifest is not None and isinstance(manifest.get("revision"), str) and manifest.get("complete") is True:
        return manifest["revision"]
    return content_fingerprint(resolved.path)


def content_fingerprint(path: Path) -> str:
    """The sampled fingerprint of a model folder or single weight file (see the module doc)."""
    if path.is_file():
        files = [path]
        root = path.parent
    else:
        root = path
        files = sorted(file for file in path.rglob("*") if file.is_file() and file.name not in _SKIP
                       and not any(part.startswith(".") for part in file.relative_to(path).parts)
                       and file.suffix.lower() in _WEIGHTS + _SMALL)
    if not files:
        raise CalmRagError(f"{path} holds no model files (weights, config or tokenizer) to fingerprint")
    digest = hashlib.sha256(b"calm-rag model fingerprint 1\0")
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        size = file.stat().st_size
        digest.update(size.to_bytes(8, "little"))
        if file.suffix.lower() in _SMALL and size <= _MAX_SMALL:
            digest.update(verify.sha256_file(file).encode())
        else:
            _sample(file, size, digest.update)
    return digest.hexdigest()


def _sample(file: Path, size: int, update: Callable[[bytes], object]) -> None:
    with file.open("rb") as stream:
        head = stream.read(_HEAD)
        update(head)
        start = len(head)
        if file.suffix.lower() == ".safetensors" and len(head) >= 8:
            header = int.from_bytes(head[:8], "little")
            if 8 + header > len(head) and header <= _MAX_SAFETENSORS_HEADER:
                update(stream.read(8 + header - len(head)))  # the whole tensor table
                start = 8 + header
        span = size - start - _SAMPLE
        if span <= 0:
            update(stream.read())
            return
        for index in range(_SAMPLES):
            stream.seek(start + span * index // (_SAMPLES - 1))
            update(stream.read(_SAMPLE))


def adapter_fingerprint(folder: Path) -> str:
    """sha256 over a LoRA adapter folder's config and weight files (names included)."""
    if not folder.is_dir():
        raise CalmRagError(f"adapter {folder} not found: pass the folder `calm-rag train --out` wrote")
    files = [folder / name for name in _ADAPTER_FILES if (folder / name).is_file()]
    if not (folder / "adapter_config.json").is_file():
        raise CalmRagError(f"{folder} is not a LoRA adapter folder (no adapter_config.json)")
    digest = hashlib.sha256(b"calm-rag adapter fingerprint 1\0")
    for file in files:
        digest.update(file.name.encode() + b"\0" + verify.sha256_file(file).encode())
    return digest.hexdigest()
