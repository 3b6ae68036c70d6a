"""`resolve_model`: turn whatever the user typed after --model / --embedder into local files.

Order for a name calm-rag knows (a short name or hub id in the registry): (1) the local Hugging Face
cache, then (only when online) the live hub; (2) the offline bundle in the calm-rag model cache, if
its manifest says it is complete and every file still hashes to what it records; (3) otherwise a
`CalmRagError` that says which command provisions it. A folder in the working directory that happens
to carry a known name does not replace the verified model: a local folder is written as a path
(`./name`, `/abs/path`, `~/...`). Any other text is a local folder or GGUF file when one exists, else
a hub id. There is never a silent fallback to a different model: a name resolves to that model or fails.

A folder that holds a calm-rag manifest (a bundle, or a float32 copy calm-rag made) is verified the
same way wherever it is given from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from calm_rag.config import Settings, load_settings
from calm_rag.errors import CalmRagError
from calm_rag.models import gguf_files, hub, store
from calm_rag.models.registry import (
    ROLES,
    ModelSpec,
    Role,
    find_spec,
    known_names,
    role_specs,
)

Source = Literal["path", "hf-cache", "bundle"]


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    """The model's local folder (or the GGUF file given by path). from_pretrained / SentenceTransformer load
    it as is, except where it holds only a GGUF: then `ensure_transformers_weights` gives transformers a
    float32 copy."""
    name: str
    """What the user asked for."""
    hub_id: str | None
    """Upstream hub id where known."""
    source: str
    """'path' | 'hf-cache' | 'bundle'."""
    revision: str | None
    """HF commit (hf-cache) or the pinned sha256 of the bundle's source weights."""
    gguf: Path | None = None
    """The model as one GGUF file (what llama.cpp runs): a bundle's `model.gguf`, the file given, or the one
    `.gguf` in a folder given; None when there is none."""


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise CalmRagError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role  # type: ignore[return-value]


def _manifest_text(manifest: dict[str, Any], key: str) -> str | None:
    value = manifest.get(key)
    return value if isinstance(value, str) else None


def _damaged(folder: Path, manifest: dict[str, Any] | None, reason: str) -> CalmRagError:
    name = _manifest_text(manifest or {}, "name")
    spec = find_spec(name) if name else None
    remedy = (f"run `calm-rag models pull {spec.name} --force`" if spec is not None and spec.bundle is not None
              else "delete the folder and make it again")
    return CalmRagError(f"the model folder {folder} is damaged or was changed ({reason}); {remedy}")


def _from_folder(name: str, folder: Path, role: Role) -> ResolvedModel:
    """A folder given by path; a calm-rag folder among them (it has a manifest) must verify."""
    manifest = store.read_manifest(folder)
    gguf: Path | None = None
    if manifest is not None:
        check = store.check_bundle(folder)
        if not check.ok:
            raise _damaged(folder.resolve(), manifest, check.reason)
        kept = _manifest_text(manifest, "gguf")
        gguf = (folder / kept).resolve() if kept else None
    elif role == "generator":
        gguf = gguf_files.single_gguf(folder)
    manifest = manifest or {}
    return ResolvedModel(path=folder.resolve(), name=name, hub_id=_manifest_text(manifest, "hub_id"), source="path",
                         revision=_manifest_text(manifest, "revision"), gguf=gguf)


def _from_file(name: str, file: Path, role: Role) -> ResolvedModel:
    if role == "generator" and file.suffix.lower() == ".gguf":
        path = file.resolve()
        return ResolvedModel(path=path, name=name, hub_id=None, source="path", revision=None, gguf=path)
    what = "a model folder (config.json and weights) or a .gguf file" if role == "generator" else "a model folder"
    raise CalmRagError(f"{name} is a file; {'an' if role == 'embedder' else 'a'} {role} must be {what}, "
                       "a short name or a hub id")


def _looks_like_path(text: str) -> bool:
    """Path syntax, as opposed to a short name ('qwen2.5-...' has dots, so suffixes are not a hint)."""
    return (_explicit_path(text) or "\\" in text or text.count("/") > 1
            or text.lower().endswith((".gguf", ".safetensors", ".bin", ".zip")))


def _explicit_path(text: str) -> bool:
    """Written as a path, so never a registry name: `./x`, `../x`, `/x`, `~/x`, `.`."""
    return text.startswith(("./", "../", "/", "~")) or text in (".", "..")


def resolve_model(name_or_path: str, role: str, settings: Settings | None = None) -> ResolvedModel:
    """Resolve a short name, hub id, local folder or GGUF file to local files (see the module doc)."""
    wanted = _check_role(role)
    text = str(name_or_path).strip()
    if not text:
        raise CalmRagError(f"no {wanted} model given; try one of: {', '.join(known_names())}")
    settings = settings or load_settings()

    spec = None if _explicit_path(text) else find_spec(text)
    if spec is None:
        local = Path(text).expanduser()
        if local.is_dir():
            return _from_folder(text, local, wanted)
        if local.exists():
            return _from_file(text, local, wanted)
    elif spec.role != wanted:
        raise CalmRagError(f"{spec.name} is an {spec.role}, not a {wanted}; "
                           f"{wanted}s: {', '.join(s.name for s in role_specs(wanted))}")
    hub_id = spec.hub_id if spec is not None else (text if hub.looks_like_hub_id(text) else None)
    if hub_id is None:
        if _looks_like_path(text):
            raise CalmRagError(f"model folder {text} does not exist")
        raise CalmRagError(f"unknown model {text!r}: not a folder, a known short name ({', '.join(known_names())}) "
                           "or a hub id like owner/name")

    cached = hub.find_in_hf_cache(hub_id, wanted) or hub.download_from_hub(hub_id, wanted)
    if cached is not None:
        gguf = gguf_files.single_gguf(cached.path) if wanted == "generator" else None
        return ResolvedModel(path=cached.path, name=text, hub_id=hub_id, source="hf-cache", revision=cached.revision,
                             gguf=gguf)
    if spec is not None and spec.bundle is not None:
        return _from_bundle(text, spec, settings)
    where = f"not in the Hugging Face cache {hub.hf_cache_dir()}"
    why = "HF_HUB_OFFLINE is set" if hub.hub_offline() else "the hub could not be reached"
    raise CalmRagError(f"{hub_id} is {where} and {why}; it has no offline bundle: download it where the hub is "
                       "reachable and pass its folder, or use one of: "
                       f"{', '.join(s.name for s in role_specs(wanted) if s.bundle is not None)}")


def _from_bundle(text: str, spec: ModelSpec, settings: Settings) -> ResolvedModel:
    check = store.bundle_status(spec, settings.model_cache.expanduser())
    if check.ok and check.manifest is not None:
        kept = _manifest_text(check.manifest, "gguf")
        return ResolvedModel(path=check.folder, name=text, hub_id=spec.hub_id, source="bundle",
                             revision=_manifest_text(check.manifest, "revision"),
                             gguf=check.folder / kept if kept else None)
    if check.manifest is not None or check.folder.exists():
        raise CalmRagError(f"the offline bundle of {spec.name} at {check.folder} is damaged or was changed "
                           f"({check.reason}); run `calm-rag models pull {spec.name} --force`")
    shadow = Path(text).expanduser()
    hint = f" (to use the folder {text} here instead, pass ./{text})" if shadow.is_dir() else ""
    raise CalmRagError(f"{spec.name} ({spec.hub_id}) is not available offline; run `calm-rag models pull {spec.name}`"
                       + hint)
