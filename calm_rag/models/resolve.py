"""`resolve_model`: turn whatever the user typed after --model / --embedder into a local folder.

Order: (1) an existing local folder is used as is; (2) a short name becomes its hub id, which is
looked up in the local Hugging Face cache, then (only when online) on the live hub; (3) the offline
bundle in the calm-rag model cache, if its manifest says it is complete; (4) otherwise a
`CalmRagError` that says which command provisions it. There is never a silent fallback to a
different model: a name resolves to that model or fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from calm_rag.config import Settings, load_settings
from calm_rag.errors import CalmRagError
from calm_rag.models import hub, store
from calm_rag.models.registry import ROLES, Role, find_spec, known_names, role_specs

Source = Literal["path", "hf-cache", "bundle"]


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    """Local folder that from_pretrained / SentenceTransformer can load."""
    name: str
    """What the user asked for."""
    hub_id: str | None
    """Upstream hub id where known."""
    source: str
    """'path' | 'hf-cache' | 'bundle'."""
    revision: str | None
    """HF commit (hf-cache) or the pinned sha256 of the bundle's source weights."""


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise CalmRagError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role  # type: ignore[return-value]


def _from_path(name: str, folder: Path) -> ResolvedModel:
    manifest = store.read_manifest(folder) or {}
    hub_id = manifest.get("hub_id") if isinstance(manifest.get("hub_id"), str) else None
    revision = manifest.get("revision") if isinstance(manifest.get("revision"), str) else None
    return ResolvedModel(path=folder.resolve(), name=name, hub_id=hub_id, source="path", revision=revision)


def _looks_like_path(text: str) -> bool:
    """Path syntax, as opposed to a short name ('qwen2.5-...' has dots, so suffixes are not a hint)."""
    return (text.startswith((".", "~", "/")) or "\\" in text or text.count("/") > 1
            or text.lower().endswith((".gguf", ".safetensors", ".bin", ".zip")))


def resolve_model(name_or_path: str, role: str, settings: Settings | None = None) -> ResolvedModel:
    """Resolve a short name, hub id or local folder to a loadable local folder (see the module doc)."""
    wanted = _check_role(role)
    text = str(name_or_path).strip()
    if not text:
        raise CalmRagError(f"no {wanted} model given; try one of: {', '.join(known_names())}")
    settings = settings or load_settings()

    folder = Path(text).expanduser()
    if folder.is_dir():
        return _from_path(text, folder)
    if folder.exists():
        raise CalmRagError(f"{text} is a file; a {wanted} must be a model folder (config.json and weights), "
                           "a short name or a hub id")

    spec = find_spec(text)
    if spec is not None and spec.role != wanted:
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
        return ResolvedModel(path=cached.path, name=text, hub_id=hub_id, source="hf-cache", revision=cached.revision)

    if spec is not None and spec.bundle is not None:
        check = store.bundle_status(spec, settings.model_cache)
        if check.ok and check.manifest is not None:
            return ResolvedModel(path=check.folder, name=text, hub_id=hub_id, source="bundle",
                                 revision=check.manifest.get("revision"))
        if check.manifest is not None or check.folder.exists():
            raise CalmRagError(f"the offline bundle of {spec.name} at {check.folder} is damaged ({check.reason}); "
                               f"run `calm-rag models pull {spec.name} --force`")
        raise CalmRagError(f"{spec.name} ({hub_id}) is not available offline; run `calm-rag models pull {spec.name}`")
    where = f"not in the Hugging Face cache {hub.hf_cache_dir()}"
    why = "HF_HUB_OFFLINE is set" if hub.hub_offline() else "the hub could not be reached"
    raise CalmRagError(f"{hub_id} is {where} and {why}; it has no offline bundle: download it where the hub is "
                       "reachable and pass its folder, or use one of: "
                       f"{', '.join(s.name for s in role_specs(wanted) if s.bundle is not None)}")

