"""`list_models`: where every known model resolves from right now, without touching the network."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from calm_rag.config import Settings, load_settings
from calm_rag.models import hub, registry, store
from calm_rag.models.registry import ModelSpec


@dataclass(frozen=True)
class ModelStatus:
    name: str
    role: str
    hub_id: str
    default: bool
    bundled: bool
    """Whether `calm-rag models pull` can provision it."""
    source: str
    """'hf-cache' | 'bundle' | 'missing' (the order `resolve_model` tries them, network aside)."""
    path: Path | None
    size_bytes: int | None
    """On disk now: for a generator bundle, its GGUF plus the float32 copy once transformers made one."""
    status: str
    """'ok', 'missing', or 'damaged: <reason>' for a bundle that would not resolve."""
    description: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path) if self.path else None
        return data


def model_status(spec: ModelSpec, settings: Settings, *, deep: bool = False) -> ModelStatus:
    common = {"name": spec.name, "role": spec.role, "hub_id": spec.hub_id, "default": spec.default,
              "bundled": spec.bundle is not None, "description": spec.description}
    cached = hub.find_in_hf_cache(spec.hub_id, spec.role)
    if cached is not None:
        return ModelStatus(**common, source="hf-cache", path=cached.path, size_bytes=store.folder_size(cached.path),
                           status="ok")
    if spec.bundle is not None:
        check = store.bundle_status(spec, settings.model_cache, deep=deep)
        if check.ok and check.manifest is not None:
            return ModelStatus(**common, source="bundle", path=check.folder,
                               size_bytes=_bundle_size(check.folder, check.manifest), status="ok")
        if check.folder.exists():
            return ModelStatus(**common, source="missing", path=check.folder, size_bytes=None,
                               status=f"damaged: {check.reason}")
    return ModelStatus(**common, source="missing", path=None, size_bytes=None, status="missing")


def _bundle_size(folder: Path, manifest: dict[str, Any]) -> int:
    """The verified files' sizes: the pulled ones, and the float32 copy where it is on disk."""
    files = dict(manifest.get("files") or {})
    if (folder / store.TRANSFORMERS_DIR).is_dir():
        files.update(store.converted_files(manifest))
    return sum(int(entry.get("size", 0)) for entry in files.values())


def list_models(settings: Settings | None = None, *, deep: bool = False) -> list[ModelStatus]:
    """Every known model and where it is available offline; `deep` re-hashes bundle files."""
    settings = settings or load_settings()
    return [model_status(spec, settings, deep=deep) for spec in registry.MODELS]  # at call time, like find_spec
